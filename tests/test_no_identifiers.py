"""No valid NHS number appears anywhere in the store: not in any table, the run log or the quarantine."""

from __future__ import annotations

import re
from pathlib import Path

import nhs_number
import polars as pl

from openphm.engine import open_store
from openphm.ingest import ingest
from openphm.pipeline import run
from openphm.stages import STAGES
from tests.support.sources import EXTRACT, KEY, read_table, store_path

TEN_DIGITS = re.compile(r"(?<![0-9])[0-9]{10}(?![0-9])")


def _valid_numbers_in(text: str) -> list[str]:
    return [m for m in TEN_DIGITS.findall(text.replace(" ", "")) if nhs_number.is_valid(m)]


def test_scanner_finds_numbers_with_and_without_spaces() -> None:
    assert _valid_numbers_in("id 943 476 5919 and 9990000018; not 9990000019") == ["9434765919", "9990000018"]


def test_store_holds_no_nhs_number_in_any_string_column(demo_source: Path, tmp_path: Path) -> None:
    store = store_path(tmp_path, "duckdb")
    ingest(demo_source, store, key=KEY, extract_date=EXTRACT)
    run(store, stages=STAGES)
    source_numbers = {
        n.replace(" ", "") for n in pl.read_csv(demo_source / "person.csv", infer_schema=False)["nhs_number"] if n
    }
    assert len(source_numbers) > 250  # the input really is full of NHS numbers

    eng = open_store(store)
    tables = eng.tables()
    eng.close()
    assert {"run_log", "quarantine", "person", "gp_event"} <= set(tables)
    scanned = 0
    for name in tables:
        frame = read_table(store, name)
        for column, dtype in frame.schema.items():
            if dtype == pl.String:
                for value in frame[column].drop_nulls():
                    assert not _valid_numbers_in(value), f"{name}.{column}"
                    scanned += 1
    assert scanned > 5000
    # The raw file bytes too: not even a fragment of a source number survives anywhere in the store.
    raw = store.read_bytes()
    assert not [n for n in source_numbers if n.encode() in raw]
