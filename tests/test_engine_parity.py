"""The same ingest and pipeline on duckdb, polars and spark yield identical tables.

The demo fixture has every contract table and planted errors of most kinds, so this also checks that the
three engines quarantine the same rows for the same reasons.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from openphm.engine import open_store
from openphm.ingest import ingest
from openphm.pipeline import run
from tests.support.sources import EXTRACT, KEY, read_table, store_path


def _tables(store: Path, engine: str) -> dict[str, pl.DataFrame]:
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


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, pl.DataFrame]]:
    from importlib.resources import as_file

    from openphm.content import content_path

    out: dict[str, dict[str, pl.DataFrame]] = {}
    with as_file(content_path("fixtures", "demo")) as fixture:
        for engine in ("duckdb", "polars"):
            tmp = tmp_path_factory.mktemp(engine)
            store = store_path(tmp, engine)
            ingest(Path(fixture), store, key=KEY, engine=engine, extract_date=EXTRACT)
            run(store, engine=engine)
            out[engine] = _tables(store, engine)
    return out


def _assert_same(reference: dict[str, pl.DataFrame], other: dict[str, pl.DataFrame]) -> None:
    """Same tables, schemas and rows; floats equal to 1e-9 relative (engines sum in different orders)."""
    from polars.testing import assert_frame_equal

    assert sorted(other) == sorted(reference)
    for name, frame in reference.items():
        assert other[name].schema == frame.schema, name
        assert_frame_equal(other[name], frame, check_exact=False, rel_tol=1e-9, abs_tol=1e-12)


SLICE = 50
"""People per slice for the sliced runs: the demo population (about 200 people) runs in four or five."""


@pytest.mark.parametrize("engine", ["duckdb", "polars"])
def test_a_run_in_person_slices_gives_the_same_tables(
    stores: dict[str, dict[str, pl.DataFrame]], engine: str, tmp_path: Path
) -> None:
    from importlib.resources import as_file

    from openphm.content import content_path

    store = store_path(tmp_path, engine)
    with as_file(content_path("fixtures", "demo")) as fixture:
        ingest(Path(fixture), store, key=KEY, engine=engine, extract_date=EXTRACT)
    run(store, engine=engine, people_per_slice=SLICE)
    sliced = _tables(store, engine)
    _assert_same(stores[engine], sliced)
    log = read_table(store, "run_log", engine).filter(pl.col("item") == "people_per_slice")
    assert log["value"].to_list()[0] >= 4  # it did run in slices


def test_duckdb_and_polars_agree(stores: dict[str, dict[str, pl.DataFrame]]) -> None:
    _assert_same(stores["duckdb"], stores["polars"])
    assert stores["duckdb"]["quarantine"].height > 10  # the comparison covers real quarantine rows
    assert stores["duckdb"]["population"].height > 500


@pytest.mark.spark
def test_spark_agrees(stores: dict[str, dict[str, pl.DataFrame]], tmp_path: Path) -> None:
    from importlib.resources import as_file

    from openphm.content import content_path

    store = store_path(tmp_path, "spark")
    with as_file(content_path("fixtures", "demo")) as fixture:
        ingest(Path(fixture), store, key=KEY, engine="spark", extract_date=EXTRACT)
    run(store, engine="spark", people_per_slice=SLICE)  # in slices, which must not change a table either
    _assert_same(stores["duckdb"], _tables(store, "spark"))
