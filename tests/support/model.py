"""A small store for the admission-model tests."""

from __future__ import annotations

import math
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from openphm.ingest import ingest
from openphm.pipeline import run
from openphm.stages import by_name
from tests.support.sources import EXTRACT, KEY, store_path, write_source

AS_OF = (date(2022, 3, 31), date(2023, 3, 31), date(2024, 3, 31), date(2025, 3, 31))


LSOAS = ("E01000005", "E01000001", "E01000010", "E01000020", "E01000030", "E01000040")


ADMISSION_RISK = ("admission_risk_model", "admission_risk_score", "admission_risk")
"""The three stages that choose the model, score everyone and rank the scores."""


STAGES = ("population", "register", "activity", *ADMISSION_RISK)


def nhs_number(i: int) -> str | None:
    """A Modulus 11 valid number in the range reserved for testing, or None where no check digit exists."""
    digits = f"999{i:06d}"
    check = 11 - sum(int(d) * (10 - k) for k, d in enumerate(digits)) % 11
    if check == 10:
        return None
    return digits + str(0 if check == 11 else check)


def simulated_tables(people: int, seed: int = 7) -> dict[str, list[dict[str, object]]]:
    """People whose emergency admissions come from a latent frailty that also grows with age."""
    rng = np.random.default_rng(seed)
    numbers = [n for n in (nhs_number(i) for i in range(1, 2 * people)) if n][:people]
    persons, episodes = [], []
    start = date(2020, 4, 1)
    span = (EXTRACT - start).days
    for i, nhs in enumerate(numbers):
        age = int(rng.integers(0, 95))
        frailty = rng.normal() + (age - 50) / 30
        rate = math.exp(-2.6 + 0.9 * frailty)
        persons.append(
            {
                "nhs_number": nhs,
                "date_of_birth": f"{2020 - age}-{int(rng.integers(1, 13)):02d}-01",
                "sex": "F" if rng.random() < 0.5 else "M",
                "ethnicity": str(rng.choice(["A", "A", "A", "H", "M", "D", "R", "Z"])),
                "lsoa_code": LSOAS[i % len(LSOAS)],
                "practice_code": "Y90001",
                "registration_start": "2000-01-01",
                "registration_end": None,
                "date_of_death": None,
                "acg_png": None,
            }
        )
        for k in range(rng.poisson(rate * span / 365)):
            day = start + timedelta(days=int(rng.integers(0, span)))
            episodes.append(
                {
                    "nhs_number": nhs,
                    "episode_id": f"E{i}-{k}",
                    "admission_date": day.isoformat(),
                    "discharge_date": (day + timedelta(days=int(rng.integers(0, 6)))).isoformat(),
                    "admission_method": "21",
                    "provider_code": "RXX01",
                    "cost": None,
                }
            )
    return {"person": persons, "apc_episode": episodes}


def build_store(folder: Path, engine: str, people: int = 600) -> Path:
    """Ingest the simulated population and run the stages the model reads."""
    store = store_path(folder, engine)
    ingest(
        write_source(folder / "source", simulated_tables(people)), store, key=KEY, engine=engine, extract_date=EXTRACT
    )
    stages = [s for name, s in by_name().items() if name in STAGES]
    run(store, engine=engine, as_of=AS_OF, stages=stages)
    return store
