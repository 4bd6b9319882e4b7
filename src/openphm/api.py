"""The public Python API that the ``phm`` command and notebooks share.

>>> from openphm import api                                          # doctest: +SKIP
>>> api.ingest(Path("source"), Path("phm.duckdb"), key=api.load_key(Path("key.txt")))
>>> api.run(Path("phm.duckdb"))
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from openphm.disclosure import published_counts
from openphm.engine import open_store
from openphm.ingest import PURPOSES, IngestResult, ingest, load_key
from openphm.options import PEOPLE_PER_SLICE, CohortAsOf, RunOptions
from openphm.pipeline import RunResult
from openphm.pipeline import run as run_stages
from openphm.pipeline.refresh import Refresh
from openphm.quality.history import QualityView
from openphm.quality.history import quality_view as quality
from openphm.report import ReportResult, write_report
from openphm.risk.scoring import SCORES, score_file
from openphm.segments import explain
from openphm.stages import STAGES
from openphm.synth import SynthResult, generate

__all__ = [
    "PURPOSES",
    "SCORES",
    "DemoResult",
    "QualityView",
    "RunOptions",
    "Summary",
    "demo",
    "explain",
    "generate",
    "ingest",
    "load_key",
    "new_key",
    "quality",
    "run",
    "score_file",
    "summary",
    "table_counts",
    "write_report",
]


def new_key() -> bytes:
    """A fresh 256-bit pseudonymisation key, hex-encoded."""
    return secrets.token_hex(32).encode()


def table_counts(store: Path, engine: str = "duckdb") -> dict[str, int]:
    """Row count of every table in a store."""
    from openphm.engine import count

    eng = open_store(store, engine)
    try:
        return {name: count(eng.table(name)) for name in eng.tables()}
    finally:
        eng.close()


def run(
    store: Path,
    *,
    engine: str = "duckdb",
    as_of: tuple[date, ...] = (),
    codelists: Path | None = None,
    unit_costs: Path | None = None,
    segment_rules: Path | None = None,
    cohorts: Path | None = None,
    townsend: Path | None = None,
    admission_model: Path | None = None,
    cohort_as_of: CohortAsOf = "all",
    people_per_slice: int = PEOPLE_PER_SLICE,
    quality_settings: Path | None = None,
    progress: Callable[[str], None] | None = None,
    refresh: Refresh | None = None,
) -> RunResult:
    """Run every stage of :data:`openphm.stages.STAGES` on ``store`` and publish the new tables.

    Each keyword from ``codelists`` to ``quality_settings`` is a field of :class:`RunOptions` (and a flag of
    ``phm run``) of the same name. ``refresh="latest"`` recomputes the latest snapshot only and keeps the
    earlier snapshots' rows of the previous run (:mod:`openphm.pipeline.refresh`).
    """
    options = RunOptions(
        codelists=codelists,
        unit_costs=unit_costs,
        segment_rules=segment_rules,
        cohorts=cohorts,
        townsend=townsend,
        admission_model=admission_model,
        cohort_as_of=cohort_as_of,
        people_per_slice=people_per_slice,
        quality_settings=quality_settings,
    )
    return run_stages(
        store, stages=STAGES, engine=engine, as_of=as_of, options=options, progress=progress, refresh=refresh
    )


@dataclass
class Summary:
    """Headline figures of a store for the terminal, disclosure-controlled (None where a count is redacted)."""

    population: list[tuple[object, int | None]]
    registers: list[tuple[str, int | None]]
    quarantine: list[tuple[str, str, int]]
    """Rejected input rows by table and reason: counts of records, not of people, so shown exactly."""


def summary(store: Path, engine: str = "duckdb", top: int = 12, policy: str = "nhs") -> Summary:
    """People in the population at each as_of; the largest active registers at the latest; quarantine reasons."""
    import narwhals as nw

    eng = open_store(store, engine)
    try:
        population: list[tuple[Any, int]] = []
        registers: list[tuple[str, int]] = []
        if eng.has_table("population"):
            population = sorted(
                eng.table("population").filter(nw.col("in_population")).group_by("as_of").agg(nw.len()).collect().rows()
            )
        if eng.has_table("register") and population:
            latest = population[-1][0]
            active = eng.table("register").filter(nw.col("active") & (nw.col("as_of") == nw.lit(latest)))
            counts = active.group_by("definition").agg(nw.len()).collect().rows()
            registers = sorted(counts, key=lambda r: (-r[1], r[0]))[:top]
        reasons = eng.table("quarantine").group_by("table", "reason").agg(nw.len()).collect().rows()
    finally:
        eng.close()
    people = published_counts([n for _, n in population], policy)
    listed = published_counts([n for _, n in registers], policy)
    return Summary(
        [(as_of, n) for (as_of, _), n in zip(population, people, strict=True)],
        [(name, n) for (name, _), n in zip(registers, listed, strict=True)],
        sorted(reasons),
    )


@dataclass
class DemoResult:
    store: Path
    synth: SynthResult
    ingest: IngestResult
    run: RunResult
    report: ReportResult


DEMO_PEOPLE = 20_000


def demo(
    out: Path,
    *,
    people: int = DEMO_PEOPLE,
    engine: str = "duckdb",
    progress: Callable[[str], None] | None = None,
) -> DemoResult:
    """The whole job on a synthetic England: generate, ingest with a throwaway key, run every stage, report.

    The key lives only in memory for the length of the call: the demo's pseudonyms cannot be linked to
    those of any other run, which is what a demonstration should guarantee. The synthetic data carry planted
    contract violations, so the demo exercises quarantine too.
    """
    out.mkdir(parents=True, exist_ok=True)
    store = out / ("demo.duckdb" if engine == "duckdb" else "demo-store")
    synthetic = generate(out / "source", people=people, seed=1, progress=progress)
    ingested = ingest(
        out / "source", store, key=new_key(), engine=engine, extract_date=synthetic.extract_date, progress=progress
    )
    ran = run(store, engine=engine, progress=progress)
    report = write_report(store, out / "report.html", engine=engine, progress=progress)
    return DemoResult(store, synthetic, ingested, ran, report)
