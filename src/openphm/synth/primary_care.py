"""The primary care record: consultations, diagnoses and reviews, readings, frailty deficits, pregnancies
(``gp_event``) and repeat prescriptions (``gp_medication``), consistent with each person's conditions.

Readings and reviews are recorded at consultations (they share the consultation's day), so the count of
days with a coded event stays at the national rate of GP appointments.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from openphm.synth import codes
from openphm.synth.conditions import CONDITION_DEFICITS, FRAILTY_DEFICITS, Health
from openphm.synth.people import NO_DATE, YEAR, People, Window
from openphm.synth.timeline import Exposure, attach, spread, uniform_days, within

Frame = dict[str, np.ndarray]
CARDIOMETABOLIC = (
    "hypertension",
    "diabetes",
    "chronic_kidney_disease",
    "coronary_heart_disease",
    "cerebrovascular_disease",
    "peripheral_vascular_disease",
    "heart_failure",
    "atrial_fibrillation",
)
SEVERE_CODED = (
    "incurable_cancer",
    "severe_heart_failure",
    "severe_copd",
    "liver_failure",
    "end_stage_renal_failure",
    "severe_interstitial_lung_disease",
    "neurological_organ_failure",
)
MEDICINE_TERMS = {
    "statins": "atorvastatin|simvastatin|rosuvastatin|pravastatin",
    "antihypertensives": "amlodipine|ramipril|lisinopril|losartan|bisoprolol|indapamide|candesartan|doxazosin|"
    "bendroflumethiazide|furosemide",
    "antidiabetic_drugs": "metformin|gliclazide|sitagliptin|dapagliflozin|empagliflozin|linagliptin",
    "antidepressants": "sertraline|citalopram|fluoxetine|mirtazapine|amitriptyline",
    "corticosteroids": "prednisolone",
    "atypical_antipsychotics": "olanzapine|quetiapine|risperidone|aripiprazole",
}
PARACETAMOL = ("322236009", "0407010H0AAAMAM")
"""dm+d VMP and BNF presentation code of paracetamol 500mg tablets (openphm's choice for the analgesics
list, which is defined by BNF section 4.7 and has no dm+d codes)."""


def _rows(
    person: np.ndarray, day: np.ndarray, code: np.ndarray, value: np.ndarray | None = None, unit: str | None = None
) -> Frame:
    n = len(person)
    return {
        "_person": person,
        "event_date": day,
        "snomed_code": code,
        "value": np.full(n, np.nan) if value is None else value,
        "unit": np.full(n, None, dtype=object) if unit is None else np.full(n, unit, dtype=object),
    }


def _concat(parts: list[Frame]) -> Frame:
    parts = [p for p in parts if len(p["_person"])]
    if not parts:
        return {}
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def condition_pool(name: str) -> np.ndarray:
    """SNOMED CT codes for a condition: its own, and its eFI deficit's where both lists hold them."""
    if name in ("type_1_diabetes", "type_2_diabetes"):
        return codes.pool(name, "snomed", ("diabetes", "efi_diabetes"))
    if name in CONDITION_DEFICITS:
        return codes.pool(name, "snomed", (CONDITION_DEFICITS[name],))
    return codes.pool(name, "snomed")


def coded_conditions(params: dict) -> list[str]:
    """Conditions recorded with a diagnosis code in primary care (diabetes by its type)."""
    names = [n for n, spec in params["conditions"].items() if spec.get("code", True) and n != "diabetes"]
    return [*names, "type_1_diabetes", "type_2_diabetes", *SEVERE_CODED]


