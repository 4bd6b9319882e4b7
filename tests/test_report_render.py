"""The page and its renderer, on a small hand-made report: every chart kind draws, the picker redraws.

These tests do not need a pipeline run; ``test_report.py`` builds the report from a real store.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from openphm.report.charts import SEGMENT_COLOURS, SEGMENTS, Chart
from openphm.report.model import Area, Definition, Methods, Report
from openphm.report.render import render, script_json
from tests.support.report import chart_marks, chart_svg, opened

CHARTS = [
    Chart("pyramid", "population", "pyramid", "People by age, sex and segment", "Pyramid.", "Age band", "People"),
    Chart("stacked", "population", "stacked", "Segments by IMD quintile", "Stacked.", "IMD quintile", "% of people",
          value_format="percent"),
    Chart("prevalence", "need", "bar", "Register prevalence", "Bars.", "Register", "% of people",
          value_format="percent", horizontal=True),
    Chart("gradient", "inequality", "bar", "Standardised rate by quintile", "With CI.", "IMD quintile", "per 1,000",
          value_format="rate", levels=("national", "region", "icb", "sub_icb", "pcn")),
    Chart("forecast", "change", "line", "Segment sizes", "Lines.", "Year", "People"),
    Chart("sankey", "change", "sankey", "Transitions", "Flows.", "Segment", "People"),
]  # fmt: skip

BANDS = ["00-04", "05-09", "10-14", "15-19"]


def _area_data(scale: int) -> dict[str, dict[str, object]]:
    segs = list(SEGMENTS)[:3]
    return {
        "pyramid": {
            "categories": BANDS,
            "series": [
                {"name": SEGMENTS[s], "group": g, "color": SEGMENT_COLOURS[s],
                 "values": [scale * (i + 1) for i in range(4)]}
                for g in ("Female", "Male")
                for s in segs
            ],
        },
        "stacked": {
            "categories": ["1", "2", "3", "4", "5"],
            "series": [{"name": SEGMENTS[s], "values": [30.0, 40.0, None, 20.0, 10.0 * scale]} for s in segs],
        },
        "prevalence": {
            "categories": ["Hypertension", "Diabetes", "Asthma"],
            "series": [{"name": "Prevalence", "values": [14.2 * scale, 7.1, None]}],
        },
        "gradient": {
            "categories": ["1", "2", "3", "4", "5"],
            "series": [
                {"name": "Rate", "values": [80.0, 70.0, 60.0, 50.0, 40.0 / scale],
                 "lower": [70, 60, 50, 40, 30 / scale], "upper": [90, 80, 70, 60, 50 / scale]}
            ],
            "note": f"Slope index of inequality: {-45.0 * scale:.1f} per 1,000.",
        },
        "forecast": {
            "categories": ["2023", "2024", "2025", "2026", "2027"],
            "split": 3,
            "series": [
                {"name": "Healthy well", "values": [100, 110, 120 * scale, 125, 130],
                 "lower": [None, None, None, 115, 118], "upper": [None, None, None, 135, 142]}
            ],
        },
        "sankey": {
            "left": ["Healthy well", "Long-term conditions", "joined"],
            "right": ["Healthy well", "Long-term conditions", "died"],
            "links": [
                {"source": "Healthy well", "target": "Healthy well", "value": 100 * scale},
                {"source": "Healthy well", "target": "Long-term conditions", "value": 20},
                {"source": "Long-term conditions", "target": "died", "value": None},
                {"source": "joined", "target": "Healthy well", "value": 15},
            ],
            "from_label": "2024-03-31",
            "to_label": "2025-03-31",
        },
    }  # fmt: skip


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
    data = {a.key: _area_data(i + 1) for i, a in enumerate(areas)}
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


def test_page_is_self_contained(page_file: Path) -> None:
    from openphm.report.render import _static

    assert "</script" not in _static("report.js") and "</style" not in _static("report.css")
    html = page_file.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href|action|poster|data)\s*=\s*["']?\s*(https?:)?//""", html, re.IGNORECASE)
    assert not re.search(r"url\(|@import|fetch\(|XMLHttpRequest|<link|<iframe|<img", html, re.IGNORECASE)
    assert html.count("<script") == 2  # the data blob and the renderer, both inline
    assert "&lt;/script&gt;" in html and "Region \\u003cone>" in html  # store text is escaped, never markup


def test_every_chart_kind_draws_and_picker_redraws(page_file: Path) -> None:
    with opened(page_file) as visit:
        page = visit.page
        marks = chart_marks(page)
        assert set(marks) == {c.id for c in CHARTS}
        assert all(n > 0 for n in marks.values()), marks
        assert page.locator("#chart-sankey svg path.link").count() == 3  # the redacted flow is not drawn
        assert page.locator("#chart-gradient svg .interval").count() == 15  # 5 whiskers, 2 caps each
        assert "redacted" in page.locator("#chart-stacked table").text_content()
        assert "Slope index of inequality: -45.0" in page.locator("#chart-gradient .note").inner_text()
        before = {c.id: chart_svg(page, c.id) for c in CHARTS}

        page.select_option("select[data-level=region]", "region:Y99")
        page.select_option("select[data-level=icb]", "icb:QZZ")
        assert page.locator("#area-title").inner_text() == "ICB: ICB one (QZZ)"
        after = {c.id: chart_svg(page, c.id) for c in CHARTS}
        assert all(after[c] != before[c] for c in before), "every chart redraws for the new area"
        assert "Slope index of inequality: -135.0" in page.locator("#chart-gradient .note").inner_text()

        page.select_option("select[data-level=sub_icb]", "sub_icb:99X")
        page.select_option("select[data-level=pcn]", "pcn:U1")
        page.select_option("select[data-level=practice]", "practice:P2")
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
            drawn = page.locator(f"#chart-{chart.id} svg").inner_html()
            labels = ("2024-03-31", "2025-03-31") if chart.kind == "sankey" else (chart.x_label, chart.y_label)
            assert all(label in drawn for label in labels)


def test_the_address_keeps_the_chosen_area(page_file: Path) -> None:
    with opened(page_file, "#area=pcn%3AU1") as visit:
        assert visit.page.locator("#area-title").inner_text() == "PCN: PCN one (U1)"
        assert visit.page.locator("select[data-level=pcn]").input_value() == "pcn:U1"
        visit.page.select_option("select[data-level=practice]", "practice:P1")
        assert visit.page.url.endswith("#area=practice%3AP1")
        assert not visit.console_errors and not visit.page_errors
