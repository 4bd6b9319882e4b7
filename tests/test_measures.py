"""The measures stage from crafted readings: latest values, SD of recent blood pressures, implausible values."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from openphm.ingest import ingest
from openphm.ingest.pseudonymise import KeyedHash
from openphm.options import RunOptions
from openphm.pipeline import run
from openphm.stages import by_name
from tests.support.registers import CODELISTS, gp
from tests.support.sources import ALICE, BOB, EXTRACT, KEY, person, read_table, store_path

Rows = dict[str, list[dict[str, object]]]
AS_OF = (date(2023, 3, 31), date(2024, 3, 31))
BMI, SBP, DBP, EGFR = "60621009", "271649006", "271650006", "1011481000000105"
RATIO, TOTAL, HDL = "166842003", "994351000000103", "1005681000000107"


def reading(nhs: str, when: str, code: str, value: object) -> dict[str, object]:
    return {**gp(nhs, when, code), "value": value}


@pytest.fixture
def measured(
    source: Callable[[Rows], Path], tmp_path: Path, request: pytest.FixtureRequest
) -> tuple[pl.DataFrame, Path]:
    engine = getattr(request, "param", "duckdb")
    sbp = [
        ("2019-01-01", 150),
        ("2020-01-01", 140),
        ("2021-01-01", 130),
        ("2022-01-01", 120),
        ("2022-06-01", 110),
        ("2022-12-01", 100),
    ]
    events = [reading(ALICE, d, SBP, v) for d, v in sbp]
    events += [
        reading(ALICE, "2022-12-01", SBP, 90),  # same day as 100: one reading of 95
        reading(ALICE, "2023-06-01", SBP, 160),  # after the first as_of: only in the second snapshot
        gp(ALICE, "2023-09-01", "77176002"),  # a smoker again by the second as_of
        reading(ALICE, "2021-05-05", BMI, 31.2),
        reading(ALICE, "2022-05-05", BMI, 29.0),
        reading(ALICE, "2023-01-01", BMI, 8.0),  # implausible: dropped, counted
        reading(ALICE, "2024-01-01", BMI, 95.0),  # implausible
        reading(ALICE, "2022-01-01", DBP, 80),
        reading(ALICE, "2023-02-01", DBP, 85),
        reading(ALICE, "2021-06-01", EGFR, 48.0),
        reading(ALICE, "2022-01-01", EGFR, 42.0),  # below 60 for 214 days: stage 3
        reading(BOB, "2023-01-01", EGFR, 12.0),  # a single reading sets no stage (KDIGO: > 3 months)
        gp(ALICE, "2020-01-01", "77176002"),
        gp(ALICE, "2022-01-01", "8517006"),  # current, then ex-smoker
        gp(BOB, "2023-01-01", "77176002"),
        gp(BOB, "2023-01-01", "230063004"),  # same day: heavy wins
        reading(BOB, "2023-02-01", BMI, 27.5),
        reading(BOB, "2023-06-01", BMI, 28.5),  # after the first as_of: only in the second snapshot
        reading(ALICE, "2022-03-01", TOTAL, 5.0),
        reading(ALICE, "2022-03-01", HDL, 1.25),  # no ratio recorded that day: derived, 4.0
        reading(ALICE, "2023-01-15", TOTAL, 6.0),  # no HDL that day: no ratio
        reading(ALICE, "2023-06-01", TOTAL, 4.0),
        reading(ALICE, "2023-06-01", HDL, 0.1),  # implausible HDL: dropped, so no ratio of 40
        reading(BOB, "2023-01-10", TOTAL, 6.0),
        reading(BOB, "2023-01-10", HDL, 1.0),
        reading(BOB, "2023-01-10", RATIO, 3.5),  # a recorded ratio stands over the derived 6.0
    ]
    store = store_path(tmp_path, engine)
    ingest(
        source({"person": [person(ALICE), person(BOB)], "gp_event": events}),
        store,
        key=KEY,
        engine=engine,
        extract_date=EXTRACT,
    )
    stages = [s for name, s in by_name().items() if name in ("population", "measures")]
    run(store, engine=engine, as_of=AS_OF, stages=stages, options=RunOptions(codelists=CODELISTS))
    ids = dict(zip(KeyedHash(KEY)([ALICE, BOB]), ["alice", "bob"], strict=True))
    frame = read_table(store, "measure", engine).with_columns(pl.col("person_id").replace_strict(ids))
    return frame.sort("person_id", "as_of"), store


def _at(frame: pl.DataFrame, who: str, as_of: date) -> dict[str, object]:
    return frame.filter(person_id=who, as_of=as_of).to_dicts()[0]


@pytest.mark.parametrize("measured", ["duckdb", "polars"], indirect=True)
def test_latest_values_and_dates(measured: tuple[pl.DataFrame, Path]) -> None:
    frame, _ = measured
    alice = _at(frame, "alice", AS_OF[0])
    assert (alice["bmi"], alice["bmi_date"]) == (29.0, date(2022, 5, 5))
    assert (alice["sbp"], alice["sbp_date"]) == (95.0, date(2022, 12, 1))
    assert (alice["sbp_previous"], alice["sbp_previous_date"]) == (110.0, date(2022, 6, 1))
    assert (alice["dbp"], alice["dbp_previous"]) == (85.0, 80.0)
    assert alice["egfr"] == 42.0 and alice["ckd_stage"] == 3
    assert (alice["egfr_previous"], alice["egfr_previous_date"]) == (48.0, date(2021, 6, 1))
    assert alice["smoking_category"] == 1  # the latest status, ex-smoker, wins over the earlier current
    bob = _at(frame, "bob", AS_OF[0])
    assert bob["smoking_category"] == 4 and bob["egfr"] == 12.0 and bob["ckd_stage"] == 1
    assert bob["bmi"] == 27.5 and _at(frame, "bob", AS_OF[1])["bmi"] == 28.5
    assert bob["sbp"] is None and bob["sbp_sd5"] is None


@pytest.mark.parametrize("measured", ["duckdb", "polars"], indirect=True)
def test_cholesterol_ratio_recorded_or_derived(measured: tuple[pl.DataFrame, Path]) -> None:
    frame, _ = measured
    alice = _at(frame, "alice", AS_OF[0])
    assert (alice["cholesterol_ratio"], alice["cholesterol_ratio_date"]) == (4.0, date(2022, 3, 1))
    assert (alice["total_cholesterol"], alice["hdl_cholesterol"]) == (6.0, 1.25)
    assert _at(frame, "alice", AS_OF[1])["cholesterol_ratio"] == 4.0
    bob = _at(frame, "bob", AS_OF[0])
    assert (bob["cholesterol_ratio"], bob["cholesterol_ratio_date"]) == (3.5, date(2023, 1, 10))


def test_sbp_sd_of_the_last_five_readings(measured: tuple[pl.DataFrame, Path]) -> None:
    frame, _ = measured
    expected = statistics.stdev([95, 110, 120, 130, 140])  # the five latest days; 150 (2019) is the sixth
    assert _at(frame, "alice", AS_OF[0])["sbp_sd5"] == pytest.approx(expected)


@pytest.mark.parametrize("measured", ["duckdb", "polars"], indirect=True)
def test_a_later_reading_reaches_only_later_snapshots(measured: tuple[pl.DataFrame, Path]) -> None:
    """The latest, previous and last five readings of each snapshot are those up to its as_of, no later."""
    frame, _ = measured
    first, second = _at(frame, "alice", AS_OF[0]), _at(frame, "alice", AS_OF[1])
    assert (first["sbp"], first["sbp_date"]) == (95.0, date(2022, 12, 1))
    assert (second["sbp"], second["sbp_date"]) == (160.0, date(2023, 6, 1))
    assert (second["sbp_previous"], second["sbp_previous_date"]) == (95.0, date(2022, 12, 1))
    assert second["sbp_sd5"] == pytest.approx(statistics.stdev([160, 95, 110, 120, 130]))
    assert (first["smoking_category"], first["smoking_date"]) == (1, date(2022, 1, 1))
    assert (second["smoking_category"], second["smoking_date"]) == (2, date(2023, 9, 1))


def test_implausible_values_are_dropped_and_counted(measured: tuple[pl.DataFrame, Path]) -> None:
    frame, store = measured
    # The 2023-01-01 BMI of 8 is implausible, so the latest plausible one (2022-05-05) stands at 2024-03-31 too.
    assert _at(frame, "alice", AS_OF[1])["bmi"] == 29.0
    log = read_table(store, "run_log").filter(metric="implausible_dropped").sort("item")
    assert log.select("item", "value").rows() == [
        ("measures:bmi", 2.0),
        ("measures:cholesterol_ratio", 0.0),
        ("measures:dbp", 0.0),
        ("measures:egfr", 0.0),
        ("measures:hdl_cholesterol", 1.0),
        ("measures:sbp", 0.0),
        ("measures:total_cholesterol", 0.0),
    ]


def test_everyone_in_the_population_has_a_row(measured: tuple[pl.DataFrame, Path]) -> None:
    frame, _ = measured
    assert frame.height == 4 and frame.select("person_id", "as_of").n_unique() == 4
