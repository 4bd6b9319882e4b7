"""The shipped cohorts on crafted people: one just in and one just out at each threshold, and attrition.

People go through ingest and the pipeline (population, register, measures, cohort). Upstream tables that
other stages will produce (``activity``, ``risk``) are written into the store by hand before the run, so
the cohort stage reads them exactly as it will read the real ones.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import duckdb
import narwhals as nw
import polars as pl
import pyarrow as pa
import pytest

from openphm.cohorts.definitions import load_cohorts
from openphm.cohorts.stage import run_cohorts
from openphm.options import RunOptions
from tests.support.cohorts import (
    AS_OF,
    NHS,
    STATIN,
    WHO,
    Rows,
    acsc_tables,
    bp_events,
    people,
    pipeline,
    upstream,
)
from tests.support.sources import read_table


def members(store: Path, cohort: str, engine: str = "duckdb") -> dict[str, str]:
    """name -> reasons of the cohort's members at the first as_of."""
    frame = read_table(store, "cohort_member", engine).filter(cohort=cohort, as_of=AS_OF[0])
    return {WHO[p]: r for p, r in frame.select("person_id", "reasons").rows()}


def attrition(store: Path, cohort: str, engine: str = "duckdb", as_of: date = AS_OF[0]) -> list[tuple[object, ...]]:
    """(step, rule, kind, people, status) of the cohort at ``as_of``, in step order."""
    frame = read_table(store, "cohort_attrition", engine).filter(cohort=cohort, as_of=as_of).sort("step")
    return frame.select("step", "rule", "kind", "people", "status").rows()


def test_older_people_on_four_or_more_waiting_lists(source: Callable[[Rows], Path], tmp_path: Path) -> None:
    tables: Rows = {
        "person": people(
            "a",
            "b",
            "c",
            "d",
            "e",
            "f",
            b={"date_of_birth": "1959-04-01"},  # 64 on 2024-03-31: out at age
            c={"date_of_birth": "1959-03-01"},  # 65: in
            e={"date_of_death": "2023-01-01"},  # died: not in the population at all
        )
    }
    activity = upstream({"who": ["a", "b", "c", "d", "e"], "open_waiting_lists": [4, 4, 5, 3, 9]})
    store = pipeline(source, tmp_path, tables, extra={"activity": activity})
    assert members(store, "older_people_many_waiting_lists") == {
        "a": "aged_65_and_over; four_or_more_waiting_lists",
        "c": "aged_65_and_over; four_or_more_waiting_lists",
    }
    assert attrition(store, "older_people_many_waiting_lists") == [
        (0, "population", "population", 5, "ok"),
        (1, "aged_65_and_over", "include", 4, "ok"),
        (2, "four_or_more_waiting_lists", "include", 2, "ok"),
    ]


def test_frequent_users_of_urgent_and_emergency_care(source: Callable[[Rows], Path], tmp_path: Path) -> None:
    activity = upstream(
        {"who": ["a", "b", "c", "d"], "ae_attendances": [5, 4, 0, 7], "emergency_admissions": [0, 2, 3, 4]}
    )
    store = pipeline(source, tmp_path, {"person": people("a", "b", "c", "d", "e")}, extra={"activity": activity})
    rule = "frequent_ae_or_emergency_admissions"
    assert members(store, "frequent_uec_users") == {
        "a": f"{rule} (5+ A&E attendances)",
        "c": f"{rule} (3+ emergency admissions)",
        "d": f"{rule} (5+ A&E attendances, 3+ emergency admissions)",
    }
    assert attrition(store, "frequent_uec_users") == [
        (0, "population", "population", 5, "ok"),
        (1, rule, "include", 3, "ok"),
    ]


