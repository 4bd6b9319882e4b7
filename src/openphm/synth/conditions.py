"""Conditions, their onset and their progression.

Each condition is a logistic model of age (a shape given as prevalence at ages 0, 10, ... 90), sex,
deprivation, ethnic group, earlier conditions and a latent health propensity ``z`` shared by every
condition, which is what clusters conditions in the same people (multimorbidity). The intercept of each
model is calibrated once, on a fixed calibration population, so that the recorded prevalence among
people registered at the end of the window meets its target. Time since diagnosis is exponential
(truncated at the youngest onset age), so recent diagnoses - incidence - fall inside the window.
Progression: severe subsegments (incurable cancer, organ failure) develop in a share of people with
the parent condition; CKD has a falling eGFR; frailty deficits accumulate with age and propensity.
People who die in the window are given what they died of.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from openphm.synth.people import DIED, LIVING, NO_DATE, YEAR, People, Window

KNOTS = np.arange(0, 100, 10, dtype=float)
FRAILTY_DEFICITS = (
    "efi_falls",
    "efi_dizziness",
    "efi_dyspnoea",
    "efi_foot_problems",
    "efi_hearing_loss",
    "efi_housebound",
    "efi_mobility_problems",
    "efi_urinary_incontinence",
    "efi_vision_problems",
    "efi_weight_loss",
    "efi_sleep_disturbance",
    "efi_social_vulnerability",
    "efi_care_requirement",
    "efi_activity_limitation",
    "efi_anaemia",
    "efi_skin_ulcer",
    "efi_hypotension",
    "efi_peptic_ulcer",
    "efi_thyroid_disorders",
    "efi_urinary_system_disease",
    "efi_fragility_fracture",
    "efi_cognitive_problems",
    "efi_heart_valve_disease",
)
"""eFI deficits that are not implied by a modelled condition (the others come with their condition)."""
CONDITION_DEFICITS = {
    "hypertension": "efi_hypertension",
    "diabetes": "efi_diabetes",
    "chronic_kidney_disease": "efi_ckd",
    "coronary_heart_disease": "efi_chd",
    "atrial_fibrillation": "efi_atrial_fibrillation",
    "heart_failure": "efi_heart_failure",
    "cerebrovascular_disease": "efi_stroke_tia",
    "peripheral_vascular_disease": "efi_pvd",
    "copd": "efi_respiratory_disease",
    "asthma": "efi_respiratory_disease",
    "osteoporosis": "efi_osteoporosis",
    "parkinsons_disease": "efi_parkinsons",
    "dementia": "efi_cognitive_problems",
    "rheumatoid_arthritis": "efi_arthritis",
    "osteoarthritis": "efi_arthritis",
}
"""A condition and the eFI deficit its code also counts as (its code is drawn from both lists)."""
TERMINAL = {
    "incurable_cancer": ("cancer",),
    "severe_heart_failure": ("heart_failure",),
    "severe_copd": ("copd",),
    "end_stage_renal_failure": ("chronic_kidney_disease",),
    "liver_failure": ("chronic_liver_disease",),
    "neurological_organ_failure": (),
}


@dataclass
class Health:
    """Conditions of a chunk of people: onset day per condition (NO_DATE = never), and progression."""

    onset: dict[str, np.ndarray]
    egfr_start: np.ndarray
    """eGFR at the start of the window (mL/min/1.73m2)."""
    egfr_decline: np.ndarray
    """Fall in eGFR per year."""
    deficits: tuple[np.ndarray, np.ndarray, np.ndarray] = field(default=(np.array([]),) * 3)
    """(person, deficit number in FRAILTY_DEFICITS, day) of the frailty deficits."""
    frailty: np.ndarray = field(default_factory=lambda: np.array([]))
    """Number of frailty deficits (a frailty level for the activity models)."""
    cause: np.ndarray = field(default_factory=lambda: np.array([]))
    """What a person who died was dying of (a key of TERMINAL, 'frailty', 'other'; '' when alive)."""
    undiagnosed_hypertension: np.ndarray = field(default_factory=lambda: np.array([]))

    def ever(self, name: str) -> np.ndarray:
        return self.onset[name] != NO_DATE


def _shape(ages: np.ndarray, prevalence: list[float]) -> np.ndarray:
    p = np.clip(np.asarray(prevalence, dtype=float) / 100, 1e-6, 0.99)
    return np.interp(ages, KNOTS, np.log(p / (1 - p)))


def reference_day(p: People, window: Window) -> np.ndarray:
    """The day a person's conditions are drawn for: the end of the window, or death / leaving."""
    return np.where(p.group == LIVING, window.last, p.exit_day)


