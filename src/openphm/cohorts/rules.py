"""Each rule type as narwhals expressions and joins: which (person_id, as_of) meet a rule.

A rule evaluates to the set of (person_id, as_of) that meet it, with ``why``: the alternatives that held
(for an ``any`` rule) or the conditions matched (for an admissions rule with a rule set), else null. The
cohort stage left-joins these sets onto the population, so a person absent from a rule's table simply does
not meet the rule. A rule whose table (or column) is absent cannot be evaluated at all: :func:`missing`
says so, and the stage reports the cohort as not available rather than empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from functools import reduce

import narwhals as nw
import pyarrow as pa

from openphm.cohorts.acsc import qualifying_spells
from openphm.cohorts.definitions import Comparison, Condition, Rule
from openphm.engine import Engine, distinct
from openphm.pipeline import required
from openphm.spells import spells
from openphm.vocabulary import PERSON_AS_OF

KEY = list(PERSON_AS_OF)
CODED_SOURCES = ("gp_event", "gp_medication", "apc_diagnosis", "apc_procedure", "ae_attendance")
"""The tables a register can be built from: a register rule with none of them present is not available."""
Tables = Mapping[str, nw.LazyFrame | None]


def _compare(c: Comparison) -> nw.Expr:
    column = nw.col(c.column)
    value = c.value
    match c.op:
        case "==":
            return column == value
        case "!=":
            return column != value
        case ">":
            return column > value
        case ">=":
            return column >= value
        case "<":
            return column < value
        case "<=":
            return column <= value
        case "in":
            return column.is_in(list(value))
        case "not_in":
            return ~column.is_in(list(value))
        case _:  # between, both ends included
            return (column >= value[0]) & (column <= value[1])


def expression(condition: Condition) -> nw.Expr:
    """The condition as a boolean expression; null (a missing value) does not meet it."""
    if condition.leaf is not None:
        return _compare(condition.leaf).fill_null(False)
    parts = [expression(p) for p in condition.parts]
    return reduce(lambda a, b: a & b, parts) if condition.combine == "all" else reduce(lambda a, b: a | b, parts)


def _label(condition: Condition) -> str:
    if condition.leaf is not None:
        return condition.leaf.label
    return condition.label or " & ".join(c.label for c in condition.comparisons())


def _why(condition: Condition) -> nw.Expr:
    """For an ``any`` rule: the labels of the alternatives that held, comma-separated."""
    if condition.combine != "any":
        return nw.lit(None, dtype=nw.String)
    return nw.concat_str(
        [nw.when(expression(p)).then(nw.lit(_label(p))) for p in condition.parts], separator=", ", ignore_nulls=True
    )


def missing(rule: Rule, tables: Tables, medicines: frozenset[str] = frozenset()) -> str | None:
    """Why ``rule`` cannot be evaluated on these tables (a table or column is absent), else None.

    Tables that always exist after a run but are empty without their source count as absent with it: the
    measure table has no readings without ``gp_event``, and a register of medicines (``medicines``: their
    ids) has nobody without ``gp_medication`` - an exclusion of 'statin issued' would then exclude nobody.
    """
    needed = [rule.table]
    if rule.type == "admissions" and rule.rule_set:
        needed.append("apc_diagnosis")
    if rule.type == "measure":
        needed.append("gp_event")
    for table in needed:
        if tables.get(table) is None:
            return f"table {table} absent"
    if rule.type == "register":
        sources = ("gp_medication",) if set(rule.definitions) <= medicines else CODED_SOURCES
        if all(tables.get(t) is None for t in sources):
            return f"table {' or '.join(sources)} absent"
    if rule.condition is not None:
        frame = required(tables, rule.table)
        names = set(frame.collect_schema().names())
        for comparison in rule.condition.comparisons():
            if comparison.column not in names:
                return f"column {comparison.column} absent from {rule.table}"
    return None


def windows(engine: Engine, as_of: tuple[date, ...], days: int) -> nw.LazyFrame:
    """(as_of, window_start) with window_start = as_of - days."""
    return engine.frame(
        pa.table(
            {
                "as_of": pa.array(as_of, pa.date32()),
                "window_start": pa.array([d - timedelta(days=days) for d in as_of], pa.date32()),
            }
        )
    )


def hits(rule: Rule, tables: Tables, base: nw.LazyFrame, engine: Engine, as_of: tuple[date, ...]) -> nw.LazyFrame:
    """(person_id, as_of, why) for everyone in ``base`` who meets ``rule``; call only when nothing is missing."""
    if rule.condition is not None:
        frame = base if rule.type == "demographic" else required(tables, rule.table)
        return frame.filter(expression(rule.condition)).select(*KEY, _why(rule.condition).alias("why"))
    if rule.type == "register":
        return _register(rule, tables, engine, as_of)
    return _admissions(rule, tables, engine, as_of)


def _register(rule: Rule, tables: Tables, engine: Engine, as_of: tuple[date, ...]) -> nw.LazyFrame:
    register = required(tables, "register")
    coded = register.filter(nw.col("definition").is_in(list(rule.definitions)))
    if rule.status == "active":
        coded = coded.filter(nw.col("active"))
    if rule.within_days is not None:
        coded = coded.join(windows(engine, as_of, rule.within_days), on="as_of", how="inner").filter(
            nw.col("last_date") >= nw.col("window_start")
        )
    return coded.select(*KEY).pipe(distinct).with_columns(nw.lit(None, dtype=nw.String).alias("why"))


def _admissions(rule: Rule, tables: Tables, engine: Engine, as_of: tuple[date, ...]) -> nw.LazyFrame:
    episodes = required(tables, "apc_episode")
    admissions = spells(episodes)  # a stay of several consultant episodes is one admission
    if rule.methods:
        admissions = admissions.filter(nw.col("admission_method").is_in(list(rule.methods)))
    admissions = admissions.select("person_id", "spell_key", "admission_date")
    conditions = sorted({r.condition for r in rule.rule_set})
    if rule.rule_set:
        diagnoses = required(tables, "apc_diagnosis")
        accepted = qualifying_spells(rule.rule_set, episodes, diagnoses, tables.get("apc_procedure"), engine)
        admissions = admissions.join(accepted, on="spell_key", how="inner")
    else:
        admissions = admissions.with_columns(nw.lit(None, dtype=nw.String).alias("condition"))
    in_window = admissions.join(windows(engine, as_of, rule.window_days), how="cross").filter(
        (nw.col("admission_date") > nw.col("window_start")) & (nw.col("admission_date") <= nw.col("as_of"))
    )
    flags = [f"_c{i}" for i in range(len(conditions))]
    counted = (
        in_window.with_columns(
            *[
                (nw.col("condition") == c).fill_null(False).cast(nw.Int64).alias(f)
                for c, f in zip(conditions, flags, strict=True)
            ]
        )
        .group_by(*KEY)
        .agg(nw.col("spell_key").n_unique().alias("admissions"), *[nw.col(f).max() for f in flags])
        .filter(nw.col("admissions") >= rule.at_least)
    )
    why = (
        nw.concat_str(
            [nw.when(nw.col(f) == 1).then(nw.lit(c)) for c, f in zip(conditions, flags, strict=True)],
            separator=", ",
            ignore_nulls=True,
        )
        if len(conditions) > 1
        else nw.lit(None, dtype=nw.String)
    )
    return counted.select(*KEY, why.alias("why"))
