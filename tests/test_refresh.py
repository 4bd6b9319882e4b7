"""``phm run --refresh latest``: the latest snapshot as a full run computes it, the earlier snapshots kept.

On every engine: a refresh after a full run on the same extract leaves every table as the full run wrote it;
after an ingest of a later extract it gives the latest snapshot's rows of a full run on that extract and keeps
the earlier snapshots' rows of the run on the earlier extract. The earlier extract is the demo fixture as it
would have been extracted four months before: rows dated after the cut are not in it yet, and deaths and
de-registrations after it have not happened yet.
"""

from __future__ import annotations

import shutil
from datetime import date
from importlib.resources import as_file
from pathlib import Path

import polars as pl
import pytest

from openphm.content import content_path
from openphm.errors import StoreError
from openphm.ingest import ingest
from openphm.options import RunOptions
from openphm.pipeline import run
from openphm.stages import STAGES
from openphm.tables import CARRIED
from tests.support.cli import one_line_error, phm
from tests.support.engines import assert_same_tables, store_tables
from tests.support.sources import ENGINES, EXTRACT, KEY, read_table, store_path

CUT = date(2025, 2, 28)
"""The earlier extract's date: before the end of the financial year 2024-25, so it has one snapshot fewer."""
LATEST, EARLIER = date(2025, 3, 31), (date(2022, 3, 31), date(2023, 3, 31), date(2024, 3, 31))
STARTS = {"date_of_birth", "registration_start", "event_date", "issue_date", "arrival_date", "admission_date"}
STARTS |= {"appointment_date", "contact_date", "start_date", "referral_date"}
"""Dates that put a row into an extract: a row dated after the cut is not in the earlier one."""
ENDS = {"registration_end", "date_of_death", "discharge_date", "end_date", "removal_date"}
"""Dates of something that had not happened yet at the cut: empty in the earlier extract."""
SLICE = 60
"""People per slice: the refresh runs its per-person stages in slices, as a large population does."""


def demo(tmp_path: Path) -> Path:
    with as_file(content_path("fixtures", "demo")) as fixture:
        return Path(shutil.copytree(fixture, tmp_path / "later"))


def cut(source: Path, out: Path, when: date) -> Path:
    """``source`` as extracted on ``when``."""
    out.mkdir()
    day = when.isoformat()
    kept_episodes: pl.Series | None = None
    for path in sorted(source.glob("*.csv"), key=lambda p: p.name != "apc_episode.csv"):
        frame = pl.read_csv(path, infer_schema=False)
        for column in set(frame.columns) & STARTS:
            frame = frame.filter(pl.col(column).is_null() | (pl.col(column) <= day))
        for column in set(frame.columns) & ENDS:
            frame = frame.with_columns(pl.when(pl.col(column) <= day).then(pl.col(column)).alias(column))
        if path.name == "apc_episode.csv":
            kept_episodes = frame["episode_id"]
        elif "episode_id" in frame.columns and kept_episodes is not None:
            frame = frame.filter(pl.col("episode_id").is_in(kept_episodes.implode()))
        frame.write_csv(out / path.name)
    return out


def at(tables: dict[str, pl.DataFrame], name: str, dates: tuple[date, ...]) -> pl.DataFrame:
    return tables[name].filter(pl.col("as_of").is_in(dates))


def refresh_facts(store: Path, engine: str) -> dict[tuple[str, str], str]:
    log = read_table(store, "run_log", engine).filter((pl.col("command") == "run") & (pl.col("step") == "refresh"))
    return {(item, metric): detail for item, metric, detail in log.select("item", "metric", "detail").rows()}


