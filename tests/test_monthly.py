"""`agg_monthly`: counted like a hand count of a hand-made source, the same on every engine, and protected."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from openphm.analytics import AGG_TABLES
from openphm.analytics.monthly import MONTHLY_SCHEMA
from openphm.analytics.published import published_tables
from openphm.engine import building
from tests.support.analytics import AS_OF
from tests.support.monthly import reference, run_monthly, tables
from tests.support.sources import ENGINES, store_path


@pytest.fixture(scope="module")
def duckdb_rows(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    return run_monthly(tmp_path_factory.mktemp("monthly"), "duckdb", tables())


def test_counts_equal_a_hand_count(duckdb_rows: pl.DataFrame) -> None:
    expected = reference(tables())
    got = {
        (r["level"], r["area_code"], r["as_of"], r["month"], r["segment"], r["measure"]): r["value"]
        for r in duckdb_rows.to_dicts()
    }
    assert got == expected
    assert duckdb_rows.columns == MONTHLY_SCHEMA.names
    # The data reach every measure, level and the segments, and leave months out of every window.
    assert set(duckdb_rows["measure"]) == {
        "emergency_admissions",
        "acsc_emergency_admissions",
        "emergency_bed_days",
        "elective_admissions",
        "ae_attendances",
        "outpatient_attendances",
    }
    assert duckdb_rows["level"].n_unique() == 6
    assert duckdb_rows["month"].min() > AS_OF[0].replace(year=AS_OF[0].year - 1)
    national = duckdb_rows.filter((pl.col("level") == "national") & (pl.col("segment") == "all"))
    acsc = national.filter(pl.col("measure") == "acsc_emergency_admissions")["value"].sum()
    emergency = national.filter(pl.col("measure") == "emergency_admissions")["value"].sum()
    assert 0 < acsc < emergency


@pytest.mark.parametrize("engine", [e for e in ENGINES if e != "duckdb"])
def test_engines_agree(tmp_path: Path, engine: str, duckdb_rows: pl.DataFrame) -> None:
    assert run_monthly(tmp_path, engine, tables()).equals(duckdb_rows)


def test_without_event_tables_there_are_no_rows(tmp_path: Path) -> None:
    data = {k: v for k, v in tables().items() if k in ("population", "segment")}
    assert run_monthly(tmp_path, "duckdb", data).is_empty()


def test_published_through_disclosure_control(tmp_path: Path, duckdb_rows: pl.DataFrame) -> None:
    assert "agg_monthly" in AGG_TABLES
    store = store_path(tmp_path, "duckdb")
    with building(store, "duckdb", start_from_existing=False) as eng:
        eng.write("agg_monthly", eng.frame(duckdb_rows.to_arrow()))
    published = pl.DataFrame(published_tables(store, "duckdb", "nhs")["agg_monthly"])
    assert published.height == duckdb_rows.height
    values = published["value"].drop_nulls()
    assert (values % 5 == 0).all()
    exact = duckdb_rows.join(published, on=[c for c in MONTHLY_SCHEMA.names if c != "value"], suffix="_published")
    small = exact.filter(pl.col("value").is_between(1, 7))
    assert small.height > 0 and small["value_published"].is_null().all()
    # No month's segment cell can be recovered from its 'all' row: hidden cells in a line come at least in pairs.
    keys = ["level", "area_code", "as_of", "month", "measure"]
    whole = published.filter(pl.col("segment") == "all").select(*keys, pl.col("value").alias("all"))
    lines = (
        published.filter(pl.col("segment") != "all")
        .join(whole, on=keys)
        .filter(pl.col("all").is_not_null())
        .group_by(keys)
        .agg(pl.col("value").is_null().sum().alias("hidden"))
    )
    assert lines.filter(pl.col("hidden") == 1).is_empty()
