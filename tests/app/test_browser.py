"""The application in a real browser: Debian's chromium driven by Playwright against the app served by uvicorn on
127.0.0.1 (a free port), over the app tests' store.

One signed-in walk covers every page linked from the navigation (read from the page, so pages added later are
walked too), the geography picker from national down to a practice, the charts, the cohort list download and
sign-out; every page is scanned with axe-core (vendored in ``tests/data/axe``) for WCAG 2.1 A/AA violations.
Throughout, no request may leave 127.0.0.1 and the console must stay free of errors - a Content-Security-Policy
violation is one.
"""

from __future__ import annotations

import csv
import io
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import uvicorn

from openphm.app import accounts
from openphm.app.accounts import Scope
from openphm.app.data import StoreReader
from openphm.app.server import create_app
from tests.support.app import HIERARCHY, PASSWORD, settings
from tests.support.axe import AXE, scan
from tests.support.report import ARGS, CHROMIUM

CHARTS = ".app-chart__plot, figure.chart, [data-chart]"  # the containers a Vega chart draws into


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(app_store: Path, store_reader: StoreReader, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app on 127.0.0.1 in a uvicorn thread, with one analyst who is also an administrator (every page)."""
    db = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'app.sqlite'}"
    app = create_app(settings(app_store, db))
    app.state.phm.store = store_reader
    accounts.add_user(app.state.phm.db, "ana", "analyst", [Scope.parse("national")], PASSWORD)
    accounts.add_grant(app.state.phm.db, "ana", "admin", Scope.parse("national"))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@dataclass
class Watch:
    """Everything the browser asked for and complained about."""

    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _charts_drawn(page: Any) -> int:
    """Wait until every chart container holds an svg or canvas; the number of containers."""
    page.wait_for_function(
        "(sel) => Array.from(document.querySelectorAll(sel)).every(c => c.querySelector('svg, canvas'))",
        arg=CHARTS,
        timeout=20_000,
    )
    return int(page.eval_on_selector_all(CHARTS, "els => els.length"))


def _show(page: Any, level: str, area: str | None = None) -> str:
    """Use the overview's pickers as a person would: choose a level and press Show (the areas of that level are
    then offered), then, if given, choose an area and press Show again; the area code now shown."""
    for picker, value in (("#level", level), ("#area_code", area)):
        if value is not None:
            page.select_option(picker, value)
            page.click("form.app-pickers button[type=submit]")
            page.wait_for_load_state("load")
    return str(page.eval_on_selector("#area_code", "s => s.value"))


def test_a_signed_in_walk_through_every_page(served: str) -> None:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is not installed (/usr/bin/chromium): apt-get install chromium")
    from playwright.sync_api import sync_playwright

    axe = AXE.read_text(encoding="utf-8")
    watch = Watch()
    violations: list[str] = []

    def route(r: Any) -> None:
        watch.requests.append(r.request.url)
        if urlsplit(r.request.url).hostname == "127.0.0.1":
            r.continue_()
        else:
            r.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            context = browser.new_context(base_url=served, accept_downloads=True)
            context.route("**/*", route)
            page = context.new_page()
            page.on(
                "console",
                lambda m: watch.errors.append(f"{page.url}: {m.text} at {m.location}") if m.type == "error" else None,
            )
            page.on("pageerror", lambda e: watch.errors.append(f"{page.url}: {e}"))

            # sign in through the form
            page.goto("/login")
            violations += scan(page, axe)
            page.fill("#username", "ana")
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{served}/")

            # the design system's script started (a module of our own under the CSP)
            assert page.evaluate("() => document.body.classList.contains('nhsuk-frontend-supported')")

            # every page the navigation links to, read from the page itself
            links = page.eval_on_selector_all("nav a[href]", "els => els.map(e => e.getAttribute('href'))")
            pages = [h for h in dict.fromkeys(links) if h.startswith("/")]
            assert {"/", "/cohorts", "/admin"} <= set(pages), pages
            charts = 0
            for href in pages:
                response = page.goto(href)
                assert response is not None and response.status == 200, href
                assert page.url.startswith(served + href), f"{href} went to {page.url}"
                charts += _charts_drawn(page)
                violations += scan(page, axe)

            assert charts >= 10, f"only {charts} charts drawn on the pages the navigation links to"

            # the SPC page draws its limits and says so in words
            page.goto("/spc")
            assert _charts_drawn(page) >= 1
            assert "Process limits" in page.inner_text("main")
            marks = ".app-chart__plot svg path, .app-chart__plot svg line"
            assert page.eval_on_selector_all(marks, "e => e.length") > 3

            # national -> region -> ICB (the second) -> sub-ICB -> PCN -> practice, with the pickers alone
            page.goto("/")
            practice = "SYN00003"
            pcn, sub_icb, icb, region = HIERARCHY[practice]
            assert _show(page, "region") == region
            assert _show(page, "icb", icb) == icb
            assert _show(page, "sub_icb") == sub_icb  # the first sub-ICB within the chosen ICB
            assert _show(page, "pcn") == pcn
            assert _show(page, "practice", practice) == practice
            assert practice in page.inner_text("h1")
            charts += _charts_drawn(page)
            violations += scan(page, axe)
            assert _show(page, "icb") == icb  # and back up: the ICB that contains the practice

            # the first cohort's member list downloads, and holds what the API lists
            page.goto("/cohorts")
            link = page.locator("a", has_text="Download CSV").first
            href = link.get_attribute("href")
            assert href is not None
            with page.expect_download() as info:
                link.click()
            rows = list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text(encoding="utf-8"))))
            listed = page.request.get(href.removesuffix(".csv")).json()
            assert len(rows) == len(listed) > 0
            assert {r["practice_code"] for r in rows} <= set(HIERARCHY)

            # the scan can fail: a field without a label is a critical violation
            page.evaluate("() => document.querySelector('main').insertAdjacentHTML('beforeend', '<input id=bare>')")
            assert any(" label (critical)" in v for v in scan(page, axe))

            page.goto("/")
            with page.expect_navigation():
                page.get_by_role("button", name="Sign out ana").click()
            assert urlsplit(page.url).path == "/login", page.url
            assert page.request.get("/api/me").status == 401
        finally:
            browser.close()

    assert not violations, "\n".join(violations)
    assert not watch.errors, watch.errors
    outside = [u for u in watch.requests if urlsplit(u).hostname != "127.0.0.1"]
    assert watch.requests and not outside, outside
    print(f"{len(pages)} pages, {charts} charts, {len(watch.requests)} requests")
