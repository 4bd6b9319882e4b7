"""Turn one source table into loaded rows, quarantine rows and counts.

The order for each row: identify the person (pseudonymise), remove the people an opt-out applies to
(each row labelled with the source that removed it), then apply every rule; a row that breaks any rule
goes to quarantine with one row per broken rule, and every other row is loaded with its contract types.
Nothing here knows which engine runs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import narwhals as nw

from openphm.contract.reader import SourceFile
from openphm.contract.schema import Table
from openphm.engine import ROW, Engine, distinct
from openphm.ingest.pseudonymise import normalise_nhs_number
from openphm.ingest.rules import Check, loaded_columns, nhs_number_valid, table_checks, with_parsed

QUARANTINE_COLUMNS = ("table", "row", "column", "reason", "message")
_NHS = "_nhs_number"
_OPTED = "_opted_out"
_IN_CLEAR = "_id_in_clear"
_BARE = "_bare_id"
_FIRST = "_first_row_of_key"


@dataclass(frozen=True)
class Outcome:
    """What became of a source table's rows: ``input_rows == loaded + quarantined + opted_out``."""

    table: str
    input_rows: int
    loaded: int
    quarantined: int
    opted_out: int
    removed: tuple[tuple[str, int], ...] = ()
    """``opted_out`` by source (``opted_out_list``, ``opted_out_type1``, ``not_cleared``)."""

    @property
    def balanced(self) -> bool:
        return self.input_rows == self.loaded + self.quarantined + self.opted_out


@dataclass(frozen=True)
class Parent:
    """Loaded keys a child table must match, with the reason used when it does not."""

    column: str
    keys: nw.LazyFrame
    reason: str
    message: str


def identify(
    frame: nw.LazyFrame, source: SourceFile, pseudonyms: nw.LazyFrame | None, ids_in_clear: nw.LazyFrame | None
) -> tuple[nw.LazyFrame, list[Check]]:
    """Give every row a ``person_id`` and the checks on its identifier.

    NHS numbers are normalised and looked up in the pseudonym map (built from valid numbers only), so
    an invalid number simply finds no pseudonym. A supplied ``person_id`` passes through, unless it is
    itself a valid NHS number - then it is quarantined rather than stored in clear: ``ids_in_clear`` holds
    those ids (:func:`ids_in_clear`), found once per distinct id rather than once per event row.
    """
    if source.id_column == "nhs_number":
        assert pseudonyms is not None
        frame = frame.with_columns(normalise_nhs_number("nhs_number").alias(_NHS)).join(
            pseudonyms, left_on=_NHS, right_on="nhs_number", how="left"
        )
        raw = nw.col("nhs_number")
        checks = [
            Check("nhs_number", "missing_value", "nhs_number is required", raw.is_null()),
            Check(
                "nhs_number",
                "invalid_nhs_number",
                "nhs_number is not 10 digits with a valid Modulus 11 check digit",
                ~raw.is_null() & nw.col("person_id").is_null(),
            ),
        ]
        return frame.drop(_NHS), checks
    assert ids_in_clear is not None
    marker = nw.lit(True).alias(_IN_CLEAR)
    frame = frame.join(ids_in_clear.select("person_id").with_columns(marker), on="person_id", how="left")
    checks = [
        Check("person_id", "missing_value", "person_id is required", nw.col("person_id").is_null()),
        Check(
            "person_id",
            "person_id_is_nhs_number",
            "person_id is a valid NHS number: supply it as nhs_number so that it is pseudonymised",
            ~nw.col(_IN_CLEAR).is_null(),
        ),
    ]
    return frame, checks


def ids_in_clear(engine: Engine, ids: nw.LazyFrame) -> nw.LazyFrame:
    """The distinct ``person_id`` values of ``ids`` that are valid NHS numbers once written bare.

    Bare: spaces and hyphens removed (943 476 5919, 943-476-5919) and a spreadsheet's trailing ``.0``
    dropped, so no such form is stored in clear. Checked once per distinct id, from a stored bare column:
    per event row, with the bare form as an expression, it was the costliest step of an ingest (about 9 s
    per 40 M rows, and over 100 s when the ids are ten digits).
    """
    bare = nw.col("person_id").str.replace_all(r"[ \-]", "").str.replace_all(r"\.0+$", "")
    once = engine.persist(ids.select("person_id").pipe(distinct).with_columns(bare.alias(_BARE)))
    return engine.persist(once.filter(nhs_number_valid(nw.col(_BARE))).select("person_id"))


