"""`phm report` on a real store: the demo fixture ingested and run through every stage.

The page must open offline in headless Chromium with no error and no request, draw every chart, redraw for
another area, hold the methods (with the QRISK3 disclaimer), and show no count of 1-7 anywhere.
"""

from __future__ import annotations

import csv
import json
import re
from importlib.resources import as_file
from pathlib import Path

import pytest
from typer.testing import CliRunner

from openphm.charts import VENDOR_SCRIPTS, vendor_script
from openphm.cli import app
from openphm.content import content_path
from openphm.disclosure import POLICIES
from openphm.ingest import ingest
from openphm.pipeline import run
from openphm.report import write_report
from openphm.report.charts import Chart
from openphm.report.check import DisclosureError, check_disclosed
from openphm.report.model import Area, Methods, Report
from openphm.stages import STAGES
from tests.support.report import chart_marks, chart_svg, opened
from tests.support.sources import EXTRACT, KEY, store_path

COPIES = 10
"""The demo fixture's 300 people are too few for a chart to survive disclosure control (most cells are 1-7),
so the tests use it 10 times over, each copy with its own test NHS numbers and record ids."""


def _nhs(stem: str) -> str | None:
    """The 10-digit NHS number of a 9-digit stem, or None where Modulus 11 gives no check digit."""
    check = 11 - sum(int(d) * w for d, w in zip(stem, range(10, 1, -1), strict=True)) % 11
    return None if check == 10 else stem + str(check % 11)


def _copy(value: str, column: str, k: int) -> str | None:
    if column == "nhs_number":
        digits = value.replace(" ", "")
        if len(digits) != 10 or not digits.isdigit() or _nhs(digits[:9]) != digits:
            return value  # a planted error stays one
        return _nhs(f"999{(int(digits[3:9]) + k * 40_000) % 1_000_000:06d}")
    return f"{value}c{k}" if value and column.endswith("_id") else value


def scaled_fixture(target: Path, copies: int) -> Path:
    """The demo fixture repeated ``copies`` times: every person-keyed row once per copy, renumbered."""
    target.mkdir(parents=True)
    with as_file(content_path("fixtures", "demo")) as fixture:
        for file in sorted(Path(fixture).glob("*.csv")):
            with file.open(newline="", encoding="utf-8") as handle:
                rows = list(csv.DictReader(handle))
            columns = list(rows[0]) if rows else []
            keyed = "nhs_number" in columns or "episode_id" in columns
            out = []
            for k in range(copies if keyed else 1):
                for row in rows:
                    new = {c: _copy(v, c, k) for c, v in row.items()}
                    if new.get("nhs_number", "") is not None:
                        out.append(new)
            with (target / file.name).open("w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
                writer.writeheader()
                writer.writerows(out)
    return target


def _store(tmp: Path, engine: str) -> Path:
    store = store_path(tmp, engine)
    source = tmp / "source"
    if not source.exists():
        scaled_fixture(source, COPIES)
    ingest(source, store, key=KEY, engine=engine, extract_date=EXTRACT)
    run(store, stages=STAGES, engine=engine)
    return store


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _store(tmp_path_factory.mktemp("report-store"), "duckdb")


@pytest.fixture(scope="module")
def report(store: Path) -> Path:
    out = store.parent / "report.html"
    result = write_report(store, out)
    assert result.path == out and result.bytes == out.stat().st_size and result.charts > 5
    return out


def _blob(page: Path) -> dict:
    html = page.read_text(encoding="utf-8")
    match = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.DOTALL)
    assert match
    return json.loads(match.group(1))


def test_report_opens_offline_and_draws_every_chart(report: Path) -> None:
    with opened(report) as visit:
        marks = chart_marks(visit.page)
        assert len(marks) == len(_blob(report)["charts"])
        assert all(n > 0 for n in marks.values()), f"charts without marks: {marks}"
        assert not visit.console_errors and not visit.page_errors, visit.console_errors + visit.page_errors
        assert visit.requests == [report.resolve().as_uri()], "the page fetched something besides itself"
        assert not visit.failed


def test_picker_redraws_the_charts_for_another_area(report: Path) -> None:
    blob = _blob(report)
    practices = [a for a in blob["areas"] if a["level"] == "practice"]
    assert len(practices) >= 2
    with opened(report) as visit:
        page = visit.page
        before = {c["id"]: chart_svg(page, c["id"]) for c in blob["charts"]}
        chain, key = [], practices[0]["key"]
        by_key = {a["key"]: a for a in blob["areas"]}
        while by_key[key]["parent"] is not None:
            chain.insert(0, by_key[key])
            key = by_key[key]["parent"]
        for area in chain:  # drill down, one level at a time, as a reader would
            page.select_option(f"select[data-level={area['level']}]", area["key"])
        assert practices[0]["name"] in page.locator("#area-title").inner_text()
        after = {c["id"]: chart_svg(page, c["id"]) for c in blob["charts"]}
        changed = [c for c in before if after[c] != before[c]]
        assert "segments_age_sex" in changed and len(changed) >= len(before) - 1
        assert not visit.console_errors and not visit.page_errors


