"""One case per quarantine rule: the row that breaks it and the reason it gets."""

from __future__ import annotations

from tests.support.sources import ALICE, BOB, CAROL, person

Rows = dict[str, list[dict[str, object]]]


def event(nhs: str = ALICE, **overrides: object) -> dict[str, object]:
    return {
        "nhs_number": nhs,
        "event_date": "2023-01-01",
        "snomed_code": "38341003",
        "value": None,
        "unit": None,
        **overrides,
    }


def episode(episode_id: str = "E1", **overrides: object) -> dict[str, object]:
    return {
        "nhs_number": ALICE,
        "episode_id": episode_id,
        "admission_date": "2023-01-01",
        "discharge_date": "2023-01-05",
        "admission_method": "21",
        "provider_code": "RXX",
        "cost": 1000,
        **overrides,
    }


def diagnosis(episode_id: str = "E1", **overrides: object) -> dict[str, object]:
    return {"episode_id": episode_id, "position": 1, "icd10_code": "I50.0", **overrides}


def good_people(*extra: dict[str, object]) -> list[dict[str, object]]:
    return [person(ALICE), person(BOB), *extra]


# (id, tables, table with the bad row, its 1-based row number, column, reason)
CASES: list[tuple[str, Rows, str, int, str, str]] = [
    (
        "nhs-number-check-digit",
        {"person": good_people(person("9990000019"))},
        "person",
        3,
        "nhs_number",
        "invalid_nhs_number",
    ),
    (
        "nhs-number-letters",
        {"person": good_people(person("99900A0018"))},
        "person",
        3,
        "nhs_number",
        "invalid_nhs_number",
    ),
    ("nhs-number-missing", {"person": good_people(person(None))}, "person", 3, "nhs_number", "missing_value"),
    ("person-duplicate", {"person": good_people(person(ALICE, sex="M"))}, "person", 3, "person_id", "duplicate_key"),
    ("sex-unknown-code", {"person": good_people(person(CAROL, sex="X"))}, "person", 3, "sex", "invalid_code"),
    ("sex-missing", {"person": good_people(person(CAROL, sex=None))}, "person", 3, "sex", "missing_value"),
    (
        "dob-not-a-date",
        {"person": good_people(person(CAROL, date_of_birth="1950-02-30"))},
        "person",
        3,
        "date_of_birth",
        "invalid_date",
    ),
    (
        "dob-wrong-format",
        {"person": good_people(person(CAROL, date_of_birth="15/06/1950"))},
        "person",
        3,
        "date_of_birth",
        "invalid_date",
    ),
    (
        "dob-before-1900",
        {"person": good_people(person(CAROL, date_of_birth="1899-12-31"))},
        "person",
        3,
        "date_of_birth",
        "date_before_1900",
    ),
    (
        "dob-in-future",
        {"person": good_people(person(CAROL, date_of_birth="2025-07-01"))},
        "person",
        3,
        "date_of_birth",
        "date_in_future",
    ),
    (
        "death-before-birth",
        {"person": good_people(person(CAROL, date_of_death="1940-01-01"))},
        "person",
        3,
        "date_of_death",
        "date_order",
    ),
    (
        "registration-ends-before-start",
        {"person": good_people(person(CAROL, registration_start="2020-01-01", registration_end="2019-01-01"))},
        "person",
        3,
        "registration_end",
        "date_order",
    ),
    (
        "ethnicity-unknown-code",
        {"person": good_people(person(CAROL, ethnicity="Q"))},
        "person",
        3,
        "ethnicity",
        "invalid_code",
    ),
    (
        "lsoa-format",
        {"person": good_people(person(CAROL, lsoa_code="E0100001"))},
        "person",
        3,
        "lsoa_code",
        "invalid_format",
    ),
    ("acg-out-of-range", {"person": good_people(person(CAROL, acg_png="12"))}, "person", 3, "acg_png", "out_of_range"),
    ("acg-not-integer", {"person": good_people(person(CAROL, acg_png="2.5"))}, "person", 3, "acg_png", "invalid_int"),
    (
        "event-unknown-person",
        {"person": good_people(), "gp_event": [event(), event(CAROL)]},
        "gp_event",
        2,
        "person_id",
        "unknown_person",
    ),
    (
        "event-snomed-format",
        {"person": good_people(), "gp_event": [event(), event(snomed_code="12AB")]},
        "gp_event",
        2,
        "snomed_code",
        "invalid_format",
    ),
    (
        "event-value-not-number",
        {"person": good_people(), "gp_event": [event(), event(value="high")]},
        "gp_event",
        2,
        "value",
        "invalid_float",
    ),
    (
        "event-date-missing",
        {"person": good_people(), "gp_event": [event(), event(event_date=None)]},
        "gp_event",
        2,
        "event_date",
        "missing_value",
    ),
    (
        "event-in-future",
        {"person": good_people(), "gp_event": [event(), event(event_date="2026-01-01")]},
        "gp_event",
        2,
        "event_date",
        "date_in_future",
    ),
    (
        "medication-dmd-format",
        {
            "person": good_people(),
            "gp_medication": [
                {"nhs_number": ALICE, "issue_date": "2023-01-01", "dmd_code": "320000009", "bnf_code": "0212000B0"},
                {"nhs_number": ALICE, "issue_date": "2023-01-01", "dmd_code": "statin", "bnf_code": None},
            ],
        },
        "gp_medication",
        2,
        "dmd_code",
        "invalid_format",
    ),
    (
        "discharge-before-admission",
        {"person": good_people(), "apc_episode": [episode(), episode("E2", discharge_date="2022-12-31")]},
        "apc_episode",
        2,
        "discharge_date",
        "date_order",
    ),
    (
        "negative-cost",
        {"person": good_people(), "apc_episode": [episode(), episode("E2", cost=-1)]},
        "apc_episode",
        2,
        "cost",
        "negative_cost",
    ),
    (
        "admission-method-code",
        {"person": good_people(), "apc_episode": [episode(), episode("E2", admission_method="97")]},
        "apc_episode",
        2,
        "admission_method",
        "invalid_code",
    ),
    (
        "episode-duplicate",
        {"person": good_people(), "apc_episode": [episode(), episode("E1", nhs_number=BOB)]},
        "apc_episode",
        2,
        "episode_id",
        "duplicate_key",
    ),
    (
        "diagnosis-orphan",
        {"person": good_people(), "apc_episode": [episode()], "apc_diagnosis": [diagnosis(), diagnosis("E9")]},
        "apc_diagnosis",
        2,
        "episode_id",
        "orphan_episode",
    ),
    (
        "diagnosis-of-quarantined-episode",
        {
            "person": good_people(),
            "apc_episode": [episode(), episode("E2", cost=-1)],
            "apc_diagnosis": [diagnosis(), diagnosis("E2")],
        },
        "apc_diagnosis",
        2,
        "episode_id",
        "orphan_episode",
    ),
    (
        "diagnosis-icd10-format",
        {
            "person": good_people(),
            "apc_episode": [episode()],
            "apc_diagnosis": [diagnosis(), diagnosis(position=2, icd10_code="123")],
        },
        "apc_diagnosis",
        2,
        "icd10_code",
        "invalid_format",
    ),
    (
        "diagnosis-duplicate-position",
        {
            "person": good_people(),
            "apc_episode": [episode()],
            "apc_diagnosis": [diagnosis(), diagnosis(icd10_code="J44")],
        },
        "apc_diagnosis",
        2,
        "episode_id,position",
        "duplicate_key",
    ),
    (
        "procedure-opcs-format",
        {
            "person": good_people(),
            "apc_episode": [episode()],
            "apc_procedure": [
                {"episode_id": "E1", "position": 1, "opcs4_code": "X402"},
                {"episode_id": "E1", "position": 2, "opcs4_code": "402X"},
            ],
        },
        "apc_procedure",
        2,
        "opcs4_code",
        "invalid_format",
    ),
    (
        "ae-acuity-range",
        {
            "person": good_people(),
            "ae_attendance": [
                {
                    "nhs_number": ALICE,
                    "attendance_id": "A1",
                    "arrival_date": "2023-01-01",
                    "diagnosis_snomed": None,
                    "acuity": 3,
                    "cost": 200,
                },
                {
                    "nhs_number": ALICE,
                    "attendance_id": "A2",
                    "arrival_date": "2023-01-01",
                    "diagnosis_snomed": None,
                    "acuity": 7,
                    "cost": 200,
                },
            ],
        },
        "ae_attendance",
        2,
        "acuity",
        "out_of_range",
    ),
    (
        "op-attended-not-boolean",
        {
            "person": good_people(),
            "op_appointment": [
                {
                    "nhs_number": ALICE,
                    "appointment_id": "O1",
                    "appointment_date": "2023-01-01",
                    "attended": "Y",
                    "first_attendance": None,
                    "treatment_function_code": "300",
                    "cost": 150,
                },
                {
                    "nhs_number": ALICE,
                    "appointment_id": "O2",
                    "appointment_date": "2023-01-01",
                    "attended": "maybe",
                    "first_attendance": None,
                    "treatment_function_code": "300",
                    "cost": 150,
                },
            ],
        },
        "op_appointment",
        2,
        "attended",
        "invalid_bool",
    ),
    (
        "social-care-service-type",
        {
            "person": good_people(),
            "social_care_service": [
                {
                    "nhs_number": ALICE,
                    "service_type": "home_care",
                    "start_date": "2023-01-01",
                    "end_date": None,
                    "weekly_cost": 400,
                },
                {
                    "nhs_number": ALICE,
                    "service_type": "holiday",
                    "start_date": "2023-01-01",
                    "end_date": None,
                    "weekly_cost": 400,
                },
            ],
        },
        "social_care_service",
        2,
        "service_type",
        "invalid_code",
    ),
    (
        "waiting-list-removed-before-referral",
        {
            "person": good_people(),
            "waiting_list": [
                {
                    "nhs_number": ALICE,
                    "referral_date": "2023-01-01",
                    "removal_date": None,
                    "treatment_function_code": "110",
                    "provider_code": None,
                },
                {
                    "nhs_number": ALICE,
                    "referral_date": "2023-01-10",
                    "removal_date": "2023-01-01",
                    "treatment_function_code": "110",
                    "provider_code": None,
                },
            ],
        },
        "waiting_list",
        2,
        "removal_date",
        "date_order",
    ),
    (
        "community-cost-not-number",
        {
            "person": good_people(),
            "community_contact": [
                {"nhs_number": ALICE, "contact_date": "2023-01-01", "service_type": "podiatry", "cost": "80"},
                {"nhs_number": ALICE, "contact_date": "2023-01-01", "service_type": "podiatry", "cost": "£80"},
            ],
        },
        "community_contact",
        2,
        "cost",
        "invalid_float",
    ),
    (
        "mh-service-missing",
        {
            "person": good_people(),
            "mh_contact": [
                {"nhs_number": ALICE, "contact_date": "2023-01-01", "service_type": "crisis", "cost": None},
                {"nhs_number": ALICE, "contact_date": "2023-01-01", "service_type": None, "cost": None},
            ],
        },
        "mh_contact",
        2,
        "service_type",
        "missing_value",
    ),
    (
        "opt-out-invalid-number",
        {"person": good_people(), "opt_out": [{"nhs_number": BOB}, {"nhs_number": "123"}]},
        "opt_out",
        2,
        "nhs_number",
        "invalid_nhs_number",
    ),
    (
        "lsoa-decile-range",
        {
            "person": good_people(),
            "lsoa": [
                {"lsoa_code": "E01000001", "imd_decile": 9, "la_code": None, "la_name": None},
                {"lsoa_code": "E01000002", "imd_decile": 11, "la_code": None, "la_name": None},
            ],
        },
        "lsoa",
        2,
        "imd_decile",
        "out_of_range",
    ),
    (
        "practice-duplicate",
        {
            "person": good_people(),
            "practice": [{"practice_code": "Y90001", "pcn_code": "U1"}, {"practice_code": "Y90001", "pcn_code": "U2"}],
        },
        "practice",
        2,
        "practice_code",
        "duplicate_key",
    ),
]
