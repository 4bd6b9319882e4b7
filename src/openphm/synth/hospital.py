"""Secondary, community, mental health and social care activity of a chunk of people.

Counts come from the rate models in :mod:`openphm.synth.risk`; this module dates them and gives them
what the contract asks for: admissions with lengths of stay, ICD-10 diagnoses coherent with the person
(ambulatory-care-sensitive conditions of their long-term conditions, Hospital Frailty Risk Score codes for
the frail, secondary malignancy for incurable cancer), dialysis with OPCS-4 X40 codes, A&E acuity,
outpatient specialties, waiting lists, and long-term social care for older frail people.
"""

from __future__ import annotations

import numpy as np

from openphm.synth import codes
from openphm.synth.conditions import Health
from openphm.synth.people import DIED, NO_DATE, YEAR, People, Window
from openphm.synth.timeline import Exposure, spread, uniform_days, yearly_events

Frame = dict[str, np.ndarray]
ADMITTED_FOR = {
    "heart_failure": ("I500", "I501", "I509"),
    "copd": ("J440", "J441", "J449"),
    "asthma": ("J459", "J46"),
    "type_1_diabetes": ("E101", "E106", "E109"),
    "type_2_diabetes": ("E111", "E116", "E119"),
    "coronary_heart_disease": ("I200", "I209", "I214", "I219"),
    "atrial_fibrillation": ("I480", "I481", "I489"),
    "cerebrovascular_disease": ("I634", "I639", "G459"),
    "epilepsy": ("G409", "G41"),
    "dementia": ("F03", "F019", "F00"),
    "chronic_liver_disease": ("K703", "K746"),
    "incurable_cancer": ("C787", "C795", "C780"),
    "cancer": ("C189", "C349", "C679", "C64"),
    "serious_mental_illness": ("F209", "F319"),
    "sickle_cell_disease": ("D570",),
    "chronic_kidney_disease": ("N179",),
    "end_stage_renal_failure": ("N185",),
}
"""Condition -> primary diagnoses of its emergency admissions (ICD-10, ACSC where the condition has one)."""
EMERGENCY_METHODS = np.array(["21", "22", "23", "24", "25", "2A", "2B", "2D"], dtype=object)
EMERGENCY_SHARES = [0.69, 0.18, 0.01, 0.03, 0.005, 0.015, 0.02, 0.05]
"""Admission methods of emergency admissions and their shares (see docs/synth.md: A&E and GP from Cowling et al.
2014, HES 2010-11; the split of the remaining 13% between the other routes is openphm's assumption). 2C, a baby born
at home as intended, is not generated: births are the maternity episodes (31)."""
SECOND_EPISODE = 0.12
"""Share of emergency stays (discharged within the window) that continue under a second consultant: a spell of
two episodes. openphm's assumption, not a published figure: it exists so that counting episodes instead of
spells shows in the synthetic data."""
SPLIT_FROM_28 = np.array(["2A", "2B", "2D"], dtype=object)
METHOD_28_RETIRED = int(np.datetime64("2013-04-01", "D").astype(np.int64))
"""Day (from 1970-01-01) from which 28 was replaced by 2A-2D in the NHS Data Dictionary."""
TREATMENT_FUNCTIONS = np.array(
    [
        "100",
        "101",
        "110",
        "120",
        "130",
        "300",
        "301",
        "320",
        "330",
        "340",
        "361",
        "370",
        "400",
        "410",
        "420",
        "430",
        "502",
        "650",
        "800",
    ]
)
CLINIC_FOR = {
    "cancer": "370",
    "heart_failure": "320",
    "atrial_fibrillation": "320",
    "coronary_heart_disease": "320",
    "copd": "340",
    "chronic_kidney_disease": "361",
    "rheumatoid_arthritis": "410",
    "diabetes": "300",
    "osteoarthritis": "110",
}
SOCIAL_CARE = {
    "home_care": 0.55,
    "residential": 0.18,
    "nursing": 0.12,
    "direct_payment": 0.09,
    "day_care": 0.04,
    "other": 0.02,
}
WEEKLY_COST = {
    "home_care": 320,
    "residential": 900,
    "nursing": 1150,
    "direct_payment": 330,
    "day_care": 140,
    "other": 200,
}
COMMUNITY = np.array(
    ["district_nursing", "community_physiotherapy", "podiatry", "community_matron", "speech_and_language_therapy"]
)
MENTAL_HEALTH = np.array(
    [
        "community_mental_health_team",
        "talking_therapies",
        "crisis_resolution",
        "memory_service",
        "early_intervention_psychosis",
    ]
)