def test_acsc_emergency_admissions(source: Callable[[Rows], Path], tmp_path: Path) -> None:
    store = pipeline(source, tmp_path, acsc_tables())
    rule = "acsc_emergency_admission"
    assert members(store, "acsc_emergency_admissions") == {
        "a": f"{rule} (asthma)",
        "d": f"{rule} (copd_acute_bronchitis)",
        "g": f"{rule} (congestive_heart_failure)",
        "i": f"{rule} (diabetes_complications)",
        "j": f"{rule} (angina)",
        "m": f"{rule} (asthma)",
        "n": f"{rule} (cellulitis)",
        "p": f"{rule} (dental_conditions)",
        "q": f"{rule} (asthma, hypertension)",
    }
    assert attrition(store, "acsc_emergency_admissions") == [
        (0, "population", "population", 17, "ok"),
        (1, rule, "include", 9, "ok"),
    ]


def test_qrisk3_without_a_statin(source: Callable[[Rows], Path], tmp_path: Path) -> None:
    def statin(who: str, issued: str) -> dict[str, object]:
        return {"nhs_number": NHS[who], "issue_date": issued, "dmd_code": STATIN, "bnf_code": None}

    tables: Rows = {
        "person": people("a", "b", "c", "d", "e", "f"),
        "gp_medication": [statin("d", "2023-06-01"), statin("e", "2023-03-31"), statin("f", "2023-04-01")],
    }
    risk = upstream({"who": ["a", "b", "c", "d", "e", "f"], "qrisk3": [10.0, 9.99, None, 15.0, 15.0, 15.0]})
    store = pipeline(source, tmp_path, tables, extra={"risk": risk})
    # e's last statin was 366 days before the as_of (outside 12 months); f's 365 days before (inside).
    assert members(store, "qrisk3_no_statin") == {"a": "qrisk3_10_or_more", "e": "qrisk3_10_or_more"}
    assert attrition(store, "qrisk3_no_statin") == [
        (0, "population", "population", 6, "ok"),
        (1, "qrisk3_10_or_more", "include", 4, "ok"),
        (2, "statin_issued_in_12_months", "exclude", 2, "ok"),
    ]


def test_raised_blood_pressure_without_hypertension(source: Callable[[Rows], Path], tmp_path: Path) -> None:
    store = pipeline(source, tmp_path, {"person": people("a", "b", "c", "d", "e", "f"), "gp_event": bp_events()})
    rule = "raised_bp_on_two_readings"
    assert members(store, "raised_bp_no_hypertension") == {
        "a": f"{rule} (systolic 140+ twice)",
        "c": f"{rule} (diastolic 90+ twice)",
    }
    assert attrition(store, "raised_bp_no_hypertension") == [
        (0, "population", "population", 6, "ok"),
        (1, rule, "include", 3, "ok"),
        (2, "hypertension_diagnosed", "exclude", 2, "ok"),
    ]


def test_severe_frailty(source: Callable[[Rows], Path], tmp_path: Path) -> None:
    risk = upstream({"who": ["a", "b", "c", "d"], "efi": [13 / 36, 0.36, 0.5, None]})
    store = pipeline(source, tmp_path, {"person": people("a", "b", "c", "d")}, extra={"risk": risk})
    assert members(store, "severe_frailty") == {"a": "efi_severe", "c": "efi_severe"}
    assert attrition(store, "severe_frailty") == [
        (0, "population", "population", 4, "ok"),
        (1, "efi_severe", "include", 2, "ok"),
    ]


def test_a_cohort_whose_table_is_absent_is_reported_not_available(
    source: Callable[[Rows], Path], tmp_path: Path
) -> None:
    store = pipeline(source, tmp_path, {"person": people("a", "b")})
    assert members(store, "severe_frailty") == {}
    assert attrition(store, "severe_frailty") == [
        (0, "population", "population", 2, "ok"),
        (1, "efi_severe", "include", None, "not available: table risk absent"),
    ]
    log = read_table(store, "run_log").filter(pl.col("item") == "cohort:severe_frailty")
    assert log.select("metric", "value").rows() == [("not_available:table risk absent", 1.0)]
    # The measure table exists without readings; with no gp_event the BP cohort is not known, not empty.
    assert attrition(store, "raised_bp_no_hypertension")[1][4] == "not available: table gp_event absent"
    # A missing column of a present table is reported the same way, not taken as 'nobody'.
    store = pipeline(
        source, tmp_path / "again", {"person": people("a")}, extra={"risk": upstream({"who": ["a"], "hfrs": [1.0]})}
    )
    assert attrition(store, "severe_frailty")[1][4] == "not available: column efi absent from risk"


