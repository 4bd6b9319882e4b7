"""Each person's persistent rate of using each service, year by year.

A setting's yearly rate is ``level x age curve x exp(conditions + frailty + deprivation + personal
propensity + last year of life)``, times a gamma-distributed personal multiplier (mean 1) that stays with
the person. For emergency admissions each admission in the previous year raises this year's rate too, so
the past predicts the future as in real data - strongly, but not deterministically. The personal
propensity is partly the latent health propensity ``z`` behind the conditions. Levels are calibrated on
a fixed calibration population so that each setting meets its national rate per 1,000 person-years.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from openphm.synth.conditions import Health
from openphm.synth.people import DIED, People, Window
from openphm.synth.timeline import Exposure

AGE_KNOTS = np.array([0, 1, 5, 15, 25, 45, 65, 75, 85, 95], dtype=float)
LONG_TERM_CONDITIONS = (
    "alcohol_dependence",
    "asthma",
    "atrial_fibrillation",
    "bronchiectasis",
    "cancer",
    "cerebrovascular_disease",
    "chronic_kidney_disease",
    "chronic_liver_disease",
    "chronic_pain",
    "copd",
    "coronary_heart_disease",
    "cystic_fibrosis",
    "depression",
    "diabetes",
    "epilepsy",
    "heart_failure",
    "hypertension",
    "inflammatory_bowel_disease",
    "multiple_sclerosis",
    "osteoarthritis",
    "osteoporosis",
    "parkinsons_disease",
    "peripheral_vascular_disease",
    "pulmonary_heart_disease",
    "rheumatoid_arthritis",
    "sarcoidosis",
    "serious_mental_illness",
    "sickle_cell_disease",
)
"""The 28 long-term conditions of the Bridges to Health segmentation."""
SETTINGS = ("gp", "ae", "emergency", "elective", "outpatient", "community", "mental_health", "waiting_list")


@dataclass(frozen=True)
class State:
    """Person-year features the rate models use: (people, years) arrays at the middle of each year."""

    age: np.ndarray
    ltc: np.ndarray
    frailty: np.ndarray
    terminal: np.ndarray
    middle: np.ndarray
    """Middle day of each data year (years,)."""


def state(p: People, h: Health, window: Window) -> State:
    bounds = window.year_bounds()
    middle = (bounds[:-1] + bounds[1:]) // 2
    age = (middle[None, :] - p.birth[:, None]) / 365.25
    ltc = sum((h.onset[c][:, None] <= middle[None, :]).astype(np.int8) for c in LONG_TERM_CONDITIONS)
    person, _, day = h.deficits
    frailty = np.zeros((p.size, len(middle)))
    for y, mid in enumerate(middle):
        frailty[:, y] = np.bincount(person[day <= mid].astype(np.int64), minlength=p.size)
    to_death = p.death[:, None] - middle[None, :]
    terminal = ((p.group == DIED)[:, None] & (to_death >= -183) & (to_death < 365)).astype(np.float64)
    return State(age=age, ltc=ltc, frailty=frailty, terminal=terminal, middle=middle)


def relative_rates(p: People, h: Health, s: State, rng: np.random.Generator, models: dict) -> dict[str, np.ndarray]:
    """(people, years) rate of each setting before calibration to its national level."""
    shared = 0.6 * p.z + 0.8 * rng.standard_normal(p.size)
    out: dict[str, np.ndarray] = {}
    for setting in SETTINGS:
        m = models[setting]
        curve = np.interp(s.age, AGE_KNOTS, np.log(np.asarray(m["age"], dtype=float)))
        eta = curve + m["ltc"] * s.ltc + m["frailty"] * s.frailty + m["terminal"] * s.terminal
        eta = eta + (m["dep"] * p.deprivation + m["personal"] * shared)[:, None]
        if "female" in m:
            eta = eta + m["female"] * (p.female[:, None] & (s.age > 15) & (s.age < 60))
        for condition, weight in m["conditions"].items():
            eta = eta + weight * (h.onset[condition][:, None] <= s.middle[None, :])
        personal = rng.gamma(m["spread"], 1.0 / m["spread"], p.size)
        out[setting] = np.exp(eta) * personal[:, None]
    return out


def emergency_counts(rng: np.random.Generator, rate: np.ndarray, exp: Exposure, prior: float) -> np.ndarray:
    """(people, years) emergency admissions: Poisson, each year's rate raised by last year's admissions."""
    counts = np.zeros(rate.shape, dtype=np.int64)
    previous: np.ndarray = np.zeros(rate.shape[0])
    fraction = exp.year_fraction
    for y in range(rate.shape[1]):
        counts[:, y] = rng.poisson(rate[:, y] * fraction[:, y] * (1 + prior * np.minimum(previous, 4)))
        previous = counts[:, y]
    return counts


def levels(relative: dict[str, np.ndarray], exp: Exposure, rng: np.random.Generator, params: dict) -> dict[str, float]:
    """The factor that brings each setting to its national rate per 1,000 person-years."""
    fraction = exp.year_fraction
    person_years = fraction.sum()
    out: dict[str, float] = {}
    targets = dict(params)
    targets["ae"] = params["ae"] - params["emergency"] * params["ae_share_of_emergency"]
    targets["waiting_list"] = params["waiting_list_starts"]
    for setting, rate in relative.items():
        cap = params["models"][setting]["cap"]
        wanted = targets[setting] / 1000 * person_years
        level = wanted / (rate * fraction).sum()
        for _ in range(6):
            level *= wanted / (np.minimum(rate * level, cap) * fraction).sum()
        if setting == "emergency":
            prior = params["models"]["emergency"]["prior"]
            for _ in range(4):
                simulated = emergency_counts(rng, np.minimum(rate * level, cap), exp, prior).sum()
                level *= wanted / max(simulated, 1)
        out[setting] = level
    return out


def calibrated(relative: dict[str, np.ndarray], levels: dict[str, float], models: dict) -> dict[str, np.ndarray]:
    """Rates per year of each setting: the relative rate at its level, capped."""
    return {k: np.minimum(v * levels[k], models[k]["cap"]) for k, v in relative.items()}
