"""A hand-made source for the monthly series, and the series counted from it in plain Python (the reference)."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import narwhals as nw
import polars as pl
import pyarrow as pa

from openphm.analytics.stage import analytics
from openphm.engine import building
from openphm.pipeline import RunContext
from tests.support.analytics import AS_OF, PRACTICES, SEGMENTS
from tests.support.sources import store_path

PEOPLE = 90
NATIONAL = "E92000001"

# Diagnoses of the hand-made episodes and whether the ACSC list takes them (read off the NHS Institute list by
# hand, not by the code under test): asthma primary yes; a hip fracture no; heart failure yes unless a cardiac
# operation (K40) was done.
DIAGNOSES = (
    ("J45.9", None, True),
    ("S72.0", None, False),
    ("I50.0", None, True),
    ("I50.0", "K40.1", False),
)


def _person(i: int, as_of: date) -> dict[str, object]:
    later = as_of == AS_OF[1]
    practice = ["G1", "G2", "G3"][(i + (1 if later and i % 11 == 0 else 0)) % 3]  # some move practice
    in_population = not (later and i % 13 == 0) and not (not later and i % 17 == 0)
    return {
        "person_id": f"p{i:03d}",
        "as_of": as_of,
        "age": 42,
        "sex": "F",
        "age_band": "40-44",
        "ethnicity": "A",
        "lsoa_code": "E01000001",
        "ethnic_group": "White",
        "imd_decile": 3,
        "imd_quintile": 2,
        "practice_code": practice,
        "pcn_code": PRACTICES[practice],
        "sub_icb_code": "S1",
        "icb_code": "I1",
        "region_code": "R1",
        "alive": True,
        "registered": in_population,
        "in_population": in_population,
    }


def tables() -> dict[str, pa.Table]:
    """Population, segments and event tables: events spread over 2022-2025, some outside every window."""
    population = [_person(i, d) for i in range(PEOPLE) for d in AS_OF]
    segment = [
        {
            "person_id": p["person_id"],
            "as_of": p["as_of"],
            "segment": SEGMENTS[(i + (p["as_of"] == AS_OF[1])) % 4],
            "need_tier": i % 11 + 1,
        }
        for i, p in ((int(str(p["person_id"])[1:]), p) for p in population)
        if p["in_population"]
    ]
    start = date(2022, 11, 1)
    episodes, diagnoses, procedures, attendances, appointments = [], [], [], [], []
    for k in range(700):
        person = f"p{(k * 7) % PEOPLE:03d}"
        day = start + timedelta(days=(k * 37) % 900)
        method = ("21", "22", "11", "2A", "31")[k % 5]
        episode = f"E{k}"
        episodes.append(
            {
                "person_id": person,
                "episode_id": episode,
                "admission_date": day,
                "discharge_date": day + timedelta(days=k % 4),
                "admission_method": method,
                "provider_code": "RXX",
                "cost": None,
                "spell_id": episode,  # as ingest stores it: here every episode is a stay of its own
            }
        )
        code, operation, _ = DIAGNOSES[k % len(DIAGNOSES)]
        diagnoses.append({"episode_id": episode, "position": 1, "icd10_code": code})
        if operation:
            procedures.append({"episode_id": episode, "position": 1, "opcs4_code": operation})
        attendances.append({"person_id": f"p{(k * 5) % PEOPLE:03d}", "arrival_date": day + timedelta(days=k % 9)})
        appointments.append(
            {"person_id": f"p{(k * 3) % PEOPLE:03d}", "appointment_date": day, "attended": None if k % 6 else False}
            if k % 4 == 0
            else {"person_id": f"p{(k * 3) % PEOPLE:03d}", "appointment_date": day, "attended": True}
        )
    return {
        "population": pa.Table.from_pylist(population),
        "segment": pa.Table.from_pylist(segment),
        "apc_episode": pa.Table.from_pylist(episodes),
        "apc_diagnosis": pa.Table.from_pylist(diagnoses),
        "apc_procedure": pa.Table.from_pylist(procedures),
        "ae_attendance": pa.Table.from_pylist(attendances),
        "op_appointment": pa.Table.from_pylist(appointments),
    }


def _snapshot(day: date) -> date | None:
    """The as_of of an event, by the rule written out: the first as_of on or after it within a year of it."""
    for as_of in sorted(AS_OF):
        if day <= as_of and day > as_of.replace(year=as_of.year - 1):
            return as_of
    return None


def reference(data: dict[str, pa.Table]) -> dict[tuple[object, ...], int]:
    """(level, area_code, as_of, month, segment, measure) -> value, counted row by row in Python."""
    people = {(p["person_id"], p["as_of"]): p for p in data["population"].to_pylist() if p["in_population"]}
    segments = {(s["person_id"], s["as_of"]): s["segment"] for s in data["segment"].to_pylist()}
    events: list[tuple[str, date, str, int]] = []
    for k, e in enumerate(data["apc_episode"].to_pylist()):
        if e["admission_method"] in ("21", "22", "2A"):
            nights = (e["discharge_date"] - e["admission_date"]).days
            events += [(e["person_id"], e["admission_date"], "emergency_admissions", 1)]
            events += [(e["person_id"], e["admission_date"], "emergency_bed_days", nights)]
            if DIAGNOSES[k % len(DIAGNOSES)][2]:
                events.append((e["person_id"], e["admission_date"], "acsc_emergency_admissions", 1))
        elif e["admission_method"] == "11":
            events.append((e["person_id"], e["admission_date"], "elective_admissions", 1))
    events += [(a["person_id"], a["arrival_date"], "ae_attendances", 1) for a in data["ae_attendance"].to_pylist()]
    events += [
        (a["person_id"], a["appointment_date"], "outpatient_attendances", 1)
        for a in data["op_appointment"].to_pylist()
        if a["attended"]
    ]
    out: Counter[tuple[object, ...]] = Counter()
    for person, day, measure, value in events:
        as_of = _snapshot(day)
        row = people.get((person, as_of)) if as_of else None
        if row is None:
            continue
        month = day.replace(day=1)
        areas = [("national", NATIONAL), *((lv, row[f"{lv}_code"]) for lv in ("region", "icb", "sub_icb", "pcn"))]
        areas.append(("practice", row["practice_code"]))
        for level, code in areas:
            for seg in ("all", segments[(person, as_of)]):
                out[(level, code, as_of, month, seg, measure)] += value
    return dict(out)


def run_monthly(tmp_path: Path, engine: str, data: dict[str, pa.Table]) -> pl.DataFrame:
    """The analytics stage on ``data``; its `agg_monthly`, sorted."""
    with building(store_path(tmp_path, engine), engine, start_from_existing=False) as eng:
        frames = {name: eng.frame(table) for name, table in data.items()}
        given = {name: frames.get(name) for name in ("practice", "activity", "register", "cohort_member")}
        context = RunContext(AS_OF, "planning", "test", eng)
        out = analytics({**frames, **given}, context)
        frame: pl.DataFrame = nw.to_native(out["agg_monthly"].collect(backend="polars"))
    return frame.sort(frame.columns, nulls_last=True)
