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
            yield visit
        finally:
            browser.close()


def chart_marks(page: object) -> dict[str, int]:
    """Number of data marks drawn in each chart's SVG, by chart id."""
    return page.evaluate(  # type: ignore[attr-defined]
        """() => Object.fromEntries(Array.from(document.querySelectorAll('figure.chart')).map(
            f => [f.dataset.chart, f.querySelectorAll('svg .mark').length]))"""
    )


def chart_svg(page: object, chart: str) -> str:
    """The SVG markup of one chart, to compare before and after a change of area."""
    return page.evaluate(  # type: ignore[attr-defined]
        "(id) => { const s = document.querySelector(`#chart-${id} svg`); return s ? s.outerHTML : ''; }", chart
    )
