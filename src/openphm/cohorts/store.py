"""Run chosen cohorts on an existing store (``phm cohort run``), publishing the store atomically.

The pipeline's ``cohort`` stage runs every definition; this runs one or a few, for instance a definition
being written, on a store whose other stages have already run. The rows of the chosen cohorts in
``cohort_member`` and ``cohort_attrition`` are replaced; other cohorts' rows are kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import narwhals as nw

from openphm.codes import load_definitions
from openphm.cohorts.definitions import Cohort, CohortError, check_registers, load_cohorts
from openphm.cohorts.stage import RULE_TABLES, SOURCE_TABLES, CohortResult, combine, run_cohorts
from openphm.engine import Engine, building
from openphm.errors import StoreError
from openphm.pipeline.runlog import RunLog, last_purpose

MEMBERS, ATTRITION = "cohort_member", "cohort_attrition"


@dataclass(frozen=True)
class CohortOutcome:
    """What one cohort run gave at the latest as_of: its size, or why it was not available."""

    name: str
    as_of: date | None
    members: int | None
    unavailable: str | None


def choose(cohorts: dict[str, Cohort], names: Sequence[str]) -> dict[str, Cohort]:
    """The named cohorts (all of them when no name is given); an unknown name is an error."""
    for name in names:
        if name not in cohorts:
            raise CohortError(f"no cohort named '{name}' (known: {', '.join(cohorts) or 'none'})")
    return {n: cohorts[n] for n in names} if names else cohorts


def _keep_others(eng: Engine, table: str, new: nw.LazyFrame, replaced: list[str]) -> nw.LazyFrame:
    if not eng.has_table(table):
        return new
    kept = eng.table(table).filter(~nw.col("cohort").is_in(replaced))
    return nw.concat([kept.select(new.collect_schema().names()), new], how="vertical")


def run_on_store(
    store: Path,
    *,
    engine: str = "duckdb",
    names: Sequence[str] = (),
    definitions: Path | None = None,
    codelists: Path | None = None,
    latest_only: bool = False,
    progress: Callable[[str], None] | None = None,
) -> list[CohortOutcome]:
    """Evaluate the chosen cohorts on ``store`` and publish the updated tables; returns their sizes."""
    step = progress or (lambda _message: None)
    chosen = choose(load_cohorts(definitions), names)
    registers = load_definitions(codelists)
    check_registers(chosen, set(registers))
    medicines = frozenset(d.id for d in registers.values() if d.kind == "medicine")
    with building(store, engine, start_from_existing=True) as eng:
        purpose = last_purpose(eng)
        if purpose is None:
            raise StoreError(f"{store}: has no ingest record in run_log; run 'phm ingest' first")
        if not eng.has_table("population"):
            raise StoreError(f"{store}: has no table 'population'; run 'phm run' first")
        tables = {t: eng.table(t) if eng.has_table(t) else None for t in ("population", *RULE_TABLES, *SOURCE_TABLES)}
        population = eng.table("population")
        as_of = tuple(sorted(d for (d,) in population.select("as_of").unique().collect().rows()))
        step(f"evaluating {len(chosen)} cohort(s)")
        results, base = run_cohorts(chosen, tables, eng, as_of, latest_only=latest_only, medicines=medicines)
        members, attrition = combine(results, base, tables["segment"])
        replaced = list(chosen)
        step("writing cohort_member")
        eng.write(MEMBERS, eng.persist(_keep_others(eng, MEMBERS, members, replaced)))
        step("writing cohort_attrition")
        eng.write(ATTRITION, eng.persist(_keep_others(eng, ATTRITION, attrition, replaced)))
        outcomes = _outcomes(eng, results, as_of)
        log = RunLog("cohort", purpose, engine)
        for o in outcomes:
            if o.unavailable:
                log.add("cohort", o.name, "not_available", 1, detail=o.unavailable)
            else:
                log.add("cohort", o.name, "members_latest_as_of", o.members)
        log.write(eng)
    return outcomes


def _outcomes(eng: Engine, results: list[CohortResult], as_of: tuple[date, ...]) -> list[CohortOutcome]:
    """Each cohort's size at the latest as_of: the people remaining after its last rule."""
    latest = max(as_of) if as_of else None
    last_step = {r.cohort.name: len(r.cohort.rules) for r in results if not r.unavailable}
    rows = (
        eng.table(ATTRITION)
        .filter((nw.col("as_of") == latest) & nw.col("cohort").is_in(list(last_step)))
        .select("cohort", "step", "people")
        .collect()
        .rows()
    )
    sizes = {cohort: people for cohort, step, people in rows if last_step[cohort] == step}
    return [
        CohortOutcome(r.cohort.name, latest, None if r.unavailable else sizes.get(r.cohort.name, 0), r.unavailable)
        for r in results
    ]
