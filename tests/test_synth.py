"""The synthetic population generator: determinism, the input contract, planted errors, identifiers, CLI."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import nhs_number
import polars as pl
import pytest

from openphm.contract.docs import reason_codes
from openphm.engine import open_store
from openphm.ingest.load import ingest
from openphm.pipeline import data_years
from openphm.synth import SynthError, SynthResult, generate
from tests.support.sources import KEY, read_table

SMALL = 2_500


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _ingest(result: SynthResult, store: Path) -> pl.DataFrame:
    ingested = ingest(result.out, store, key=KEY, extract_date=result.extract_date)
    for outcome in ingested.outcomes:
        assert outcome.balanced, outcome
    return read_table(store, "quarantine")


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    return generate(tmp_path_factory.mktemp("clean"), people=SMALL, seed=11, error_rate=0.0)


def test_same_seed_gives_byte_identical_files(tmp_path: Path, clean: SynthResult) -> None:
    again = generate(tmp_path / "again", people=SMALL, seed=11, error_rate=0.0)
    assert _digests(again.out) == _digests(clean.out)
    assert set(_digests(clean.out)) >= {"person.parquet", "gp_event.parquet", "practice.csv", "waiting_list.parquet"}


def test_same_seed_gives_byte_identical_csv_with_planted_errors(tmp_path: Path) -> None:
    first = generate(tmp_path / "a", people=1_500, seed=5, fmt="csv", error_rate=0.01)
    second = generate(tmp_path / "b", people=1_500, seed=5, fmt="csv", error_rate=0.01)
    assert _digests(first.out) == _digests(second.out)


def test_different_seed_gives_different_files(tmp_path: Path, clean: SynthResult) -> None:
    other = generate(tmp_path / "other", people=SMALL, seed=12, error_rate=0.0)
    differ = {name for name, digest in _digests(other.out).items() if _digests(clean.out)[name] != digest}
    assert {"person.parquet", "gp_event.parquet", "apc_episode.parquet"} <= differ


def test_every_contract_table_is_written(clean: SynthResult) -> None:
    expected = {
        "person",
        "opt_out",
        "gp_event",
        "gp_medication",
        "apc_episode",
        "apc_diagnosis",
        "apc_procedure",
        "ae_attendance",
        "op_appointment",
        "community_contact",
        "mh_contact",
        "social_care_service",
        "waiting_list",
    }
    assert {p.stem for p in clean.out.glob("*.parquet")} == expected
    assert all(clean.rows[name] > 0 for name in expected), clean.rows
    assert clean.extract_date == date(2025, 3, 31)
    practice = pl.read_csv(clean.out / "practice.csv")
    assert practice["practice_code"].str.starts_with("SYN").all()
    assert practice["practice_name"].str.contains("not a real").all()


def test_clean_folder_passes_the_contract(tmp_path: Path, clean: SynthResult) -> None:
    quarantine = _ingest(clean, tmp_path / "clean.duckdb")
    assert quarantine.height == 0, quarantine.group_by("table", "reason").len()
    person = read_table(tmp_path / "clean.duckdb", "person")
    # Geography and deprivation joined for everyone (real LSOAs, shipped practice ladder).
    assert person["imd_decile"].null_count() == 0
    assert person["icb_code"].null_count() == 0
    opted = pl.read_parquet(clean.out / "opt_out.parquet").height
    assert 0.015 < opted / SMALL < 0.05


def test_nhs_numbers_are_valid_and_from_the_testing_range(clean: SynthResult) -> None:
    numbers = pl.read_parquet(clean.out / "person.parquet")["nhs_number"].to_list()
    assert len(set(numbers)) == len(numbers)
    assert all(9_990_000_000 <= int(n) <= 9_999_999_999 for n in numbers)
    assert all(nhs_number.is_valid(n) for n in numbers)


@pytest.mark.parametrize(("id_column", "fmt"), [("nhs_number", "parquet"), ("person_id", "csv")])
def test_every_planted_error_is_quarantined(tmp_path: Path, id_column: str, fmt: str) -> None:
    result = generate(tmp_path / "src", people=1_200, seed=3, fmt=fmt, error_rate=0.005, id_column=id_column)
    quarantine = _ingest(result, tmp_path / "s.duckdb")
    caught = dict(quarantine.group_by("table").agg(pl.col("row").n_unique()).iter_rows())
    planted = {table: sum(counts.values()) for table, counts in result.planted.items()}
    assert caught == planted
    planted_reasons = {reason for counts in result.planted.values() for reason in counts}
    assert planted_reasons <= set(quarantine["reason"])
    impossible = {"nhs_number": {"person_id_is_nhs_number"}, "person_id": {"invalid_nhs_number"}}[id_column]
    assert set(quarantine["reason"]) == reason_codes() - impossible


def test_bad_options_raise_one_line_errors(tmp_path: Path) -> None:
    for kwargs in ({"people": 0}, {"people": 10, "fmt": "xlsx"}, {"people": 10, "error_rate": 2.0}):
        with pytest.raises(SynthError):
            generate(tmp_path / "x", **kwargs)


def _phm(*args: str, key: bool = False) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "OPENPHM_KEY"}
    if key:
        env["OPENPHM_KEY"] = KEY.decode()
    return subprocess.run(
        [sys.executable, "-m", "openphm", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_cli_happy_path_and_ingest_uses_the_extract_date_synth_wrote(tmp_path: Path) -> None:
    result = _phm("synth", "--people", "800", "--seed", "2", "--out", str(tmp_path / "o"), "--format", "csv")
    assert result.returncode == 0, result.stderr
    assert "2025-03-31" in result.stdout and "extract_date.txt" in result.stdout
    assert (tmp_path / "o" / "person.csv").exists()
    assert (tmp_path / "o" / "practice.csv").exists()
    assert (tmp_path / "o" / "extract_date.txt").read_text(encoding="utf-8") == "2025-03-31\n"

    store = tmp_path / "s.duckdb"
    ingested = _phm("ingest", str(tmp_path / "o"), "--store", str(store), key=True)  # no --extract-date
    assert ingested.returncode == 0, ingested.stderr
    assert "extract_date.txt" not in ingested.stdout  # not listed among the ignored files
    log = read_table(store, "run_log").filter(metric="extract_date")
    assert log["detail"].to_list() == ["2025-03-31"]
    # The planted dates after the window are quarantined, so they add no data year.
    assert read_table(store, "quarantine").filter(reason="date_in_future").height > 0
    eng = open_store(store, "duckdb")
    try:
        years = data_years(eng)
    finally:
        eng.close()
    assert years.as_of == tuple(date(y, 3, 31) for y in (2022, 2023, 2024, 2025))
    assert years.left_out == ()


def test_a_malformed_extract_date_file_is_one_line_exit_2(tmp_path: Path) -> None:
    generate(tmp_path / "o", people=100, seed=1, error_rate=0.0)
    (tmp_path / "o" / "extract_date.txt").write_text("31/03/2025\n", encoding="utf-8")
    result = _phm("ingest", str(tmp_path / "o"), "--store", str(tmp_path / "s.duckdb"), key=True)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "extract_date.txt" in lines[0] and "YYYY-MM-DD" in lines[0]


def test_cli_bad_option_is_one_line_exit_2(tmp_path: Path) -> None:
    result = _phm("synth", "--people", "100", "--out", str(tmp_path / "o"), "--format", "xml")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--format" in lines[0]


def test_emergency_admissions_use_the_modern_methods_in_their_shares(clean: SynthResult) -> None:
    """2A, 2B and 2D appear in their set shares (docs/synth.md); 28 only before April 2013; no 2C (home birth)."""
    episodes = pl.read_parquet(clean.out / "apc_episode.parquet").with_columns(
        pl.col("admission_date").cast(pl.Date), pl.col("admission_method").cast(pl.String)
    )
    emergency = episodes.filter(pl.col("admission_method").str.starts_with("2"))
    shares = dict(emergency.group_by("admission_method").len().with_columns(pl.col("len") / emergency.height).rows())
    assert "2C" not in shares
    assert emergency.filter(pl.col("admission_method") == "28")["admission_date"].max() is None or (
        emergency.filter(pl.col("admission_method") == "28")["admission_date"].max() < date(2013, 4, 1)
    )
    assert emergency.height > 500
    for method, share in {"21": 0.69, "22": 0.18, "2D": 0.05, "2B": 0.02, "2A": 0.015}.items():
        assert abs(shares.get(method, 0.0) - share) < 0.3 * share + 0.01, (method, shares)
