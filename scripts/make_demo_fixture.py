"""Write the small demonstration fixture shipped in ``openphm/content/fixtures/demo``.

Maintenance script: ``python scripts/make_demo_fixture.py``. Deterministic (fixed seed). The people are
invented; NHS numbers come from the range 999 000 0000-999 999 9999 that is reserved for testing, and
practice and PCN codes are marked synthetic. A handful of rows break the contract on purpose, one per kind
of rule, so that a demo shows the quarantine at work. The synthetic-population issue replaces this with a
realistic generator; this fixture only has to exercise every table and rule.
"""

from __future__ import annotations

import csv
import gzip
import random
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src/openphm/content/fixtures/demo"
PEOPLE = 300
START, END = date(2021, 4, 1), date(2025, 3, 31)
CONTENT = ROOT / "src/openphm/content/codelists"
PREVALENCE = {
    "hypertension": 0.15,
    "depression": 0.12,
    "diabetes": 0.08,
    "asthma": 0.07,
    "chronic_kidney_disease": 0.04,
    "cancer": 0.04,
    "coronary_heart_disease": 0.03,
    "atrial_fibrillation": 0.02,
    "copd": 0.02,
    "heart_failure": 0.01,
    "dementia": 0.01,
    "serious_mental_illness": 0.01,
}
READINGS = {
    "bmi": (27, 5, "kg/m2"),
    "systolic_bp": (132, 16, "mmHg"),
    "diastolic_bp": (80, 10, "mmHg"),
    "egfr": (75, 20, "mL/min/1.73m2"),
    "hba1c": (42, 9, "mmol/mol"),
}
SMOKING = ["smoking_never", "smoking_never", "smoking_ex", "smoking_current"]
FALLBACK = {
    ("hypertension", "snomed"): "38341003",
    ("diabetes", "snomed"): "44054006",
    ("asthma", "snomed"): "195967001",
    ("bmi", "snomed"): "60621009",
    ("systolic_bp", "snomed"): "271649006",
    ("egfr", "snomed"): "1011481000000105",
    ("statins", "dmd"): "320000009",
    ("hypertension", "icd10"): "I10X",
}


def pick(rng: random.Random, definition: str, system: str) -> str:
    """A code of the shipped list (so the demo exercises the real lists), else a well-known stand-in."""
    path = CONTENT / definition / f"{system}.csv"
    if path.exists():
        with path.open(encoding="utf-8") as handle:
            codes = [row["code"] for row in csv.DictReader(handle)]
        if codes:
            return rng.choice(codes[: min(len(codes), 40)])
    return FALLBACK.get((definition, system), {"snomed": "195967001", "icd10": "I500", "dmd": "320000009"}[system])


def nhs_numbers(count: int) -> list[str]:
    """Modulus 11 valid numbers from the testing range, in order."""
    out: list[str] = []
    stem = 999_000_000
    while len(out) < count:
        digits = [int(d) for d in str(stem)]
        check = (11 - sum(d * (10 - i) for i, d in enumerate(digits)) % 11) % 11
        if check != 10:
            out.append(f"{stem}{check}")
        stem += 1
    return out


def day(rng: random.Random, start: date = START, end: date = END) -> date:
    return start + timedelta(days=rng.randrange((end - start).days + 1))


