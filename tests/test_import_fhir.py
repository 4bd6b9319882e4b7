"""`phm import fhir`: Synthea bundles agree with Synthea's own CSV of the same run, a UK Core bundle keeps its
NHS numbers and ethnic category, and NDJSON, gzipped NDJSON and a Bundle of the same resources give one output.

The expected measures are computed here from ``synthea_observations.csv`` (Synthea's CSV export of the same
patients: UTC instants, US units, values rounded to one decimal) with Python's ``zoneinfo`` and the published
conversion factors, independently of the importer's Polars code and mapping table.
"""

from __future__ import annotations

import csv
import gzip
import re
from collections import defaultdict
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import polars as pl
import pytest

from openphm.errors import InputError
from openphm.importers.fhir import import_fhir, london_day
from tests.support.cli import one_line_error, phm
from tests.support.sources import read_table

DATA = Path(__file__).parent / "data" / "fhir"
SYNTHEA = sorted(DATA.glob("synthea_bundle_*.json"))
UKCORE = DATA / "ukcore_bundle.json"
LONDON = ZoneInfo("Europe/London")

# LOINC code in Synthea's CSV -> (SNOMED CT code of the project's measure lists, factor to the contract's unit,
# offset subtracted first). Cholesterol mg/dL / 38.67 = mmol/L; HbA1c IFCC mmol/mol = (DCCT % - 2.15) x 10.929.
EXPECTED_MAP = {
    "39156-5": ("60621009", 1.0, 0.0),
    "8480-6": ("72313002", 1.0, 0.0),
    "8462-4": ("1091811000000102", 1.0, 0.0),
    "2093-3": ("1005671000000105", 1 / 38.67, 0.0),
    "2085-9": ("1005681000000107", 1 / 38.67, 0.0),
    "4548-4": ("999791000000106", 10.929, 2.15),
    "33914-3": ("1020291000000106", 1.0, 0.0),
}
SMOKING = {"Never smoker": "266919005", "Former smoker": "8517006", "Current every day smoker": "449868002"}


