"""Planted contract violations, so that a demonstration exercises every quarantine rule of the ingest.

Each planted row is a copy of a real row of a person who has not opted out, with one value broken, added
to the end of the chunk. The original stays, so nothing else changes: no other row is orphaned by a
planted one. Copies of keyed rows get a new key (except the planted duplicates), and copies of diagnosis
or procedure rows a new position, so each planted row is quarantined once and every real row is loaded.
Every kind of violation a table can have is planted in every chunk (at least one row of each), more at
higher error rates.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pyarrow as pa

ID = "__id__"
"""Stands for the table's identifier column (nhs_number or person_id)."""
STRANGER = "__stranger__"
"""Stands for a valid identifier of nobody in the person table (unknown_person)."""
INVALID_NHS = "__invalid_nhs__"
"""Stands for the row's NHS number with its check digit broken."""
VALID_NHS = "__valid_nhs__"
"""Stands for a valid NHS number given as a person_id (person_id_is_nhs_number)."""
FUTURE = "__future__"


@dataclass(frozen=True)
class Violation:
    reason: str
    column: str | None
    value: str | None


V = Violation
_PERSON_LEVEL_ID = {
    "nhs_number": V("invalid_nhs_number", ID, INVALID_NHS),
    "person_id": V("person_id_is_nhs_number", ID, VALID_NHS),
}
VIOLATIONS: dict[str, tuple[Violation, ...]] = {
    "person": (
        V("missing_value", "date_of_birth", None),
        V("invalid_date", "date_of_birth", "1950-02-30"),
        V("date_before_1900", "date_of_birth", "1899-12-01"),
        V("date_in_future", "date_of_death", FUTURE),
        V("invalid_code", "sex", "X"),
        V("invalid_code", "ethnicity", "Q"),
        V("invalid_format", "lsoa_code", "E0ABC"),
        V("invalid_format", "practice_code", "??"),
        V("invalid_int", "acg_png", "high"),
        V("out_of_range", "acg_png", "12"),
        V("date_order", "registration_end", "1900-06-01"),
        V("duplicate_key", None, None),
        V("missing_value", ID, None),
    ),
    "opt_out": (V("missing_value", ID, None),),
    "gp_event": (
        V("missing_value", "event_date", None),
        V("invalid_date", "event_date", "2022-13-01"),
        V("date_before_1900", "event_date", "1899-01-01"),
        V("date_in_future", "event_date", FUTURE),
        V("invalid_format", "snomed_code", "12AB"),
        V("invalid_float", "value", "high"),
        V("unknown_person", ID, STRANGER),
    ),
    "gp_medication": (
        V("invalid_format", "dmd_code", "abc"),
        V("invalid_format", "bnf_code", "04-07"),
        V("missing_value", "dmd_code", None),
        V("date_in_future", "issue_date", FUTURE),
        V("unknown_person", ID, STRANGER),
    ),
    "apc_episode": (
        V("date_order", "discharge_date", "1950-01-01"),
        V("invalid_code", "admission_method", "97"),
        V("negative_cost", "cost", "-120.5"),
        V("invalid_float", "cost", "n/a"),
        V("duplicate_key", None, None),
        V("date_in_future", "admission_date", FUTURE),
        V("unknown_person", ID, STRANGER),
    ),
    "apc_diagnosis": (
        V("orphan_episode", "episode_id", "EMISSING"),
        V("invalid_format", "icd10_code", "123"),
        V("out_of_range", "position", "0"),
        V("invalid_int", "position", "one"),
        V("duplicate_key", None, None),
        V("missing_value", "icd10_code", None),
    ),
    "apc_procedure": (
        V("invalid_format", "opcs4_code", "XX"),
        V("orphan_episode", "episode_id", "EMISSING"),
        V("duplicate_key", None, None),
    ),
    "ae_attendance": (
        V("out_of_range", "acuity", "7"),
        V("invalid_int", "acuity", "2.5"),
        V("negative_cost", "cost", "-1"),
        V("invalid_format", "diagnosis_snomed", "abc"),
        V("duplicate_key", None, None),
        V("unknown_person", ID, STRANGER),
    ),
    "op_appointment": (
        V("invalid_bool", "attended", "maybe"),
        V("invalid_format", "treatment_function_code", "1234"),
        V("missing_value", "attended", None),
        V("duplicate_key", None, None),
        V("negative_cost", "cost", "-160"),
    ),
    "community_contact": (
        V("negative_cost", "cost", "-80"),
        V("missing_value", "service_type", None),
        V("date_in_future", "contact_date", FUTURE),
        V("unknown_person", ID, STRANGER),
    ),
    "mh_contact": (
        V("negative_cost", "cost", "-80"),
        V("missing_value", "service_type", None),
        V("invalid_date", "contact_date", "2023-02-29"),
        V("unknown_person", ID, STRANGER),
    ),
    "social_care_service": (
        V("invalid_code", "service_type", "holiday"),
        V("date_order", "end_date", "1950-01-01"),
        V("negative_cost", "weekly_cost", "-700"),
        V("unknown_person", ID, STRANGER),
    ),
    "waiting_list": (
        V("date_order", "removal_date", "1950-01-01"),
        V("invalid_format", "treatment_function_code", "12"),
        V("missing_value", "treatment_function_code", None),
        V("unknown_person", ID, STRANGER),
    ),
}
KEYS = {"apc_episode": "episode_id", "ae_attendance": "attendance_id", "op_appointment": "appointment_id"}
CHILDREN = ("apc_diagnosis", "apc_procedure")


