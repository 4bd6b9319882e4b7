"""Atomic publish: a failed or interrupted command leaves the previous store exactly as it was."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import narwhals as nw
import pytest

from openphm.engine import building, open_store
from openphm.errors import InputError, StoreError
from openphm.ingest import ingest
from openphm.pipeline import Stage, run
from openphm.pipeline.schema import Table
from openphm.stages import STAGES
from tests.support.sources import ALICE, BOB, EXTRACT, KEY, fingerprint, person, store_path

Rows = dict[str, list[dict[str, object]]]


def _boom(tables: object, context: object) -> dict[str, nw.LazyFrame]:
    raise RuntimeError("stage failed midway")


@pytest.mark.parametrize("engine", ["duckdb", "polars"])
def test_failing_stage_leaves_previous_store_unchanged(
    source: Callable[[Rows], Path], tmp_path: Path, engine: str
) -> None:
    store = store_path(tmp_path, engine)
    ingest(source({"person": [person(ALICE), person(BOB)]}), store, key=KEY, engine=engine, extract_date=EXTRACT)
    run(store, stages=STAGES, engine=engine)  # a successful run first, so the store has stage outputs too
    before = fingerprint(store)

    stages = [*STAGES, Stage("boom", ("population",), (Table("never", "never written", ()),), _boom)]
    with pytest.raises(RuntimeError, match="midway"):
        run(store, engine=engine, stages=stages)
    assert fingerprint(store) == before
    assert sorted(p.name for p in tmp_path.iterdir() if "building" in p.name) == []


def test_failed_ingest_leaves_previous_store_unchanged(source: Callable[[Rows], Path], tmp_path: Path) -> None:
    store = store_path(tmp_path, "duckdb")
    ingest(source({"person": [person(ALICE)]}), store, key=KEY, extract_date=EXTRACT)
    before = fingerprint(store)
    bad = source({"person": [person(BOB)]})
    (bad / "gp_event.csv").write_text("nhs_number,event_date\n9990000018,2023-01-01\n")  # no snomed_code
    with pytest.raises(InputError, match="snomed_code"):
        ingest(bad, store, key=KEY, extract_date=EXTRACT)
    assert fingerprint(store) == before


def test_interrupted_parquet_swap_is_recovered(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with building(store, "polars", start_from_existing=False) as eng:
        eng.write("t", eng.frame(__import__("pyarrow").table({"a": [1, 2]})))
    before = fingerprint(store)
    # Simulate a kill between the two renames of a publish: the old store is parked, the new one absent.
    store.rename(tmp_path / "store.replaced-abc")
    eng = open_store(store, "polars")
    assert eng.tables() == ["t"]
    assert fingerprint(store) == before


def test_engine_and_store_kind_must_match(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"ending in \.duckdb"):
        open_store(tmp_path / "folder", "duckdb")
    with pytest.raises(StoreError, match="folder of Parquet"):
        open_store(tmp_path / "x.duckdb", "polars")
    with pytest.raises(StoreError, match="no store"):
        open_store(tmp_path / "absent.duckdb", "duckdb")


def test_duckdb_out_of_memory_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    """DuckDB's own error would end the command in a traceback; the engine says which setting to raise."""
    import duckdb

    from openphm.engine.duckdb_engine import MEMORY_ENV, DuckDBEngine
    from openphm.errors import OutOfMemoryError

    class Exhausted:
        def create(self, name: str) -> None:
            raise duckdb.OutOfMemoryException("could not allocate block")

    class Frame:
        def to_native(self) -> Exhausted:
            return Exhausted()

    engine = DuckDBEngine(tmp_path / "store.duckdb")
    try:
        with pytest.raises(OutOfMemoryError, match=f"writing table activity: set {MEMORY_ENV}"):
            engine.write("activity", Frame())  # type: ignore[arg-type]
    finally:
        engine.close()
