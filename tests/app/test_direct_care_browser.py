"""The direct-care flow in Debian's chromium against a running server: a clinician requests, an approver approves,
the clinician downloads the worklist and opens a person view with the NHS number; an analyst opens the same person
without it. The API calls go through the browser's own session (Playwright's request context shares its cookies)."""

from __future__ import annotations

import csv
import io
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

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            clinician, approver, analyst = (browser.new_context().new_page() for _ in range(3))
            token = _sign_in(clinician, base, "cli1")
            upload = {
                "cohort": cohort,
                "practice_code": "SYN00001",
                "purpose": "Frailty clinic invitations",
                "list": {"name": "list.csv", "mimeType": "text/csv", "buffer": csv_list(own)},
            }
            answer = clinician.request.post(
                f"{base}/api/reidentification", multipart=upload, headers={"X-CSRF-Token": token}
            )
            assert answer.status == 201 and answer.json()["matched"] == len(want)
            request_id = answer.json()["id"]

            approver_token = _sign_in(approver, base, "apr1")
            decided = approver.request.post(
                f"{base}/api/reidentification/{request_id}/approve", headers={"X-CSRF-Token": approver_token}
            )
            assert decided.json() == {"id": request_id, "status": "approved"}

            worklist = clinician.request.get(f"{base}/api/reidentification/{request_id}/worklist.csv")
            rows = list(csv.DictReader(io.StringIO(worklist.text())))
            assert {r["nhs_number"] for r in rows} == want
            links = clinician.request.get(f"{base}/api/reidentification/{request_id}/people").json()
            number, link = links[0]["nhs_number"], links[0]["view"]
            clinician.goto(base + link)
            heading = clinician.locator("h1").inner_text()
            assert heading == f"NHS number {number[:3]} {number[3:6]} {number[6:]}"
            assert clinician.get_by_role("heading", name="Segment and need tier", exact=True).count() == 1

            _sign_in(analyst, base, "ana")
            person = pseudonym(store_key(app_store), number)
            found = analyst.request.get(f"{base}/api/person-links", params={"cohort": cohort}).json()
            analyst.goto(base + next(f["view"] for f in found if f["person_id"] == person))
            assert analyst.locator("h1").inner_text() == "Person (pseudonymised)"
            assert number not in analyst.content().replace(" ", "")
            assert analyst.locator("table").count() == clinician.locator("table").count()  # the same record
        finally:
            browser.close()
