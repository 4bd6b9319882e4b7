"""The cohort stage (tables `cohort_member`, `cohort_attrition`): every cohort definition, at every as_of.

Rules are evaluated on the population (``in_population``) per (person_id, as_of), one join per rule. The
inclusion rules apply in their order, then the exclusion rules; attrition counts the people remaining after
each, so a cohort that comes out small shows which rule made it small. A cohort whose rules need a table
the store lacks is reported as not available (attrition rows with no count, and a run-log fact), never as
an empty cohort.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import narwhals as nw
import pyarrow as pa

from openphm.codes import REGISTER_KINDS
from openphm.cohorts.definitions import Cohort, check_registers, load_cohorts
from openphm.cohorts.rules import CODED_SOURCES, KEY, Tables, hits, missing
from openphm.engine import Engine
from openphm.pipeline import RunContext, required, stage
from openphm.registers.definitions import definitions
from openphm.spells import ranked
from openphm.tables import COHORT_ATTRITION, COHORT_MEMBER

RULE_TABLES = ("register", "measure", "activity", "risk", "segment", "admission_risk")
SOURCE_TABLES = ("apc_episode", *CODED_SOURCES)
"""Hospital episodes for admissions rules; every coded table, to tell an empty register from a missing source."""
ATTRITION_COLUMNS = COHORT_ATTRITION.names
OK = "ok"


@dataclass(frozen=True)
class CohortResult:
    """One cohort's members and attrition (lazy), and why it could not be evaluated, if it could not."""

    cohort: Cohort
    members: nw.LazyFrame
    attrition: nw.LazyFrame
    unavailable: str | None


def _steps_frame(engine: Engine, cohort: Cohort, status: str) -> nw.LazyFrame:
    """(step, rule, kind, status): step 0 is the population, then each rule in the order applied."""
    rows = [(0, "population", "population", OK)]
    rows += [(i, r.name, "exclude" if r.exclude else "include", status) for i, r in enumerate(cohort.rules, start=1)]
    return engine.frame(
        pa.table(
            {
                "step": pa.array([s for s, *_ in rows], pa.int64()),
                "rule": pa.array([r for _, r, _, _ in rows], pa.string()),
                "kind": pa.array([k for _, _, k, _ in rows], pa.string()),
                "status": pa.array([st for *_, st in rows], pa.string()),
            }
        )
    )


