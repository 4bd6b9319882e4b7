"""Hostile area names round-trip through every output format, and none is live in a spreadsheet.

The names are planted in the reference data (the practice hierarchy a user supplies) and come out in the
aggregate tables' ``area_name``. CSV and xlsx must neutralise them (OWASP CSV injection rule), Parquet keeps
them raw (it is data, not a spreadsheet), and the HTML report shows them as escaped text.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from openphm.cli import app
from openphm.ingest import ingest
from openphm.outputs.safe import TRIGGERS, neutralise_table
from openphm.pipeline import run
from openphm.stages import by_name
from tests.support.sources import EXTRACT, KEY, nhs_number, person, write_source

HOSTILE = {
    "practice_name": '=HYPERLINK("http://x.invalid","click")',
    "pcn_name": "+1",
    "sub_icb_name": "@SUM(A1)",
    "icb_name": "-2+3",
    "region_name": "\t=1+1",
}
HOSTILE_PRACTICE_2 = "\r=cmd|' /C calc'!A0"
MARKUP = '</script><b onclick="x">bold</b>'
NAMES = {*HOSTILE.values(), HOSTILE_PRACTICE_2, MARKUP}


def _rows() -> dict[str, list[dict[str, object]]]:
    numbers = [n for n in (nhs_number(s) for s in range(1, 80)) if n][:40]
    practices = ["Y90001"] * 20 + ["Y90002"] * 10 + ["Y90003"] * 10
    people = [
        person(n, practice_code=p, sex="FM"[i % 2], date_of_birth=f"{1940 + i}-03-01")
        for i, (n, p) in enumerate(zip(numbers, practices, strict=True))
    ]
    base = {"pcn_code": "U90001", "sub_icb_code": "99X", "icb_code": "QZZ", "region_code": "Y99"}
    practice = [
        {"practice_code": "Y90001", **base, **HOSTILE},
        {"practice_code": "Y90002", **base, **HOSTILE, "practice_name": HOSTILE_PRACTICE_2},
        {"practice_code": "Y90003", **base, **HOSTILE, "practice_name": MARKUP},
    ]
    return {"person": people, "practice": practice}


def _source(folder: Path) -> Path:
    """The rows as CSV, every field quoted: a bare carriage return inside a field would end the row."""
    rows = _rows()
    write_source(folder, {"person": rows["person"]})
    with (folder / "practice.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows["practice"][0]), quoting=csv.QUOTE_ALL)
        writer.writeheader()
        writer.writerows(rows["practice"])
    return folder


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hostile")
    store = folder / "store.duckdb"
    ingest(_source(folder / "source"), store, key=KEY, extract_date=EXTRACT)
    run(store, stages=[s for n, s in by_name().items() if n in ("population", "analytics")])
    return store


def _export(store: Path, out: Path, fmt: str) -> None:
    result = CliRunner().invoke(app, ["export", "--store", str(store), "--out", str(out), "--format", fmt])
    assert result.exit_code == 0, result.output


def test_csv_quotes_every_hostile_name_and_no_field_is_live(store: Path, tmp_path: Path) -> None:
    _export(store, tmp_path, "csv")
    seen: set[str] = set()
    for path in tmp_path.glob("agg_*.csv"):
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                for column, value in row.items():
                    assert not value.startswith(("=", "+", "@", "\t", "\r")), (path.name, column)
                    if value.startswith("-"):  # only a number may start with a minus
                        float(value)
                if row.get("area_name", "").startswith("'"):
                    seen.add(row["area_name"][1:])
    assert seen == NAMES - {MARKUP}, "every hostile name reaches the CSV, quoted"


def test_xlsx_writes_hostile_names_as_text_cells_never_formulas(store: Path, tmp_path: Path) -> None:
    _export(store, tmp_path, "xlsx")
    book = load_workbook(tmp_path / "openphm-export.xlsx")
    names: set[str] = set()
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    assert cell.data_type == "s"
                    # XML reading turns the written carriage return into a line feed
                    assert cell.quotePrefix == cell.value.startswith((*TRIGGERS, "\n")), cell.value
                    names.add(cell.value)
    # The names are shown as given: the quote prefix is a style flag, not a character.
    assert names >= {n.replace("\r", "\n") for n in NAMES}


def test_parquet_keeps_the_names_as_raw_data(store: Path, tmp_path: Path) -> None:
    _export(store, tmp_path, "parquet")
    names = set(pq.read_table(tmp_path / "agg_population.parquet").column("area_name").to_pylist())
    assert names >= NAMES


def test_report_shows_the_names_as_escaped_text(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["report", "--store", str(store), "--out", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert "<b onclick" not in html and html.count("</script>") == len(re.findall(r"<script\b", html))
    assert "&lt;/script&gt;&lt;b onclick=" in html or "\\u003c/script>\\u003cb onclick=" in html


def test_negative_numbers_stay_numbers_and_only_text_is_touched() -> None:
    table = pa.table(
        {
            "name": ["-2+3", "ok", None, "x=1", "@SUM(A1)"],
            "change": [-2, 3, None, -5, 0],
            "rate": [-0.5, 1.0, None, 2.0, -1e-9],
            "label": pa.array(["=a", "=a", "b", "-1", "c"]).dictionary_encode(),
        }
    )
    safe = neutralise_table(table)
    assert safe.column("name").to_pylist() == ["'-2+3", "ok", None, "x=1", "'@SUM(A1)"]
    assert safe.column("change").equals(table.column("change"))
    assert safe.column("rate").equals(table.column("rate"))
    assert safe.column("label").to_pylist() == ["'=a", "'=a", "b", "'-1", "c"]
    # The file calculators echo the user's own numbers as text: those stay numbers.
    echoed = pa.table({"sbp": ["-2", "+1.5", "1E3", "-2+3", "=1"]})
    kept = neutralise_table(echoed, keep_numbers=True).column("sbp").to_pylist()
    assert kept == ["-2", "+1.5", "1E3", "'-2+3", "'=1"]


def test_the_score_calculator_writes_formula_like_ids_as_text(tmp_path: Path) -> None:
    from openphm.risk.scoring import score_file

    source = tmp_path / "codes.csv"
    source.write_text('id,code\n"=HYPERLINK(""http://x.invalid"")",I500\n@id,E119\nplain,I10\n', encoding="utf-8")
    out = tmp_path / "scores.csv"
    assert score_file("charlson", source, out) == 3
    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(r["id"] for r in rows) == ['\'=HYPERLINK("http://x.invalid")', "'@id", "plain"]
    assert all(not v.startswith(("=", "@", "+")) for r in rows for v in r.values())
