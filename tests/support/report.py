"""Support for the report tests (no tests here): open a report in Debian's headless Chromium through Playwright.

Never downloads a browser: the tests fail, saying so, when /usr/bin/chromium is absent (``.ci/run`` installs
Debian's package), because a report nobody opened is not a tested report.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from openphm.report.charts import SEGMENT_COLOURS, SEGMENTS, Chart

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Visit:
    """What happened while the page was open."""

    page: object
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


@contextmanager
def opened(report: Path, fragment: str = "") -> Iterator[Visit]:
    """The report opened from its file in a fresh browser, with every request and error recorded."""
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is not installed (/usr/bin/chromium): apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page()
            visit = Visit(page)
            page.on("console", lambda m: visit.console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: visit.page_errors.append(str(e)))
            page.on("request", lambda r: visit.requests.append(r.url))
            page.on("requestfailed", lambda r: visit.failed.append(r.url))
            page.goto(report.resolve().as_uri() + fragment)
            page.wait_for_load_state("load")
            drawn(page)
            yield visit
        finally:
            browser.close()


def drawn(page: object) -> None:
    """Wait until vega-embed has drawn every chart of the chosen area (the page marks ``body[data-charts]``)."""
    page.wait_for_selector("body[data-charts=ready]", state="attached", timeout=30_000)  # type: ignore[attr-defined]


def chart_marks(page: object) -> dict[str, int]:
    """Number of data marks (Vega mark items other than text) drawn in each chart's SVG, by chart id."""
    drawn(page)
    return page.evaluate(  # type: ignore[attr-defined]
        """() => Object.fromEntries(Array.from(document.querySelectorAll('figure.chart')).map(
            f => [f.dataset.chart, f.querySelectorAll('svg g.role-mark:not(.mark-text) > *').length]))"""
    )


def chart_svg(page: object, chart: str) -> str:
    """The SVG markup of one chart, to compare before and after a change of area."""
    drawn(page)
    return page.evaluate(  # type: ignore[attr-defined]
        "(id) => { const s = document.querySelector(`#chart-${id} svg`); return s ? s.outerHTML : ''; }", chart
    )


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


def area_data(scale: int) -> dict[str, dict[str, object]]:
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
