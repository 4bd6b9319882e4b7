"""The population stage: age at each as_of, ESP2013 age bands, ethnic groups, alive and registered flags."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from openphm.ingest import ingest
from openphm.pipeline import run
from openphm.population.stage import age_band
from openphm.stages import STAGES
from tests.support.sources import ALICE, BOB, CAROL, DAVE, ENGINES, EXTRACT, KEY, person, read_table, store_path

Rows = dict[str, list[dict[str, object]]]
AS_OF = (date(2023, 3, 31), date(2024, 3, 31))


@pytest.mark.parametrize(
    ("age", "band"), [(0, "00-04"), (4, "00-04"), (5, "05-09"), (94, "90-94"), (95, "95+"), (120, "95+")]
)
def test_age_bands_follow_esp2013(age: int, band: str) -> None:
    assert age_band(age) == band


@pytest.mark.parametrize("engine", [e for e in ENGINES if e != "spark"])
def test_population_rows(source: Callable[[Rows], Path], tmp_path: Path, engine: str) -> None:
    people = [
        person(ALICE, date_of_birth="1950-03-31", ethnicity="H"),  # stored as 1950-03-01: 73 on 2023-03-31
        person(BOB, date_of_birth="1950-04-15", ethnicity=None, date_of_death="2023-06-01"),  # 72, then dead
        person(CAROL, date_of_birth="2023-05-01", ethnicity="N"),  # born between the two dates
        person(DAVE, date_of_birth="1980-01-01", ethnicity="Z", registration_end="2023-12-31"),  # left
    ]
    store = store_path(tmp_path, engine)
    ingest(source({"person": people}), store, key=KEY, engine=engine, extract_date=EXTRACT)
    run(store, stages=STAGES, engine=engine, as_of=AS_OF)
    rows = read_table(store, "population", engine).sort("as_of", "age")
    got = rows.select("as_of", "age", "age_band", "ethnic_group", "alive", "registered", "in_population").rows()
    assert got == [
        (date(2023, 3, 31), 43, "40-44", "Not stated", True, True, True),
        (date(2023, 3, 31), 72, "70-74", "Not stated", True, True, True),
        (date(2023, 3, 31), 73, "70-74", "Asian", True, True, True),
        (date(2024, 3, 31), 0, "00-04", "Black", True, True, True),
        (date(2024, 3, 31), 44, "40-44", "Not stated", True, False, False),
        (date(2024, 3, 31), 73, "70-74", "Not stated", False, True, False),
        (date(2024, 3, 31), 74, "70-74", "Asian", True, True, True),
    ]
