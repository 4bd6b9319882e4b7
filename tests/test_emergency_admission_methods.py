"""One definition of an emergency admission, on every engine: methods 2A, 2B, 2D count; 2C and elective do not.

A person admitted by method 2A (another provider's emergency department) with an asthma primary diagnosis is an
emergency admission in the activity table and a member of the ACSC cohort; a planned home birth (2C) and a
planned admission (13) with the same diagnosis are neither. The activity table's recency columns, which the
acutely ill segment reads, are checked on each side of the 90-day window.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from openphm.ingest import ingest
from openphm.pipeline import run
from openphm.stages import by_name
from openphm.vocabulary import EMERGENCY_ADMISSION_METHODS
from tests.support.cohorts import NHS, WHO, people
from tests.support.sources import ENGINES, EXTRACT, KEY, read_table, store_path

Rows = dict[str, list[dict[str, object]]]
AS_OF = date(2024, 3, 31)
EPISODES = [  # (who, admitted, method, primary ICD-10)
    ("a", "2023-10-01", "2A", "J45.9"),  # another provider's A&E, asthma: emergency and ACSC
    ("b", "2023-10-01", "2C", "J45.9"),  # baby born at home as intended: neither
    ("c", "2023-10-01", "13", "J45.9"),  # planned: elective, not ACSC
    ("d", "2024-01-01", "2B", "S72.0"),  # emergency transfer 90 days before as_of (2024 is leap)
    ("e", "2023-12-31", "2D", "S72.0"),  # other emergency 91 days before
    ("f", "2012-10-01", "28", "J45.9"),  # the pre-2013 code, outside the window
]


def _tables() -> Rows:
    return {
        "person": people(*sorted({e[0] for e in EPISODES})),
        "apc_episode": [
            {
                "nhs_number": NHS[who],
                "episode_id": f"{who}1",
                "admission_date": when,
                "discharge_date": when,
                "admission_method": method,
            }
            for who, when, method, _ in EPISODES
        ],
        "apc_diagnosis": [{"episode_id": f"{who}1", "position": 1, "icd10_code": code} for who, _, _, code in EPISODES],
    }


def test_the_definition_is_the_data_dictionary_emergency_group_less_2c() -> None:
    assert set(EMERGENCY_ADMISSION_METHODS) == {"21", "22", "23", "24", "25", "28", "2A", "2B", "2D"}


@pytest.mark.parametrize("engine", ENGINES)
def test_2a_counts_2c_and_13_do_not(source: Callable[[Rows], Path], tmp_path: Path, engine: str) -> None:
    store = store_path(tmp_path, engine)
    ingest(source(_tables()), store, key=KEY, engine=engine, extract_date=EXTRACT)
    wanted = ("population", "register", "measures", "activity", "cohort")
    run(store, engine=engine, as_of=(AS_OF,), stages=[s for n, s in by_name().items() if n in wanted])

    activity = read_table(store, "activity", engine).with_columns(pl.col("person_id").replace_strict(WHO))
    rows = {r["person_id"]: r for r in activity.to_dicts()}
    counts = {w: (r["emergency_admissions"], r["elective_admissions"], r["other_admissions"]) for w, r in rows.items()}
    assert counts == {
        "a": (1, 0, 0),
        "b": (0, 0, 1),
        "c": (0, 1, 0),
        "d": (1, 0, 0),
        "e": (1, 0, 0),
        "f": (0, 0, 0),
    }
    recency = {w: r["days_since_emergency_admission"] for w, r in rows.items()}
    assert recency == {"a": 182, "b": None, "c": None, "d": 90, "e": 91, "f": None}
    assert all(r["days_since_ae_attendance"] is None for r in rows.values())  # no A&E table: not available

    members = read_table(store, "cohort_member", engine).filter(cohort="acsc_emergency_admissions")
    assert {WHO[p] for p in members["person_id"]} == {"a"}
