"""Crafted people for the segmentation tests, and a store built from them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from itertools import pairwise
from pathlib import Path

import narwhals as nw
import polars as pl
import pyarrow as pa

from openphm.ingest import ingest
from openphm.ingest.pseudonymise import KeyedHash
from openphm.options import RunOptions
from openphm.pipeline import RunContext, Stage, run
from openphm.pipeline.schema import Table
from openphm.stages import by_name
from openphm.tables import DECLARED
from tests.support.sources import EXTRACT, KEY, person, write_source

AS_OF = (date(2023, 3, 31), date(2024, 3, 31), date(2025, 3, 31))


LAST = AS_OF[-1]


EGFR = "1011481000000105"


CODES = {
    "dementia": "52448006",
    "diabetes": "44054006",
    "metastatic_cancer": "105041000119109",
    "heart_failure": "10335000",
    "learning_disability": "10007009",
    "asthma": "195967001",
    "ckd": "129151000119102",
    "pregnancy": "77386006",
    "palliative_care": "1025611000000105",
    "cancer": "363346000",
    "hypertension": "38341003",
    "epilepsy": "84757009",
    "atrial_fibrillation": "49436004",
    "copd": "13645005",
    "serious_mental_illness": "58214004",
    "depression": "35489007",
    "mrc_grade_5": "391126003",
    "home_oxygen": "243137006",
    "lymph_node_secondary": "188399000",  # secondary malignant neoplasm of paratracheal lymph nodes
    "secondary_arthritis": "202046009",  # arthritis secondary to malignancy
    "palliative_antineoplastic": "1255904006",  # administration of palliative antineoplastic agent
    "kidney_transplant": "719352000",  # kidney transplant recipient
    "miscarriage": "17369002",
    "contraception_failure": "102955006",
    "moderate_frailty": "925831000000107",
    "severe_frailty": "925861000000102",
}


RISK_DEFAULTS: dict[str, object] = {"hfrs": 0.0, "efi": 0.0, "cms": 0.0}


ACTIVITY_DEFAULTS: dict[str, object] = {
    "emergency_admissions": 0,
    "ae_attendances": 0,
    "mh_contacts": 0,
    "any_contact_24m": False,
    "days_since_emergency_admission": None,
}


TYPES = {
    "hfrs": pa.float64(),
    "efi": pa.float64(),
    "cms": pa.float64(),
    "emergency_admissions": pa.int64(),
    "ae_attendances": pa.int64(),
    "mh_contacts": pa.int64(),
    "any_contact_24m": pa.bool_(),
    "days_since_emergency_admission": pa.int64(),
}


@dataclass
class Crafted:
    """A person: when born, what is coded (condition name -> date), eGFR, crafted risk and activity.

    ``egfr`` is one reading on 2024-06-01; ``egfrs`` are (date, value) readings.

    ``admissions`` (date, HES admission method, ICD-10 codes), ``ae`` and ``mh`` (dates) are source rows for
    the real risk and activity stages; ``risk`` and ``activity`` are values for their stand-ins.
    """

    born: str = "1960-06-15"
    coded: dict[str, str] = field(default_factory=dict)
    egfr: float | None = None
    egfrs: tuple[tuple[str, float], ...] = ()
    risk: dict[str, object] = field(default_factory=dict)
    activity: dict[str, object] = field(default_factory=dict)
    person: dict[str, object] = field(default_factory=dict)
    admissions: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
    ae: tuple[str, ...] = ()
    mh: tuple[str, ...] = ()


CONTACT = {"any_contact_24m": True}
CKD4 = (("2024-01-15", 22.0), ("2024-06-01", 20.0))  # below 30 for 138 days: CKD stage 4


PEOPLE: dict[str, Crafted] = {
    # precedence pairs
    "dementia_diabetes": Crafted(coded={"dementia": "2024-05-01", "diabetes": "2024-05-01"}),
    "metastatic_heart_failure": Crafted(coded={"metastatic_cancer": "2024-05-01", "heart_failure": "2024-05-01"}),
    "ld_asthma": Crafted(coded={"learning_disability": "2010-01-01", "asthma": "2024-05-01"}, activity=CONTACT),
    "nothing": Crafted(),
    "ckd4_four_admissions": Crafted(
        coded={"ckd": "2024-05-01"}, egfrs=CKD4, activity={"emergency_admissions": 4, **CONTACT}
    ),
    "infant": Crafted(born="2024-09-01", activity=CONTACT),
    "ae_only": Crafted(born="1950-06-15", activity={"ae_attendances": 1, **CONTACT}),
    "emergency_90_days_ago": Crafted(activity={"emergency_admissions": 1, "days_since_emergency_admission": 90}),
    "emergency_91_days_ago": Crafted(activity={"emergency_admissions": 1, "days_since_emergency_admission": 91}),
    # one per rule
    "ckd4_three_admissions": Crafted(coded={"ckd": "2024-05-01"}, egfrs=CKD4, activity={"emergency_admissions": 3}),
    "ckd5_egfr": Crafted(egfrs=(("2024-02-01", 12.0), ("2024-06-01", 10.0))),  # below 15 for 121 days
    "ckd5_single_egfr": Crafted(egfr=10.0),  # one reading is not CKD (KDIGO: > 3 months)
    "pregnant": Crafted(born="1995-06-15", coded={"pregnancy": "2024-10-01"}, activity=CONTACT),
    "pregnant_asthma": Crafted(born="1995-06-15", coded={"pregnancy": "2024-10-01", "asthma": "2024-05-01"}),
    "pregnant_at_41": Crafted(born="1983-06-15", coded={"pregnancy": "2024-10-01"}),
    "pregnant_long_ago": Crafted(born="1995-06-15", coded={"pregnancy": "2023-06-01"}),
    # the maternal flag: a woman aged 13-50, pregnancy losses end it, contraception failure is no pregnancy
    "pregnant_at_13": Crafted(born="2011-12-15", coded={"pregnancy": "2024-10-01"}),
    "pregnant_at_12": Crafted(born="2012-06-15", coded={"pregnancy": "2024-10-01"}),
    "pregnant_at_50": Crafted(born="1974-09-15", coded={"pregnancy": "2024-10-01"}),
    "pregnant_at_51": Crafted(born="1973-09-15", coded={"pregnancy": "2024-10-01"}),
    "pregnancy_code_in_a_man": Crafted(born="1995-06-15", coded={"pregnancy": "2024-10-01"}, person={"sex": "M"}),
    "pregnant_then_miscarried": Crafted(
        born="1995-06-15", coded={"pregnancy": "2024-08-01", "miscarriage": "2024-10-01"}
    ),
    "miscarried_then_pregnant": Crafted(
        born="1995-06-15", coded={"miscarriage": "2024-06-01", "pregnancy": "2024-10-01"}
    ),
    "contraception_failure": Crafted(born="1995-06-15", coded={"contraception_failure": "2024-10-01"}),
    "high_frailty": Crafted(born="1950-01-15", risk={"hfrs": 15.1}),
    "intermediate_frailty": Crafted(born="1950-01-15", risk={"hfrs": 5.0}),
    "low_hfrs": Crafted(born="1950-01-15", risk={"hfrs": 4.9}),
    "frail_hfrs_under_65": Crafted(born="1964-06-15", risk={"hfrs": 20.0}),
    "palliative_cancer": Crafted(coded={"palliative_care": "2024-05-01", "cancer": "2024-05-01"}),
    "palliative_heart_failure_old_cancer": Crafted(
        coded={"cancer": "2021-01-10", "heart_failure": "2023-05-01", "palliative_care": "2024-05-01"}
    ),
    "palliative_only": Crafted(coded={"palliative_care": "2024-05-01"}),
    "four_ltc": Crafted(
        coded={"hypertension": "2024-05-01", "asthma": "2024-05-01", "epilepsy": "2024-05-01", "diabetes": "2024-05-01"}
    ),
    "cms_high": Crafted(coded={"copd": "2024-05-01", "atrial_fibrillation": "2024-05-01"}, risk={"cms": 2.8}),
    "copd_only": Crafted(coded={"copd": "2024-05-01"}, risk={"cms": 1.46}),
    "copd_mrc5": Crafted(coded={"copd": "2024-05-01", "mrc_grade_5": "2024-06-01"}),
    "copd_oxygen": Crafted(coded={"copd": "2024-05-01", "home_oxygen": "2024-06-01"}),
    "copd_oxygen_long_ago": Crafted(coded={"copd": "2022-05-01", "home_oxygen": "2023-06-01"}),
    "mrc5_without_copd": Crafted(coded={"mrc_grade_5": "2024-06-01"}),
    "smi": Crafted(coded={"serious_mental_illness": "2024-05-01"}),
    "depression_three_mh": Crafted(coded={"depression": "2024-05-01"}, activity={"mh_contacts": 3}),
    "depression_two_mh": Crafted(coded={"depression": "2024-05-01"}, activity={"mh_contacts": 2}),
    "two_ltc": Crafted(coded={"hypertension": "2024-05-01", "asthma": "2024-05-01"}),
    "adult_contact": Crafted(born="1985-06-15", activity=CONTACT),
    "child_contact": Crafted(born="2015-06-15", activity=CONTACT),
    "efi_high": Crafted(born="1950-06-15", risk={"efi": 0.25}),
    "efi_below": Crafted(born="1950-06-15", risk={"efi": 0.24}),
    # primary-care frailty: eFI bands (Clegg 2016) at 65+, and coded moderate/severe frailty in two years
    "efi_12_of_36": Crafted(born="1950-06-15", risk={"efi": 12 / 36}),
    "efi_13_of_36": Crafted(born="1950-06-15", risk={"efi": 13 / 36}),
    "efi_moderate_at_64": Crafted(born="1960-09-15", risk={"efi": 10 / 36}),
    "coded_moderate_frailty": Crafted(born="1950-06-15", coded={"moderate_frailty": "2024-05-01"}),
    "coded_severe_frailty": Crafted(born="1950-06-15", coded={"severe_frailty": "2024-05-01"}),
    "coded_frailty_long_ago": Crafted(born="1950-06-15", coded={"moderate_frailty": "2023-03-01"}),
    "acg": Crafted(person={"acg_png": 7}),
}


def nhs_number(i: int) -> str:
    """The i-th Modulus 11 valid NHS number of the test range 999 000 0000 - 999 999 9999."""
    n = 0
    while True:
        stem = f"999{i * 7 + n:06d}"
        check = 11 - sum(int(d) * w for d, w in zip(stem, range(10, 1, -1), strict=True)) % 11
        if check == 11:
            check = 0
        if check != 10:
            return stem + str(check)
        n += 1


def numbers(names: list[str]) -> dict[str, str]:
    return {name: nhs_number(i + 1) for i, name in enumerate(names)}


def pseudonyms(people: Mapping[str, str]) -> dict[str, str]:
    """name -> person_id in the store."""
    names = list(people)
    return dict(zip(names, KeyedHash(KEY)([people[n] for n in names]), strict=True))


def crafted_stage(table: str, values: Mapping[str, Mapping[str, object]], defaults: Mapping[str, object]) -> Stage:
    """A stand-in for the stage writing ``table``: the crafted values per person_id, defaults for everyone else."""

    def compute(tables: Mapping[str, nw.LazyFrame | None], context: RunContext) -> Mapping[str, nw.LazyFrame]:
        population = tables["population"]
        assert population is not None
        ids = sorted(values)
        columns = {"person_id": pa.array(ids, pa.string())}
        for column, default in defaults.items():
            columns[column] = pa.array([values[i].get(column, default) for i in ids], TYPES[column])
        crafted = context.engine.frame(pa.table(columns))
        frame = (
            population.select("person_id", "as_of")
            .join(crafted, on="person_id", how="left")
            .with_columns(*[nw.col(c).fill_null(nw.lit(v)) for c, v in defaults.items()])
        )
        return {table: frame}

    crafted = ("person_id", "as_of", *defaults)
    declared = Table(table, "person x as_of", tuple(c for c in DECLARED[table].columns if c.name in crafted))
    return Stage(f"crafted_{table}", ("population",), (declared,), compute)


def source_tables(people: Mapping[str, Crafted], nhs: Mapping[str, str]) -> dict[str, list[dict[str, object]]]:
    persons, events = [], []
    for name, p in people.items():
        persons.append(person(nhs[name], **{"date_of_birth": p.born, "registration_start": p.born, **p.person}))
        for condition, when in p.coded.items():
            events.append(
                {
                    "nhs_number": nhs[name],
                    "event_date": when,
                    "snomed_code": CODES[condition],
                    "value": None,
                    "unit": None,
                }
            )
        readings = ((("2024-06-01", p.egfr),) if p.egfr is not None else ()) + p.egfrs
        for when, value in readings:
            events.append(
                {"nhs_number": nhs[name], "event_date": when, "snomed_code": EGFR, "value": value, "unit": None}
            )
    episodes, diagnoses, attendances, contacts = [], [], [], []
    for name, p in people.items():
        for i, (when, method, codes) in enumerate(p.admissions):
            episode = f"{name}-{i}"
            episodes.append(
                {
                    "nhs_number": nhs[name],
                    "episode_id": episode,
                    "admission_date": when,
                    "discharge_date": when,
                    "admission_method": method,
                }
            )
            diagnoses += [{"episode_id": episode, "position": k + 1, "icd10_code": c} for k, c in enumerate(codes)]
        attendances += [
            {"nhs_number": nhs[name], "attendance_id": f"{name}-{i}", "arrival_date": when}
            for i, when in enumerate(p.ae)
        ]
        contacts += [{"nhs_number": nhs[name], "contact_date": when, "service_type": "adult"} for when in p.mh]
    tables: dict[str, list[dict[str, object]]] = {"person": persons}
    for table, rows in (
        ("gp_event", events),
        ("apc_episode", episodes),
        ("apc_diagnosis", diagnoses),
        ("ae_attendance", attendances),
        ("mh_contact", contacts),
    ):
        if rows:
            tables[table] = rows
    return tables


def build(
    folder: Path,
    store: Path,
    engine: str,
    people: Mapping[str, Crafted] = PEOPLE,
    *,
    options: RunOptions | None = None,
    upstream: bool = False,
) -> dict[str, str]:
    """Ingest ``people`` and run the pipeline up to segments; returns name -> person_id.

    ``upstream``: run the real risk and activity stages instead of the stand-ins with crafted values.
    """
    nhs = numbers(list(people))
    write_source(folder, source_tables(people, nhs))
    ingest(folder, store, key=KEY, engine=engine, extract_date=EXTRACT)
    ids = pseudonyms(nhs)
    wanted = {"population", "register", "measures", "segment", "segment_transition"}
    if upstream:
        wanted |= {"risk", "activity"}
    stages = [s for name, s in by_name().items() if name in wanted]
    if not upstream:
        stages += [
            crafted_stage("risk", {ids[n]: p.risk for n, p in people.items()}, RISK_DEFAULTS),
            crafted_stage("activity", {ids[n]: p.activity for n, p in people.items()}, ACTIVITY_DEFAULTS),
        ]
    run(store, engine=engine, as_of=AS_OF, stages=stages, options=options)
    return ids


def assert_flows_add_up(flows: pl.DataFrame, population: pl.DataFrame, dates: list[date]) -> None:
    sizes = dict(population.filter("in_population").group_by("as_of").len().iter_rows())
    for start, end in pairwise(dates):
        pair = flows.filter(from_as_of=start, to_as_of=end)
        assert pair["people"].min() > 0
        assert pair.filter(pl.col("from_segment") != "joined")["people"].sum() == sizes[start]
        assert pair.filter(~pl.col("to_segment").is_in(["died", "left"]))["people"].sum() == sizes[end]
    assert set(flows["from_as_of"]) == set(dates[:-1])
