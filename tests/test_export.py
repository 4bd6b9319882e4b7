"""`phm export`: every format, the policy gate for exact counts, filters, and no small count in any file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from openphm.analytics.published import published_tables
from openphm.cli import app
from openphm.ingest import ingest
from openphm.ingest.policy import load_policy
from openphm.pipeline import run
from openphm.stages import by_name
from tests.support.sources import EXTRACT, KEY, nhs_number, person, write_source

Rows = dict[str, list[dict[str, object]]]
PRACTICES = {"Y90001": "U90001", "Y90002": "U90001", "Y90003": "U90002"}
COUNT_COLUMNS = ("people", "emergency_admissions", "ae_attendances", "gp_contacts", "population")


def _source_rows() -> Rows:
    """60 people over three practices (30, 20, 10), so that many cells are small."""
    numbers = [n for n in (nhs_number(s) for s in range(1, 200)) if n][:60]
    practices = ["Y90001"] * 30 + ["Y90002"] * 20 + ["Y90003"] * 10
    people = [
        person(
            n,
            practice_code=p,
            sex="F" if i % 2 else "M",
            date_of_birth=f"{1940 + i % 70}-0{1 + i % 9}-01",
            ethnicity="ABHMRZ"[i % 6],
        )
        for i, (n, p) in enumerate(zip(numbers, practices, strict=True))
    ]
    practice = [
        {
            "practice_code": code,
            "practice_name": f"Practice {code}",
            "pcn_code": pcn,
            "pcn_name": f"PCN {pcn}",
            "sub_icb_code": "99X",
            "sub_icb_name": "Sub-ICB",
            "icb_code": "QZZ",
            "icb_name": "ICB",
            "region_code": "Y99",
            "region_name": "Region",
        }
        for code, pcn in PRACTICES.items()
    ]
    return {"person": people, "practice": practice}


def _store(folder: Path, purpose: str, checked_on: str | None = None) -> Path:
    rows = _source_rows()
    if checked_on:  # everyone cleared by a national check of that date
        rows["opt_out_cleared"] = [{"nhs_number": p["nhs_number"], "checked_on": checked_on} for p in rows["person"]]
    store = folder / f"{purpose}{'-checked' if checked_on else ''}.duckdb"
    ingest(
        write_source(folder / store.stem, rows),
        store,
        key=KEY,
        purpose=purpose,
        extract_date=EXTRACT,
    )
    stages = [s for name, s in by_name().items() if name in ("population", "analytics")]
    run(store, stages=stages)
    return store


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("export")
    return {
        "planning": _store(folder, "planning"),
        "direct-care": _store(folder, "direct-care"),
        "old-check": _store(folder, "planning", checked_on="2025-01-31"),
    }


def phm(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def _assert_protected(frame: pl.DataFrame) -> None:
    for column in COUNT_COLUMNS:
        if column in frame.columns:
            values = frame[column].drop_nulls().cast(pl.Float64).to_numpy()
            assert not ((values >= 1) & (values <= 7)).any(), column
            assert (values % 5 == 0).all(), column


@pytest.mark.parametrize("fmt", ["csv", "parquet", "xlsx"])
def test_every_format_writes_every_table_with_no_count_of_1_to_7(
    stores: dict[str, Path], tmp_path: Path, fmt: str
) -> None:
    out = tmp_path / "out"
    code, output = phm("export", "--store", str(stores["planning"]), "--out", str(out), "--format", fmt)
    assert code == 0, output
    expected = published_tables(stores["planning"])
    assert expected["agg_population"].num_rows > 100
    if fmt == "xlsx":
        book = load_workbook(out / "openphm-export.xlsx", read_only=True)
        assert sorted(book.sheetnames) == sorted(expected)
        for name in book.sheetnames:
            rows = list(book[name].iter_rows(values_only=True))
            assert list(rows[0]) == expected[name].column_names and len(rows) - 1 == expected[name].num_rows
            width = len(rows[0])
            body = [[*row, *[None] * (width - len(row))] for row in rows[1:]]  # trailing empty cells are not read
            if body:
                _assert_protected(pl.DataFrame(body, schema=list(rows[0]), orient="row", infer_schema_length=None))
    else:
        for name, table in expected.items():
            path = out / f"{name}.{fmt}"
            frame = pl.read_csv(path, infer_schema_length=None) if fmt == "csv" else pl.read_parquet(path)
            assert frame.height == table.num_rows
            _assert_protected(frame)
    # The exact store does hold small counts: the files are protected, not the data small-free.
    exact = published_tables(stores["planning"], policy="none")["agg_population"]
    people = exact.column("people").to_numpy()
    assert ((people >= 1) & (people <= 7)).any()
    log = json.loads((out / "export_log.json").read_text())
    assert log["policy"] == "nhs" and log["format"] == fmt and not log["override_unsuppressed"]


def test_exact_counts_are_refused_without_direct_care_or_the_override(stores: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "none"
    store = stores["planning"]
    code, output = phm("export", "--store", str(store), "--out", str(out), "--policy", "none")
    assert code == 2 and "--allow-unsuppressed" in output and "Traceback" not in output
    assert not out.exists()
    code, output = phm(
        "export", "--store", str(store), "--out", str(out), "--policy", "none", "--purpose", "direct-care"
    )
    assert code == 2 and "not ingested for direct care" in output and not out.exists()
    code, output = phm("export", "--store", str(store), "--out", str(out), "--policy", "none", "--allow-unsuppressed")
    assert code == 0, output
    log = json.loads((out / "export_log.json").read_text())
    assert log["policy"] == "none" and log["override_unsuppressed"]
    beside = store.parent / f"{store.name}.export-log.jsonl"
    assert any(json.loads(line)["override_unsuppressed"] for line in beside.read_text().splitlines())
    people = pl.read_csv(out / "agg_population.csv")["people"]
    assert ((people >= 1) & (people <= 7)).any()  # exact, as asked


def test_direct_care_store_may_export_exact_counts(stores: dict[str, Path], tmp_path: Path) -> None:
    store = stores["direct-care"]
    out = tmp_path / "dc"
    code, output = phm(
        "export", "--store", str(store), "--out", str(out), "--policy", "none", "--purpose", "direct-care"
    )
    assert code == 0, output
    log = json.loads((out / "export_log.json").read_text())
    assert log["purpose"] == "direct-care" and not log["override_unsuppressed"]


def test_level_and_code_keep_an_area_and_what_lies_within_it(stores: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "pcn"
    code, output = phm(
        "export", "--store", str(stores["planning"]), "--out", str(out), "--level", "practice", "--code", "U90001"
    )
    assert code == 0, output
    frame = pl.read_csv(out / "agg_population.csv", infer_schema_length=None)
    assert set(frame["level"]) == {"practice"} and set(frame["area_code"]) == {"Y90001", "Y90002"}
    # Filtering happens after protection: the same cells as in the full output.
    full = pl.from_arrow(published_tables(stores["planning"])["agg_population"])
    same = full.filter(pl.col("level") == "practice", pl.col("area_code").is_in(["Y90001", "Y90002"]))
    assert sorted(frame["people"].drop_nulls().to_list()) == sorted(same["people"].drop_nulls().to_list())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--format", "pdf"), "format"),
        (("--policy", "strict"), "policy"),
        (("--level", "county"), "level"),
    ],
)
def test_bad_options_are_one_line_errors(
    stores: dict[str, Path], tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    code, output = phm("export", "--store", str(stores["planning"]), "--out", str(tmp_path / "x"), *args)
    assert code == 2 and message in output and "Traceback" not in output


def test_a_store_without_aggregates_is_refused(source: Callable[[Rows], Path], tmp_path: Path) -> None:
    store = tmp_path / "bare.duckdb"
    ingest(source({"person": [person(nhs_number(1) or "")]}), store, key=KEY, extract_date=EXTRACT)
    code, output = phm("export", "--store", str(store), "--out", str(tmp_path / "x"))
    assert code == 2 and "phm run" in output


def test_planning_outputs_from_a_direct_care_store_are_refused_unless_overridden(
    stores: dict[str, Path], tmp_path: Path
) -> None:
    store = stores["direct-care"]
    out = tmp_path / "mixed"
    code, output = phm("export", "--store", str(store), "--out", str(out))
    assert code == 2 and "Traceback" not in output and not out.exists()
    assert "ingested for direct-care" in output and "--allow-purpose-mismatch" in output
    assert len(output.strip().splitlines()) == 1
    code, output = phm("report", "--store", str(store), "--out", str(tmp_path / "r.html"))
    assert code == 2 and "ingested for direct-care" in output and not (tmp_path / "r.html").exists()

    code, output = phm("export", "--store", str(store), "--out", str(out), "--allow-purpose-mismatch")
    assert code == 0, output
    log = json.loads((out / "export_log.json").read_text())
    assert log["purpose"] == "planning" and log["store_purpose"] == "direct-care"
    assert log["override_purpose_mismatch"] and log["opt_out_policy_version"] == load_policy().version
    code, output = phm("report", "--store", str(store), "--out", str(tmp_path / "r.html"), "--allow-purpose-mismatch")
    assert code == 0, output
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "explicit override" in page
    beside = [json.loads(line) for line in (store.parent / f"{store.name}.export-log.jsonl").read_text().splitlines()]
    assert {e.get("output", "export") for e in beside if e["override_purpose_mismatch"]} == {"export", "report"}


def test_outputs_state_purpose_policy_version_and_an_old_national_check(
    stores: dict[str, Path], tmp_path: Path
) -> None:
    version = load_policy().version
    out = tmp_path / "planning"
    assert phm("export", "--store", str(stores["planning"]), "--out", str(out))[0] == 0
    log = json.loads((out / "export_log.json").read_text())
    assert (log["purpose"], log["store_purpose"], log["opt_out_policy_version"]) == ("planning", "planning", version)
    assert "Type 1 objections" in log["opt_outs"] and log["warnings"] == []

    old = tmp_path / "old"
    code, output = phm("export", "--store", str(stores["old-check"]), "--out", str(old))
    assert code == 0 and "days old" in output
    log = json.loads((old / "export_log.json").read_text())
    assert log["national_check"] == "2025-01-31" and "days old" in log["warnings"][0]
    assert phm("report", "--store", str(stores["old-check"]), "--out", str(tmp_path / "o.html"))[0] == 0
    page = (tmp_path / "o.html").read_text(encoding="utf-8")
    assert "checked on 2025-01-31" in page and f"opt-out policy {version}" in page