def gp_events(
    p: People,
    h: Health,
    exp: Exposure,
    window: Window,
    rng: np.random.Generator,
    params: dict,
    visits: tuple[np.ndarray, np.ndarray],
) -> tuple[Frame, tuple[np.ndarray, np.ndarray]]:
    """Every gp_event row of the chunk, and the deliveries (person, day) for maternity admissions."""
    visit_person, visit_day = visits
    consult = codes.outside_conditions("snomed", codes.CONSULTATION_SNOMED)
    parts = [_rows(visit_person, visit_day, codes.pick(consult, rng, len(visit_person)))]
    everyone = np.arange(p.size)
    on_list = exp.last >= exp.first

    starts = np.searchsorted(visit_person, np.arange(p.size + 1))

    def at_visit(person: np.ndarray, day: np.ndarray, lower: np.ndarray) -> np.ndarray:
        return attach(rng, person, day, lower, starts, visit_day)

    review = params["observations"]["review_per_year"]
    for name in coded_conditions(params):
        onset = h.onset[name]
        who = np.flatnonzero(onset != NO_DATE)
        pool = condition_pool(name)
        parts.append(_rows(who, onset[who], codes.pick(pool, rng, len(who))))
        low = np.maximum(onset[who], exp.first[who])
        person, day = within(rng, who, low, exp.last[who], np.full(len(who), review))
        parts.append(
            _rows(
                person,
                at_visit(person, day, np.maximum(onset[person], exp.first[person])),
                codes.pick(pool, rng, len(person)),
            )
        )

    person, deficit, day = h.deficits
    for number, name in enumerate(FRAILTY_DEFICITS):
        chosen = deficit == number
        parts.append(_rows(person[chosen], day[chosen], codes.pick(codes.pool(name, "snomed"), rng, int(chosen.sum()))))

    parts += _readings(p, h, exp, window, rng, params["observations"], at_visit, on_list, everyone)
    pregnancy, deliveries = _pregnancies(p, exp, window, rng, params["pregnancy"])
    parts.append(pregnancy)
    return _concat(parts), deliveries


AtVisit = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""Moves (person, day) events to one of the person's consultation days not before a lower bound."""