def without_log(tables: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    return {name: frame for name, frame in tables.items() if name != "run_log"}


@pytest.mark.parametrize("engine", ENGINES)
def test_a_refresh_gives_the_full_run_s_tables(engine: str, tmp_path: Path) -> None:
    later = demo(tmp_path)
    options = RunOptions(people_per_slice=SLICE)

    # The same extract: a refresh after a full run changes no table.
    store = store_path(tmp_path, engine, "same")
    ingest(later, store, key=KEY, engine=engine, extract_date=EXTRACT)
    full = run(store, stages=STAGES, engine=engine, options=options)
    assert full.as_of == (*EARLIER, LATEST) and full.refreshed is None
    reference = store_tables(store, engine)
    refreshed = run(store, stages=STAGES, engine=engine, options=options, refresh="latest")
    assert refreshed.refreshed == LATEST
    again = store_tables(store, engine)
    assert_same_tables(without_log(reference), without_log(again))
    facts = refresh_facts(store, engine)
    assert facts[("refreshed", "as_of")] == "2025-03-31"
    assert facts[("kept", "from_run")] == full.run_id
    assert reference["population"].filter(pl.col("as_of") == LATEST).height > 100  # real rows were compared

    # The real case: a run on an extract of four months before, then the later extract and a refresh.
    store = store_path(tmp_path, engine, "monthly")
    ingest(cut(later, tmp_path / "earlier", CUT), store, key=KEY, engine=engine, extract_date=CUT)
    first = run(store, stages=STAGES, engine=engine, options=options)
    assert first.as_of == EARLIER
    before = store_tables(store, engine)
    ingest(later, store, key=KEY, engine=engine, extract_date=EXTRACT)
    carried = read_table(store, "run_log", engine).filter(pl.col("step") == "refresh")
    assert ("previous_run", "carried", first.run_id) in carried.select("item", "metric", "detail").rows()
    assert set(carried.filter(pl.col("metric") == "carried_rows")["item"]) == set(CARRIED)
    run(store, stages=STAGES, engine=engine, options=options, refresh="latest")
    after = store_tables(store, engine)
    assert not [name for name in after if name.startswith("previous_")]  # the run consumed them
    assert refresh_facts(store, engine)[("kept", "from_run")] == first.run_id
    for name in CARRIED:
        # The latest snapshot is the full run's on the later extract; the earlier ones are the first run's.
        assert_same_tables({name: at(reference, name, (LATEST,))}, {name: at(after, name, (LATEST,))})
        assert_same_tables({name: at(before, name, EARLIER)}, {name: at(after, name, EARLIER)})
    # The whole-population stages ran on the merged tables: the latest snapshot's aggregates agree too.
    for name in ("agg_population", "agg_register", "cohort_member"):
        assert_same_tables({name: at(reference, name, (LATEST,))}, {name: at(after, name, (LATEST,))})
    assert at(reference, "agg_population", (LATEST,)).height > 100


def test_a_refresh_without_an_earlier_run_is_one_line(tmp_path: Path) -> None:
    store = store_path(tmp_path, "duckdb")
    ingest(demo(tmp_path), store, key=KEY, extract_date=EXTRACT)
    error = one_line_error(phm("run", "--store", str(store), "--refresh", "latest"))
    assert "no earlier run to keep snapshots from (the ingest carried none: no previous store)" in error
    assert "without --refresh" in error


def test_a_refresh_refuses_earlier_rows_made_otherwise(tmp_path: Path) -> None:
    later = demo(tmp_path)
    store = store_path(tmp_path, "duckdb")
    ingest(later, store, key=KEY, extract_date=EXTRACT)
    options = RunOptions(cohort_as_of="latest")
    run(store, stages=STAGES, options=options)
    with pytest.raises(StoreError, match="other definitions"):
        run(store, stages=STAGES, refresh="latest")  # the shipped cohorts at every as_of, not the latest only
    with pytest.raises(StoreError, match="has no snapshot at 2021-03-31"):
        run(store, stages=STAGES, as_of=(date(2021, 3, 31), LATEST), refresh="latest", options=options)

    # Another key: the previous run's pseudonyms are other people's; the ingest does not carry them.
    ingest(later, store, key=KEY + b"-other", extract_date=EXTRACT)
    error = one_line_error(phm("run", "--store", str(store), "--refresh", "latest"))
    assert "pseudonymised with another key" in error
    # Another purpose: the same.
    ingest(later, store, key=KEY, extract_date=EXTRACT)
    run(store, stages=STAGES)
    ingest(later, store, key=KEY, extract_date=EXTRACT, purpose="research")
    error = one_line_error(phm("run", "--store", str(store), "--refresh", "latest"))
    assert "ingested for another purpose" in error


def test_a_refresh_of_a_single_snapshot_keeps_nothing_and_changes_nothing(tmp_path: Path) -> None:
    store = store_path(tmp_path, "duckdb")
    ingest(demo(tmp_path), store, key=KEY, extract_date=EXTRACT)
    run(store, stages=STAGES, as_of=(LATEST,))
    reference = store_tables(store, "duckdb")
    run(store, stages=STAGES, as_of=(LATEST,), refresh="latest")
    assert_same_tables(without_log(reference), without_log(store_tables(store, "duckdb")))
    assert refresh_facts(store, "duckdb")[("kept", "as_of")] == ""