def violations(table: str, id_column: str) -> tuple[Violation, ...]:
    """The violations planted in ``table`` when people are identified by ``id_column``."""
    found = VIOLATIONS.get(table, ())
    if table in ("person", "opt_out"):
        found = (*found, _PERSON_LEVEL_ID[id_column])
    return found


def _broken_nhs(text: str | None) -> str | None:
    if text is None:
        return None
    return text[:-1] + str((int(text[-1]) + 1) % 10)


def plant(
    table: str,
    clean: pa.Table,
    eligible: np.ndarray,
    rate: float,
    rng: np.random.Generator,
    *,
    id_column: str,
    strangers: list[str],
    valid_nhs: list[str],
    extract: date,
) -> tuple[pa.Table, Counter]:
    """``clean`` (every column text) with planted rows appended, and the count planted per reason."""
    kinds = violations(table, id_column)
    rows = np.flatnonzero(eligible)
    if not kinds or rate <= 0 or len(rows) == 0:
        return clean, Counter()
    if table in CHILDREN:
        # One planted row per episode at most, so that the new positions cannot collide.
        episodes = np.asarray(clean["episode_id"].take(pa.array(rows)).to_numpy(zero_copy_only=False))
        _, first = np.unique(episodes, return_index=True)
        rows = rows[np.sort(first)]
    count = min(max(len(kinds), round(rate * clean.num_rows)), len(rows))
    base = np.sort(rng.choice(rows, size=count, replace=False))
    copies = clean.take(pa.array(base)).to_pylist()
    planted: Counter = Counter()
    for i, row in enumerate(copies):
        kind = kinds[i % len(kinds)]
        if kind.reason != "duplicate_key":
            if table in KEYS:
                row[KEYS[table]] = f"{row[KEYS[table]]}P"
            if table in CHILDREN:
                row["position"] = "98"
        if kind.column is not None:
            column = id_column if kind.column == ID else kind.column
            value = kind.value
            if value == FUTURE:
                value = (extract + timedelta(days=int(rng.integers(1, 400)))).isoformat()
            elif value == STRANGER:
                value = strangers[i % len(strangers)]
            elif value == INVALID_NHS:
                value = _broken_nhs(row[column])
            elif value == VALID_NHS:
                value = valid_nhs[i % len(valid_nhs)]
            elif value == "EMISSING":
                value = f"EMISSING{i}"
            row[column] = value
        planted[kind.reason] += 1
    bad = pa.Table.from_pylist(copies, schema=clean.schema)
    return pa.concat_tables([clean, bad]), planted
