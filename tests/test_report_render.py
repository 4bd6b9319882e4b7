"""The page and its renderer, on a small hand-made report: every chart kind draws, the picker redraws.

These tests do not need a pipeline run; ``test_report.py`` builds the report from a real store.
"""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import pytest

from openphm.charts import VENDOR_SCRIPTS, vendor_script
from openphm.report.model import Area, Definition, Methods, Report
from openphm.report.render import _static, render, script_hash, script_json
from tests.support.report import CHARTS, area_data, chart_marks, chart_svg, drawn, opened


def sample_report() -> Report:
    areas = [
        Area("national", "", "All areas", None),
        Area("region", "Y99", "Region <one>", "national"),
        Area("icb", "QZZ", "ICB one", "region:Y99"),
        Area("sub_icb", "99X", "Sub-ICB one", "icb:QZZ"),
        Area("pcn", "U1", "PCN one", "sub_icb:99X"),
        Area("practice", "P1", "Practice one", "pcn:U1"),
        Area("practice", "P2", "Practice two", "pcn:U1"),
    ]
    data = {a.key: area_data(i + 1) for i, a in enumerate(areas)}
    data["practice:P2"] = {}  # an area whose counts were all suppressed
    del data["practice:P1"]["gradient"]  # a chart not computed at practice level
    methods = Methods(
        purpose="planning",
        as_of=["2024-03-31", "2025-03-31"],
        extract_date="2025-06-30",
        policy="nhs",
        disclosure="Counts of 1 to 7 are redacted.",
        definitions=[Definition("asthma", "Asthma", "condition", "2026.11", "complete")],
        qrisk3_disclaimer="QRISK3 disclaimer text </script> & more",
    )
    return Report("Test report", "2025-07-01", "2025-03-31", areas, CHARTS, data, methods)


@pytest.fixture(scope="module")
def page_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("render") / "report.html"
    out.write_text(render(sample_report()), encoding="utf-8")
    return out


def test_script_json_cannot_close_its_element() -> None:
    text = script_json({"name": "</script><script>alert(1)</script>", "sep": "\u2028"})
    assert "</" not in text and "\u2028" not in text


SCRIPTS = [vendor_script(name) for name in VENDOR_SCRIPTS] + [_static("page.js")]


def test_page_is_self_contained(page_file: Path) -> None:
    assert all("</script" not in body.lower() and "<!--" not in body for body in SCRIPTS)
    assert "</style" not in _static("report.css")
    html = page_file.read_text(encoding="utf-8")
    assert html.count("<script") == 1 + len(SCRIPTS)  # the data blob, the chart runtime and the page script
    assert all(f"<script>{body}</script>" in html for body in SCRIPTS)
    ours = html
    for body in SCRIPTS[:-1]:  # Vega's loader can fetch; the browser test shows it never does here
        ours = ours.replace(body, "")
    assert not re.search(r"""(src|href|action|poster|data)\s*=\s*["']?\s*(https?:)?//""", ours, re.IGNORECASE)
    assert not re.search(r"url\(|@import|fetch\(|XMLHttpRequest|<link|<iframe|<img", ours, re.IGNORECASE)
    assert '"url"' not in ours  # no spec names a data URL: every chart's values are inline
    assert "&lt;/script&gt;" in html and "Region \\u003cone>" in html  # store text is escaped, never markup


def test_content_security_policy_allows_only_the_page_scripts(page_file: Path) -> None:
    html = page_file.read_text(encoding="utf-8")
    policy = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html)
    assert policy
    content = unescape(policy.group(1))  # as the browser reads the attribute
    directives = dict(d.strip().split(" ", 1) for d in content.split(";"))
    assert directives["default-src"] == "'none'"
    assert sorted(directives["script-src"].split()) == sorted(script_hash(body) for body in SCRIPTS)
    assert "unsafe-eval" not in content


