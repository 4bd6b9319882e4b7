"""Test data helpers shared by the test modules: the key, engines, test NHS numbers, source folders, store readers."""

from __future__ import annotations

import csv
import hashlib
from datetime import date
from pathlib import Path

import narwhals as nw
import polars as pl
import pytest

from openphm.engine import open_store

KEY = b"test-key-0123456789abcdef-not-secret"
EXTRACT = date(2025, 6, 30)
ENGINES = [
    "duckdb",
    "polars",
    pytest.param("spark", marks=pytest.mark.spark),
]

# NHS numbers from the range reserved for testing (999 000 0000 - 999 999 9999), Modulus 11 valid.
ALICE, BOB, CAROL, DAVE = "9990000018", "9990000026", "9990000034", "9990000042"


def store_path(tmp_path: Path, engine: str, name: str = "store") -> Path:
    return tmp_path / (f"{name}.duckdb" if engine == "duckdb" else name)


def write_source(folder: Path, tables: dict[str, list[dict[str, object]]]) -> Path:
    """Write each table's rows as ``<table>.csv`` (the header is the first row's keys)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        with (folder / f"{name}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    return folder


def person(nhs: str, **overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "nhs_number": nhs,
        "date_of_birth": "1950-06-15",
        "sex": "F",
        "ethnicity": "A",
        "lsoa_code": "E01000001",
        "practice_code": "Y90001",
        "registration_start": "2000-01-01",
        "registration_end": None,
        "date_of_death": None,
        "acg_png": None,
    }
    row.update(overrides)
    return row


def read_table(store: Path, table: str, engine: str = "duckdb") -> pl.DataFrame:
    """A stored table as a Polars DataFrame, whatever engine wrote it."""
    eng = open_store(store, engine)
    try:
        return nw.to_native(eng.table(table).collect(backend="polars"))
    finally:
        eng.close()


def nhs_number(serial: int) -> str | None:
    """A Modulus 11 valid number from the range reserved for testing (999 ...), or None for an invalid serial."""
    body = f"999{serial:06d}"
    remainder = sum(int(d) * w for d, w in zip(body, range(10, 1, -1), strict=True)) % 11
    check = 11 - remainder
    if check == 10:
        return None
    return body + str(0 if check == 11 else check)


def fingerprint(store: Path) -> dict[str, str]:
    """Content hash of every file of a store (one file, or a folder)."""
    files = [store] if store.is_file() else sorted(p for p in store.rglob("*") if p.is_file())
    return {str(p.relative_to(store.parent)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