def evaluate(
    cohort: Cohort,
    tables: Tables,
    base: nw.LazyFrame,
    engine: Engine,
    as_of: tuple[date, ...],
    medicines: frozenset[str] = frozenset(),
) -> CohortResult:
    """Members and attrition of one cohort over ``base`` (population rows with in_population)."""
    name = nw.lit(cohort.name)
    unavailable = next((why for r in cohort.rules if (why := missing(r, tables, medicines)) is not None), None)
    if unavailable is not None:
        status = f"not available: {unavailable}"
        counts = base.group_by("as_of").agg(nw.len().cast(nw.Int64).alias("people"))
        steps = _steps_frame(engine, cohort, status)
        attrition = nw.concat(
            [
                counts.join(steps.filter(nw.col("step") == 0), how="cross").select(*ATTRITION_COLUMNS[1:]),
                counts.select("as_of")
                .join(steps.filter(nw.col("step") > 0), how="cross")
                .with_columns(nw.lit(None, dtype=nw.Int64).alias("people"))
                .select(*ATTRITION_COLUMNS[1:]),
            ],
            how="vertical",
        ).with_columns(name.alias("cohort"))
        members = base.head(0).select(name.alias("cohort"), "person_id", "as_of", nw.lit("").alias("reasons"))
        return CohortResult(cohort, members, attrition.select(ATTRITION_COLUMNS), unavailable)

    met = [
        hits(rule, tables, base, engine, as_of).select(
            *KEY, nw.col("why").alias(f"_why{i}"), nw.lit(True).alias(f"_hit{i}")
        )
        for i, rule in enumerate(cohort.rules, start=1)
    ]
    # Only people who meet a first inclusion rule can reach any later step: start from them, not from everyone.
    narrowed = bool(cohort.rules) and not cohort.rules[0].exclude
    flags = base.select(*KEY).join(met[0], on=KEY, how="inner") if narrowed else base.select(*KEY)
    for frame in met[1:] if narrowed else met:
        flags = flags.join(frame, on=KEY, how="left")
    step = nw.lit(True)
    columns = []
    for i, rule in enumerate(cohort.rules, start=1):
        hit = nw.col(f"_hit{i}").fill_null(False)
        step = step & (~hit if rule.exclude else hit)
        columns.append(step.alias(f"_step{i}"))
    # Members and attrition both read the flags: materialised once, or every rule (spells, registers) ran twice.
    flags = engine.persist(flags.with_columns(*columns)) if columns else flags
    last = f"_step{len(cohort.rules)}" if columns else None
    reasons = nw.concat_str(
        [
            nw.when(nw.col(f"_hit{i}").fill_null(False)).then(
                nw.when(nw.col(f"_why{i}").is_null())
                .then(nw.lit(rule.name))
                .otherwise(nw.concat_str([nw.lit(f"{rule.name} ("), nw.col(f"_why{i}"), nw.lit(")")]))
            )
            for i, rule in enumerate(cohort.rules, start=1)
            if not rule.exclude
        ],
        separator="; ",
        ignore_nulls=True,
    )
    chosen = flags.filter(nw.col(last)) if last else flags
    members = chosen.select(name.alias("cohort"), *KEY, reasons.alias("reasons"))
    later = [f"_step{i}" for i in range(1, len(cohort.rules) + 1)]
    # Step 0 is everyone in the population; a later step's count is 0 at an as_of where nobody reached it.
    counts = base.group_by("as_of").agg(nw.len().cast(nw.Int64).alias("_step0"))
    if later:
        reached = flags.group_by("as_of").agg(*[nw.col(c).cast(nw.Int64).sum().cast(nw.Int64) for c in later])
        counts = counts.join(reached, on="as_of", how="left").with_columns(
            *[nw.col(c).fill_null(0).cast(nw.Int64) for c in later]
        )
    people = nw.lit(None, dtype=nw.Int64)
    for i, column in enumerate(["_step0", *later]):
        people = nw.when(nw.col("step") == i).then(nw.col(column)).otherwise(people)
    attrition = (
        counts.join(_steps_frame(engine, cohort, OK), how="cross")
        .with_columns(name.alias("cohort"), people.cast(nw.Int64).alias("people"))
        .select(ATTRITION_COLUMNS)
    )
    return CohortResult(cohort, members, attrition, None)


def population_base(population: nw.LazyFrame, as_of: tuple[date, ...], *, latest_only: bool) -> nw.LazyFrame:
    """The rows cohorts are drawn from: people in the population (alive and registered) at each as_of."""
    base = population.filter(nw.col("in_population"))
    if latest_only and as_of:
        base = base.filter(nw.col("as_of") == max(as_of))
    return base


def combine(
    results: list[CohortResult], base: nw.LazyFrame, segment: nw.LazyFrame | None = None
) -> tuple[nw.LazyFrame, nw.LazyFrame]:
    """All cohorts' members and attrition, each as one table (empty, with its columns, when no cohort).

    Each member row carries the person's segment and maternal flag (null without a segment table), so a worklist
    shows maternal health beside the segment whatever the segment is, as NHS England's segmentation does.
    """
    members, attrition = _combined(results, base)
    return members.join(_segment_columns(base, segment), on=KEY, how="left"), attrition