def test_the_policy_is_enforced_and_charts_need_no_eval(page_file: Path, tmp_path: Path) -> None:
    """The page draws every chart under the policy above (the other browser tests see no console error). The
    same page told to compile expressions to code instead of using the interpreter is refused by the policy:
    so the policy is in force, and the interpreter is what lets the charts draw without ``unsafe-eval``."""
    html = page_file.read_text(encoding="utf-8")
    assert html.count('"embed":{"ast":true') == 1
    compiled = tmp_path / "compiled.html"
    compiled.write_text(html.replace('"embed":{"ast":true', '"embed":{"ast":false'), encoding="utf-8")
    with opened(compiled) as visit:
        assert any("unsafe-eval" in e for e in visit.console_errors), visit.console_errors
        assert visit.page.locator("#chart-gradient svg").count() == 0  # its whisker filter is an expression


def test_every_chart_kind_draws_and_picker_redraws(page_file: Path) -> None:
    with opened(page_file) as visit:
        page = visit.page
        marks = chart_marks(page)
        assert set(marks) == {c.id for c in CHARTS}
        assert all(n > 0 for n in marks.values()), marks
        assert page.locator("#chart-sankey svg g.links_marks path").count() == 3  # the redacted flow is not drawn
        assert page.locator("#chart-gradient svg g.mark-rule.role-mark line").count() == 5  # one whisker per quintile
        assert "redacted" in page.locator("#chart-stacked table").text_content()
        assert "Slope index of inequality: -45.0" in page.locator("#chart-gradient .note").inner_text()
        before = {c.id: chart_svg(page, c.id) for c in CHARTS}

        page.select_option("select[data-level=region]", "region:Y99")
        page.select_option("select[data-level=icb]", "icb:QZZ")
        drawn(page)
        assert page.locator("#area-title").inner_text() == "ICB: ICB one (QZZ)"
        after = {c.id: chart_svg(page, c.id) for c in CHARTS}
        assert all(after[c] != before[c] for c in before), "every chart redraws for the new area"
        assert "Slope index of inequality: -135.0" in page.locator("#chart-gradient .note").inner_text()

        page.select_option("select[data-level=sub_icb]", "sub_icb:99X")
        page.select_option("select[data-level=pcn]", "pcn:U1")
        page.select_option("select[data-level=practice]", "practice:P2")
        drawn(page)
        assert page.locator("figure.chart svg").count() == 0
        assert page.locator("figure.chart p.empty").count() == len(CHARTS)
        assert "Not computed at Practice level" in page.locator("#chart-gradient p.empty").inner_text()
        assert "below the disclosure threshold" in page.locator("#chart-sankey p.empty").inner_text()

        page.select_option("select[data-level=region]", "")  # back to everything
        assert page.locator("#area-title").inner_text() == "All areas: All areas"
        assert chart_svg(page, "sankey") == before["sankey"]
        assert not visit.console_errors and not visit.page_errors, visit.console_errors + visit.page_errors
        assert visit.requests == [page_file.resolve().as_uri()] and not visit.failed


def test_every_chart_has_an_accessible_name_and_a_table(page_file: Path) -> None:
    with opened(page_file) as visit:
        page = visit.page
        for chart in CHARTS:
            svg = page.locator(f"#chart-{chart.id} svg")
            assert svg.get_attribute("role") == "img"
            assert chart.title in (svg.get_attribute("aria-label") or "")
            assert page.locator(f"#chart-{chart.id} table caption").text_content() == chart.title
            markup = page.locator(f"#chart-{chart.id} svg").inner_html()
            labels = ("2024-03-31", "2025-03-31") if chart.kind == "sankey" else (chart.x_label, chart.y_label)
            assert all(label in markup for label in labels)


def test_the_address_keeps_the_chosen_area(page_file: Path) -> None:
    with opened(page_file, "#area=pcn%3AU1") as visit:
        assert visit.page.locator("#area-title").inner_text() == "PCN: PCN one (U1)"
        assert visit.page.locator("select[data-level=pcn]").input_value() == "pcn:U1"
        visit.page.select_option("select[data-level=practice]", "practice:P1")
        assert visit.page.url.endswith("#area=practice%3AP1")
        assert not visit.console_errors and not visit.page_errors