def test_every_as_of_by_default_or_only_the_latest(source: Callable[[Rows], Path], tmp_path: Path) -> None:
    dates = (date(2023, 3, 31), date(2024, 3, 31))
    tables: Rows = {"person": people("a", "b", "c", "d", "e", "f"), "gp_event": bp_events()}
    store = pipeline(source, tmp_path, tables, as_of=dates)
    frame = read_table(store, "cohort_attrition").filter(cohort="raised_bp_no_hypertension", step=2)
    assert dict(frame.select("as_of", "people").rows()) == {dates[0]: 0, dates[1]: 2}  # second readings: June 2023
    store = pipeline(source, tmp_path / "latest", tables, as_of=dates, options=RunOptions(cohort_as_of="latest"))
    assert set(read_table(store, "cohort_attrition")["as_of"]) == {dates[1]}
    assert set(read_table(store, "cohort_member")["as_of"]) == {dates[1]}


@pytest.mark.parametrize("engine", ["duckdb", "polars"])
def test_own_definitions_folder_and_every_comparison(
    source: Callable[[Rows], Path], tmp_path: Path, engine: str
) -> None:
    folder = tmp_path / "cohorts"
    folder.mkdir()
    (folder / "mine.yaml").write_text(
        """
name: mine
title: Deprived women in two practices, not in the healthy segment, at moderate admission risk
include:
  - {name: women, type: demographic, column: sex, op: "==", value: F}
  - {name: deprived, type: demographic, column: imd_quintile, op: in, value: [1, 2]}
  - {name: our_practices, type: demographic, column: practice_code, op: not_in, value: [Y99999]}
  - {name: moderate_risk, type: admission_risk, column: admission_risk, op: between, value: [0.1, 0.5]}
  - name: frequent_24m
    type: activity
    column: ae_attendances
    window: 24m
    op: ">"
    value: 1
exclude:
  - {name: healthy, type: segment, column: segment, op: "==", value: healthy}
  - {name: ever_asthma, type: register, definition: [asthma, copd], status: ever}
""",
        encoding="utf-8",
    )
    tables: Rows = {
        "person": people(
            "a",
            "b",
            "c",
            "d",
            "e",
            "f",
            **{n: {"lsoa_code": "E01000048"} for n in "acd"},  # IMD decile 1
            b={"sex": "M", "lsoa_code": "E01000048"},
            e={"lsoa_code": "E01000002"},  # decile 10
            f={"practice_code": "Y99999", "lsoa_code": "E01000048"},
        ),
        "gp_event": [
            {
                "nhs_number": NHS["d"],
                "event_date": "2010-01-01",
                "snomed_code": "195967001",
                "value": None,
                "unit": None,
            }
        ],
    }
    who = ["a", "b", "c", "d", "e", "f"]
    extra = {
        "admission_risk": upstream({"who": who, "admission_risk": [0.1, 0.3, 0.3, 0.3, 0.3, 0.3]}),
        "activity": upstream({"who": who, "ae_attendances_24m": [2, 2, 2, 2, 2, 2]}),
        "segment": upstream({"who": who, "segment": ["acutely_ill", "acutely_ill", "healthy", *["acutely_ill"] * 3]}),
    }
    store = pipeline(source, tmp_path, tables, engine=engine, extra=extra, options=RunOptions(cohorts=folder))
    assert set(read_table(store, "cohort_member", engine)["cohort"]) == {"mine"}
    assert members(store, "mine", engine) == {"a": "women; deprived; our_practices; moderate_risk; frequent_24m"}
    assert [row[3] for row in attrition(store, "mine", engine)] == [6, 5, 4, 3, 3, 3, 2, 1]


