"""The activity stage on crafted people: window edges, settings, bed days, default and recorded costs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from openphm.activity.stage import unit_costs
from openphm.errors import InputError
from openphm.ingest import ingest
from openphm.ingest.pseudonymise import KeyedHash
from openphm.options import RunOptions
from openphm.pipeline import run
from openphm.stages import by_name
from tests.support.sources import ALICE, BOB, CAROL, ENGINES, EXTRACT, KEY, person, read_table, store_path

Rows = dict[str, list[dict[str, object]]]
AS_OF = date(2024, 3, 31)
COST = {(r["setting"], r["kind"]): r["unit_cost"] for r in unit_costs().to_pylist()}


def _activity(
    source: Callable[[Rows], Path], tmp_path: Path, tables: Rows, engine: str = "duckdb", unit_costs: Path | None = None
) -> dict[str, dict[str, object]]:
    store = store_path(tmp_path, engine)
    ingest(source(tables), store, key=KEY, engine=engine, extract_date=EXTRACT)
    stages = [s for name, s in by_name().items() if name in ("population", "activity")]
    run(store, engine=engine, as_of=(AS_OF,), stages=stages, options=RunOptions(unit_costs=unit_costs))
    names = dict(zip(KeyedHash(KEY)([ALICE, BOB, CAROL]), ["alice", "bob", "carol"], strict=True))
    frame = read_table(store, "activity", engine).with_columns(pl.col("person_id").replace_strict(names))
    return {row["person_id"]: row for row in frame.to_dicts()}


def episode(nhs: str, ident: str, admitted: str, discharged: str | None, method: str, cost: float | None = None):
    return {
        "nhs_number": nhs,
        "episode_id": ident,
        "admission_date": admitted,
        "discharge_date": discharged,
        "admission_method": method,
        "provider_code": None,
        "cost": cost,
    }


def ae(nhs: str, ident: str, arrived: str, cost: float | None = None) -> dict[str, object]:
    return {
        "nhs_number": nhs,
        "attendance_id": ident,
        "arrival_date": arrived,
        "diagnosis_snomed": None,
        "acuity": None,
        "cost": cost,
    }


@pytest.mark.parametrize("engine", ENGINES)
def test_counts_bed_days_and_costs_in_the_window(source: Callable[[Rows], Path], tmp_path: Path, engine: str) -> None:
    tables: Rows = {
        "person": [person(ALICE), person(BOB), person(CAROL)],
        "ae_attendance": [
            ae(ALICE, "A1", "2024-03-31"),  # last day of the window: counts
            ae(ALICE, "A2", "2023-04-01", cost=500.0),  # first day of the window: counts, recorded cost
            ae(ALICE, "A3", "2023-03-31"),  # a day before the 12 months: in the 24 months only
            ae(ALICE, "A4", "2022-04-01"),  # first day of the 24 months
            ae(ALICE, "A5", "2022-03-31"),  # outside both windows
        ],
        "apc_episode": [
            episode(ALICE, "E1", "2023-06-01", "2023-06-05", "21"),  # emergency, 4 nights
            episode(ALICE, "E2", "2023-07-01", "2023-07-01", "11"),  # elective day case
            episode(ALICE, "E3", "2023-08-01", "2023-08-03", "12", cost=1000.0),  # elective, 2 nights, own cost
            episode(ALICE, "E4", "2023-09-01", "2023-09-02", "31"),  # maternity -> other admissions
        ],
        "gp_event": [
            {"nhs_number": ALICE, "event_date": "2023-05-01", "snomed_code": "38341003", "value": None, "unit": None},
            {"nhs_number": ALICE, "event_date": "2023-05-01", "snomed_code": "195967001", "value": None, "unit": None},
            {"nhs_number": ALICE, "event_date": "2023-05-02", "snomed_code": "38341003", "value": None, "unit": None},
        ],
        "social_care_service": [
            {
                "nhs_number": BOB,
                "service_type": "residential",
                "start_date": "2024-03-04",  # 28 days to the as_of inclusive: 4 weeks
                "end_date": None,
                "weekly_cost": None,
            },
            {
                "nhs_number": BOB,
                "service_type": "home_care",
                "start_date": "2020-01-01",
                "end_date": "2023-04-07",  # 7 days inside the window: 1 week at the recorded cost
                "weekly_cost": 250.0,
            },
        ],
        "waiting_list": [
            {"nhs_number": BOB, "referral_date": "2023-01-01", "removal_date": None, "treatment_function_code": "100"},
            {
                "nhs_number": BOB,
                "referral_date": "2023-01-01",
                "removal_date": "2024-04-30",
                "treatment_function_code": "101",
            },
            {
                "nhs_number": BOB,
                "referral_date": "2023-01-01",
                "removal_date": "2024-03-31",
                "treatment_function_code": "110",
            },
        ],
    }
    got = _activity(source, tmp_path, tables, engine)
    alice, bob, carol = got["alice"], got["bob"], got["carol"]

    assert alice["ae_attendances"] == 2
    assert alice["ae_attendances_24m"] == 4
    assert alice["cost_ae"] == pytest.approx(500.0 + COST[("ae", "any")])
    assert (alice["emergency_admissions"], alice["emergency_bed_days"]) == (1, 4)
    assert (alice["elective_admissions"], alice["elective_bed_days"]) == (2, 2)
    assert alice["other_admissions"] == 1
    assert alice["cost_elective"] == pytest.approx(1000.0 + COST[("elective", "day_case")])
    assert alice["cost_emergency"] == pytest.approx(COST[("emergency", "any")])
    assert alice["gp_contacts"] == 2  # two days with coded events, however many codes on a day
    assert alice["any_contact_24m"] is True

    assert bob["social_care_weeks"] == pytest.approx(5.0)
    assert bob["cost_social_care"] == pytest.approx(4 * COST[("social_care", "residential")] + 250.0)
    assert bob["open_waiting_lists"] == 2  # the one removed on the as_of date is no longer open
    assert bob["any_contact_24m"] is False  # social care and waiting lists are not contacts

    assert carol["ae_attendances"] == 0 and carol["cost_total"] == 0.0
    assert alice["cost_total"] == pytest.approx(
        sum(v for k, v in alice.items() if k.startswith("cost_") and k != "cost_total" and v is not None)
    )


def test_a_setting_without_its_table_is_not_available_rather_than_zero(
    source: Callable[[Rows], Path], tmp_path: Path
) -> None:
    got = _activity(source, tmp_path, {"person": [person(ALICE)], "ae_attendance": [ae(ALICE, "A1", "2024-01-01")]})
    alice = got["alice"]
    assert alice["ae_attendances"] == 1
    assert alice["emergency_admissions"] is None
    assert alice["outpatient_attendances"] is None
    assert alice["cost_social_care"] is None
    assert alice["cost_total"] == pytest.approx(COST[("ae", "any")])


def test_own_unit_costs_replace_the_defaults(source: Callable[[Rows], Path], tmp_path: Path) -> None:
    costs = tmp_path / "costs.csv"
    costs.write_text("setting,kind,cost_gbp\nae,any,99.5\n", encoding="utf-8")
    tables: Rows = {"person": [person(ALICE)], "ae_attendance": [ae(ALICE, "A1", "2024-01-01")]}
    assert _activity(source, tmp_path, tables, unit_costs=costs)["alice"]["cost_ae"] == pytest.approx(99.5)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("setting,kind\nae,any\n", "need columns"),
        ("setting,kind,cost_gbp\nae,any,cheap\n", "need columns"),
        ("setting,kind,cost_gbp\nspa,any,10\n", "unknown setting 'spa'"),
    ],
)
def test_bad_unit_costs_file_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "costs.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        unit_costs(path)