def _recon(out: Path) -> list[dict[str, str]]:
    with (out / "import_reconciliation.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _read(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, infer_schema=False)


def _day(instant: str) -> str:
    return datetime.fromisoformat(instant.replace("Z", "+00:00")).astimezone(LONDON).date().isoformat()


@pytest.fixture(scope="module")
def synthea(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fhir") / "source"
    import_fhir(SYNTHEA, out)
    return out


@pytest.fixture(scope="module")
def ukcore(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ukcore") / "source"
    import_fhir([UKCORE], out)
    return out


def test_measures_agree_with_the_synthea_csv(synthea: Path) -> None:
    expected: dict[tuple[str, str, str], list[float | None]] = defaultdict(list)
    tolerance: dict[str, float] = {}
    with (DATA / "synthea_observations.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            key_date = _day(row["DATE"])
            if row["CODE"] == "72166-2":
                expected[(row["PATIENT"], key_date, SMOKING[row["VALUE"]])].append(None)
                continue
            snomed, factor, offset = EXPECTED_MAP[row["CODE"]]
            expected[(row["PATIENT"], key_date, snomed)].append((float(row["VALUE"]) - offset) * factor)
            tolerance[snomed] = 0.051 * factor  # the CSV rounds to one decimal in the source unit
    events = _read(synthea / "gp_event.csv")
    codes = {code for _, _, code in expected}
    found: dict[tuple[str, str, str], list[float | None]] = defaultdict(list)
    for person, day, code, value in (
        events.filter(pl.col("snomed_code").is_in(list(codes)))
        .select("person_id", "event_date", "snomed_code", "value")
        .iter_rows()
    ):
        found[(person, day, code)].append(None if value is None else float(value))
    assert sum(map(len, expected.values())) == 155
    assert found.keys() == expected.keys()  # the same readings on the same Europe/London days
    for key, values in expected.items():
        got = found[key]
        assert len(got) == len(values), key
        for want, have in zip(sorted(values, key=str), sorted(got, key=str), strict=True):
            if want is None:
                assert have is None
            else:
                assert have is not None and abs(have - want) <= tolerance[key[2]], (key, want, have)
    cleaned = {(r["reason"], r["code"]): int(r["count"]) for r in _recon(synthea) if r["stage"] == "cleaned"}
    with (DATA / "synthea_observations.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for loinc, unit in (("2093-3", "mg/dL"), ("2085-9", "mg/dL"), ("4548-4", "%")):
        reason = f"LOINC {loinc} converted to {'mmol/mol' if unit == '%' else 'mmol/L'}"
        assert cleaned[(reason, unit)] == sum(r["CODE"] == loinc for r in rows)
    # The trap this guards: many readings fall on another day in California (the bundles' offset) than in
    # England, so taking the day as written would put them on the wrong date.
    shifted = [
        entry["resource"]["effectiveDateTime"]
        for path in SYNTHEA
        for entry in orjson.loads(path.read_bytes())["entry"]
        if entry["resource"]["resourceType"] == "Observation"
        and entry["resource"]["code"]["coding"][0]["code"] in EXPECTED_MAP.keys() | {"85354-9", "72166-2"}
    ]
    assert (sum(_day(t) != t[:10] for t in shifted), len(shifted)) == (33, 130)  # BP panels are one each here


def test_synthea_people_encounters_and_rxnorm(synthea: Path) -> None:
    people = _read(synthea / "person.csv")
    with (DATA / "synthea_patients.csv").open(encoding="utf-8") as handle:
        patients = {r["Id"]: r for r in csv.DictReader(handle)}
    assert set(people["person_id"]) == set(patients)
    for row in people.iter_rows(named=True):
        assert row["date_of_birth"] == patients[row["person_id"]]["BIRTHDATE"]
        assert row["sex"] == patients[row["person_id"]]["GENDER"]
        assert row["ethnicity"] is None  # US Core race is never mapped to an NHS category
    assert _read(synthea / "gp_medication.csv").height == 0
    rows = _recon(synthea)
    rxnorm = [r for r in rows if r["stage"] == "unmapped" and r["reason"].startswith("RxNorm")]
    assert sum(int(r["count"]) for r in rxnorm if r["file_or_table"] == "MedicationRequest") == 1 + 13 + 20
    assert any(r["code"] == "2106-3" and r["code_system"] == "us-core-race" for r in rows)
    assert _read(synthea / "ae_attendance.csv").height == 2 + 1 + 1  # EMER encounters in the three bundles
    assert _read(synthea / "apc_episode.csv").height == 1
    assert _read(synthea / "apc_episode.csv")["admission_method"].to_list() == ["99"]  # no UK Core method
    text = (synthea / "import_reconciliation.csv").read_text()
    assert not any(person in text for person in patients)


def test_uk_core_patient(ukcore: Path) -> None:
    people = {r["nhs_number"]: r for r in _read(ukcore / "person.csv").iter_rows(named=True)}
    assert set(people) == {"9990000018", "9990000026"}
    first, second = people["9990000018"], people["9990000026"]
    assert (first["ethnicity"], first["sex"], first["date_of_birth"], first["practice_code"]) == (
        "G",
        "F",
        "1960-05-12",
        "A81001",
    )
    assert second["practice_code"] == "B82005"  # through the Organization resource
    assert second["date_of_death"] == _day("2024-10-26T23:30:00Z") == "2024-10-27"
    events = _read(ukcore / "gp_event.csv")
    by_code = {r["snomed_code"]: r for r in events.iter_rows(named=True)}
    assert by_code["72313002"]["event_date"] == "2024-07-01"  # 2024-06-30T23:30Z is 00:30 BST
    assert by_code["44054006"]["event_date"] == "2019-03-30"  # +01:00 on the day BST began: 23:30 GMT
    assert by_code["1011481000000105"]["nhs_number"] == "9990000026"  # a reference by NHS number
    assert float(by_code["1011481000000105"]["value"]) == 90.0  # "> 90": the number, the comparator counted
    assert float(by_code["999791000000106"]["value"]) == 48.0
    assert "75367002" not in by_code  # the panel gives its components
    assert "1005671000000105" not in by_code  # cholesterol in g/L: unknown unit, never guessed
    medicines = _read(ukcore / "gp_medication.csv")
    assert sorted(medicines["dmd_code"]) == ["320000009", "39732311000001104"]
    assert _read(ukcore / "apc_episode.csv")["admission_method"].to_list() == ["21"]
    rows = _recon(ukcore)
    unmapped = {(r["reason"], r["code"]) for r in rows if r["stage"] == "unmapped"}
    assert ("RxNorm is not dm+d: not carried", "308182") in unmapped
    assert ("LOINC 2093-3 in a unit the table does not know", "g/L") in unmapped
    assert ("not coded in SNOMED CT", "I10") in unmapped
    assert any(r["stage"] == "cleaned" and r["code"] == ">" for r in rows)
    assert _read(ukcore / "op_appointment.csv")["appointment_id"].to_list() == ["uk-clinic"]  # AMB, finished
    assert ("encounter class not carried", "VR") in unmapped
    assert any(r["stage"] == "dropped" and r["code"] == "cancelled" for r in rows)
    text = (ukcore / "import_reconciliation.csv").read_text()
    assert "9990000018" not in text and "LS1" not in text


def test_patients_without_nhs_numbers_make_the_file_use_person_id(tmp_path: Path) -> None:
    out = tmp_path / "mixed"
    import_fhir([UKCORE, SYNTHEA[0]], out)
    people = _read(out / "person.csv")
    assert people.columns[0] == "person_id"
    assert "uk-patient-1" in set(people["person_id"])  # the Patient id, never the NHS number in clear
    assert not {"9990000018", "9990000026"} & set(people["person_id"])
    notes = {r["reason"]: int(r["count"]) for r in _recon(out) if r["stage"] == "note"}
    assert notes[next(r for r in notes if r.startswith("NHS numbers not carried"))] == 2


def test_london_day_agrees_with_zoneinfo() -> None:
    instants = [
        "2024-06-30T23:30:00Z",
        "2024-03-31T00:59:59Z",
        "2024-03-31T01:00:00Z",
        "2024-10-26T23:00:00Z",
        "2024-10-27T00:59:59Z",
        "2024-10-27T01:00:00Z",
        "2013-11-30T22:21:43-08:00",
        "2020-01-01T00:30:00.123+05:30",
    ]
    got = pl.select(london_day(pl.Series([*instants, "2024-06-30", "2024-06", "2024"]).alias("v"))).to_series()
    assert got.to_list() == [_day(i) for i in instants] + ["2024-06-30", None, None]
    assert date.fromisoformat(_day(instants[0])) == date(2024, 7, 1)


def test_ndjson_and_gzip_give_the_bundle_output(tmp_path: Path) -> None:
    bundle = orjson.loads(SYNTHEA[0].read_bytes())
    lines = b"".join(orjson.dumps(entry["resource"]) + b"\n" for entry in bundle["entry"])
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "export.ndjson").write_bytes(lines)
    (tmp_path / "gz").mkdir()
    (tmp_path / "gz" / "export.ndjson.gz").write_bytes(gzip.compress(lines))
    outputs = {}
    for name, paths in (("bundle", [SYNTHEA[0]]), ("plain", [tmp_path / "plain"]), ("gz", [tmp_path / "gz"])):
        out = tmp_path / f"out-{name}"
        result = import_fhir(paths, out)
        assert result.rows_read == len(bundle["entry"])
        outputs[name] = {p.name: p.read_bytes() for p in out.glob("*.csv") if p.name != "import_reconciliation.csv"}
    assert outputs["bundle"] == outputs["plain"] == outputs["gz"]
    assert len(outputs["bundle"]) >= 4


def test_a_folder_of_many_files_lists_the_largest(tmp_path: Path) -> None:
    patient = orjson.dumps({"resourceType": "Patient", "id": "p", "gender": "male", "birthDate": "1950-01-01"})
    for n in range(25):  # file n holds n + 1 resources
        (tmp_path / f"part{n:02d}.ndjson").write_bytes((patient + b"\n") * (n + 1))
    result = import_fhir([tmp_path], tmp_path / "out")
    read = [(where, n) for stage, where, reason, _, _, n in result.reconciliation.rows if reason == "resources read"]
    assert read[:2] == [("part24.ndjson", 25), ("part23.ndjson", 24)] and len(read) == 21
    assert read[-1] == ("(5 other files)", 1 + 2 + 3 + 4 + 5)
    assert result.rows_read == sum(range(1, 26))
    assert result.written["person"] == 1  # one Patient id, repeated: the first kept
    assert any(
        r[2].startswith("Patient id repeated") and r[5] == sum(range(1, 26)) - 1 for r in result.reconciliation.rows
    )


def test_bad_files_give_one_line_and_exit_2(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.json"
    garbage.write_bytes(b"\x00\x01PK not json at all")
    line = one_line_error(phm("import", "fhir", str(garbage), "--out", str(tmp_path / "o")))
    assert "garbage.json" in line and "not JSON" in line
    other = tmp_path / "other.json"
    other.write_text('{"name": "not a FHIR resource"}')
    broken = tmp_path / "Observation.ndjson"
    broken.write_text('{"resourceType": "Observation"}\n{"resourceType": \n')
    bad_gzip = tmp_path / "Patient.ndjson.gz"
    bad_gzip.write_bytes(b"not gzip")
    empty = tmp_path / "empty"
    empty.mkdir()
    for path, words in (
        (other, "other.json is not a FHIR resource (no resourceType)"),
        (broken, "Observation.ndjson line 2 is not JSON"),
        (bad_gzip, "Patient.ndjson.gz is not a readable gzip file"),
        (empty, "no FHIR files"),
        (tmp_path / "absent.json", "absent.json does not exist"),
    ):
        with pytest.raises(InputError, match=re.escape(words)):
            import_fhir([path], tmp_path / "o")


def test_ingest_and_run_complete_on_the_import(tmp_path: Path) -> None:
    out = tmp_path / "source"
    result = phm("import", "fhir", *map(str, SYNTHEA), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "rows a second" in result.stdout
    store = tmp_path / "store.duckdb"
    result = phm("ingest", str(out), "--store", str(store), "--extract-date", "2022-03-31")
    assert result.returncode == 0, result.stderr
    result = phm("run", "--store", str(store), "--as-of", "2022-03-31")
    assert result.returncode == 0, result.stderr
    measures = read_table(store, "measure").filter(pl.col("as_of") == date(2022, 3, 31))
    counts = {c: measures[c].count() for c in ("bmi", "sbp", "cholesterol_ratio", "hba1c", "egfr")}
    assert counts == {"bmi": 3, "sbp": 3, "cholesterol_ratio": 3, "hba1c": 2, "egfr": 1}