def linear_predictor(name: str, spec: dict, p: People, age: np.ndarray, drawn: dict[str, np.ndarray]) -> np.ndarray:
    """Log odds of ``name`` without its intercept."""
    eta = _shape(age, spec["age"]) + spec["female"] * p.female + spec["dep"] * p.deprivation + spec["latent"] * p.z
    for other, weight in (spec.get("with") or {}).items():
        eta = eta + weight * drawn[other]
    ethnic = spec.get("ethnic")
    if ethnic:
        for group, weight in ethnic.items():
            eta = eta + weight * (p.ethnic_group == group)
    return eta


def eligible(spec: dict, p: People, age: np.ndarray) -> np.ndarray:
    ok = age >= spec.get("onset", 0)
    if spec.get("sex") == "M":
        ok &= ~p.female
    return ok


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def calibrate(specs: dict, p: People, window: Window, rng: np.random.Generator) -> dict[str, float]:
    """Intercepts that make each condition's prevalence at the end of the window meet its target."""
    ref = reference_day(p, window)
    age = p.age_at(ref)
    drawn: dict[str, np.ndarray] = {}
    intercepts: dict[str, float] = {}
    for name, spec in specs.items():
        eta = linear_predictor(name, spec, p, age, drawn)
        ok = eligible(spec, p, age)
        factor = _exclusive(name, drawn)
        denominator = (p.group == LIVING) & (age >= spec.get("min_age", 0))
        target = spec["target"] / 100
        low, high = -30.0, 30.0
        for _ in range(60):
            mid = (low + high) / 2
            prevalence = (_sigmoid(mid + eta) * ok * factor)[denominator].mean()
            low, high = (mid, high) if prevalence < target else (low, mid)
        intercepts[name] = (low + high) / 2
        drawn[name] = (rng.random(p.size) < _sigmoid(intercepts[name] + eta) * ok * factor).astype(np.float64)
    return intercepts


def _exclusive(name: str, drawn: dict[str, np.ndarray]) -> np.ndarray | float:
    """Ex-smokers are not current smokers."""
    return 1.0 - drawn["smoking_current"] if name == "smoking_ex" else 1.0


def _onset(rng: np.random.Generator, p: People, ref: np.ndarray, has: np.ndarray, spec: dict) -> np.ndarray:
    earliest = p.birth + (spec.get("onset", 0) * YEAR)
    since = rng.exponential(spec["duration"] * YEAR, p.size)
    day = np.maximum(ref - since, earliest).astype(np.int64)
    return np.where(has, np.minimum(day, ref), NO_DATE)


def health(p: People, window: Window, rng: np.random.Generator, params: dict, intercepts: dict[str, float]) -> Health:
    """Draw every condition, its onset and its progression for a chunk of people."""
    specs = params["conditions"]
    ref = reference_day(p, window)
    age = p.age_at(ref)
    drawn: dict[str, np.ndarray] = {}
    onset: dict[str, np.ndarray] = {}
    died = p.group == DIED
    causes = params["population"]["death_causes"]
    cause = np.where(
        died, rng.choice(list(causes), size=p.size, p=np.array(list(causes.values())) / sum(causes.values())), ""
    )
    forced = {parent: np.zeros(p.size, bool) for parents in TERMINAL.values() for parent in parents}
    for kind, parents in TERMINAL.items():
        for parent in parents:
            forced[parent] |= cause == kind
    for name, spec in specs.items():
        eta = linear_predictor(name, spec, p, age, drawn)
        chance = _sigmoid(intercepts[name] + eta) * eligible(spec, p, age) * _exclusive(name, drawn)
        has = rng.random(p.size) < chance
        if name in forced:
            has |= forced[name] & (age >= spec.get("onset", 0))
        if name == "dementia":
            has |= (cause == "frailty") & (rng.random(p.size) < 0.45) & (age >= 60)
        drawn[name] = has.astype(np.float64)
        onset[name] = _onset(rng, p, ref, has, spec)
    _severity(p, ref, age, rng, params["severity"], onset, cause)
    _palliative(p, ref, rng, onset, cause)
    egfr_start, egfr_decline = _egfr(p, window, rng, params["ckd"], onset)
    h = Health(onset=onset, egfr_start=egfr_start, egfr_decline=egfr_decline, cause=cause)
    h.deficits, h.frailty = _frailty(p, ref, age, rng, params["frailty"], cause)
    h.undiagnosed_hypertension = (
        (age >= 40)
        & ~h.ever("hypertension")
        & (rng.random(p.size) < params["observations"]["undiagnosed_hypertension"])
    )
    return h


