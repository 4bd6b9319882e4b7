"""Row-level rules of the contract as narwhals expressions.

Each rule is a boolean expression that is true where a row breaks it, with a reason code and a message
that names the column and the rule - never the value, which may identify a person. Values are parsed
only after they are known to be well formed, so no engine ever raises on bad input.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import narwhals as nw

from openphm.codes.systems import CODED_COLUMNS
from openphm.contract.schema import Column, Table

EARLIEST = date(1900, 1, 1)
_FLOAT = r"^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?$"
_INT = r"^[+-]?[0-9]{1,18}$"
CALENDAR_DATE = (
    r"^(?:[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
    r"|02-(?:0[1-9]|1[0-9]|2[0-8]))"
    r"|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29)$"
)
"""A real calendar date in YYYY-MM-DD form, leap years included, as one regular expression.

One pattern keeps query plans small (a component-by-component check made plan building, not data, the
cost of a small ingest) and reads the same in DuckDB (RE2), Polars (Rust regex) and Spark (Java).
"""
_TRUE = ("true", "t", "1", "yes", "y")
_FALSE = ("false", "f", "0", "no", "n")


@dataclass(frozen=True)
class Check:
    """A rule on one column of a table: ``violated`` is true where a row breaks it."""

    column: str
    reason: str
    message: str
    violated: nw.Expr


def _valid_date(text: nw.Expr) -> nw.Expr:
    return text.str.contains(CALENDAR_DATE).fill_null(False)


def parse_date(name: str) -> nw.Expr:
    """The column as a Date where it is a real calendar date, else null."""
    text = nw.col(name)
    return nw.when(_valid_date(text)).then(text).otherwise(None).str.to_date("%Y-%m-%d")


def parse_float(name: str) -> nw.Expr:
    text = nw.col(name)
    return nw.when(text.str.contains(_FLOAT)).then(text).otherwise(None).cast(nw.Float64)


def parse_int(name: str) -> nw.Expr:
    text = nw.col(name)
    return nw.when(text.str.contains(_INT)).then(text).otherwise(None).cast(nw.Int64)


def parse_bool(name: str) -> nw.Expr:
    text = nw.col(name).str.to_lowercase()
    return nw.when(text.is_in(_TRUE)).then(nw.lit(True)).when(text.is_in(_FALSE)).then(nw.lit(False))


def typed(column: Column) -> nw.Expr:
    """The column converted to its contract type (null where it does not parse)."""
    parse = {"date": parse_date, "float": parse_float, "int": parse_int, "bool": parse_bool}
    if column.type == "str":
        return nw.col(column.name)
    return parse[column.type](column.name).alias(column.name)


def parsed(name: str) -> str:
    """Name of the shadow column holding ``name`` parsed to its type (see :func:`with_parsed`)."""
    return f"__parsed_{name}"


def with_parsed(frame: nw.LazyFrame, table: Table) -> nw.LazyFrame:
    """Add each typed column of ``table`` parsed once, so checks and the loaded table share one parse."""
    columns = [typed(c).alias(parsed(c.name)) for c in table.columns if c.type != "str"]
    return frame.with_columns(*columns) if columns else frame


def loaded_columns(table: Table) -> list[nw.Expr]:
    """The contract columns of ``table``, typed, from a frame prepared by :func:`with_parsed`.

    Clinical codes are stored in their system's canonical form (e.g. ICD-10 'I50.0' as I500): normalised once
    here, so that every stage matching them against code lists compares plain columns.
    """
    systems = {c.column: c.system for c in CODED_COLUMNS if c.table == table.name}
    return [
        (systems[c.name].normalise(nw.col(c.name)) if c.name in systems else nw.col(c.name)).alias(c.name)
        if c.type == "str"
        else nw.col(parsed(c.name)).alias(c.name)
        for c in table.columns
    ]


def nhs_number_valid(text: nw.Expr) -> nw.Expr:
    """True for ten digits whose Modulus 11 check digit holds (the NHS number rule).

    A remainder giving check value 10 makes the number invalid; no digit equals 10, so the one comparison
    rejects it without a test of its own. Engines do not share subexpressions reliably, and ``text`` is
    repeated in every digit: give a column, not a costly expression (DuckDB evaluated a two-regex input
    about 20 times per row).
    """
    shaped = nw.when(text.str.contains(r"^[0-9]{10}$")).then(text)
    digits = [shaped.str.slice(i, 1).cast(nw.Int64) for i in range(10)]
    total = digits[0] * 10
    for i in range(1, 9):
        total = total + digits[i] * (10 - i)
    return ((11 - total % 11) % 11 == digits[9]).fill_null(False)


def column_checks(column: Column, extract_date: date) -> list[Check]:
    """The checks of one column, on a frame prepared by :func:`with_parsed`."""
    name = column.name
    raw = nw.col(name)
    value = nw.col(parsed(name))
    present = ~raw.is_null()
    checks: list[Check] = []
    if not column.nullable:
        checks.append(Check(name, "missing_value", f"{name} is required", raw.is_null()))
    if column.type == "date":
        checks += [
            Check(name, "invalid_date", f"{name} is not a calendar date in YYYY-MM-DD form", present & value.is_null()),
            Check(name, "date_before_1900", f"{name} is before 1900-01-01", value < nw.lit(EARLIEST)),
            Check(name, "date_in_future", f"{name} is after the extract date", value > nw.lit(extract_date)),
        ]
    elif column.type in ("float", "int", "bool"):
        kinds = {"float": "a number", "int": "a whole number", "bool": "true or false"}
        checks.append(
            Check(name, f"invalid_{column.type}", f"{name} is not {kinds[column.type]}", present & value.is_null())
        )
        if column.minimum is not None and column.maximum is not None:
            checks.append(
                Check(
                    name,
                    "out_of_range",
                    f"{name} is outside {column.minimum:g} to {column.maximum:g}",
                    (value < column.minimum) | (value > column.maximum),
                )
            )
        if column.cost:
            checks.append(Check(name, "negative_cost", f"{name} is negative", value < 0))
    if column.codes is not None:
        checks.append(
            Check(name, "invalid_code", f"{name} is not {column.rule_text()}", present & ~raw.is_in(column.codes))
        )
    if column.pattern is not None:
        checks.append(
            Check(
                name,
                "invalid_format",
                f"{name} is not {column.pattern_text}",
                present & ~raw.str.contains(column.pattern),
            )
        )
    return checks


def table_checks(table: Table, extract_date: date) -> list[Check]:
    """Column checks and date order of a table (repeated keys and joins to other tables come later)."""
    checks = [
        check for column in table.columns if column.name != "person_id" for check in column_checks(column, extract_date)
    ]
    for earlier, later in table.date_order:
        checks.append(
            Check(later, "date_order", f"{later} is before {earlier}", nw.col(parsed(later)) < nw.col(parsed(earlier)))
        )
    return checks