def _segment_columns(base: nw.LazyFrame, segment: nw.LazyFrame | None) -> nw.LazyFrame:
    present = set(segment.collect_schema().names()) if segment is not None else set()
    if segment is None or not {"segment", "maternal"} <= present:
        return base.select(
            *KEY, nw.lit(None, dtype=nw.String).alias("segment"), nw.lit(None, dtype=nw.Boolean).alias("maternal")
        )
    return segment.select(*KEY, nw.col("segment"), nw.col("maternal").fill_null(False))


def _combined(results: list[CohortResult], base: nw.LazyFrame) -> tuple[nw.LazyFrame, nw.LazyFrame]:
    if not results:
        members = base.head(0).select(nw.lit("").alias("cohort"), *KEY, nw.lit("").alias("reasons"))
        attrition = base.head(0).select(
            nw.lit("").alias("cohort"),
            "as_of",
            nw.lit(0).cast(nw.Int64).alias("step"),
            nw.lit("").alias("rule"),
            nw.lit("").alias("kind"),
            nw.lit(0).cast(nw.Int64).alias("people"),
            nw.lit("").alias("status"),
        )
        return members, attrition
    return (
        nw.concat([r.members for r in results], how="vertical"),
        nw.concat([r.attrition for r in results], how="vertical"),
    )


def run_cohorts(
    cohorts: Mapping[str, Cohort],
    tables: Tables,
    engine: Engine,
    as_of: tuple[date, ...],
    *,
    latest_only: bool,
    medicines: frozenset[str] = frozenset(),
) -> tuple[list[CohortResult], nw.LazyFrame]:
    """Evaluate ``cohorts`` on the tables of a store; returns each result and the population base used.

    ``medicines``: the ids of the run's medicine definitions (see :func:`openphm.cohorts.rules.missing`).
    """
    population = required(tables, "population")
    base = population_base(population, as_of, latest_only=latest_only)
    episodes = tables.get("apc_episode")
    if episodes is not None and any(r.type == "admissions" for c in cohorts.values() for r in c.rules):
        # Every admissions rule reads spells, twice with an ACSC rule set: episodes ordered into spells once.
        tables = {**tables, "apc_episode": engine.persist(ranked(episodes))}
    dates = (max(as_of),) if latest_only and as_of else as_of
    return [evaluate(c, tables, base, engine, dates, medicines) for c in cohorts.values()], base


def _facts(engine: Engine, results: list[CohortResult]) -> nw.LazyFrame:
    """Run-log facts: one row per cohort that could not be evaluated."""
    rows = [(r.cohort.name, f"not_available:{r.unavailable}") for r in results if r.unavailable]
    return engine.frame(
        pa.table(
            {
                "item": pa.array([i for i, _ in rows], pa.string()),
                "metric": pa.array([m for _, m in rows], pa.string()),
                "value": pa.array([1.0] * len(rows), pa.float64()),
            }
        )
    )


def definitions_folder(context: RunContext) -> Path | None:
    """The run's own folder of cohort definitions (run option ``cohorts``), else None for the shipped ones."""
    return context.options.cohorts


@stage(
    "cohort",
    inputs=("population",),
    optional_inputs=(*RULE_TABLES, *SOURCE_TABLES),
    outputs=(COHORT_MEMBER, COHORT_ATTRITION),
    facts=("cohort_facts",),
)
def cohort(tables: Mapping[str, nw.LazyFrame | None], context: RunContext) -> Mapping[str, nw.LazyFrame]:
    """Members (with the inclusion rules each met) and attrition of every cohort definition, per as_of."""
    cohorts = load_cohorts(definitions_folder(context))
    registers = definitions(context, REGISTER_KINDS)
    check_registers(cohorts, {d.id for d in registers})
    results, base = run_cohorts(
        cohorts,
        tables,
        context.engine,
        context.as_of,
        latest_only=context.options.cohort_as_of == "latest",
        medicines=frozenset(d.id for d in registers if d.kind == "medicine"),
    )
    members, attrition = combine(results, base, tables.get("segment"))
    return {"cohort_member": members, "cohort_attrition": attrition, "cohort_facts": _facts(context.engine, results)}
