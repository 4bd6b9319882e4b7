"""The register stage on crafted people: every code system, resolved codes, lookback boundaries, settings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from openphm.codes import CODED_COLUMNS, SYSTEMS, Codelist, CodeSystemError, load_definitions
from openphm.ingest import ingest
from openphm.ingest.pseudonymise import KeyedHash
from openphm.options import RunOptions
from openphm.pipeline import run
from openphm.stages import by_name
from tests.support.registers import CODELISTS, gp
from tests.support.sources import ALICE, BOB, CAROL, DAVE, EXTRACT, KEY, person, read_table, store_path

Rows = dict[str, list[dict[str, object]]]
AS_OF = (date(2023, 3, 31), date(2024, 3, 31))


def episode(nhs: str, episode_id: str, admitted: str, discharged: str, method: str) -> dict[str, object]:
    return {
        "nhs_number": nhs,
        "episode_id": episode_id,
        "admission_date": admitted,
        "discharge_date": discharged,
        "admission_method": method,
    }


def _register(source: Callable[[Rows], Path], tmp_path: Path, tables: Rows, engine: str = "duckdb") -> pl.DataFrame:
    store = store_path(tmp_path, engine)
    ingest(source(tables), store, key=KEY, engine=engine, extract_date=EXTRACT)
    stages = [s for name, s in by_name().items() if name in ("population", "register")]
    run(store, engine=engine, as_of=AS_OF, stages=stages, options=RunOptions(codelists=CODELISTS))
    ids = dict(zip(KeyedHash(KEY)([ALICE, BOB, CAROL, DAVE]), ["alice", "bob", "carol", "dave"], strict=True))
    frame = read_table(store, "register", engine)
    return frame.with_columns(pl.col("person_id").replace_strict(ids)).sort("person_id", "definition", "as_of")


def _row(frame: pl.DataFrame, who: str, definition: str, as_of: date) -> dict[str, object] | None:
    rows = frame.filter(person_id=who, definition=definition, as_of=as_of).to_dicts()
    assert len(rows) <= 1
    return rows[0] if rows else None


PEOPLE = [person(ALICE), person(BOB), person(CAROL), person(DAVE)]


@pytest.mark.parametrize("engine", ["duckdb", "polars"])
def test_each_code_system_puts_a_person_on_the_register(
    source: Callable[[Rows], Path], tmp_path: Path, engine: str
) -> None:
    tables: Rows = {
        "person": PEOPLE,
        "gp_event": [gp(ALICE, "2020-05-01", "195967001")],  # SNOMED CT, primary care
        "apc_episode": [
            episode(BOB, "E1", "2021-01-10", "2021-01-12", "21"),
            episode(DAVE, "E2", "2022-02-01", "2022-02-01", "11"),
        ],
        "apc_diagnosis": [{"episode_id": "E1", "position": 2, "icd10_code": "J45.9"}],  # ICD-10 with a dot
        "apc_procedure": [{"episode_id": "E2", "position": 1, "opcs4_code": "X40.3"}],  # OPCS-4, prefix X40
        "gp_medication": [
            {"nhs_number": CAROL, "issue_date": "2023-06-01", "dmd_code": "320000009", "bnf_code": None},
            {"nhs_number": DAVE, "issue_date": "2023-07-01", "dmd_code": "999999999", "bnf_code": "0212000B0AAABAB"},
        ],
        "ae_attendance": [
            {"nhs_number": CAROL, "attendance_id": "A1", "arrival_date": "2022-03-01", "diagnosis_snomed": "195967001"}
        ],
    }
    reg = _register(source, tmp_path, tables, engine)
    alice = _row(reg, "alice", "asthma", AS_OF[0])
    assert alice and alice["active"] and alice["from_gp"] and not alice["from_hospital"]
    assert alice["first_date"] == date(2020, 5, 1)
    bob = _row(reg, "bob", "asthma", AS_OF[0])
    assert bob and bob["active"] and bob["from_hospital"] and not bob["from_gp"]
    carol_ae = _row(reg, "carol", "asthma", AS_OF[0])
    assert carol_ae and carol_ae["from_ae"]
    assert _row(reg, "dave", "dialysis", AS_OF[0])["active"]  # type: ignore[index]
    # Medicines: dm+d exactly, BNF by prefix; issued after the first as_of, so on the register only at the second.
    assert _row(reg, "carol", "statins", AS_OF[0]) is None
    assert _row(reg, "carol", "statins", AS_OF[1])["from_medication"]  # type: ignore[index]
    assert _row(reg, "dave", "statins", AS_OF[1])["active"]  # type: ignore[index]


def test_resolved_code_after_the_diagnosis_makes_the_person_inactive(
    source: Callable[[Rows], Path], tmp_path: Path
) -> None:
    tables: Rows = {
        "person": PEOPLE,
        "gp_event": [
            gp(ALICE, "2019-01-01", "195967001"),
            gp(ALICE, "2022-06-01", "162660004"),  # resolved later
            gp(BOB, "2019-01-01", "195967001"),
            gp(BOB, "2020-01-01", "162660004"),
            gp(BOB, "2023-06-01", "195967001"),  # diagnosed again after the resolved code: back on
            gp(CAROL, "2020-01-01", "162660004"),  # a resolved code alone puts nobody on the register
        ],
    }
    reg = _register(source, tmp_path, tables)
    alice = _row(reg, "alice", "asthma", AS_OF[0])
    assert alice and not alice["active"] and alice["last_resolved_date"] == date(2022, 6, 1)
    assert not _row(reg, "bob", "asthma", AS_OF[0])["active"]  # type: ignore[index]
    assert _row(reg, "bob", "asthma", AS_OF[1])["active"]  # type: ignore[index]
    assert _row(reg, "carol", "asthma", AS_OF[0]) is None


def test_lookback_boundaries(source: Callable[[Rows], Path], tmp_path: Path) -> None:
    # Cancer counts when diagnosed in the last 1826 days: on 2023-03-31 the window starts 2018-03-31.
    tables: Rows = {
        "person": PEOPLE,
        "gp_event": [gp(ALICE, "2018-03-31", "363346000"), gp(BOB, "2018-03-30", "363346000")],
        "gp_medication": [  # statins: 365 days; on 2024-03-31 the window starts 2023-04-01 (2024 has 29 February)
            {"nhs_number": CAROL, "issue_date": "2023-04-01", "dmd_code": "320000009", "bnf_code": None},
            {"nhs_number": DAVE, "issue_date": "2023-03-31", "dmd_code": "320000009", "bnf_code": None},
        ],
    }
    reg = _register(source, tmp_path, tables)
    assert _row(reg, "alice", "cancer", AS_OF[0])["active"]  # type: ignore[index]
    assert not _row(reg, "bob", "cancer", AS_OF[0])["active"]  # type: ignore[index]
    assert _row(reg, "carol", "statins", AS_OF[1])["active"]  # type: ignore[index]
    assert not _row(reg, "dave", "statins", AS_OF[1])["active"]  # type: ignore[index]


def test_wrong_system_code_list_raises_at_definition_time() -> None:
    icd10 = Codelist.of(SYSTEMS["icd10"], ["I50"], "heart failure ICD-10")
    snomed_column = next(c for c in CODED_COLUMNS if c.column == "snomed_code")
    with pytest.raises(CodeSystemError, match="ICD-10"):
        icd10.applied_to(snomed_column)
    with pytest.raises(CodeSystemError, match="not a SNOMED CT code"):
        Codelist.of(SYSTEMS["snomed"], ["I50"], "heart failure written as SNOMED")


@pytest.mark.parametrize(
    ("written", "normalised"),
    [
        ("I50.0", "I500"),
        ("i500", "I500"),
        ("I10X", "I10"),
        ("A17.0D", "A170"),
        ("M01.4*", "M014"),
        ("A17.0†", "A170"),
        ("E11-", "E11"),
        ("X40.3", "X403"),
    ],
)
def test_icd10_and_opcs4_normalisation(written: str, normalised: str) -> None:
    system = SYSTEMS["opcs4"] if written.startswith("X40") else SYSTEMS["icd10"]
    assert system.normalise_code(written) == normalised


def test_test_definitions_load() -> None:
    definitions = load_definitions(CODELISTS)
    assert definitions["asthma"].code_counts() == {"snomed": 1, "icd10": 2}
    assert definitions["cancer"].lookback_days == 1826


def test_ingest_stores_codes_in_canonical_form(source: Callable[[Rows], Path], tmp_path: Path) -> None:
    """Stages match plain columns against the lists, so ingest must leave every code column canonical."""
    tables: Rows = {
        "person": PEOPLE,
        "apc_episode": [episode(BOB, "E1", "2021-01-10", "2021-01-12", "21")],
        "apc_diagnosis": [
            {"episode_id": "E1", "position": 1, "icd10_code": "j45.9"},
            {"episode_id": "E1", "position": 2, "icd10_code": "I10X"},
            {"episode_id": "E1", "position": 3, "icd10_code": "A17.0D"},
        ],
        "apc_procedure": [{"episode_id": "E1", "position": 1, "opcs4_code": "x40.3"}],
        "gp_event": [gp(ALICE, "2020-05-01", " 195967001 ")],
    }
    store = store_path(tmp_path, "duckdb")
    ingest(source(tables), store, key=KEY, engine="duckdb", extract_date=EXTRACT)
    assert sorted(read_table(store, "apc_diagnosis")["icd10_code"]) == ["A170", "I10", "J459"]
    assert read_table(store, "apc_procedure")["opcs4_code"].to_list() == ["X403"]
    assert read_table(store, "gp_event")["snomed_code"].to_list() == ["195967001"]