def _readings(
    p: People,
    h: Health,
    exp: Exposure,
    window: Window,
    rng: np.random.Generator,
    params: dict,
    at_visit: AtVisit,
    on_list: np.ndarray,
    everyone: np.ndarray,
) -> list[Frame]:
    """Blood pressure, BMI, cholesterol, eGFR, HbA1c and smoking status, consistent with the conditions."""
    last_age = p.age_at(exp.last)
    cardiometabolic = np.any([h.onset[c] <= exp.last for c in CARDIOMETABOLIC], axis=0)
    group = np.select([cardiometabolic, last_age >= 40], [0, 1], 2)
    parts: list[Frame] = []

    def sample(rates: list[float], boost: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        rate = np.asarray(rates)[group] * (1 if boost is None else boost)
        who = everyone[on_list & (last_age >= 5)]
        person, day = within(rng, who, exp.first[who], exp.last[who], rate[who])
        return person, at_visit(person, day, exp.first[person])

    male = ~p.female
    hypertensive = h.onset["hypertension"] <= exp.last
    true_sbp = 108 + 0.4 * np.clip(p.age_at(window.last) - 20, 0, None) + 5 * male + rng.normal(0, 10, p.size)
    true_sbp = np.where(hypertensive, rng.normal(137, 11, p.size), true_sbp)
    true_sbp = np.where(h.undiagnosed_hypertension, rng.normal(152, 7, p.size), true_sbp)
    person, day = sample(params["bp_per_year"], np.where(h.undiagnosed_hypertension, 3.0, 1.0))
    sbp = np.round(true_sbp[person] + rng.normal(0, 7, len(person)))
    dbp = np.round(0.45 * sbp + 22 + rng.normal(0, 5, len(person)))
    parts.append(_rows(person, day, codes.pick(codes.pool("systolic_bp", "snomed"), rng, len(person)), sbp, "mmHg"))
    parts.append(_rows(person, day, codes.pick(codes.pool("diastolic_bp", "snomed"), rng, len(person)), dbp, "mmHg"))

    obese = h.onset["obesity"] != NO_DATE
    person, day = sample(params["bmi_per_year"])
    adults = on_list & obese & (last_age >= 18)
    person = np.concatenate([person, everyone[adults]])
    day = np.concatenate([day, uniform_days(rng, exp.first[adults], exp.last[adults])])
    child = (day - p.birth[person]) / YEAR < 18
    bmi = np.where(
        obese[person],
        30 + np.minimum(rng.exponential(4.5, len(person)), 30),
        np.clip(rng.normal(25.3, 2.8, len(person)), 17.5, 29.8),
    )
    bmi = np.round(np.where(child & ~obese[person], rng.uniform(14.5, 22, len(person)), bmi), 1)
    parts.append(_rows(person, day, codes.pick(codes.pool("bmi", "snomed"), rng, len(person)), bmi, "kg/m2"))

    statin_like = np.any([h.onset[c] <= exp.last for c in ("coronary_heart_disease", "diabetes")], axis=0)
    person, day = sample(params["lipids_per_year"])
    total = np.round(np.clip(np.where(statin_like[person], 4.2, 5.3) + rng.normal(0, 0.9, len(person)), 2.2, 9.5), 1)
    hdl = np.round(np.clip(np.where(p.female[person], 1.55, 1.25) + rng.normal(0, 0.3, len(person)), 0.6, 3.0), 2)
    parts.append(
        _rows(person, day, codes.pick(codes.pool("total_cholesterol", "snomed"), rng, len(person)), total, "mmol/L")
    )
    parts.append(
        _rows(person, day, codes.pick(codes.pool("hdl_cholesterol", "snomed"), rng, len(person)), hdl, "mmol/L")
    )
    half = rng.random(len(person)) < 0.5
    parts.append(
        _rows(
            person[half],
            day[half],
            codes.pick(codes.pool("cholesterol_hdl_ratio", "snomed"), rng, int(half.sum())),
            np.round(total[half] / hdl[half], 1),
        )
    )

    person, day = sample(params["egfr_per_year"], np.where(h.onset["chronic_kidney_disease"] != NO_DATE, 2.0, 1.0))
    years = (day - window.start) / YEAR
    egfr = h.egfr_start[person] - h.egfr_decline[person] * years + rng.normal(0, 2.5, len(person))
    egfr = np.round(np.clip(egfr, 4, 140))
    parts.append(_rows(person, day, codes.pick(codes.pool("egfr", "snomed"), rng, len(person)), egfr, "mL/min/1.73m2"))

    diabetic = h.onset["diabetes"] <= exp.last
    person, day = sample(params["hba1c_per_year"], np.where(diabetic, 1.5, 1.0))
    hba1c = np.round(
        np.where(diabetic[person], np.clip(rng.normal(58, 13, len(person)), 36, 130), rng.normal(37, 4, len(person)))
    )
    parts.append(_rows(person, day, codes.pick(codes.pool("hba1c", "snomed"), rng, len(person)), hba1c, "mmol/mol"))

    parts.append(_smoking(p, h, exp, rng, at_visit, on_list, last_age))
    return parts


def _smoking(
    p: People,
    h: Health,
    exp: Exposure,
    rng: np.random.Generator,
    at_visit: AtVisit,
    on_list: np.ndarray,
    last_age: np.ndarray,
) -> Frame:
    """A smoking status code for most people 16+ (current, with the amount for half; ex; never)."""
    current = h.onset["smoking_current"] != NO_DATE
    ex = h.onset["smoking_ex"] != NO_DATE
    who = np.flatnonzero(on_list & (last_age >= 16) & (rng.random(p.size) < 0.92))
    later, day = within(rng, who, exp.first[who], exp.last[who], np.full(len(who), 0.5))
    first_record = uniform_days(rng, np.maximum(exp.first[who] - 3 * 365, p.birth[who] + 16 * 365), exp.last[who])
    person = np.concatenate([who, later])
    day = np.concatenate([first_record, at_visit(later, day, exp.first[later])])
    amount = rng.choice(4, size=len(person), p=[0.5, 0.2, 0.2, 0.1])
    pools = [
        codes.pool("smoking_current", "snomed"),
        codes.pool("smoking_current_light", "snomed"),
        codes.pool("smoking_current_moderate", "snomed"),
        codes.pool("smoking_current_heavy", "snomed"),
    ]
    code = np.where(
        ex[person],
        codes.pick(codes.pool("smoking_ex", "snomed"), rng, len(person)),
        codes.pick(codes.pool("smoking_never", "snomed"), rng, len(person)),
    )
    for k, pool in enumerate(pools):
        chosen = current[person] & (amount == k)
        code[chosen] = codes.pick(pool, rng, int(chosen.sum()))
    return _rows(person, day, code)


def _pregnancies(
    p: People, exp: Exposure, window: Window, rng: np.random.Generator, params: dict
) -> tuple[Frame, tuple[np.ndarray, np.ndarray]]:
    """Conceptions of women 15-44 by age; antenatal codes, and a delivery 40 weeks on for most."""
    rates = np.asarray(params["rates"])
    band = np.clip(((p.age_at(exp.first) - 15) // 5).astype(np.int64), -1, len(rates))
    fertile = p.female & (band >= 0) & (band < len(rates)) & (exp.last >= exp.first)
    rate = np.where(fertile, rates[np.clip(band, 0, len(rates) - 1)], 0.0)
    everyone = np.arange(p.size)
    # Conceptions from 40 weeks before the window, so that deliveries happen from its first day.
    person, conceived = within(rng, everyone, exp.first - 280, exp.last, rate)
    antenatal = codes.pool("pregnancy", "snomed", term=r"antenatal|^pregnan|booking")
    rows = []
    for offset in (70, 160, 250):
        day = conceived + offset
        ok = (day >= exp.first[person]) & (day <= exp.last[person])
        rows.append(_rows(person[ok], day[ok], codes.pick(antenatal, rng, int(ok.sum()))))
    delivered = conceived + 280
    ok = (
        (rng.random(len(person)) < params["delivery_share"])
        & (delivered >= exp.first[person])
        & (delivered <= exp.last[person])
    )
    return _concat(rows) or _rows(person[:0], conceived[:0], antenatal[:0]), (person[ok], delivered[ok])


def gp_medication(p: People, h: Health, exp: Exposure, rng: np.random.Generator, params: dict) -> Frame:
    """Repeat prescriptions for people whose conditions call for them, every few weeks while on the list."""
    every = params["repeat_days"]
    parts: list[Frame] = []
    for medicine, spec in params.items():
        if medicine == "repeat_days":
            continue
        chance = np.zeros(p.size)
        begins = np.full(p.size, NO_DATE, dtype=np.int64)
        for condition, probability in spec["conditions"].items():
            if condition.startswith("age_"):
                since = p.birth + int(condition.removeprefix("age_")) * 365.25
                has, began = since <= exp.last, since.astype(np.int64)
            else:
                has, began = h.onset[condition] <= exp.last, h.onset[condition]
            chance = 1 - (1 - chance) * (1 - probability * has)
            begins = np.where(has, np.minimum(begins, began), begins)
        who = np.flatnonzero((rng.random(p.size) < chance) & (exp.last >= exp.first))
        products = rng.integers(1, spec["products"] + 1, len(who))
        person = spread(products)
        person = who[person]
        start = np.maximum(begins[person], exp.first[person]) + rng.integers(0, every, len(person))
        issues = np.clip((exp.last[person] - start) // every + 1, 0, None)
        row = spread(issues)
        offset = np.arange(len(row)) - np.repeat(np.cumsum(issues) - issues, issues)
        day = start[row] + offset * every
        if medicine == "analgesics":
            dmd = np.full(len(person), PARACETAMOL[0], dtype=object)
            bnf = np.full(len(row), PARACETAMOL[1], dtype=object)
        else:
            term = MEDICINE_TERMS.get(medicine)
            if medicine == "antidiabetic_drugs":
                insulin = h.onset["type_1_diabetes"][person] != NO_DATE
                dmd = np.where(
                    insulin,
                    codes.pick(codes.pool(medicine, "dmd", term="insulin"), rng, len(person)),
                    codes.pick(codes.pool(medicine, "dmd", term=term), rng, len(person)),
                )
            else:
                dmd = codes.pick(codes.pool(medicine, "dmd", term=term), rng, len(person))
            bnf = np.full(len(row), None, dtype=object)
        parts.append({"_person": person[row], "issue_date": day, "dmd_code": dmd[row], "bnf_code": bnf})
    return _concat(parts)
