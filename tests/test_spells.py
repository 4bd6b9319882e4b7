"""Admissions are hospital provider spells, not consultant episodes, on every engine and through `phm import hes`.

The NHS Data Dictionary's Hospital Provider Spell is the continuous stay at one provider: a three-episode stay
is one admission (its bed days the whole stay, its ACSC test the first episode's primary diagnosis with every
episode's other codes), a transfer to another provider or a day's gap is a new spell, and a supplied spell_id
overrides the derivation.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import narwhals as nw
import polars as pl
import pytest

from openphm.activity.stage import unit_costs
from openphm.importers.hes import import_hes
from openphm.ingest import ingest
from openphm.options import RunOptions
from openphm.pipeline import run
from openphm.spells import spells
from openphm.stages import by_name
from tests.support.cohorts import NHS, WHO, people
from tests.support.sources import ENGINES, EXTRACT, KEY, read_table, store_path

Rows = dict[str, list[dict[str, object]]]
AS_OF = date(2024, 3, 31)
EMERGENCY_COST = next(r["unit_cost"] for r in unit_costs().to_pylist() if r["setting"] == "emergency")


def _episode(
    who: str,
    episode: str,
    admitted: str,
    discharged: str,
    provider: str = "R1",
    spell: str | None = None,
    discharge_method: str | None = None,
) -> dict[str, object]:
    return {
        "nhs_number": NHS[who],
        "episode_id": episode,
        "spell_id": spell,
        "admission_date": admitted,
        "discharge_date": discharged,
        "discharge_method": discharge_method,
        "admission_method": "21",
        "provider_code": provider,
        "cost": None,
    }


EPISODES = [
    # a: one stay of three episodes under three consultants (the next starts the day the last ended)
    _episode("a", "A1", "2024-01-10", "2024-01-12"),
    _episode("a", "A2", "2024-01-12", "2024-01-15"),
    _episode("a", "A3", "2024-01-15", "2024-01-20"),
    # b: transferred to another provider on the day: two spells
    _episode("b", "B1", "2024-01-10", "2024-01-12"),
    _episode("b", "B2", "2024-01-12", "2024-01-15", provider="R2"),
    # c: a day at home between the two: two spells
    _episode("c", "C1", "2024-01-10", "2024-01-12"),
    _episode("c", "C2", "2024-01-13", "2024-01-15"),
    # d: the source's spell ids win over the derivation both ways: contiguous but two spells; a gap but one spell
    _episode("d", "D1", "2024-01-10", "2024-01-12", spell="S1"),
    _episode("d", "D2", "2024-01-12", "2024-01-15", spell="S2"),
    _episode("d", "D3", "2024-02-01", "2024-02-02", spell="S3"),
    _episode("d", "D4", "2024-02-10", "2024-02-12", spell="S3"),
    # e: discharged home (discharge method 1) and readmitted the same day: two spells
    _episode("e", "E1", "2024-01-10", "2024-01-12", discharge_method="1"),
    _episode("e", "E2", "2024-01-12", "2024-01-15"),
]
DIAGNOSES = [
    # The spell's primary is A1's acute bronchitis, an ACSC only with COPD as a secondary diagnosis, which only
    # A2 records; A3 adds a diabetes complication (an ACSC in any position). A2's COPD primary is not the spell's.
    {"episode_id": "A1", "position": 1, "icd10_code": "J20.9"},
    {"episode_id": "A2", "position": 1, "icd10_code": "J44.9"},
    {"episode_id": "A3", "position": 1, "icd10_code": "S72.0"},
    {"episode_id": "A3", "position": 2, "icd10_code": "E11.6"},
    # b's transfer: COPD as the primary of the second provider's spell is an ACSC admission of its own.
    {"episode_id": "B1", "position": 1, "icd10_code": "S72.0"},
    {"episode_id": "B2", "position": 1, "icd10_code": "J44.9"},
    # c's second spell would be ACSC as an episode of the first; it is not, being a spell of its own.
    {"episode_id": "C1", "position": 1, "icd10_code": "S72.0"},
    {"episode_id": "C2", "position": 1, "icd10_code": "J45.9"},
]
EXPECTED = {  # who: (emergency admissions, bed days, cost at the default unit cost per episode)
    "a": (1, 10, 3),
    "b": (2, 5, 2),
    "c": (2, 4, 2),
    "d": (3, 2 + 3 + 11, 4),
    "e": (2, 5, 2),
}


@pytest.mark.parametrize("engine", ENGINES)
def test_episodes_of_one_stay_are_one_admission(source: Callable[[Rows], Path], tmp_path: Path, engine: str) -> None:
    store = store_path(tmp_path, engine)
    tables: Rows = {"person": people(*EXPECTED), "apc_episode": EPISODES, "apc_diagnosis": DIAGNOSES}
    ingest(source(tables), store, key=KEY, engine=engine, extract_date=EXTRACT)
    stages = [s for name, s in by_name().items() if name in ("population", "activity", "cohort")]
    run(store, engine=engine, as_of=(AS_OF,), stages=stages)

    stored = read_table(store, "apc_episode", engine)
    spell = dict(stored.select("episode_id", "spell_id").rows())
    assert spell["A1"] == spell["A2"] == spell["A3"] == "derived:A1"
    assert (spell["D1"], spell["D2"], spell["D3"], spell["D4"]) == ("S1", "S2", "S3", "S3")
    assert len({spell["B1"], spell["B2"], spell["C1"], spell["C2"], spell["E1"], spell["E2"]}) == 6

    activity = read_table(store, "activity", engine)
    got = {
        WHO[p]: (n, days, round(cost / EMERGENCY_COST, 6))
        for p, n, days, cost in activity.select(
            "person_id", "emergency_admissions", "emergency_bed_days", "cost_emergency"
        ).rows()
    }
    assert got == EXPECTED

    members = read_table(store, "cohort_member", engine).filter(pl.col("cohort") == "acsc_emergency_admissions")
    reasons = {WHO[p]: r for p, r in members.select("person_id", "reasons").rows()}
    assert reasons == {
        "a": "acsc_emergency_admission (copd_acute_bronchitis, diabetes_complications)",
        "b": "acsc_emergency_admission (copd)",
        "c": "acsc_emergency_admission (asthma)",
    }


def _hes_episode(key: str, start: str, end: str | None, spell: str | None, dx: str) -> dict[str, str]:
    return {
        "PSEUDO_HESID": "P1",
        "EPIKEY": key,
        "ADMIDATE": "2024-01-10",  # HES repeats the spell's admission date on every episode ...
        "DISDATE": end or "",  # ... and records its discharge date on the last one only
        "DISMETH": "1" if end else "8",
        "EPISTART": start,
        "ADMIMETH": "21",
        "EPISTAT": "3",
        "PROCODE3": "RXX",
        "MYDOB": "071950",
        "SEX": "2",
        "GPPRAC": "Y90001",
        "DIAG_01": dx,
        **({"SUSSPELLID": spell} if spell is not None else {}),
    }


@pytest.mark.parametrize("supplied", [True, False], ids=["SUSSPELLID", "derived"])
def test_a_hes_three_episode_spell_is_one_admission(tmp_path: Path, supplied: bool) -> None:
    rows = [
        _hes_episode("901", "2024-01-10", None, "55" if supplied else None, "J20.9"),
        _hes_episode("902", "2024-01-12", None, "55" if supplied else None, "J44.9"),
        _hes_episode("903", "2024-01-15", "2024-01-20", "55" if supplied else None, "E11.6"),
    ]
    apc = tmp_path / "apc.csv"
    pl.DataFrame(rows).write_csv(apc)
    folder = tmp_path / "source"
    import_hes(folder, apc=apc)
    written = pl.read_csv(folder / "apc_episode.csv", infer_schema=False)
    assert written["spell_id"].to_list() == (["55"] * 3 if supplied else [None] * 3)
    assert written["discharge_method"].to_list() == ["8", "8", "1"]

    store = tmp_path / "store.duckdb"
    ingest(folder, store, key=KEY, extract_date=EXTRACT)
    stages = [s for name, s in by_name().items() if name in ("population", "activity")]
    run(store, as_of=(AS_OF,), stages=stages)
    stored = read_table(store, "apc_episode")
    assert stored["spell_id"].n_unique() == 1
    activity = read_table(store, "activity").row(0, named=True)
    assert (activity["emergency_admissions"], activity["emergency_bed_days"]) == (1, 10)


def test_a_unit_cost_per_spell_prices_a_stay_once(source: Callable[[Rows], Path], tmp_path: Path) -> None:
    costs = tmp_path / "costs.csv"
    costs.write_text("setting,kind,unit,cost_gbp\nemergency,any,spell,1000\n", encoding="utf-8")
    store = store_path(tmp_path, "duckdb")
    stay = [e for e in EPISODES if e["episode_id"] in ("A1", "A2", "A3")]
    ingest(source({"person": people("a"), "apc_episode": stay}), store, key=KEY, extract_date=EXTRACT)
    stages = [s for name, s in by_name().items() if name in ("population", "activity")]
    run(store, as_of=(AS_OF,), stages=stages, options=RunOptions(unit_costs=costs))
    assert read_table(store, "activity")["cost_emergency"].to_list() == [1000.0]  # not 3 episodes x 1000


def test_spells_of_episodes_without_a_spell_id_are_derived() -> None:
    """A store ingested before spell_id was stored: the stages derive the spells by the same rule."""
    frame = pl.DataFrame(
        {
            "person_id": ["p", "p", "p"],
            "episode_id": ["2", "1", "3"],
            "admission_date": [date(2024, 1, 3), date(2024, 1, 1), date(2024, 2, 1)],
            "discharge_date": [date(2024, 1, 9), date(2024, 1, 3), date(2024, 2, 1)],
            "admission_method": ["2B", "21", "11"],
            "provider_code": ["R1", "R1", "R1"],
            "cost": [None, 10.0, None],
        }
    )
    got = nw.to_native(spells(nw.from_native(frame.lazy())).collect()).sort("admission_date")
    assert got.select(
        "spell_key", "admission_method", "discharge_date", "cost", "costed_episodes", "episodes"
    ).rows() == [
        ("1", "21", date(2024, 1, 9), 10.0, 1, 2),
        ("3", "11", date(2024, 2, 1), None, 0, 1),
    ]
