"""The cohort stage's tables are identical on duckdb, polars and spark, over every rule type."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

from tests.support.cohorts import NHS, STATIN, Rows, acsc_tables, bp_events, pipeline, upstream
from tests.support.sources import read_table, write_source

DATES = (date(2023, 3, 31), date(2024, 3, 31))


def _tables() -> tuple[Rows, dict[str, pa.Table]]:
    tables = acsc_tables()
    tables["gp_event"] = bp_events()
    tables["gp_medication"] = [
        {"nhs_number": NHS[w], "issue_date": d, "dmd_code": STATIN, "bnf_code": None}
        for w, d in (("b", "2023-01-05"), ("c", "2022-02-01"))
    ]
    who = [chr(ord("a") + i) for i in range(len(tables["person"]))]
    n = len(who)

    def both(columns: dict[str, list[object]]) -> pa.Table:
        return pa.concat_tables([upstream({"who": who, **columns}, as_of) for as_of in DATES])

    extra = {
        "activity": both(
            {
                "open_waiting_lists": [i % 6 for i in range(n)],
                "ae_attendances": [i % 7 for i in range(n)],
                "emergency_admissions": [i % 4 for i in range(n)],
            }
        ),
        "risk": both(
            {"qrisk3": [None if i % 5 == 0 else i * 1.5 for i in range(n)], "efi": [i / 40 for i in range(n)]}
        ),
    }
    return tables, extra


def _cohort_tables(store: Path, engine: str) -> dict[str, pl.DataFrame]:
    out = {}
    for name in ("cohort_member", "cohort_attrition"):
        frame = read_table(store, name, engine)
        out[name] = frame.sort(frame.columns, nulls_last=True)
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pl.DataFrame]:
    tmp = tmp_path_factory.mktemp("duckdb")
    tables, extra = _tables()
    counter = iter(range(100))

    def source(rows: Rows) -> Path:
        return write_source(tmp / f"source{next(counter)}", rows)

    return _cohort_tables(pipeline(source, tmp, tables, extra=extra, as_of=DATES), "duckdb")


@pytest.mark.parametrize("engine", ["polars", pytest.param("spark", marks=pytest.mark.spark)])
def test_cohort_tables_identical_across_engines(
    reference: dict[str, pl.DataFrame], source: Callable[[Rows], Path], tmp_path: Path, engine: str
) -> None:
    tables, extra = _tables()
    other = _cohort_tables(pipeline(source, tmp_path, tables, engine=engine, extra=extra, as_of=DATES), engine)
    for name, frame in reference.items():
        assert other[name].schema == frame.schema, name
        assert other[name].equals(frame), name
    members = reference["cohort_member"]
    assert members["cohort"].n_unique() == 6  # every shipped cohort has members here
    assert reference["cohort_attrition"].filter(pl.col("status") != "ok").is_empty()
