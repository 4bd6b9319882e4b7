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
from openphm.errors import InputError
from openphm.ingest import PURPOSES, IngestResult, ingest, load_key
from openphm.pipeline import RunResult, run

__all__ = [
    "PURPOSES",
    "DemoResult",
    "Summary",
    "demo",
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


SCORES = ("hfrs",)
"""Indices ``score_file`` computes; Charlson and Elixhauser are still to come (issue 6)."""


def score_file(index: str, source: Path, out: Path) -> int:
    """Score a long-format ICD-10 file (``id,code``, other columns ignored): one row per id, written as CSV.

    Returns the number of ids scored. The output has ``id``, ``score`` and, for HFRS, ``band``.
    """
    import narwhals as nw
    import polars as pl

    from openphm.risk.hfrs import category_points, hfrs

    if index not in SCORES:
        raise InputError(f"unknown score '{index}': available: {', '.join(SCORES)}")
    try:
        codes = pl.scan_csv(source, schema_overrides={"id": pl.String, "code": pl.String})
        columns = codes.collect_schema().names()
    except (OSError, pl.exceptions.PolarsError):
        raise InputError(f"{source}: cannot be read as CSV") from None
    missing = [c for c in ("id", "code") if c not in columns]
    if missing:
        raise InputError(f"{source}: missing column {', '.join(missing)}")
    points = nw.from_native(pl.from_arrow(category_points()).lazy())  # type: ignore[arg-type]
    scored = hfrs(nw.from_native(codes.select("id", "code")), points).rename({"hfrs": "score", "hfrs_band": "band"})
    try:
        result = scored.sort("id").collect("polars").to_native()
    except pl.exceptions.PolarsError:
        raise InputError(f"{source}: cannot be read as CSV") from None
    result.write_csv(out)
    return result.height