def _severity(
    p: People, ref: np.ndarray, age: np.ndarray, rng: np.random.Generator, specs: dict, onset: dict, cause: np.ndarray
) -> None:
    """Severe subsegments: a share of people with the parent condition, more often the old and unwell."""
    for name, spec in specs.items():
        parent = spec["parent"]
        weight = np.exp(spec["age_weight"] * (age - 70) + 0.4 * p.z)
        if name == "type_1_diabetes":
            began = (onset["diabetes"] - p.birth) / YEAR
            has = (onset["diabetes"] != NO_DATE) & (rng.random(p.size) < np.where(began < 30, 0.55, 0.025))
            onset[name] = np.where(has, onset["diabetes"], NO_DATE)
            continue
        base = onset[parent] != NO_DATE if parent else age >= 30
        has = base & (rng.random(p.size) < np.clip(spec["share"] * weight / np.exp(0.08), 0, 1))
        has |= cause == name
        start = onset[parent] if parent else np.maximum(p.birth + 30 * YEAR, ref - 10 * YEAR).astype(np.int64)
        # Severe disease comes late: within the last two years (the last year for the dying).
        recent = ref - rng.exponential(np.where(cause == name, 0.5, 1.5) * YEAR, p.size)
        day = np.clip(recent, start, ref).astype(np.int64)
        onset[name] = np.where(has, day, NO_DATE)
        if parent:
            onset[parent] = np.where(has, np.minimum(onset[parent], day), onset[parent])
    onset["type_2_diabetes"] = np.where(onset["type_1_diabetes"] == NO_DATE, onset["diabetes"], NO_DATE)


def _palliative(p: People, ref: np.ndarray, rng: np.random.Generator, onset: dict, cause: np.ndarray) -> None:
    """Most people dying of cancer, organ failure or frailty are on the palliative care register first."""
    dying = (cause != "") & (cause != "other") & (rng.random(p.size) < 0.6)
    day = (ref - rng.exponential(0.4 * YEAR, p.size)).astype(np.int64)
    onset["palliative_care"] = np.where(dying, np.minimum(onset["palliative_care"], day), onset["palliative_care"])


def _egfr(
    p: People, window: Window, rng: np.random.Generator, params: dict, onset: dict
) -> tuple[np.ndarray, np.ndarray]:
    """eGFR at the start of the window and its yearly fall; CKD 3-5 by stage, stage 5 for renal failure."""
    age = np.clip(p.age_at(window.start), 18, None)
    healthy = np.clip(rng.normal(115 - 0.75 * age, 11), 61, 130)
    stage = rng.choice(3, size=p.size, p=params["stage_shares"])
    low = np.array([45.0, 30.0, 15.0])[stage]
    ckd = np.where(stage == 2, low + rng.random(p.size) * 14, low + rng.random(p.size) * 15)
    ckd = np.where(onset["end_stage_renal_failure"] != NO_DATE, rng.uniform(7, 17, p.size), ckd)
    start = np.where(onset["chronic_kidney_disease"] != NO_DATE, ckd, healthy)
    lo, hi = params["decline_per_year"]
    decline = np.where(onset["chronic_kidney_disease"] != NO_DATE, rng.uniform(lo, hi, p.size), 0.8)
    return start, decline


def _frailty(
    p: People, ref: np.ndarray, age: np.ndarray, rng: np.random.Generator, params: dict, cause: np.ndarray
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """Frailty deficits of people 60+: a gamma-Poisson count rising with age and propensity."""
    mean = (params["base"] + params["per_year_over_65"] * np.clip(age - 65, 0, None)) * np.exp(params["latent"] * p.z)
    mean = np.where(age >= 60, mean, 0.0) + np.where(cause == "frailty", params["decedent_extra"], 0.0)
    shape = params["shape"]
    count = rng.poisson(rng.gamma(shape, mean / shape)).clip(0, len(FRAILTY_DEFICITS))
    who = np.flatnonzero(count)
    order = np.argsort(rng.random((len(who), len(FRAILTY_DEFICITS))), axis=1)
    keep = np.arange(len(FRAILTY_DEFICITS))[None, :] < count[who, None]
    person = np.broadcast_to(who[:, None], order.shape)[keep]
    deficit = order[keep]
    earliest = p.birth[person] + 60 * YEAR
    day = np.clip(ref[person] - rng.exponential(3 * YEAR, len(person)), earliest, ref[person]).astype(np.int64)
    return (person, deficit, day), count
