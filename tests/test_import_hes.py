"""`phm import hes`: the artificial NHS Digital HES files import reconciled, with no placeholder left behind.

The three files in ``tests/data/hes`` are NHS Digital's artificial HES (see SOURCE.md there); their counts
below were taken with an independent reading of the files (Polars ``value_counts``) before the importer
existed: 2,075 APC episodes of which 16 are unfinished, 91 outpatient appointments cancelled (ATTENDED 2/4).
"""

from __future__ import annotations

import csv
from pathlib import Path

import polars as pl
import pytest

from openphm.importers.hes import ICD10_FOUR, OPCS4_FOUR, import_hes, placeholders
from tests.support.cli import one_line_error, phm

DATA = Path(__file__).parent / "data" / "hes"
APC = DATA / "artificial_hes_apc_0102_truncated.csv"
AE = DATA / "artificial_hes_ae_0708_truncated.csv"
OP = DATA / "artificial_hes_op_0304_truncated.csv"


def _recon(out: Path) -> list[dict[str, str]]:
    with (out / "import_reconciliation.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _count(rows: list[dict[str, str]], stage: str, where: str, reason: str | None = None) -> int:
    return sum(
        int(r["count"])
        for r in rows
        if r["stage"] == stage and r["file_or_table"] == where and (reason is None or reason in r["reason"])
    )


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("hes") / "source"
    import_hes(out, apc=APC, ae=AE, op=OP)
    return out


def test_row_counts_reconcile(imported: Path) -> None:
    rows = _recon(imported)
    assert _count(rows, "read", APC.name) == 2075
    assert _count(rows, "read", AE.name) == 1000
    assert _count(rows, "read", OP.name) == 1000
    assert _count(rows, "dropped", APC.name, "EPISTAT") == 16
    assert _count(rows, "written", "apc_episode") == 2075 - 16
    assert _count(rows, "written", "ae_attendance") == 1000
    assert _count(rows, "dropped", OP.name, "cancelled") == 40 + 51
    assert _count(rows, "written", "op_appointment") == 1000 - 91
    for table in ("apc_episode", "apc_diagnosis", "apc_procedure", "ae_attendance", "op_appointment", "person"):
        written = pl.read_csv(imported / f"{table}.csv", infer_schema=False).height
        assert written == _count(rows, "written", table), table
    episodes = pl.read_csv(imported / "apc_episode.csv", infer_schema=False)
    assert episodes["episode_id"].n_unique() == episodes.height
    people = pl.read_csv(imported / "person.csv", infer_schema=False)
    every = pl.concat(
        [
            pl.read_csv(imported / f"{t}.csv", infer_schema=False).select("person_id")
            for t in ("apc_episode", "ae_attendance", "op_appointment")
        ]
    )
    assert set(every["person_id"]) == set(people["person_id"])


def test_no_placeholder_survives(imported: Path) -> None:
    marks = set().union(*placeholders().values()) - {""}
    for path in imported.glob("*.csv"):
        if path.name == "import_reconciliation.csv":
            continue
        frame = pl.read_csv(path, infer_schema=False)
        for column in frame.columns:
            if column.endswith("_id"):
                continue
            values = set(frame[column].drop_nulls().str.strip_chars())
            assert not values & marks, (path.name, column, values & marks)
            assert "" not in values and not any("\t" in v for v in values)
    diagnoses = pl.read_csv(imported / "apc_diagnosis.csv", infer_schema=False)
    assert diagnoses["icd10_code"].str.contains(ICD10_FOUR).all()
    assert diagnoses.height == 4783  # counted independently with the csv module
    procedures = pl.read_csv(imported / "apc_procedure.csv", infer_schema=False)
    assert procedures["opcs4_code"].str.contains(OPCS4_FOUR).all()


def test_placeholders_and_unmapped_codes_are_counted(imported: Path) -> None:
    rows = _recon(imported)
    by_code = {(r["file_or_table"], r["reason"], r["code"]): int(r["count"]) for r in rows}
    assert by_code[(OP.name, "ICD-10 slot placeholder dropped", "R69X")] == 997
    assert by_code[(APC.name, "GPPRAC placeholder set to null", "V81999")] == 27
    assert by_code[(APC.name, "not a valid ICD-10 code: dropped", "0000")] == 2
    assert by_code[(OP.name, "OPCS-4 slot placeholder dropped", "&")] >= 964
    assert any(r["reason"].startswith("HES A&E diagnosis") for r in rows)
    assert any(r["reason"].startswith("1995-2000 ethnicity code set unknown") and r["code"] == "0" for r in rows)
    people = pl.read_csv(imported / "person.csv", infer_schema=False)
    assert not set(people["ethnicity"].drop_nulls()) - set("ABCDEFGHJKLMNPRSZ")
    for value in people["person_id"]:
        assert value not in (imported / "import_reconciliation.csv").read_text()


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    pl.DataFrame(rows).write_csv(path)
    return path


def _episode(key: str, person: str, **extra: str) -> dict[str, str]:
    row = {"PSEUDO_HESID": person, "EPIKEY": key, "ADMIDATE": "2020-05-01", "DISDATE": "2020-05-03"}
    row |= {"ADMIMETH": "21", "EPISTAT": "3", "MYDOB": "071950", "SEX": "2", "ETHNOS": "A", "DISMETH": "1"}
    row |= {"DIAG_01": "", "DIAG_02": "", "OPERTN_4_01": "-", "SUSSPELLID": "S1", "LSOA11": "E01000001"}
    return row | extra


def test_hand_made_traps(tmp_path: Path) -> None:
    apc = _write(
        tmp_path / "apc.csv",
        [
            _episode("1", "P1", DIAG_01="I10X", DIAG_02="E11.9\u2020", OPERTN_4_01="X999"),
            _episode("2", "P1", DIAG_01="A15.0D", DIAG_02="J45", ETHNOS="4", DISMETH="4", DISDATE="2020-05-09"),
            _episode("3", "P2", DIAG_01="M0690*", EPISTAT="1", MYDOB="132001"),
            _episode(
                "4",
                "P3",
                DIAG_01="R69X",
                ADMIDATE="1801-01-01",
                MYDOB="",
                ETHNOS="0",
                SUSSPELLID="",
                LSOA11="S01006506",
            ),
        ],
    )
    op = _write(
        tmp_path / "op.csv",
        [
            {"PSEUDO_HESID": "P1", "ATTENDKEY": "9", "APPTDATE": "2021-03-10", "ATTENDED": "5", "APPTAGE": "70.0"},
            {"PSEUDO_HESID": "P9", "ATTENDKEY": "8", "APPTDATE": "10/03/2021", "ATTENDED": "3", "APPTAGE": "40.0"},
        ],
    )
    out = tmp_path / "out"
    import_hes(out, apc=apc, op=op)
    diagnoses = pl.read_csv(out / "apc_diagnosis.csv", infer_schema=False)
    assert dict(zip(diagnoses["icd10_raw"], diagnoses["icd10_code"], strict=True)) == {
        "I10X": "I10X",
        "E11.9\u2020": "E119",
        "A15.0D": "A150",
        "J45": "J45X",
    }
    episodes = pl.read_csv(out / "apc_episode.csv", infer_schema=False)
    assert sorted(episodes["episode_id"]) == ["1", "2", "4"]
    assert "4" not in set(diagnoses["episode_id"])  # R69X is "no diagnosis"
    assert episodes.filter(pl.col("episode_id") == "4")["admission_date"].to_list() == [None]
    people = {r["person_id"]: r for r in pl.read_csv(out / "person.csv", infer_schema=False).iter_rows(named=True)}
    assert people["P1"]["date_of_birth"] == "1950-07-01"  # APC MYDOB, also used for the OP record
    assert people["P1"]["date_of_death"] == "2020-05-09"
    assert people["P1"]["ethnicity"] == "A"  # the latest record's category
    assert people["P3"]["ethnicity"] is None  # 1995-2000 "White" cannot be split into A, B, C
    assert people["P9"]["date_of_birth"] == "1980-09-01"  # 40 on 2021-03-10: born 1980-03-11..1981-03-10
    assert "P2" not in people  # only an unfinished episode
    assert people["P3"]["lsoa_code"] is None  # a Scottish data zone is not an England/Wales LSOA
    assert people["P1"]["lsoa_code"] == "E01000001"
    rows = _recon(out)
    assert any(r["code"] == "S01" and r["stage"] == "unmapped" for r in rows)
    assert "S01006506" not in (out / "import_reconciliation.csv").read_text()
    assert _count(rows, "note", apc.name, "episodes with a SUSSPELLID") == 2
    assert _count(rows, "note", apc.name, "distinct SUSSPELLID") == 1
    assert _count(rows, "note", "person", "whose birth date came from their APC record") == 1
    op_rows = pl.read_csv(out / "op_appointment.csv", infer_schema=False)
    assert dict(zip(op_rows["appointment_id"], op_rows["attended"], strict=True)) == {"9": "true", "8": "false"}
    assert set(op_rows["appointment_date"]) == {"2021-03-10"}  # DD/MM/YYYY read as a date


def test_ecds_snomed_diagnosis_and_acuity(tmp_path: Path) -> None:
    ecds = _write(
        tmp_path / "ecds.csv",
        [
            {
                "TOKEN_PERSON_ID": "E1",
                "EC_IDENT": "a1",
                "ARRIVAL_DATE": "2022-01-02",
                "AGE_AT_ARRIVAL": "30",
                "EC_DIAGNOSIS_01": "233604007",
                "EC_ACUITY": "1064891000000107",
                "SEX": "1",
            },
            {
                "TOKEN_PERSON_ID": "E2",
                "EC_IDENT": "a2",
                "ARRIVAL_DATE": "2022-01-03",
                "AGE_AT_ARRIVAL": "7002",
                "EC_DIAGNOSIS_01": "J18.9",
                "EC_ACUITY": "1077251000000100",
                "SEX": "2",
            },
            {
                "TOKEN_PERSON_ID": "E3",
                "EC_IDENT": "a3",
                "ARRIVAL_DATE": "2022-01-04",
                "AGE_AT_ARRIVAL": "50",
                "EC_DIAGNOSIS_01": "",
                "EC_ACUITY": "12345",
                "SEX": "9",
            },
        ],
    )
    out = tmp_path / "out"
    import_hes(out, ecds=ecds)
    rows = pl.read_csv(out / "ae_attendance.csv", infer_schema=False).sort("attendance_id")
    assert rows["diagnosis_snomed"].to_list() == ["233604007", None, None]
    assert rows["acuity"].to_list() == ["1", "5", None]
    people = pl.read_csv(out / "person.csv", infer_schema=False).sort("person_id")
    assert people["sex"].to_list() == ["M", "F", "U"]
    assert people["date_of_birth"].to_list()[1] == "2021-07-01"
    recon = _recon(out)
    assert any(r["code"] == "J18.9" and "not a SNOMED CT id" in r["reason"] for r in recon)
    assert any(r["code"] == "12345" and "acuity" in r["reason"] for r in recon)


def test_bad_files_give_one_line_and_exit_2(tmp_path: Path) -> None:
    lacking = _write(tmp_path / "apc.csv", [{"PSEUDO_HESID": "P1", "EPIKEY": "1"}])
    line = one_line_error(phm("import", "hes", "--apc", str(lacking), "--out", str(tmp_path / "o")))
    assert "apc.csv" in line and "ADMIDATE" in line
    binary = tmp_path / "op.csv"
    binary.write_bytes(b"\x00\x01\x02PK\x03\x04" * 50)
    line = one_line_error(phm("import", "hes", "--op", str(binary), "--out", str(tmp_path / "o")))
    assert "op.csv" in line
    line = one_line_error(phm("import", "hes", "--out", str(tmp_path / "o")))
    assert "--apc" in line


def test_ingest_and_run_complete_on_the_import(tmp_path: Path) -> None:
    out = tmp_path / "source"
    result = phm("import", "hes", "--apc", str(APC), "--ae", str(AE), "--op", str(OP), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "rows a second" in result.stdout
    store = tmp_path / "store.duckdb"
    result = phm("ingest", str(out), "--store", str(store), "--extract-date", "2010-01-01")
    assert result.returncode == 0, result.stderr
    assert "import_reconciliation.csv" in result.stdout  # listed as ignored, not loaded
    result = phm("run", "--store", str(store), "--as-of", "2008-03-31")
    assert result.returncode == 0, result.stderr
