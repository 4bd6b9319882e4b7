"""Reading source folders: Parquet as well as CSV, byte-order marks, supplied reference tables, extra files."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from openphm.ingest import ingest
from tests.support.sources import ALICE, BOB, EXTRACT, KEY, person, read_table, store_path

Rows = dict[str, list[dict[str, object]]]


@pytest.mark.parametrize("engine", ["duckdb", "polars"])
def test_parquet_sources_with_native_types(tmp_path: Path, engine: str) -> None:
    folder = tmp_path / "src"
    folder.mkdir()
    pl.DataFrame(
        {
            "nhs_number": [ALICE, BOB],
            "date_of_birth": [date(1950, 6, 15), date(1990, 1, 2)],
            "sex": ["F", "M"],
        }
    ).write_parquet(folder / "person.parquet")
    pl.DataFrame(
        {
            "nhs_number": [ALICE, ALICE],
            "event_date": [date(2023, 1, 1), date(2030, 1, 1)],
            "snomed_code": ["60621009", "60621009"],
            "value": [27.5, 30.0],
        }
    ).write_parquet(folder / "gp_event.parquet")
    store = store_path(tmp_path, engine)
    result = ingest(folder, store, key=KEY, engine=engine, extract_date=EXTRACT)
    events = read_table(store, "gp_event", engine)
    assert events.select("event_date", "value").rows() == [(date(2023, 1, 1), 27.5)]
    assert read_table(store, "quarantine", engine).select("table", "row", "reason").rows() == [
        ("gp_event", 2, "date_in_future")
    ]
    assert all(o.balanced for o in result.outcomes)


@pytest.mark.parametrize("engine", ["duckdb", "polars"])
def test_byte_order_mark_and_padded_values(tmp_path: Path, engine: str) -> None:
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "person.csv").write_bytes(
        "\ufeffnhs_number,date_of_birth,sex,ethnicity\n".encode()
        + f"{ALICE},1950-06-15, F ,   \n{BOB}, 1990-01-02,M,A\n".encode()
    )
    store = store_path(tmp_path, engine)
    ingest(folder, store, key=KEY, engine=engine, extract_date=EXTRACT)
    people = read_table(store, "person", engine).sort("date_of_birth")
    assert people.select("sex", "ethnicity").rows() == [("F", None), ("M", "A")]


def test_supplied_reference_tables_override_the_defaults(source: Callable[[Rows], Path], tmp_path: Path) -> None:
    folder = source(
        {
            "person": [person(ALICE, lsoa_code="E01000001", practice_code="Y90001")],
            "lsoa": [{"lsoa_code": "E01000001", "imd_decile": 2, "la_code": "E09000001", "la_name": "Somewhere"}],
            "practice": [
                {
                    "practice_code": "Y90001",
                    "pcn_code": "U00001",
                    "sub_icb_code": "99X",
                    "icb_code": "QZZ",
                    "region_code": "Y99",
                }
            ],
        }
    )
    (folder / "notes.txt").write_text("not a contract table")
    store = store_path(tmp_path, "duckdb")
    result = ingest(folder, store, key=KEY, extract_date=EXTRACT)
    row = read_table(store, "person").row(0, named=True)
    # The shipped IMD 2019 puts E01000001 in decile 9; the supplied table says 2, and wins.
    assert (row["imd_decile"], row["imd_quintile"]) == (2, 1)
    assert (row["pcn_code"], row["sub_icb_code"], row["icb_code"], row["region_code"]) == (
        "U00001",
        "99X",
        "QZZ",
        "Y99",
    )
    assert read_table(store, "lsoa").height == 1
    assert result.ignored_files == ["notes.txt"]
    assert "notes.txt" in read_table(store, "run_log").filter(metric="ignored_file")["item"].to_list()


def test_unknown_lsoa_keeps_the_person_without_deprivation(source: Callable[[Rows], Path], tmp_path: Path) -> None:
    store = store_path(tmp_path, "duckdb")
    ingest(source({"person": [person(ALICE, lsoa_code="W01000001")]}), store, key=KEY, extract_date=EXTRACT)
    row = read_table(store, "person").row(0, named=True)
    assert row["imd_decile"] is None and row["lsoa_code"] == "W01000001"
