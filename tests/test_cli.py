"""The command line: clear one-line errors with exit code 2, never a traceback, and the happy paths."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from tests.support.cli import one_line_error, phm
from tests.support.sources import ALICE, KEY, person

Rows = dict[str, list[dict[str, object]]]


def test_ingest_without_key_refuses_and_writes_no_store(source: Callable[[Rows], Path], tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    line = one_line_error(phm("ingest", str(source({"person": [person(ALICE)]})), "--store", str(store), key=False))
    assert "key" in line
    assert not store.exists()


def test_missing_required_column_names_file_and_column(source: Callable[[Rows], Path], tmp_path: Path) -> None:
    folder = source({"person": [{k: v for k, v in person(ALICE).items() if k != "sex"}]})
    line = one_line_error(phm("ingest", str(folder), "--store", str(tmp_path / "s.duckdb")))
    assert "person.csv" in line and "'sex'" in line


def test_unreadable_file_names_the_file(source: Callable[[Rows], Path], tmp_path: Path) -> None:
    folder = source({"person": [person(ALICE)]})
    (folder / "gp_event.parquet").write_bytes(b"this is not parquet at all")
    line = one_line_error(phm("ingest", str(folder), "--store", str(tmp_path / "s.duckdb")))
    assert "gp_event.parquet" in line


def test_malformed_csv_rows_name_the_file(source: Callable[[Rows], Path], tmp_path: Path) -> None:
    folder = source({"person": [person(ALICE)]})
    (folder / "gp_event.csv").write_text(
        'nhs_number,event_date,snomed_code\n9990000018,2023-01-01,"38341003\n9990000018,2023-01-01\n'
    )
    line = one_line_error(phm("ingest", str(folder), "--store", str(tmp_path / "s.duckdb")))
    assert "gp_event.csv" in line and ALICE not in line


def test_child_table_without_its_parent_is_refused(source: Callable[[Rows], Path], tmp_path: Path) -> None:
    folder = source(
        {"person": [person(ALICE)], "apc_diagnosis": [{"episode_id": "E1", "position": 1, "icd10_code": "I50"}]}
    )
    line = one_line_error(phm("ingest", str(folder), "--store", str(tmp_path / "s.duckdb")))
    assert "apc_diagnosis.csv" in line and "apc_episode" in line


def test_person_table_is_required(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    line = one_line_error(phm("ingest", str(tmp_path / "src"), "--store", str(tmp_path / "s.duckdb")))
    assert "person" in line


def test_invalid_purpose_and_date_are_refused(source: Callable[[Rows], Path], tmp_path: Path) -> None:
    folder = str(source({"person": [person(ALICE)]}))
    assert "purpose" in one_line_error(
        phm("ingest", folder, "--store", str(tmp_path / "s.duckdb"), "--purpose", "marketing")
    )
    result = phm("ingest", folder, "--store", str(tmp_path / "s.duckdb"), "--extract-date", "31/12/2024")
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_run_on_missing_store(tmp_path: Path) -> None:
    assert "phm ingest" in one_line_error(phm("run", "--store", str(tmp_path / "none.duckdb")))


@pytest.mark.parametrize("engine", ["duckdb", "polars"])
def test_demo_runs_end_to_end(tmp_path: Path, engine: str) -> None:
    result = phm("demo", "--out", str(tmp_path / "demo"), "--people", "3000", "--engine", engine, key=False)
    assert result.returncode == 0, result.stderr
    assert "throwaway" in result.stdout
    assert "Population" in result.stdout and "Quarantine by reason" in result.stdout and "2025-03-31" in result.stdout
    assert "leaked" not in result.stderr
    report = tmp_path / "demo" / "report.html"
    assert "Report:" in result.stdout and report.stat().st_size > 50_000
    assert "Methods" in report.read_text(encoding="utf-8")
    assert "Serve it: phm serve --store" in result.stdout  # with a demo admin whose password is in a 600 file
    assert (tmp_path / "demo" / "demo-password.txt").stat().st_mode & 0o777 == 0o600


def test_summary_counts_of_people_are_disclosure_controlled(source: Callable[[Rows], Path], tmp_path: Path) -> None:
    from openphm import api

    store = tmp_path / "s.duckdb"
    people = [person(n) for n in (ALICE, "9990000026", "9990000034")]
    api.ingest(source({"person": people}), store, key=KEY, extract_date=date(2025, 1, 1))
    api.run(store, as_of=(date(2024, 3, 31),))
    figures = api.summary(store)
    assert figures.population == [(date(2024, 3, 31), None)]  # three people: redacted, never shown as 3
    assert api.summary(store, policy="none").population == [(date(2024, 3, 31), 3)]


def test_ingest_run_and_tables(source: Callable[[Rows], Path], tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    result = phm(
        "ingest", str(source({"person": [person(ALICE)]})), "--store", str(store), "--extract-date", "2025-01-01"
    )
    assert result.returncode == 0, result.stderr
    assert "balanced" in result.stdout
    result = phm("run", "--store", str(store), "--as-of", "2024-03-31")
    assert result.returncode == 0, result.stderr
    listing = phm("tables", "--store", str(store)).stdout
    assert "population\t1" in listing and "person\t1" in listing


def test_key_new_writes_a_private_key_once(tmp_path: Path) -> None:
    path = tmp_path / "phm.key"
    assert phm("key", "new", str(path)).returncode == 0
    assert len(path.read_bytes().strip()) == 64
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert phm("key", "new", str(path)).returncode == 2