def mark_removed(
    frame: nw.LazyFrame, removed: nw.LazyFrame | None, cleared: nw.LazyFrame | None, on: str = "person_id"
) -> nw.LazyFrame:
    """Label rows to remove with their source: ``removed`` holds distinct ``on`` keys and ``_opted_out``.

    ``cleared`` (distinct ``person_id``) is the national check's cleared list: a row whose person is not on
    it is ``not_cleared`` unless another source removed it first. A row without a person is left to the
    identifier checks, which quarantine it.
    """
    if removed is not None:
        frame = frame.join(removed.select(on, _OPTED), on=on, how="left")
    else:
        frame = frame.with_columns(nw.lit(None, dtype=nw.String).alias(_OPTED))
    if cleared is not None:
        flag = "_cleared"
        frame = (
            frame.join(cleared.select(on).with_columns(nw.lit(True).alias(flag)), on=on, how="left")
            .with_columns(
                nw.when(~nw.col(_OPTED).is_null())
                .then(nw.col(_OPTED))
                .when(~nw.col(on).is_null() & nw.col(flag).is_null())
                .then(nw.lit("not_cleared"))
                .otherwise(nw.lit(None, dtype=nw.String))
                .alias(_OPTED)
            )
            .drop(flag)
        )
    return frame


def _repeated_keys(frame: nw.LazyFrame, key: tuple[str, ...]) -> tuple[nw.LazyFrame, Check]:
    """``frame`` with the first row number of each repeated key, and the check that quarantines later repeats.

    The keys that repeat are found by a grouping and joined back: a window over the key carried every column
    of the table through a partition of the whole table (5.5 CPU seconds of the outpatient appointments of a
    million people). A row with a null in its key repeats nothing.
    """
    keyed = nw.all_horizontal(*[~nw.col(k).is_null() for k in key], ignore_nulls=False)
    repeated = (
        frame.filter(keyed)
        .group_by(*key)
        .agg(nw.col(ROW).min().alias(_FIRST), nw.len().alias("_rows"))
        .filter(nw.col("_rows") > 1)
        .select(*key, _FIRST)
    )
    names = ", ".join(key)
    check = Check(
        ",".join(key),
        "duplicate_key",
        f"{names} repeats an earlier row (the first is kept)",
        ~nw.col(_FIRST).is_null() & (nw.col(ROW) != nw.col(_FIRST)),
    )
    return frame.join(repeated, on=list(key), how="left"), check


def split(
    engine: Engine,
    table: Table,
    frame: nw.LazyFrame,
    checks: list[Check],
    parents: list[Parent],
    extract_date: date,
) -> tuple[nw.LazyFrame, nw.LazyFrame, dict[str, int]]:
    """Apply every check; return (loaded typed rows, quarantine rows, rows removed by each source).

    ``frame`` may carry ``_opted_out`` (from :func:`mark_removed`); those rows are counted and dropped
    before any rule is applied, so an opted-out person's data is never inspected further.
    """
    removed: dict[str, int] = {}
    if _OPTED in frame.collect_schema().names():
        # Counted by a second read rather than materialising the table: the largest tables are cheaper to
        # scan twice than to hold in memory.
        counts = frame.filter(~nw.col(_OPTED).is_null()).group_by(_OPTED).agg(nw.len().alias("n")).collect()
        removed = {str(source): int(n) for source, n in counts.rows()}
        frame = frame.filter(nw.col(_OPTED).is_null()).drop(_OPTED)
    for parent in parents:
        marker = f"_has_{parent.column}"
        keys = parent.keys.select(parent.column).with_columns(nw.lit(True).alias(marker))
        frame = frame.join(keys, on=parent.column, how="left")
        checks = [
            *checks,
            Check(
                parent.column,
                parent.reason,
                parent.message,
                ~nw.col(parent.column).is_null() & nw.col(marker).is_null(),
            ),
        ]
    if table.key:
        frame, repeat = _repeated_keys(frame, table.key)
        checks = [*checks, repeat]
    frame = with_parsed(frame, table)
    checks = [*checks, *table_checks(table, extract_date)]
    flags = [f"_v{i}" for i in range(len(checks))]
    # Only what is loaded, the row number and the flags are kept: the raw text of the typed columns, needed
    # only by the checks, would double what is materialised.
    flagged = engine.persist(
        frame.select(
            ROW,
            *loaded_columns(table),
            *[c.violated.fill_null(False).alias(f) for c, f in zip(checks, flags, strict=True)],
        )
    )
    quarantine = nw.concat(
        [
            flagged.filter(nw.col(f)).select(
                nw.lit(table.name).alias("table"),
                nw.col(ROW).alias("row"),
                nw.lit(c.column).alias("column"),
                nw.lit(c.reason).alias("reason"),
                nw.lit(c.message).alias("message"),
            )
            for c, f in zip(checks, flags, strict=True)
        ],
        how="vertical",
    )
    clean = flagged.filter(~nw.any_horizontal(*[nw.col(f) for f in flags], ignore_nulls=False))
    return clean.select(*[c.name for c in table.columns]), quarantine, removed
