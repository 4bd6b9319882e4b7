"""Run the stages it is given in dependency order, writing each output through the engine.

The runner knows nothing about what the stages compute (the application hands it :data:`openphm.stages.STAGES`).
It orders them by their declared tables, checks that every required input exists, checks every table a stage
returns against its declared columns before writing it, times each stage, counts the rows of each output,
records both in the run log, and publishes the updated store only when every stage has succeeded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

import narwhals as nw

from openphm.engine import Engine, building, count
from openphm.errors import PipelineError, StoreError
from openphm.options import RunOptions
from openphm.pipeline.refresh import Kept, Refresh, definitions_digest, drop_previous, prepare
from openphm.pipeline.runlog import RunLog, last_purpose
from openphm.pipeline.slices import WHOLE, PersonSlice, person_slices, sliced
from openphm.pipeline.stage import RunContext, Stage
from openphm.pipeline.years import DataYears, LeftOut, data_years


@dataclass(frozen=True)
class StageReport:
    name: str
    seconds: float
    rows: dict[str, int]


@dataclass
class RunResult:
    run_id: str
    purpose: str
    as_of: tuple[date, ...]
    stages: list[StageReport] = field(default_factory=list)
    left_out: tuple[LeftOut, ...] = ()
    """Financial years with activity that are not data years (only when as_of was not given)."""
    refreshed: date | None = None
    """The one as_of a refresh recomputed (the others' rows were kept); None for a full run."""


def order_stages(stages: Iterable[Stage], available: set[str]) -> list[Stage]:
    """Stages in an order where each runs after the stages producing its inputs.

    Raises PipelineError for two stages writing one table, a required input nobody provides, or a cycle.
    """
    stages = list(stages)
    producer: dict[str, str] = {}
    for s in stages:
        for table in s.outputs:
            if table in producer:
                raise PipelineError(f"tables: '{table}' is written by both {producer[table]} and {s.name}")
            producer[table] = s.name
    ordered: list[Stage] = []
    done: set[str] = set()
    pending = {s.name: s for s in stages}
    while pending:
        ready = [
            s
            for s in pending.values()
            if all(t in done or (t not in producer and t in available) for t in s.inputs)
            and all(t in done or t not in producer for t in s.optional_inputs)
        ]
        if not ready:
            for s in pending.values():
                missing = [t for t in s.inputs if t not in producer and t not in available]
                if missing:
                    raise StoreError(f"stage {s.name}: the store has no table '{missing[0]}' (was it ingested?)")
            raise PipelineError("stages: their inputs form a cycle: " + ", ".join(sorted(pending)))
        for s in sorted(ready, key=lambda s: s.name):
            ordered.append(s)
            done.update(s.outputs)
            del pending[s.name]
    return ordered


def run(
    store: Path,
    *,
    stages: Iterable[Stage],
    engine: str = "duckdb",
    as_of: tuple[date, ...] = (),
    options: RunOptions | None = None,
    progress: Callable[[str], None] | None = None,
    refresh: Refresh | None = None,
) -> RunResult:
    """Run ``stages`` on ``store`` and publish the store with the new tables added.

    Stages declared ``per_person`` run on slices of at most about ``options.people_per_slice`` people when
    the population is larger (the tables are the same; only the memory they need changes). With ``refresh``
    (``"latest"``), stages declared ``per_snapshot`` compute the latest as_of only and keep the earlier
    snapshots' rows of a previous run (:mod:`openphm.pipeline.refresh`); the others run whole on the merged tables.
    """
    options = options or RunOptions()
    step = progress or (lambda _message: None)
    with building(store, engine, start_from_existing=True) as eng:
        purpose = last_purpose(eng)
        if purpose is None:
            raise StoreError(f"{store}: has no ingest record in run_log; run 'phm ingest' first")
        years = DataYears(tuple(sorted(set(as_of)))) if as_of else data_years(eng)
        dates = years.as_of
        log = RunLog("run", purpose, engine)
        log.add("run", "as_of", "as_of", detail=",".join(d.isoformat() for d in dates))
        digest = definitions_digest(options)
        log.add("run", "definitions", "definitions", detail=digest)
        for year in years.left_out:
            log.add("run", year.year_end.isoformat(), "year_left_out", year.rows, detail=year.reason)
        ordered = order_stages(stages, set(eng.tables()))
        produced = {t for s in ordered for t in s.outputs}
        kept: Kept | None = None
        if refresh is not None:
            kept = prepare(eng, dates, digest, [t for s in ordered if s.per_snapshot for t in s.outputs], log)
        result = RunResult(
            log.run_id, purpose, dates, left_out=years.left_out, refreshed=kept.refreshed if kept else None
        )
        context = RunContext(dates, purpose, log.run_id, eng, options)
        slices: tuple[PersonSlice, ...] | None = None
        for s in ordered:
            step(s.name)
            started = time.perf_counter()
            inputs: dict[str, nw.LazyFrame | None] = {t: eng.table(t) for t in s.inputs}
            inputs |= {t: eng.table(t) if eng.has_table(t) else None for t in s.optional_inputs}
            stage_context = context
            if kept is not None and s.per_snapshot:  # a refresh: this stage computes the latest as_of only
                inputs = {t: kept.restrict(f) if f is not None and t in produced else f for t, f in inputs.items()}
                stage_context = replace(context, as_of=(kept.refreshed,))
            parts: tuple[PersonSlice, ...] = WHOLE
            if s.per_person and eng.has_table("population"):
                if slices is None:
                    slices = person_slices(eng.table("population"), options.people_per_slice)
                    log.add("run", "people_per_slice", "slices", len(slices), detail=str(options.people_per_slice))
                parts = slices
            facts = _run_stage(eng, s, inputs, stage_context, parts)
            if kept is not None and s.per_snapshot:
                for table in s.outputs:
                    if (earlier := kept.rows(eng, table)) is not None:
                        eng.append(table, earlier)
            for (item, metric), value in facts.items():
                log.add("stage", f"{s.name}:{item}", metric, value)
            seconds = time.perf_counter() - started
            log.add("stage", s.name, "seconds", seconds)
            rows = {table: count(eng.table(table)) for table in s.outputs}
            for table, n in rows.items():
                log.add("stage", s.name, f"rows:{table}", n)
            result.stages.append(StageReport(s.name, seconds, rows))
        drop_previous(eng)
        log.write(eng)
    return result


def _run_stage(
    eng: Engine,
    s: Stage,
    inputs: Mapping[str, nw.LazyFrame | None],
    context: RunContext,
    parts: tuple[PersonSlice, ...],
) -> dict[tuple[str, str], float]:
    """Run one stage on each slice of people in turn, writing then appending its outputs.

    Facts are counts and are summed over the slices, unless the stage declares ``same_facts``.
    """
    facts: dict[tuple[str, str], float] = {}
    for number, part in enumerate(parts):
        outputs = s.function(inputs if len(parts) == 1 else sliced(inputs, part), context)
        if set(outputs) != set(s.outputs) | set(s.facts):
            raise PipelineError(f"stage {s.name}: returned {sorted(outputs)}, declared {sorted(s.outputs)}")
        if number == 0:
            _check_declared(s, outputs)
        for table in s.outputs:
            (eng.write if number == 0 else eng.append)(table, outputs[table])
        for table in s.facts:
            for item, metric, value in outputs[table].select("item", "metric", "value").collect().rows():
                summed = not s.same_facts and (item, metric) in facts
                facts[(item, metric)] = value + facts[(item, metric)] if summed else value
        eng.release()  # the slice's outputs are written: its temporary results are no longer needed
    return facts


def _check_declared(s: Stage, outputs: Mapping[str, nw.LazyFrame]) -> None:
    """Every table the stage returned has the declared columns and types (one slice suffices: same code)."""
    for declared in s.tables:
        problem = declared.mismatch(outputs[declared.name].collect_schema())
        if problem:
            raise PipelineError(f"stage {s.name}: table '{declared.name}' {problem}")