class _Frames:
    """The engine methods the rule engine uses (``frame``, ``persist``), for hand-made frames of one backend."""

    def __init__(self, backend: str) -> None:
        self.backend = backend

    def frame(self, data: pa.Table) -> nw.LazyFrame:
        if self.backend == "duckdb":
            return nw.from_native(duckdb.from_arrow(data))
        return nw.from_native(pl.from_arrow(data).lazy())  # type: ignore[union-attr]

    def persist(self, frame: nw.LazyFrame) -> nw.LazyFrame:
        return frame  # hand-made frames are already in memory


@pytest.mark.parametrize("backend", ["duckdb", "polars"])
def test_rule_engine_on_hand_made_frames(backend: str) -> None:
    """The rule engine alone, on frames made by hand: no ingest, no store."""
    frames = _Frames(backend)
    as_of = AS_OF[0]
    population = frames.frame(
        pa.table(
            {
                "person_id": ["p1", "p2", "p3", "p4"],
                "as_of": pa.array([as_of] * 4, pa.date32()),
                "in_population": [True, True, True, False],
            }
        )
    )
    risk = frames.frame(
        pa.table(
            {
                "person_id": ["p1", "p2", "p3", "p4"],
                "as_of": pa.array([as_of] * 4, pa.date32()),
                "qrisk3": [12.0, 25.0, 8.0, 30.0],
                "efi": [0.4, 0.1, 0.37, 0.9],
            }
        )
    )
    register = frames.frame(
        pa.table(
            {
                "person_id": ["p2"],
                "as_of": pa.array([as_of], pa.date32()),
                "definition": ["statins"],
                "last_date": pa.array([date(2024, 1, 1)], pa.date32()),
                "active": [True],
            }
        )
    )
    issued = frames.frame(pa.table({"person_id": ["p2"], "issue_date": pa.array([date(2024, 1, 1)], pa.date32())}))
    tables = {"population": population, "risk": risk, "register": register}
    cohorts = {n: c for n, c in load_cohorts().items() if n in ("qrisk3_no_statin", "severe_frailty")}
    statins = frozenset({"statins"})
    # Without gp_medication, 'no statin issued' cannot be known: not available, rather than everyone.
    results, _ = run_cohorts(cohorts, tables, frames, AS_OF, latest_only=False, medicines=statins)  # type: ignore[arg-type]
    assert results[0].unavailable == "table gp_medication absent"
    tables["gp_medication"] = issued
    results, _ = run_cohorts(cohorts, tables, frames, AS_OF, latest_only=False, medicines=statins)  # type: ignore[arg-type]
    got = {r.cohort.name: r for r in results}
    qrisk = got["qrisk3_no_statin"]
    assert qrisk.members.collect("polars")["person_id"].to_list() == ["p1"]
    assert qrisk.attrition.sort("step").collect("polars")["people"].to_list() == [3, 2, 1]
    frail = got["severe_frailty"].members.sort("person_id").collect("polars")
    assert frail["person_id"].to_list() == ["p1", "p3"]  # p4 is not in the population
    assert frail["reasons"].to_list() == ["efi_severe", "efi_severe"]


def test_members_carry_the_segment_and_the_maternal_flag(source: Callable[[Rows], Path], tmp_path: Path) -> None:
    """A worklist shows maternal health beside the segment, whatever the segment (null without a segment table)."""
    segment = upstream({"who": ["a", "d"], "segment": ["long_term_conditions", "healthy"], "maternal": [True, False]})
    store = pipeline(source, tmp_path, acsc_tables(), extra={"segment": segment})
    frame = read_table(store, "cohort_member").filter(cohort="acsc_emergency_admissions")
    rows = {WHO[r["person_id"]]: (r["segment"], r["maternal"]) for r in frame.to_dicts()}
    assert rows["a"] == ("long_term_conditions", True)
    assert rows["d"] == ("healthy", False)
    assert rows["g"] == (None, None)  # no segment row for that person
    bare = read_table(pipeline(source, tmp_path / "bare", acsc_tables()), "cohort_member")
    assert bare["maternal"].null_count() == bare.height and bare["segment"].null_count() == bare.height