def write(name: str, header: list[str], rows: list[list[object]]) -> None:
    with (OUT / f"{name}.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(["" if v is None else v for v in row] for row in rows)


def main() -> None:
    rng = random.Random(20261122)
    OUT.mkdir(parents=True, exist_ok=True)
    with gzip.open(ROOT / "src/openphm/content/reference/lsoa_imd2019.csv.gz", "rt") as handle:
        lsoas = [row["lsoa_code"] for row in csv.DictReader(handle)]
    lsoas = rng.sample(lsoas, 40)
    practices = [f"Y9{n:04d}" for n in range(6)]
    numbers = nhs_numbers(PEOPLE + 1)
    stranger = numbers.pop()  # valid, but nobody's person row: for the unknown_person rule

    people = []
    for i, nhs in enumerate(numbers):
        born = date(1925, 1, 1) + timedelta(days=rng.randrange(365 * 99))
        died = day(rng) if rng.random() < 0.04 else None
        shown = f"{nhs[:3]} {nhs[3:6]} {nhs[6:]}" if i % 10 == 0 else nhs  # spaces are allowed
        people.append(
            [
                shown,
                born.isoformat(),
                rng.choice("FM"),
                rng.choice("AAAAAABCHJKMNRSZ"),
                rng.choice(lsoas),
                rng.choice(practices),
                "2000-01-01",
                None,
                died.isoformat() if died else None,
                None,
            ]
        )
    bad_person = [
        ["9990000001", "1950-01-01", "F", "A", lsoas[0], practices[0], None, None, None, None],  # invalid_nhs_number
        [people[1][0], "1950-01-01", "F", "A", lsoas[0], practices[0], None, None, None, None],  # duplicate_key
        [None, "1950-01-01", "F", "A", lsoas[0], practices[0], None, None, None, None],  # missing_value
    ]
    spare = nhs_numbers(PEOPLE + 12)[PEOPLE + 1 :]
    broken = [
        ("sex", 2, "X"),
        ("date_of_birth", 1, "1950-02-30"),
        ("date_of_birth", 1, "1890-06-01"),
        ("ethnicity", 3, "Q"),
        ("acg_png", 9, "12"),
        ("lsoa_code", 4, "NOT-AN-LSOA"),
        ("date_of_death", 8, "1900-01-01"),
        ("practice_code", 5, "??"),
    ]
    for (_column, index, value), nhs in zip(broken, spare, strict=False):
        row = [nhs, "1960-05-05", "M", "A", lsoas[1], practices[1], None, None, None, None]
        row[index] = value
        bad_person.append(row)
    write(
        "person",
        [
            "nhs_number",
            "date_of_birth",
            "sex",
            "ethnicity",
            "lsoa_code",
            "practice_code",
            "registration_start",
            "registration_end",
            "date_of_death",
            "acg_png",
        ],
        people + bad_person,
    )

    ids = [p[0] for p in people]
    write("opt_out", ["nhs_number"], [[n] for n in rng.sample(ids, 9)] + [["1234567890"]])

    events = []
    for nhs in ids:
        for condition, share in PREVALENCE.items():
            if rng.random() < share:
                for _ in range(rng.randint(1, 2)):
                    events.append(
                        [nhs, day(rng, date(2005, 1, 1)).isoformat(), pick(rng, condition, "snomed"), None, None]
                    )
        for measure, (mean, sd, unit) in READINGS.items():
            for _ in range(rng.randrange(0, 4)):
                events.append(
                    [nhs, day(rng).isoformat(), pick(rng, measure, "snomed"), round(rng.gauss(mean, sd), 1), unit]
                )
        events.append([nhs, day(rng).isoformat(), pick(rng, rng.choice(SMOKING), "snomed"), None, None])
    events += [
        [stranger, "2022-01-01", "38341003", None, None],  # unknown_person
        [ids[0], "2022-01-01", "not-a-code", None, None],  # invalid_format
        [ids[0], "2099-01-01", "38341003", None, None],  # date_in_future
        [ids[0], "2022-01-01", "60621009", "high", "kg/m2"],
    ]  # invalid_float
    write("gp_event", ["nhs_number", "event_date", "snomed_code", "value", "unit"], events)

    meds = [
        [n, day(rng).isoformat(), pick(rng, rng.choice(["statins", "antihypertensives"]), "dmd"), None]
        for n in ids
        for _ in range(rng.randrange(0, 4))
    ]
    write("gp_medication", ["nhs_number", "issue_date", "dmd_code", "bnf_code"], meds)

    episodes, diagnoses, procedures = [], [], []
    icd = [pick(rng, c, "icd10") for c in PREVALENCE for _ in range(2)] + ["N390", "R296", "J18.1", "S7200"]
    for i, nhs in enumerate(rng.sample(ids, 120)):
        admitted = day(rng)
        method = rng.choice(["11", "12", "21", "21", "21", "22", "28", "31", "81"])
        episode = f"EP{i:05d}"
        episodes.append(
            [
                nhs,
                episode,
                admitted.isoformat(),
                (admitted + timedelta(days=rng.randrange(0, 12))).isoformat(),
                method,
                "RXX01",
                round(rng.uniform(500, 6000), 2),
            ]
        )
        for position in range(1, rng.randrange(2, 5)):
            diagnoses.append([episode, position, rng.choice(icd)])
        if method.startswith("1"):
            procedures.append([episode, 1, rng.choice(["X402", "W37.1", "H22.9"])])
    episodes += [
        [ids[1], "EPBAD1", "2022-05-10", "2022-05-01", "21", "RXX01", 900],  # date_order
        [ids[1], "EPBAD2", "2022-05-10", "2022-05-11", "99", "RXX01", 900],  # invalid_code
        [ids[1], "EPBAD3", "2022-05-10", "2022-05-11", "21", "RXX01", -5],  # negative_cost
        [ids[2], "EP00000", "2022-05-10", "2022-05-11", "21", "RXX01", 900],
    ]  # duplicate_key
    diagnoses += [["EPNONE", 1, "I500"], ["EP00001", 9, "123"]]  # orphan_episode, invalid_format
    write(
        "apc_episode",
        ["nhs_number", "episode_id", "admission_date", "discharge_date", "admission_method", "provider_code", "cost"],
        episodes,
    )
    write("apc_diagnosis", ["episode_id", "position", "icd10_code"], diagnoses)
    write("apc_procedure", ["episode_id", "position", "opcs4_code"], procedures)

    ae = [
        [n, f"AE{i:05d}", day(rng).isoformat(), "22298006", rng.randint(1, 5), 250]
        for i, n in enumerate(rng.choices(ids, k=140))
    ]
    ae.append([ids[3], "AEBAD", "2022-01-01", None, 7, 250])  # out_of_range
    write("ae_attendance", ["nhs_number", "attendance_id", "arrival_date", "diagnosis_snomed", "acuity", "cost"], ae)

    op = [
        [
            n,
            f"OP{i:05d}",
            day(rng).isoformat(),
            rng.choice(["true", "true", "false"]),
            rng.choice(["true", "false"]),
            rng.choice(["100", "300", "320", "330"]),
            160,
        ]
        for i, n in enumerate(rng.choices(ids, k=600))
    ]
    op.append([ids[3], "OPBAD", "2022-01-01", "maybe", None, "300", 160])  # invalid_bool
    write(
        "op_appointment",
        [
            "nhs_number",
            "appointment_id",
            "appointment_date",
            "attended",
            "first_attendance",
            "treatment_function_code",
            "cost",
        ],
        op,
    )

    for name, services in (
        ("community_contact", ["district_nursing", "podiatry"]),
        ("mh_contact", ["community_mental_health", "talking_therapies"]),
    ):
        rows = [[n, day(rng).isoformat(), rng.choice(services), 80] for n in rng.choices(ids, k=150)]
        write(name, ["nhs_number", "contact_date", "service_type", "cost"], rows)

    care = [
        [n, rng.choice(["home_care", "residential", "nursing"]), day(rng).isoformat(), None, 700]
        for n in rng.sample(ids, 15)
    ]
    care.append([ids[4], "holiday", "2022-01-01", None, 700])  # invalid_code
    write("social_care_service", ["nhs_number", "service_type", "start_date", "end_date", "weekly_cost"], care)

    waits = [
        [n, day(rng).isoformat(), None, rng.choice(["100", "110", "130", "330"]), "RXX01"]
        for n in rng.choices(ids, k=60)
    ]
    waits.append([ids[5], "2023-01-10", "2023-01-01", "100", "RXX01"])  # date_order
    write(
        "waiting_list",
        ["nhs_number", "referral_date", "removal_date", "treatment_function_code", "provider_code"],
        waits,
    )

    write(
        "practice",
        [
            "practice_code",
            "practice_name",
            "pcn_code",
            "pcn_name",
            "sub_icb_code",
            "sub_icb_name",
            "icb_code",
            "icb_name",
            "region_code",
            "region_name",
        ],
        [
            [
                p,
                f"Synthetic practice {i + 1}",
                f"U9{i // 3:04d}",
                f"Synthetic PCN {i // 3 + 1}",
                "99X",
                "Synthetic sub-ICB",
                "QZZ",
                "Synthetic ICB",
                "Y99",
                "Synthetic region",
            ]
            for i, p in enumerate(practices)
        ],
    )
    print(f"fixture written to {OUT}")


if __name__ == "__main__":
    main()
