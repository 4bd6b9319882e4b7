"""Every table of a store, read for comparison, and the comparison itself (engine agreement tests)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from openphm.engine import open_store
from tests.support.sources import read_table


def store_tables(store: Path, engine: str) -> dict[str, pl.DataFrame]:
    eng = open_store(store, engine)
    names = eng.tables()
    eng.close()
    out = {}
    for name in names:
        frame = read_table(store, name, engine)
        if name == "run_log":  # run ids, times and the engine name differ by design; the facts must not
            frame = frame.filter(pl.col("step").is_in(["reconcile", "stage"]) & ~pl.col("metric").eq("seconds"))
            frame = frame.select("command", "step", "item", "metric", "value")
        out[name] = frame.sort(frame.columns, nulls_last=True)
    return out


def assert_same_tables(reference: dict[str, pl.DataFrame], other: dict[str, pl.DataFrame]) -> None:
    """Same tables, schemas and rows; floats equal to 1e-9 relative (engines sum in different orders)."""
    from polars.testing import assert_frame_equal

    assert sorted(other) == sorted(reference)
    for name, frame in reference.items():
        assert other[name].schema == frame.schema, name
        assert_frame_equal(other[name], frame, check_exact=False, rel_tol=1e-9, abs_tol=1e-12)
