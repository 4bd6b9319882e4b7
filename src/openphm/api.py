"""The public Python API that the ``phm`` command and notebooks share.

>>> from openphm import api                                          # doctest: +SKIP
>>> api.ingest(Path("source"), Path("phm.duckdb"), key=api.load_key(Path("key.txt")))
>>> api.run(Path("phm.duckdb"))
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import as_file
from pathlib import Path

from openphm.content import content_path
from openphm.engine import open_store
from openphm.ingest import PURPOSES, IngestResult, ingest, load_key
from openphm.pipeline import RunResult, run
from openphm.risk.scoring import SCORES, score_file
from openphm.segments import explain

__all__ = [
    "PURPOSES",
    "SCORES",
    "DemoResult",
    "Summary",
    "demo",
    "explain",
    "ingest",
    "load_key",
    "new_key",
    "run",
    "score_file",
    "summary",
    "table_counts",
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


@dataclass
class Summary:
    """Headline figures of a store, for the terminal: counts only, nothing about any one person."""

    population: list[tuple[object, int]]
    registers: list[tuple[str, int]]
    quarantine: list[tuple[str, str, int]]


def summary(store: Path, engine: str = "duckdb", top: int = 12) -> Summary:
    """People in the population at each as_of; the largest active registers at the latest; quarantine reasons."""
    import narwhals as nw

    eng = open_store(store, engine)
    try:
        population: list[tuple[object, int]] = []
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
        return Summary(population, registers, sorted(reasons))
    finally:
        eng.close()


@dataclass
class DemoResult:
    store: Path
    ingest: IngestResult
    run: RunResult


def demo(
    out: Path,
    *,
    engine: str = "duckdb",
    progress: Callable[[str], None] | None = None,
) -> DemoResult:
    """Ingest and run the small fixture shipped with the package, with a throwaway key.

    The key lives only in memory for the length of the call: the demo's pseudonyms cannot be linked to
    those of any other run, which is what a demonstration should guarantee.
    """
    out.mkdir(parents=True, exist_ok=True)
    store = out / ("demo.duckdb" if engine == "duckdb" else "demo-store")
    with as_file(content_path("fixtures", "demo")) as fixture:
        source = out / "source"
        if source.exists():
            shutil.rmtree(source)
        shutil.copytree(fixture, source)
    ingested = ingest(source, store, key=new_key(), engine=engine, progress=progress)
    ran = run(store, engine=engine, progress=progress)
    return DemoResult(store, ingested, ran)
