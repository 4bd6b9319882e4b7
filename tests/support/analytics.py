"""Running one analytics stage on a prepared store."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path

import narwhals as nw
import polars as pl
import pyarrow as pa

from openphm.analytics.aggregates import COUNTS
from openphm.analytics.stage import analytics
from openphm.engine import building
from openphm.pipeline import RunContext
from tests.support.sources import store_path

AS_OF = (date(2024, 3, 31), date(2025, 3, 31))


PRACTICES = {"G1": "P1", "G2": "P1", "G3": "P2"}


SEGMENTS = ("healthy", "long_term_conditions", "frailty_and_dementia", "acutely_ill")


PEOPLE = 240


def _person(i: int, as_of: date) -> dict[str, object]:
    """Person i at as_of: some die or leave by the second date, some join, some move from G1 to G3."""
    later = as_of == AS_OF[1]
    practice = ["G1", "G2", "G3"][i % 3]
    if later and i % 17 == 0 and practice == "G1":
        practice = "G3"  # moved
    alive = not (later and i % 23 == 0)
    registered = not (later and i % 29 == 0) and not (not later and i % 31 == 0)
    age = (i * 7) % 97
    decile = None if i % 41 == 0 else i % 10 + 1
    return {
        "person_id": f"p{i:03d}",
        "as_of": as_of,
        "age": age + (1 if later else 0),
        "age_band": "95+" if age >= 95 else f"{age // 5 * 5:02d}-{age // 5 * 5 + 4:02d}",
        "sex": ["F", "M", "F", "M", "U"][i % 5],
        "ethnicity": "A",
        "ethnic_group": ["White", "Asian", "Black", "Mixed", "Other", "Not stated"][i % 6],
        "imd_decile": decile,
        "imd_quintile": None if decile is None else (decile + 1) // 2,
        "lsoa_code": "E01000001",
        "practice_code": practice,
        "pcn_code": PRACTICES[practice],
        "sub_icb_code": "S1",
        "icb_code": "I1",
        "region_code": "R1",
        "alive": alive,
        "registered": registered,
        "in_population": alive and registered,
    }


def _index(row: dict[str, object]) -> int:
    return int(str(row["person_id"])[1:])


def _tables() -> dict[str, pa.Table]:
    population = [_person(i, d) for i in range(PEOPLE) for d in AS_OF]
    present = [p for p in population if p["in_population"]]
    segment = [
        {
            "person_id": p["person_id"],
            "as_of": p["as_of"],
            # Every fifth person moves on to the next segment by the second date.
            "segment": SEGMENTS[(_index(p) + (p["as_of"] == AS_OF[1] and _index(p) % 5 == 0)) % 4],
            "need_tier": _index(p) % 11 + 1,
            "maternal": _index(p) % 7 == 0,  # in every segment: a flag beside the segment
        }
        for p in present
    ]
    activity = []
    for p in present:
        i = _index(p)
        row: dict[str, object] = {"person_id": p["person_id"], "as_of": p["as_of"]}
        for k, c in enumerate(COUNTS):
            row[c] = (i + k) % 3
        row["social_care_weeks"] = (i % 4) * 2.5 / 7  # fractional weeks: a float, never rounded to a count
        for c in (
            "cost_gp",
            "cost_ae",
            "cost_emergency",
            "cost_elective",
            "cost_other_admissions",
            "cost_outpatient",
            "cost_community",
            "cost_mh",
            "cost_social_care",
        ):
            row[c] = float(i % 7) * 10.5
        row["cost_total"] = float(i % 7) * 10.5 * 9
        activity.append(row)
    register = [
        {"person_id": p["person_id"], "as_of": p["as_of"], "definition": d, "active": True}
        for p in present
        for d, every in (("diabetes", 4), ("asthma", 3), ("statins", 5), ("epilepsy", 53))
        if _index(p) % every == 0
    ]
    cohort = [
        {"cohort": "over_75s", "person_id": p["person_id"], "as_of": p["as_of"], "reasons": "age"}
        for p in present
        if int(p["age"]) >= 75  # type: ignore[call-overload]
    ]
    practice = [
        {
            "practice_code": code,
            "practice_name": f"Practice {code}",
            "pcn_code": pcn,
            "pcn_name": f"PCN {pcn}",
            "sub_icb_code": "S1",
            "sub_icb_name": "Sub-ICB S1",
            "icb_code": "I1",
            "icb_name": "ICB I1",
            "region_code": "R1",
            "region_name": "Region R1",
        }
        for code, pcn in PRACTICES.items()
    ]
    return {
        "population": pa.Table.from_pylist(population),
        "segment": pa.Table.from_pylist(segment),
        "activity": pa.Table.from_pylist(activity),
        "register": pa.Table.from_pylist(register),
        "cohort_member": pa.Table.from_pylist(cohort),
        "practice": pa.Table.from_pylist(practice),
    }


def run_stage(
    tmp_path: Path,
    engine: str,
    absent: tuple[str, ...] = (),
    edit: Callable[[dict[str, pa.Table]], dict[str, pa.Table]] | None = None,
) -> dict[str, pl.DataFrame]:
    """The analytics stage on the hand-made tables (``absent`` ones passed as None; ``edit`` changes them first,
    for a test that needs one particular shape of data), outputs as Polars frames."""
    data = _tables() if edit is None else edit(_tables())
    with building(store_path(tmp_path, engine), engine, start_from_existing=False) as eng:
        tables: Mapping[str, nw.LazyFrame | None] = {
            name: None if name in absent else eng.frame(table) for name, table in data.items()
        }
        context = RunContext(AS_OF, "planning", "test", eng)
        out = analytics(tables, context)
        frames = {name: nw.to_native(frame.collect(backend="polars")) for name, frame in out.items()}
    return {name: f.sort(f.columns, nulls_last=True) for name, f in frames.items()}
