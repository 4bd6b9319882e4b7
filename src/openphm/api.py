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

__all__ = ["PURPOSES", "DemoResult", "demo", "ingest", "load_key", "new_key", "run", "table_counts"]


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