def _cost(rng: np.random.Generator, mean: np.ndarray, missing: float) -> np.ndarray:
    value = np.round(mean * rng.lognormal(0, 0.25, len(mean)), 2)
    return np.where(rng.random(len(mean)) < missing, np.nan, value)


def _ids(chunk: int, n: int) -> np.ndarray:
    """Identifiers unique across chunks (chunk number and sequence); the writer adds the table's prefix."""
    return chunk * 100_000_000 + np.arange(n, dtype=np.int64)


def admissions(
    p: People,
    h: Health,
    exp: Exposure,
    window: Window,
    rng: np.random.Generator,
    emergency: np.ndarray,
    elective_rate: np.ndarray,
    deliveries: tuple[np.ndarray, np.ndarray],
    chunk: int,
    missing: float,
) -> tuple[Frame, Frame, Frame, tuple[np.ndarray, np.ndarray]]:
    """apc_episode, apc_diagnosis, apc_procedure, and the (person, day) of admissions through A&E."""
    # Emergency: counts per person-year given; dates within the year on the list.
    cell = spread(emergency.ravel())
    em_person, em_year = np.divmod(cell, emergency.shape[1])
    em_day = uniform_days(rng, exp.year_first[em_person, em_year], exp.year_last[em_person, em_year])
    el_person, _, el_day = yearly_events(rng, elective_rate, exp)
    # Dialysis: most people with end-stage renal failure attend monthly (recorded as regular day cases).
    renal = np.flatnonzero((h.onset["end_stage_renal_failure"] != NO_DATE) & (rng.random(p.size) < 0.7))
    low = np.maximum(h.onset["end_stage_renal_failure"][renal], exp.first[renal])
    months = np.clip((exp.last[renal] - low) // 30 + 1, 0, None)
    row = spread(months)
    dia_person = renal[row]
    dia_day = low[row] + (np.arange(len(row)) - np.repeat(np.cumsum(months) - months, months)) * 30
    mat_person, mat_day = deliveries

    person = np.concatenate([em_person, el_person, dia_person, mat_person])
    day = np.concatenate([em_day, el_day, dia_day, mat_day]).astype(np.int64)
    kind = np.concatenate(
        [
            np.full(len(em_person), 0),
            np.full(len(el_person), 1),
            np.full(len(dia_person), 2),
            np.full(len(mat_person), 3),
        ]
    )
    n = len(person)
    age = (day - p.birth[person]) / YEAR
    method = np.select(
        [kind == 0, kind == 1, kind == 2],
        [
            rng.choice(EMERGENCY_METHODS, n, p=EMERGENCY_SHARES),
            rng.choice(np.array(["11", "12", "13"], dtype=object), n, p=[0.6, 0.3, 0.1]),
            np.full(n, "13", dtype=object),
        ],
        np.full(n, "31", dtype=object),
    )
    # Before April 2013 the routes that became 2A, 2B and 2D were all recorded as 28 ("other means").
    method = np.where((kind == 0) & (day < METHOD_28_RETIRED) & np.isin(method, SPLIT_FROM_28), "28", method)
    # Length of stay: emergency stays lengthen steeply with age and frailty; most electives are day cases.
    median = np.interp(age, [0, 45, 65, 75, 85], [0.7, 1.3, 2.5, 3.5, 4.5]) * (1 + 0.03 * h.frailty[person])
    stay = np.select(
        [kind == 0, kind == 1, kind == 2],
        [
            np.floor(median * rng.lognormal(0, 0.75, n)),
            np.where(rng.random(n) < 0.75, 0, np.floor(2.5 * rng.lognormal(0, 0.8, n))),
            np.zeros(n),
        ],
        np.floor(rng.uniform(0, 4, n)),
    ).astype(np.int64)
    discharge = day + stay
    ends = np.minimum(p.death[person], window.last)
    discharge = np.where(
        discharge > ends, np.where(p.death[person] <= window.last, p.death[person], NO_DATE), discharge
    )
    discharge = np.maximum(discharge, day)
    through_ae = (kind == 0) & (method == "21")
    # A change of consultant: some emergency stays go on under a second consultant from the first episode's
    # discharge day, at the same provider - one admission (spell) of two episodes. The second episode gets its own
    # diagnoses below. An admission through A&E is the stay's, so the A&E attendances it implies are unchanged.
    split = rng.spawn(1)[0]
    first = np.flatnonzero((kind == 0) & (discharge < ends) & (split.random(n) < SECOND_EPISODE))
    more = np.floor(median[first] * split.lognormal(0, 0.75, len(first))).astype(np.int64) + 1
    later = discharge[first] + more
    later = np.where(later > ends[first], np.where(p.death[person[first]] <= window.last, ends[first], NO_DATE), later)
    person, kind, method = (np.concatenate([a, a[first]]) for a in (person, kind, method))
    day = np.concatenate([day, discharge[first]])
    stay = np.concatenate([stay, more])
    discharge = np.concatenate([discharge, np.maximum(later, discharge[first])])
    n = len(person)
    base_cost = np.select(
        [kind == 0, kind == 1, kind == 2],
        [1700 + 350 * stay, np.where(stay == 0, 950, 2600 + 330 * stay), np.full(n, 190)],
        2400,
    )
    number = _ids(chunk, n)
    order = np.lexsort((day, person))
    episode = {
        "_person": person[order],
        "episode_id": number,
        "admission_date": day[order],
        "discharge_date": discharge[order],
        "admission_method": method[order],
        "provider_code": np.array([f"SYNT{k:02d}" for k in range(1, 11)], dtype=object)[p.practice[person[order]] % 10],
        "cost": _cost(rng, base_cost[order].astype(float), missing),
    }
    diagnosis = _diagnoses(p, h, rng, person[order], day[order], kind[order], number)
    procedure = _procedures(rng, person[order], kind[order], number)
    arrived = through_ae.nonzero()[0]
    return episode, diagnosis, procedure, (person[arrived], day[arrived])


def _diagnoses(
    p: People,
    h: Health,
    rng: np.random.Generator,
    person: np.ndarray,
    day: np.ndarray,
    kind: np.ndarray,
    episode: np.ndarray,
) -> Frame:
    """Primary diagnosis coherent with the person, then their long-term conditions and frailty codes."""
    n = len(person)
    age = (day - p.birth[person]) / YEAR
    related = list(ADMITTED_FOR)
    has = np.stack([h.onset[c][person] <= day for c in related], axis=1)
    key = rng.random(has.shape) * has
    choice = key.argmax(axis=1)
    use_condition = has.any(axis=1) & (rng.random(n) < 0.6)
    acute = codes.outside_conditions("icd10", codes.ACUTE_ICD10)
    frail_codes = codes.outside_conditions("icd10", codes.FRAIL_ICD10)
    frail = (age >= 65) & (h.frailty[person] >= 3)
    primary = codes.pick(acute, rng, n)
    primary = np.where(frail & (rng.random(n) < 0.35), codes.pick(frail_codes, rng, n), primary)
    for k, condition in enumerate(related):
        chosen = use_condition & (choice == k)
        primary[chosen] = codes.pick(np.array(ADMITTED_FOR[condition], dtype=object), rng, int(chosen.sum()))
    primary = np.where(kind == 1, codes.pick(codes.outside_conditions("icd10", codes.ELECTIVE_ICD10), rng, n), primary)
    cancer_care = (kind == 1) & (h.onset["cancer"][person] <= day) & (rng.random(n) < 0.4)
    primary = np.where(cancer_care, codes.pick(np.array(ADMITTED_FOR["cancer"], dtype=object), rng, n), primary)
    primary = np.where(kind == 2, "N185", primary)
    primary = np.where(kind == 3, codes.pick(np.array(codes.MATERNITY_ICD10, dtype=object), rng, n), primary)

    rows_episode = [np.arange(n)]
    rows_code = [primary]
    coded = kind != 2
    for condition in (*related, "hypertension", "osteoarthritis", "parkinsons_disease", "learning_disability"):
        pool = (
            codes.pool(condition, "icd10")
            if condition not in ADMITTED_FOR
            else np.array(ADMITTED_FOR[condition], dtype=object)
        )
        if not len(pool):
            continue
        chosen = np.flatnonzero(coded & (h.onset[condition][person] <= day) & (rng.random(n) < 0.75))
        rows_episode.append(chosen)
        rows_code.append(codes.pick(pool, rng, len(chosen)))
    extra = rng.poisson(np.where(frail & coded, 0.8 + 0.25 * h.frailty[person], 0.0))
    chosen = spread(np.minimum(extra, 8))
    rows_episode.append(chosen)
    rows_code.append(codes.pick(frail_codes, rng, len(chosen)))
    which = np.concatenate(rows_episode)
    code = np.concatenate(rows_code)
    # Positions: the primary first, then the others in random order, at most 20 per episode.
    order = np.lexsort((np.concatenate([np.zeros(n), rng.random(len(which) - n) + 1]), which))
    which, code = which[order], code[order]
    first = np.searchsorted(which, which)
    position = np.arange(len(which)) - first + 1
    keep = position <= 20
    which = which[keep]
    return {
        "_person": person[which],
        "episode_id": episode[which],
        "position": position[keep],
        "icd10_code": code[keep],
    }


def _procedures(rng: np.random.Generator, person: np.ndarray, kind: np.ndarray, episode: np.ndarray) -> Frame:
    listed = codes.pool("end_stage_renal_failure", "opcs4")
    dialysis = np.array([c for c in listed if c.startswith("X40") and len(c) == 4] or list(listed), dtype=object)
    elective = np.flatnonzero((kind == 1) & (rng.random(len(kind)) < 0.8))
    renal = np.flatnonzero(kind == 2)
    which = np.concatenate([elective, renal])
    code = np.concatenate(
        [
            codes.pick(np.array(codes.ELECTIVE_OPCS4, dtype=object), rng, len(elective)),
            codes.pick(dialysis, rng, len(renal)),
        ]
    )
    order = np.argsort(which, kind="stable")
    which = which[order]
    return {
        "_person": person[which],
        "episode_id": episode[which],
        "position": np.ones(len(which), dtype=np.int64),
        "opcs4_code": code[order],
    }


def ae_attendances(
    p: People,
    exp: Exposure,
    rng: np.random.Generator,
    rate: np.ndarray,
    admitted: tuple[np.ndarray, np.ndarray],
    chunk: int,
    missing: float,
) -> Frame:
    person, _, day = yearly_events(rng, rate, exp)
    person = np.concatenate([person, admitted[0]])
    day = np.concatenate([day, admitted[1]])
    n = len(person)
    acuity = np.where(
        np.arange(n) >= n - len(admitted[0]),
        rng.choice([1, 2, 3], n, p=[0.15, 0.45, 0.4]),
        rng.choice([2, 3, 4, 5], n, p=[0.15, 0.4, 0.35, 0.1]),
    )
    generic = codes.outside_conditions("snomed", codes.AE_SNOMED)
    unrecorded = rng.random(n) < 0.2
    diagnosis = codes.pick(generic, rng, n).astype(object)
    diagnosis[unrecorded] = None
    recorded = np.where(rng.random(n) < 0.05, np.nan, acuity)
    order = np.lexsort((day, person))
    return {
        "_person": person[order],
        "attendance_id": _ids(chunk, n),
        "arrival_date": day[order],
        "diagnosis_snomed": diagnosis[order],
        "acuity": recorded[order],
        "cost": _cost(rng, np.array([480.0, 420, 300, 200, 140, 250])[acuity[order] - 1], missing),
    }


def _clinic(h: Health, rng: np.random.Generator, person: np.ndarray, day: np.ndarray, age: np.ndarray) -> np.ndarray:
    n = len(person)
    clinic = TREATMENT_FUNCTIONS[rng.integers(0, len(TREATMENT_FUNCTIONS), n)]
    for condition, code in CLINIC_FOR.items():
        chosen = (h.onset[condition][person] <= day) & (rng.random(n) < 0.3)
        clinic[chosen] = code
    clinic[(age >= 75) & (rng.random(n) < 0.15)] = "430"
    clinic[age < 16] = "420"
    return clinic


def outpatients(
    p: People,
    h: Health,
    exp: Exposure,
    rng: np.random.Generator,
    rate: np.ndarray,
    dna: float,
    chunk: int,
    missing: float,
) -> Frame:
    """Attended appointments at the national rate, plus the ones not attended."""
    person, _, day = yearly_events(rng, rate / (1 - dna), exp)
    n = len(person)
    attended = rng.random(n) >= dna
    first = rng.random(n) < 0.3
    age = (day - p.birth[person]) / YEAR
    return {
        "_person": person,
        "appointment_id": _ids(chunk, n),
        "appointment_date": day,
        "attended": attended,
        "first_attendance": first,
        "treatment_function_code": _clinic(h, rng, person, day, age),
        "cost": _cost(rng, np.where(first, 210.0, 135.0), missing),
    }


def contacts(
    exp: Exposure, rng: np.random.Generator, rate: np.ndarray, services: np.ndarray, cost: float, missing: float
) -> Frame:
    person, _, day = yearly_events(rng, rate, exp)
    return {
        "_person": person,
        "contact_date": day,
        "service_type": services[rng.integers(0, len(services), len(person))].astype(object),
        "cost": _cost(rng, np.full(len(person), cost), missing),
    }


def waiting_lists(
    p: People, h: Health, exp: Exposure, window: Window, rng: np.random.Generator, rate: np.ndarray
) -> Frame:
    """Referral-to-treatment clock starts (from a year before the window), waits of a few months with a long tail."""
    earlier = Exposure(exp.first - 365, exp.last, exp.year_first - 365, exp.year_last - 365)
    person_a, _, day_a = yearly_events(
        rng, rate[:, :1], Exposure(earlier.first, earlier.last, earlier.year_first[:, :1], earlier.year_last[:, :1])
    )
    person_b, _, day_b = yearly_events(rng, rate, exp)
    person = np.concatenate([person_a, person_b])
    day = np.concatenate([day_a, day_b])
    n = len(person)
    wait = np.floor(105 * rng.lognormal(0, 0.8, n)).astype(np.int64)
    removal = day + wait
    ends = np.minimum(exp.last[person], window.last)
    removal = np.where(removal > ends, np.where(exp.last[person] < window.last, exp.last[person], NO_DATE), removal)
    removal = np.where(removal == NO_DATE, removal, np.maximum(removal, day))
    age = (day - p.birth[person]) / YEAR
    return {
        "_person": person,
        "referral_date": day,
        "removal_date": removal,
        "treatment_function_code": _clinic(h, rng, person, day, age),
        "provider_code": np.array([f"SYNT{k:02d}" for k in range(1, 11)], dtype=object)[p.practice[person] % 10],
    }


def social_care(
    p: People, h: Health, exp: Exposure, window: Window, rng: np.random.Generator, share: float, missing: float
) -> Frame:
    """Long-term support for older frail people (and some younger disabled adults)."""
    age = p.age_at(exp.last)
    weight = np.where(
        age >= 65, np.exp(0.25 * h.frailty + 1.2 * (h.onset["dementia"] != NO_DATE) + 0.05 * (age - 80)), 0.0
    )
    older = weight[age >= 65]
    low, high = 0.0, 1e6
    for _ in range(50):  # the scale at which the capped chances average ``share`` among people 65+
        mid = (low + high) / 2
        low, high = (mid, high) if older.size and np.minimum(older * mid, 1).mean() < share else (low, mid)
    weight = weight * low
    disabled = (
        (age >= 18)
        & (age < 65)
        & ((h.onset["learning_disability"] != NO_DATE) | (h.onset["physical_disability"] != NO_DATE))
    )
    chance = np.clip(weight, 0, 1) + 0.2 * disabled
    who = np.flatnonzero((rng.random(p.size) < chance) & (exp.last >= exp.first))
    kinds = np.array(list(SOCIAL_CARE), dtype=object)
    service = kinds[rng.choice(len(kinds), len(who), p=np.array(list(SOCIAL_CARE.values())))]
    start = exp.last[who] - np.floor(rng.exponential(2.5 * YEAR, len(who))).astype(np.int64)
    start = np.maximum(start, p.birth[who] + 18 * 365)
    died = p.group[who] == DIED
    end = np.where(
        died, p.death[who], np.where(rng.random(len(who)) < 0.2, uniform_days(rng, start, exp.last[who]), NO_DATE)
    )
    end = np.where(end == NO_DATE, end, np.maximum(end, start))
    cost = _cost(rng, np.array([WEEKLY_COST[k] for k in service], dtype=float), missing)
    return {"_person": who, "service_type": service, "start_date": start, "end_date": end, "weekly_cost": cost}
