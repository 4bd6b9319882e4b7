"""The direct-care flow in Debian's chromium against a running server, through the pages as a person would use
them: a clinician fills the request form on ``/direct-care`` (its script posts the list with the CSRF header), an
approver approves from the queue, the clinician downloads the worklist, opens the people of the request and a
person view with the NHS number, and closes the request; an analyst opens the same person without it. The console
must stay free of errors (a CSP refusal is one) and axe finds no serious WCAG 2.1 A/AA violation on the pages."""

from __future__ import annotations

import csv
import io
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import uvicorn

from openphm.app import accounts
from openphm.app.accounts import Scope
from openphm.app.data import StoreReader
from openphm.app.server import create_app
from tests.app.test_direct_care import COHORT_QUERY
from tests.support.app import PASSWORD, settings
from tests.support.axe import AXE, scan
from tests.support.direct_care import csv_list, expected, practice_numbers, pseudonym, store_key
from tests.support.report import ARGS, CHROMIUM


@pytest.fixture
def server(app_store: Path, store_reader: StoreReader, tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """The app on a free loopback port, in a thread, with an SQLite app database."""
    url = f"sqlite:///{tmp_path / 'app.sqlite'}"
    app = create_app(settings(app_store, url, pseudonymisation_key=store_key(app_store)))
    app.state.phm.store = store_reader
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    runner = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not runner.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert runner.started
    yield f"http://127.0.0.1:{port}", app
    runner.should_exit = True
    thread.join(10)


def _sign_in(page: Any, base: str, name: str) -> str:
    page.goto(f"{base}/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    token: str = page.request.get(f"{base}/api/me").json()["csrf_token"]
    return token


def _watch(page: Any, errors: list[str]) -> Any:
    """Collect the page's console errors and uncaught exceptions (a CSP refusal is a console error)."""
    page.on("console", lambda m: errors.append(f"{page.url}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"{page.url}: {e}"))
    return page


def test_request_approve_download_and_view_in_a_browser(server: tuple[str, Any], app_store: Path) -> None:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is not installed (/usr/bin/chromium): apt-get install chromium")
    from playwright.sync_api import sync_playwright

    base, app = server
    with duckdb.connect(str(app_store), read_only=True) as con:
        cohort = str((con.execute(COHORT_QUERY).fetchone() or ("",))[0])
    for name, role, scope in (
        ("cli1", "clinician", "practice:SYN00001"),
        ("apr1", "approver", "pcn:PCN01"),
        ("ana", "analyst", "practice:SYN00001"),
    ):
        accounts.add_user(app.state.phm.db, name, role, [Scope.parse(scope)], PASSWORD)
    own = practice_numbers(app_store, "SYN00001")
    want = expected(app_store, cohort, "SYN00001", own)
    axe = AXE.read_text(encoding="utf-8")
    errors: list[str] = []
    violations: list[str] = []

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            clinician, approver, analyst = (_watch(browser.new_context().new_page(), errors) for _ in range(3))

            # the clinician fills the form on the page; the script posts the file with the CSRF header
            _sign_in(clinician, base, "cli1")
            clinician.click("nav >> text=Direct care")
            clinician.wait_for_url(f"{base}/direct-care")
            violations += scan(clinician, axe)
            clinician.select_option("#cohort", cohort)
            clinician.select_option("#practice_code", "SYN00001")
            clinician.fill("#purpose", "Frailty clinic invitations")
            clinician.set_input_files("#list", {"name": "list.csv", "mimeType": "text/csv", "buffer": csv_list(own)})
            clinician.click("#request-form button[type=submit]")
            reply = clinician.locator("#request-reply")
            reply.filter(has_text="matched").wait_for()
            said = r"Request (\d+) is pending: (\d+) numbers read, (\d+) invalid, (\d+) matched\..*"
            match = re.fullmatch(said, reply.inner_text())
            assert match is not None, reply.inner_text()
            request_id, read, _invalid, matched = (int(g) for g in match.groups())
            assert (read, matched) == (len(own), len(want))
            clinician.reload()
            assert clinician.locator(f"#request-{request_id} .app-status").inner_text() == "pending"

            # the approver finds it in the queue and approves it on the page
            _sign_in(approver, base, "apr1")
            approver.goto(f"{base}/direct-care")
            violations += scan(approver, axe)
            assert approver.locator("#request-form").count() == 0
            with approver.expect_navigation():
                approver.get_by_role("button", name=f"Approve request {request_id}").click()
            assert approver.locator(f"#queue-{request_id} .app-status").inner_text().startswith("approved by apr1")

            # the clinician downloads the worklist and opens a person from the people list
            clinician.reload()
            assert clinician.locator(f"#request-{request_id} .app-status").inner_text() == "approved by apr1"
            violations += scan(clinician, axe)
            with clinician.expect_download() as download:
                clinician.get_by_role("link", name=f"Worklist (CSV) of request {request_id}").click()
            rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
            assert {r["nhs_number"] for r in rows} == want
            clinician.get_by_role("link", name=f"People of request {request_id}").click()
            clinician.wait_for_url(f"{base}/direct-care/{request_id}/people")
            violations += scan(clinician, axe)
            first = clinician.locator("#people tbody th").first.inner_text()
            number = first.replace(" ", "")
            assert number in want and clinician.locator("#people tbody tr").count() == len(want)
            clinician.get_by_role("link", name=f"Open the record of {first}").click()
            clinician.wait_for_url(f"{base}/people/*")
            assert clinician.locator("h1").inner_text() == f"NHS number {first}"
            assert clinician.get_by_role("heading", name="Segment and need tier", exact=True).count() == 1

            # the analyst opens the same person without the number
            _sign_in(analyst, base, "ana")
            assert analyst.locator("nav >> text=Direct care").count() == 0
            person = pseudonym(store_key(app_store), number)
            found = analyst.request.get(f"{base}/api/person-links", params={"cohort": cohort}).json()
            analyst.goto(base + next(f["view"] for f in found if f["person_id"] == person))
            assert analyst.locator("h1").inner_text() == "Person (pseudonymised)"
            assert number not in analyst.content().replace(" ", "")
            assert analyst.locator("table").count() == clinician.locator("table").count()  # the same record

            # closing on the page destroys the list: the worklist is gone
            clinician.goto(f"{base}/direct-care")
            with clinician.expect_navigation():
                clinician.get_by_role("button", name=f"Close request {request_id}").click()
            assert clinician.locator(f"#request-{request_id} .app-status").inner_text().startswith("closed")
            gone = clinician.request.get(f"{base}/api/reidentification/{request_id}/worklist.csv")
            assert gone.status == 410
        finally:
            browser.close()
    assert not errors, errors
    assert not violations, violations
