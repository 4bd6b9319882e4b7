"""`phm import omop`: both Eunomia CDMs import reconciled, codes are gated on their source vocabulary.

The two folders in ``tests/data/omop`` are cuts of OHDSI's Eunomia GiBleed (CDM 5.3) and Synthea27Nj (CDM 5.4)
datasets (see their SOURCE.md). Every expected count below is computed in the test from the copied files with
the ``csv`` module, independently of the importer's Polars code.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from openphm.errors import InputError
from openphm.importers.omop import import_omop
from tests.support.cli import one_line_error, phm

DATA = Path(__file__).parent / "data" / "omop"
GIBLEED = DATA / "eunomia_gibleed"
NJ = DATA / "synthea27nj"


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t" if path.suffix == ".tsv" else ","))


def _int(value: str) -> str:
    return str(int(float(value))) if value.strip() else ""


def _recon(out: Path) -> list[dict[str, str]]:
    return _rows(out / "import_reconciliation.csv")


def _count(rows: list[dict[str, str]], stage: str, where: str, reason: str = "") -> int:
    return sum(
        int(r["count"]) for r in rows if r["stage"] == stage and r["file_or_table"] == where and reason in r["reason"]
    )


def _file(folder: Path, table: str) -> Path:
    return next(p for p in folder.iterdir() if p.stem.lower() == table)


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    outs = {}
    for folder in (GIBLEED, NJ):
        outs[folder.name] = tmp_path_factory.mktemp(folder.name) / "source"
        import_omop(folder, outs[folder.name])
    return outs


@pytest.mark.parametrize("folder", [GIBLEED, NJ], ids=["gibleed", "synthea27nj"])
def test_people_and_orphans_reconcile(folder: Path, imported: dict[str, Path]) -> None:
    out = imported[folder.name]
    rows = _recon(out)
    people = {_int(r["person_id"]) for r in _rows(_file(folder, "person"))}
    written = pl.read_csv(out / "person.csv", infer_schema=False)
    assert set(written["person_id"]) == people
    assert _count(rows, "read", _file(folder, "person").name) == len(people) == written.height
    assert not any(p.endswith(".0") for p in written["person_id"])
    for table in ("observation_period", "death", "visit_occurrence", "condition_occurrence", "measurement"):
        path = _file(folder, table)
        source = _rows(path)
        orphans = sum(1 for r in source if _int(r["person_id"]) not in people)
        assert _count(rows, "read", path.name) == len(source), table
        assert _count(rows, "dropped", path.name, "orphan") == orphans, table
    for table in ("person", "gp_event", "apc_episode", "ae_attendance", "op_appointment", "apc_diagnosis"):
        assert pl.read_csv(out / f"{table}.csv", infer_schema=False).height == _count(rows, "written", table)
    report = (out / "import_reconciliation.csv").read_text()
    for source in _rows(_file(folder, "person")):
        assert source["person_source_value"] not in report  # the only identifying value an OMOP person carries


def test_gibleed_orphan_periods_and_icd10cm(imported: dict[str, Path]) -> None:
    out = imported[GIBLEED.name]
    rows = _recon(out)
    assert _count(rows, "dropped", "observation_period.csv", "orphan") == 60  # kept on purpose (SOURCE.md)
    icd10cm = sum(1 for r in _rows(GIBLEED / "condition_occurrence.csv") if r["condition_source_value"] == "K92.2")
    assert icd10cm == 17
    flagged = [r for r in rows if r["code_system"] == "ICD10CM" and r["stage"] == "unmapped"]
    assert sum(int(r["count"]) for r in flagged) == icd10cm and "not WHO/UK ICD-10" in flagged[0]["reason"]
    assert pl.read_csv(out / "apc_diagnosis.csv", infer_schema=False).height == 0
    assert "K92.2" not in set(pl.read_csv(out / "gp_event.csv", infer_schema=False)["snomed_code"])
    visits = _rows(GIBLEED / "visit_occurrence.csv")
    episodes = pl.read_csv(out / "apc_episode.csv", infer_schema=False)
    assert episodes.height == sum(1 for v in visits if _int(v["visit_concept_id"]) == "9201")
    assert set(episodes["admission_method"]) == {"99"}


def test_synthea_visits_deaths_and_units(imported: dict[str, Path]) -> None:
    out = imported[NJ.name]
    rows = _recon(out)
    kinds = Counter(r["visit_concept_id"] for r in _rows(NJ / "VISIT_OCCURRENCE.csv"))
    assert pl.read_csv(out / "op_appointment.csv", infer_schema=False).height == 0
    assert _count(rows, "dropped", "VISIT_OCCURRENCE.csv", "9202") == kinds["9202"] == 1722
    assert pl.read_csv(out / "ae_attendance.csv", infer_schema=False).height == kinds["9203"] + kinds["262"]
    assert pl.read_csv(out / "apc_episode.csv", infer_schema=False).height == kinds["9201"] + kinds["262"]
    with_op = out.parent / "with_op"
    import_omop(NJ, with_op, outpatient_visits=True)
    assert pl.read_csv(with_op / "op_appointment.csv", infer_schema=False).height == kinds["9202"]
    people = pl.read_csv(out / "person.csv", infer_schema=False)
    deaths = {r["person_id"]: r["death_date"] for r in _rows(NJ / "DEATH.csv")}
    assert (
        dict(people.filter(pl.col("date_of_death").is_not_null()).select("person_id", "date_of_death").iter_rows())
        == deaths
    )
    assert people["sex"].to_list().count("F") == sum(
        1 for r in _rows(NJ / "PERSON.csv") if r["gender_concept_id"] == "8532"
    )
    # HbA1c in % and cholesterol in mg/dL, converted to mmol/mol and mmol/L (docs/importers.md).
    events = pl.read_csv(out / "gp_event.csv", schema_overrides={"value": pl.Float64}, infer_schema=False)
    for loinc, snomed, convert in (
        ("4548-4", "999791000000106", lambda v: 10.929 * v - 23.497),
        ("2093-3", "1005671000000105", lambda v: v * 0.02586),
    ):
        source = [r for r in _rows(NJ / "MEASUREMENT.csv") if r["measurement_source_value"] == loinc]
        expected = sorted(round(convert(float(r["value_as_number"])), 2) for r in source)
        got = sorted(events.filter(pl.col("snomed_code") == snomed)["value"].to_list())
        assert source and got == pytest.approx(expected, abs=0.006), loinc
    assert not events.filter(pl.col("snomed_code") == "999791000000106")["unit"].ne("mmol/mol").any()
    assert pl.read_csv(out / "gp_medication.csv", infer_schema=False).height == 0  # all RxNorm
    assert _count(rows, "unmapped", "DRUG_EXPOSURE.csv", "RxNorm") == len(_rows(NJ / "DRUG_EXPOSURE.csv"))


def _write(path: Path, rows: list[dict[str, str]], separator: str = ",") -> None:
    pl.DataFrame(rows).write_csv(path, separator=separator)


def _hand_made(folder: Path, version: str) -> Path:
    """A tiny CDM with upper-case names, float ids, a tab-separated CONCEPT and both kinds of ICD-10."""
    folder.mkdir()
    person = {"person_id": "1.0", "gender_concept_id": "8532.0", "year_of_birth": "1950.0", "month_of_birth": "3.0"}
    person |= {"day_of_birth": "", "birth_datetime": "", "race_concept_id": "8527.0", "ethnicity_concept_id": "0"}
    _write(folder / "PERSON.csv", [person, person | {"person_id": "2.0", "gender_concept_id": "0"}])
    visit = {"visit_occurrence_id": "10.0", "person_id": "1.0", "visit_concept_id": "262.0"}
    visit |= {"visit_start_date": "2020-01-02", "visit_end_date": "2020-01-05"}
    _write(
        folder / "VISIT_OCCURRENCE.csv",
        [
            visit,
            visit | {"visit_occurrence_id": "11.0", "visit_concept_id": "9202.0", "visit_end_date": "2020-02-01"},
            visit | {"visit_occurrence_id": "12.0", "person_id": "99.0", "visit_concept_id": "9203.0"},
        ],
    )
    concepts = [
        ("100", "ICD10", "I21.9"),
        ("101", "ICD10CM", "I21.9"),
        ("102", "SNOMED", "22298006"),
        ("103", "dm+d", "39113611000001102"),
        ("104", "RxNorm", "197361"),
        ("105", "LOINC", "2093-3"),
        ("106", "ICD10", "E11.9"),
    ]
    _write(
        folder / "CONCEPT.tsv",
        [{"concept_id": c, "vocabulary_id": v, "concept_code": k} for c, v, k in concepts],
        separator="\t",
    )
    status = "condition_status_concept_id" if version == "5.4" else "condition_type_concept_id"
    primary = "32902" if version == "5.4" else "44786627"

    def condition(key: str, concept: str, code: str, visit_id: str, mark: str = "0") -> dict[str, str]:
        return {
            "condition_occurrence_id": key,
            "person_id": "1.0",
            "condition_start_date": "2020-01-02",
            "visit_occurrence_id": visit_id,
            "condition_source_value": code,
            "condition_source_concept_id": concept,
            "condition_concept_id": "0",
            status: mark,
        }

    _write(
        folder / "CONDITION_OCCURRENCE.csv",
        [
            condition("1.0", "106.0", "E11.9", "10.0"),
            condition("2.0", "100.0", "I21.9", "10.0", primary),
            condition("3.0", "101.0", "I21.9", "10.0"),
            condition("4.0", "102.0", "22298006.0", "11.0"),
            condition("5.0", "100.0", "I21.9", ""),
        ],
    )
    drug = {"drug_exposure_id": "1", "person_id": "1", "drug_exposure_start_date": "2020-03-01"}
    _write(
        folder / "DRUG_EXPOSURE.csv",
        [
            drug | {"drug_source_value": "39113611000001102", "drug_source_concept_id": "103", "drug_concept_id": "0"},
            drug | {"drug_source_value": "197361", "drug_source_concept_id": "104", "drug_concept_id": "0"},
        ],
    )
    lab = {
        "measurement_id": "1",
        "person_id": "1",
        "measurement_date": "2020-03-01",
        "measurement_source_value": "2093-3",
    }
    lab |= {"measurement_source_concept_id": "105", "measurement_concept_id": "0"}
    _write(
        folder / "MEASUREMENT.csv",
        [
            lab | {"value_as_number": "193.0", "unit_source_value": "mg/dL"},
            lab | {"value_as_number": "5", "unit_source_value": "g/L"},
        ],
    )
    return folder


@pytest.mark.parametrize("version", ["5.3", "5.4"])
def test_hand_made_cdm_gates_on_vocabulary(tmp_path: Path, version: str) -> None:
    folder = _hand_made(tmp_path / "cdm", version)
    out = tmp_path / "out"
    import_omop(folder, out)
    diagnoses = pl.read_csv(out / "apc_diagnosis.csv", infer_schema=False)
    # ICD10CM I21.9 is never taken as ICD-10; the ICD-10 primary diagnosis comes first; a diagnosis on no visit has
    # no episode to belong to.
    assert diagnoses.rows() == [("10", "1", "I21.9"), ("10", "2", "E11.9")]
    rows = _recon(out)
    assert _count(rows, "unmapped", "CONDITION_OCCURRENCE.csv", "ICD10CM is the US clinical modification") == 1
    assert _count(rows, "unmapped", "CONDITION_OCCURRENCE.csv", "ICD-10 diagnosis not on an inpatient visit") == 1
    episodes = pl.read_csv(out / "apc_episode.csv", infer_schema=False)
    assert episodes.rows() == [("1", "10", "2020-01-02", "2020-01-05", "21")]
    assert pl.read_csv(out / "ae_attendance.csv", infer_schema=False)["attendance_id"].to_list() == ["10"]
    assert _count(rows, "dropped", "VISIT_OCCURRENCE.csv", "orphan") == 1
    assert pl.read_csv(out / "op_appointment.csv", infer_schema=False).height == 0
    events = pl.read_csv(out / "gp_event.csv", infer_schema=False)
    assert events.select("snomed_code", "value", "unit").rows() == [
        ("22298006", None, None),
        ("1005671000000105", "4.99", "mmol/L"),
    ]
    assert any(r["code"] == "2093-3 [g/L]" and "unit not known" in r["reason"] for r in rows)
    assert pl.read_csv(out / "gp_medication.csv", infer_schema=False)["dmd_code"].to_list() == ["39113611000001102"]
    assert _count(rows, "unmapped", "DRUG_EXPOSURE.csv", "RxNorm") == 1
    people = pl.read_csv(out / "person.csv", infer_schema=False)
    assert people.rows() == [("1", "1950-03-01", "F", None, None, None), ("2", "1950-03-01", "U", None, None, None)]
    assert _count(rows, "unmapped", "person", "US race concept") == 2

    with_op = tmp_path / "with_op"
    import_omop(folder, with_op, outpatient_visits=True)
    appointments = pl.read_csv(with_op / "op_appointment.csv", infer_schema=False)
    assert appointments.rows() == [("1", "11", "2020-01-02", "true")]


def test_bad_folder_gives_one_line_and_exit_2(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "visit_occurrence.csv").write_text("visit_occurrence_id,person_id\n1,1\n")
    line = one_line_error(phm("import", "omop", str(empty), "--out", str(tmp_path / "o")))
    assert "no person file" in line
    binary = tmp_path / "binary"
    binary.mkdir()
    (binary / "person.csv").write_bytes(b"\x00\x01\x02PK\x03\x04" * 50)
    with pytest.raises(InputError, match=r"person\.csv"):
        import_omop(binary, tmp_path / "o")
    with pytest.raises(InputError, match="absent is not a folder"):
        import_omop(tmp_path / "absent", tmp_path / "o")
    (binary / "person.csv").write_text("person_id,gender_concept_id\n1,8507\n")
    with pytest.raises(InputError, match="lacks the required column year_of_birth"):
        import_omop(binary, tmp_path / "o")


def test_ingest_and_run_complete_on_the_import(tmp_path: Path) -> None:
    out = tmp_path / "source"
    result = phm("import", "omop", str(NJ), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "OMOP import reconciliation" in result.stdout and "rows a second" in result.stdout
    store = tmp_path / "store.duckdb"
    result = phm("ingest", str(out), "--store", str(store), "--extract-date", "2023-01-01")
    assert result.returncode == 0, result.stderr
    result = phm("run", "--store", str(store), "--as-of", "2022-03-31")
    assert result.returncode == 0, result.stderr