def test_page_is_one_self_contained_file(report: Path) -> None:
    html = report.read_text(encoding="utf-8")
    runtime = [vendor_script(name) for name in VENDOR_SCRIPTS]
    assert all(f"<script>{body}</script>" in html for body in runtime)
    ours = html
    for body in runtime:  # Vega's data loader can fetch: the browser tests show it never does, and the CSP forbids it
        ours = ours.replace(body, "")
    assert not re.search(r"""(src|href|action|poster)\s*=\s*["']?\s*(https?:)?//""", ours, re.IGNORECASE)
    assert not re.search(r"url\(|@import|<link|<iframe|<img|fetch\(|XMLHttpRequest|import\(", ours, re.IGNORECASE)
    assert "default-src 'none'" in html  # the browser itself refuses any fetch
    assert html.count("<script") == 2 + len(runtime) and "<style>" in html  # data blob, runtime, page script
    assert not re.search(r"999\s?\d{3}\s?\d{4}", html)  # no test NHS number (nor anything shaped like one)


def test_methods_hold_purpose_dates_coverage_rule_disclaimer_and_versions(report: Path) -> None:
    with as_file(content_path("scores", "qrisk3", "DISCLAIMER.txt")) as disclaimer:
        first_line = disclaimer.read_text(encoding="utf-8").splitlines()[0]
    with opened(report) as visit:
        methods = visit.page.locator("#methods").inner_text()
    assert "planning" in methods
    assert "2025-03-31" in methods and "2025-06-30" in methods  # an as_of date and the extract date
    assert "redacted" in methods and "nearest 5" in methods
    assert first_line in methods
    assert "Rows per source table at ingest" in methods and "Quarantined rows by table and reason" in methods
    assert "Failed and warned data-quality checks" in methods and "gp_event_after_death" in methods
    assert re.search(r"heart_failure\s+Heart failure\s+condition\s+\d{4}\.\d+", methods)


def test_no_count_on_the_page_is_small_or_unrounded(report: Path) -> None:
    blob = _blob(report)
    charts = [Chart(**c) for c in blob["charts"]]
    page = Report("", "", None, [], charts, blob["data"], Methods("", [], None, "nhs", ""))
    check_disclosed(page, POLICIES["nhs"])
    html = report.read_text(encoding="utf-8")
    methods = html[html.index('id="methods"') : html.index('id="report-data"')]
    for cell in re.findall(r"<td>([\d,]+)</td>", methods):
        n = int(cell.replace(",", ""))
        assert n == 0 or (n > 7 and n % 5 == 0), cell


def test_percentages_are_those_of_the_published_counts(store: Path, report: Path) -> None:
    import polars as pl

    from openphm.analytics.published import published_tables
    from openphm.codes import load_definitions

    register = pl.DataFrame(pl.from_arrow(published_tables(store)["agg_register"]))
    latest = register["as_of"].max()
    national = register.filter((pl.col("level") == "national") & (pl.col("as_of") == latest))
    expected = {
        load_definitions()[d].name: round(100 * p / n, 1)
        for d, p, n in national.select("definition", "people", "population").iter_rows()
        if p
    }
    chart = _blob(report)["data"]["national"]["prevalence"]
    shown = dict(zip(chart["categories"], chart["series"][0]["values"], strict=True))
    assert shown and all(shown[name] == expected[name] for name in shown)


def test_the_check_stops_a_small_count() -> None:
    chart = Chart("c", "population", "bar", "t", "d", "x", "y")
    data = {"national": {"c": {"categories": ["a", "b"], "series": [{"name": "s", "values": [10, 3]}]}}}
    page = Report("", "", None, [Area("national", "", "All", None)], [chart], data, Methods("", [], None, "nhs", ""))
    with pytest.raises(DisclosureError):
        check_disclosed(page, POLICIES["nhs"])
    data["national"]["c"]["series"][0]["values"] = [10, 12]
    with pytest.raises(DisclosureError):
        check_disclosed(page, POLICIES["nhs"])


def test_cli_writes_the_report_and_refuses_exact_counts_for_planning(store: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli.html"
    result = runner.invoke(app, ["report", "--store", str(store), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file() and "Report written" in result.output
    refused = runner.invoke(
        app, ["report", "--store", str(store), "--out", str(tmp_path / "x.html"), "--policy", "none"]
    )
    assert refused.exit_code == 2 and "direct-care" in refused.output
    assert not (tmp_path / "x.html").exists()
    missing = runner.invoke(app, ["report", "--store", str(tmp_path / "nope.duckdb"), "--out", str(out)])
    assert missing.exit_code == 2 and "Traceback" not in missing.output


def test_a_store_without_a_run_is_refused_in_one_line(tmp_path: Path) -> None:
    store = store_path(tmp_path, "duckdb")
    with as_file(content_path("fixtures", "demo")) as fixture:
        ingest(Path(fixture), store, key=KEY, extract_date=EXTRACT)
    result = CliRunner().invoke(app, ["report", "--store", str(store), "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 2 and "run 'phm run' first" in result.output
    assert not (tmp_path / "r.html").exists()


def test_same_report_from_a_polars_store(report: Path, tmp_path: Path) -> None:
    polars_store = _store(tmp_path, "polars")
    out = tmp_path / "polars.html"
    write_report(polars_store, out, engine="polars")
    assert _blob(out) == _blob(report)
