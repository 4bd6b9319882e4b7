"""The same ingest and pipeline on duckdb, polars and spark yield identical tables.

The demo fixture has every contract table and planted errors of most kinds, so this also checks that the
three engines quarantine the same rows for the same reasons.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from openphm.ingest import ingest
from openphm.options import RunOptions
from openphm.pipeline import run
from openphm.stages import STAGES
from tests.support.engines import assert_same_tables, store_tables
from tests.support.sources import EXTRACT, KEY, read_table, store_path


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
            run(store, stages=STAGES, engine=engine)
            out[engine] = store_tables(store, engine)
    return out


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
    run(store, stages=STAGES, engine=engine, options=RunOptions(people_per_slice=SLICE))
    sliced = store_tables(store, engine)
    assert_same_tables(stores[engine], sliced)
    log = read_table(store, "run_log", engine).filter(pl.col("item") == "people_per_slice")
    assert log["value"].to_list()[0] >= 4  # it did run in slices


def test_duckdb_and_polars_agree(stores: dict[str, dict[str, pl.DataFrame]]) -> None:
    assert_same_tables(stores["duckdb"], stores["polars"])
    assert stores["duckdb"]["quarantine"].height > 10  # the comparison covers real quarantine rows
    assert stores["duckdb"]["population"].height > 500


@pytest.mark.spark
def test_spark_agrees(stores: dict[str, dict[str, pl.DataFrame]], tmp_path: Path) -> None:
    from importlib.resources import as_file

    from openphm.content import content_path

    store = store_path(tmp_path, "spark")
    with as_file(content_path("fixtures", "demo")) as fixture:
        ingest(Path(fixture), store, key=KEY, engine="spark", extract_date=EXTRACT)
    run(
        store, stages=STAGES, engine="spark", options=RunOptions(people_per_slice=SLICE)
    )  # in slices, which must not change a table either
    assert_same_tables(stores["duckdb"], store_tables(store, "spark"))
