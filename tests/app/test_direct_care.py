"""Re-identification for direct care through the API, on SQLite and PostgreSQL: the matrix of who gets which NHS
numbers back, the audit rows, the FHIR bundle, and a scan for uploaded numbers everywhere they must not be."""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import jsonschema
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from openphm.app import accounts, audit
from openphm.app.accounts import Scope
from openphm.app.db import AuditRow, Reidentification, ReidentificationList
from openphm.explanations import load_explanations
from tests.support.app import add_user, clone, sign_in
from tests.support.direct_care import (
    all_source_numbers,
    csv_list,
    expected,
    members,
    modulus11,
    post,
    practice_numbers,
    store_key,
    submit,
)

SCHEMA = Path(__file__).parents[1] / "data" / "fhir" / "r4-observation-bundle.schema.json"
COHORT_QUERY = (
    "SELECT m.cohort, count(*) AS n FROM cohort_member m JOIN population p ON p.person_id = m.person_id "
    "AND p.as_of = m.as_of WHERE p.practice_code = 'SYN00001' AND m.as_of = (SELECT max(as_of) FROM population) "
    "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1"
)


@pytest.fixture(scope="module")
def cohort(app_store: Path) -> str:
    """The cohort with the most members registered at SYN00001."""
    with duckdb.connect(str(app_store), read_only=True) as con:
        row = con.execute(COHORT_QUERY).fetchone()
    assert row is not None and row[1] >= 10
    return str(row[0])


def _people(client: TestClient) -> dict[str, TestClient]:
    """Signed-in browsers: clinicians of SYN00001 and SYN00003, approvers of PCN01 and PCN02, an analyst."""
    add_user(client, "cli1", "clinician", "practice:SYN00001")
    accounts.add_grant(client.app.state.phm.db, "cli1", "approver", Scope("pcn", "PCN01"))  # may not self-approve
    add_user(client, "cli3", "clinician", "practice:SYN00003")
    add_user(client, "apr1", "approver", "pcn:PCN01")
    add_user(client, "apr2", "approver", "pcn:PCN02")
    add_user(client, "ana", "analyst")
    browsers = {}
    for name in ("cli1", "cli3", "apr1", "apr2", "ana"):
        browser = clone(client)
        assert sign_in(browser, name) == 303
        browsers[name] = browser
    return browsers


def _numbers(text: str, candidates: set[str]) -> set[str]:
    """Which of ``candidates`` appear in ``text`` (with or without the spaces GP systems print): every ten-digit
    window of every run of digits, intersected with the candidates (one pass, however many candidates)."""
    windows = {run[i : i + 10] for run in re.findall(r"\d{10,}", text.replace(" ", "")) for i in range(len(run) - 9)}
    return windows & candidates


def _worklist(response: Any) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.text)))


def sqlite_only(request: pytest.FixtureRequest) -> None:
    """Tests whose subject does not depend on the app database run once (CI time), on SQLite."""
    if request.node.callspec.params.get("new_db") != "sqlite":
        pytest.skip("the database backend does not matter here; run on SQLite only")


@pytest.fixture
def client(make_client: Callable[..., TestClient], app_store: Path) -> TestClient:
    return make_client(pseudonymisation_key=store_key(app_store), fhir_writeback=True)


def test_the_reidentification_matrix(client: TestClient, app_store: Path, cohort: str) -> None:
    people = _people(client)
    cli1, cli3, apr1, apr2, ana = (people[n] for n in ("cli1", "cli3", "apr1", "apr2", "ana"))
    own = practice_numbers(app_store, "SYN00001")
    other = practice_numbers(app_store, "SYN00002")
    everyone = all_source_numbers(app_store)
    want = expected(app_store, cohort, "SYN00001", own)
    _, in_store = members(app_store, cohort, "SYN00001")
    assert 10 <= len(want) == len(in_store) - _unlisted(app_store, cohort)  # the list covers the registered members

    # the practice's own list, with two invalid numbers added: only its own matching members come back
    broken = ["1234567890", "943 476 5918"]
    assert not any(modulus11(b.replace(" ", "")) for b in broken)
    status, body = submit(cli1, cohort, "SYN00001", csv_list(own + broken))
    assert status == 201, body
    assert body["status"] == "pending" and body["matched"] == len(want)
    assert body["submitted"] == len(own) + 2
    assert body["invalid"] == sum(not modulus11(n.replace(" ", "")) for n in own) + 2
    mine = int(body["id"])  # type: ignore[call-overload]
    assert not _numbers(json.dumps(body), everyone)

    # before approval: no download
    early = cli1.get(f"/api/reidentification/{mine}/worklist.csv")
    assert early.status_code == 403 and "pending" in early.json()["message"]

    # deciding: not one's own, not outside the approver's scope, not without the role
    own_decision = post(cli1, f"/api/reidentification/{mine}/approve")
    assert own_decision == (403, {"message": "you cannot decide your own request"})
    assert post(apr2, f"/api/reidentification/{mine}/approve")[0] == 403
    assert post(ana, f"/api/reidentification/{mine}/approve")[0] == 403
    assert post(apr1, f"/api/reidentification/{mine}/approve") == (200, {"id": mine, "status": "approved"})
    assert post(apr1, f"/api/reidentification/{mine}/approve")[0] == 409

    # only the requester downloads; the worklist holds exactly the expected numbers
    assert cli3.get(f"/api/reidentification/{mine}/worklist.csv").status_code == 403
    assert apr1.get(f"/api/reidentification/{mine}/worklist.csv").status_code == 403
    response = cli1.get(f"/api/reidentification/{mine}/worklist.csv")
    assert response.status_code == 200
    rows = _worklist(response)
    assert {r["nhs_number"] for r in rows} == want and len(rows) == len(want)
    _check_rows_against_store(app_store, rows)

    # another practice's list under SYN00001: nobody (its people are not registered there)
    status, body = submit(cli1, cohort, "SYN00001", csv_list(other))
    assert status == 201 and body["matched"] == len(expected(app_store, cohort, "SYN00001", other)) == 0
    # a list of valid numbers of nobody in the store: nobody
    strangers = _valid_strangers(everyone, 50)
    status, body = submit(cli1, cohort, "SYN00001", csv_list(strangers, header=False))
    assert status == 201 and (body["submitted"], body["invalid"], body["matched"]) == (50, 0, 0)
    # a list of invalid numbers only: counted, none echoed
    status, body = submit(cli1, cohort, "SYN00001", csv_list(broken))
    assert status == 201 and (body["invalid"], body["matched"]) == (2, 0)
    # a practice outside the clinician's scope, an unknown practice, an unknown cohort, a malformed file
    assert submit(cli1, cohort, "SYN00003", csv_list(own))[0] == 403
    assert submit(cli1, cohort, "NOPE1", csv_list(own))[0] == 404
    assert submit(cli1, "no_such_cohort", "SYN00001", csv_list(own))[0] == 404
    bad = submit(cli1, cohort, "SYN00001", b"a,b\n" + own[0].encode() + b",x\n")
    assert bad[0] == 422 and not _numbers(json.dumps(bad[1]), everyone)
    typed = submit(cli1, cohort, "SYN00001", csv_list(own), purpose=f"Call back {own[0]} today please")
    assert typed[0] == 422 and not _numbers(json.dumps(typed[1]), everyone)
    # a multipart body must carry the CSRF token in the header: a form field is not read (nor the body parsed)
    token = cli1.get("/api/me").json()["csrf_token"]
    fields = {"cohort": cohort, "practice_code": "SYN00001", "purpose": "Frailty clinic", "csrf_token": token}
    no_header = cli1.post("/api/reidentification", data=fields, files={"list": ("l.csv", csv_list(own), "text/csv")})
    assert no_header.status_code == 403 and no_header.json() == {"message": "missing or wrong CSRF token"}
    # the analyst and the approver may not request
    assert submit(ana, cohort, "SYN00001", csv_list(own))[0] == 403
    assert submit(apr1, cohort, "SYN00001", csv_list(own))[0] == 403

    # refusal: no download, and the list is gone
    status, body = submit(cli1, cohort, "SYN00001", csv_list(own))
    refused = int(body["id"])  # type: ignore[call-overload]
    assert post(apr1, f"/api/reidentification/{refused}/refuse") == (200, {"id": refused, "status": "refused"})
    late = cli1.get(f"/api/reidentification/{refused}/worklist.csv")
    assert late.status_code == 403 and "refused" in late.json()["message"]
    assert _sealed(client, refused) is None

    # expiry: the list is destroyed and nothing comes back
    status, body = submit(cli1, cohort, "SYN00001", csv_list(own))
    lapsed = int(body["id"])  # type: ignore[call-overload]
    assert post(apr1, f"/api/reidentification/{lapsed}/approve")[0] == 200
    with client.app.state.phm.db() as db, db.begin():
        db.execute(
            sa.update(Reidentification)
            .where(Reidentification.id == lapsed)
            .values(expires_at=Reidentification.created_at)
        )
    gone = cli1.get(f"/api/reidentification/{lapsed}/worklist.csv")
    assert gone.status_code == 410 and "expired" in gone.json()["message"]
    assert _sealed(client, lapsed) is None

    # closing: the requester's own; nothing after it
    assert post(cli3, f"/api/reidentification/{mine}/close")[0] == 403
    assert post(cli1, f"/api/reidentification/{mine}/close") == (200, {"id": mine, "status": "closed"})
    after = cli1.get(f"/api/reidentification/{mine}/worklist.csv")
    assert after.status_code == 410 and "closed" in after.json()["message"]
    assert _sealed(client, mine) is None

    # the audit chain holds every step with its counts, and no number
    rows_ = _audit(client)
    actions = [r.action for r in rows_]
    assert actions.count("reidentification_requested") == 6
    assert actions.count("reidentification_approved") == 2 and actions.count("reidentification_refused") == 1
    assert actions.count("reidentification_download") == 1
    assert actions.count("reidentification_expired") == 1 and actions.count("reidentification_closed") == 1
    first = json.loads(next(r.detail for r in rows_ if r.action == "reidentification_requested"))
    assert first["matched"] == len(want) and first["practice_code"] == "SYN00001" and first["cohort"] == cohort
    assert first["purpose"] == "Proactive frailty review clinic" and first["invalid"] >= 2
    approved = json.loads(next(r.detail for r in rows_ if r.action == "reidentification_approved"))
    approver = next(r.actor for r in rows_ if r.action == "reidentification_approved")
    assert approved["requester"] == "cli1" and approver == "apr1"
    assert not _numbers(" ".join(r.detail for r in rows_), everyone)
    assert audit.verify(client.app.state.phm.db).intact


def _unlisted(store: Path, cohort: str) -> int:
    """Members registered at SYN00001 whose source NHS number is invalid (so no list can name them): zero or
    a few, from the synthetic extract's injected errors."""
    key = store_key(store)
    _, wanted = members(store, cohort, "SYN00001")
    from tests.support.direct_care import pseudonym

    listed = {pseudonym(key, n) for n in all_source_numbers(store)}
    return len(wanted - listed)


def _valid_strangers(taken: set[str], count: int) -> list[str]:
    """Valid NHS numbers (Modulus 11) of nobody in the store: from the 400 range, outside the synthetic 999 range.
    Each stem gets its check digit computed (stems whose check digit would be 10 have no valid number)."""
    found: list[str] = []
    stem = 400000000
    while len(found) < count:
        digits = str(stem)
        check = (11 - sum(int(d) * (10 - i) for i, d in enumerate(digits)) % 11) % 11
        if check != 10 and digits + str(check) not in taken:
            found.append(digits + str(check))
        stem += 1
    assert all(modulus11(n) for n in found[:1000])
    return found


def _check_rows_against_store(store: Path, rows: list[dict[str, str]]) -> None:
    """Each row's segment, need tier and QRISK3 are the store's for that person; the words are the content's."""
    key = store_key(store)
    words = load_explanations()
    from tests.support.direct_care import pseudonym

    with duckdb.connect(str(store), read_only=True) as con:
        for row in rows:
            found = con.execute(
                "SELECT s.segment, s.need_tier, r.qrisk3 FROM segment s LEFT JOIN risk r USING (person_id, as_of) "
                "WHERE s.person_id = ? AND s.as_of = (SELECT max(as_of) FROM population)",
                [pseudonym(key, row["nhs_number"])],
            ).fetchone()
            assert found is not None
            segment, tier, qrisk3 = found
            assert row["segment"] == segment and int(row["need_tier"]) == tier
            assert (row["qrisk3"] == "") == (qrisk3 is None)
            assert row["segment_explained"] == words.segments[segment].text()
            assert row["need_tier_name"] == words.need_tiers[tier].title
            assert row["cohorts"]  # every matched person is in the requested cohort at least


def _sealed(client: TestClient, request_id: int) -> ReidentificationList | None:
    with client.app.state.phm.db() as db:
        return db.get(ReidentificationList, request_id)


def _audit(client: TestClient) -> list[AuditRow]:
    with client.app.state.phm.db() as db:
        return list(db.execute(sa.select(AuditRow).order_by(AuditRow.id)).scalars())


def _get(client: TestClient, path: str) -> tuple[int, dict[str, object]]:
    response = client.get(path)
    return response.status_code, response.json()


def test_without_the_key_every_reidentification_route_is_disabled(
    make_client: Callable[..., TestClient], app_store: Path, cohort: str, request: pytest.FixtureRequest
) -> None:
    sqlite_only(request)
    client = make_client()
    add_user(client, "cli1", "clinician", "practice:SYN00001")
    add_user(client, "apr1", "approver", "pcn:PCN01")
    for name, call in (
        ("cli1", lambda c: submit(c, cohort, "SYN00001", csv_list(practice_numbers(app_store, "SYN00001")))),
        ("apr1", lambda c: post(c, "/api/reidentification/1/approve")),
        ("apr1", lambda c: post(c, "/api/reidentification/1/refuse")),
        ("cli1", lambda c: post(c, "/api/reidentification/1/close")),
        ("cli1", lambda c: _get(c, "/api/reidentification/1/worklist.csv")),
        ("cli1", lambda c: _get(c, "/api/reidentification/1/observations.json")),
    ):
        browser = clone(client)
        assert sign_in(browser, name) == 303
        status, body = call(browser)
        assert status == 403 and "re-identification is disabled" in str(body["message"])


def test_the_fhir_bundle_is_r4_and_holds_only_supplied_numbers(
    client: TestClient, app_store: Path, cohort: str, request: pytest.FixtureRequest
) -> None:
    sqlite_only(request)
    people = _people(client)
    own = practice_numbers(app_store, "SYN00001")
    supplied = own[: len(own) // 2]  # half the list: the other half's members must not appear
    _status, body = submit(people["cli1"], cohort, "SYN00001", csv_list(supplied))
    request_id = int(body["id"])  # type: ignore[call-overload]
    assert post(people["apr1"], f"/api/reidentification/{request_id}/approve")[0] == 200
    response = people["cli1"].get(f"/api/reidentification/{request_id}/observations.json")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/fhir+json")
    document = response.json()
    jsonschema.validate(document, json.loads(SCHEMA.read_text()))
    subjects = {e["resource"]["subject"]["identifier"]["value"] for e in document["entry"]}
    assert subjects == expected(app_store, cohort, "SYN00001", supplied) and subjects
    codesystem = json.loads(
        (Path(__file__).parents[2] / "src/openphm/content/explanations/openphm-codesystem.json").read_text()
    )
    codes = {c["code"] for c in codesystem["concept"]}
    for entry in document["entry"]:
        observation = entry["resource"]
        assert {c["code"] for c in observation["valueCodeableConcept"]["coding"]} <= codes
        assert observation["method"]["text"].startswith("openphm ")


@pytest.fixture
def quiet_temp(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every temporary file or folder created while the fixture is active (the upload must create none)."""
    made: list[str] = []
    for name in ("TemporaryFile", "NamedTemporaryFile", "SpooledTemporaryFile", "mkstemp", "mkdtemp"):
        original = getattr(tempfile, name)

        def spy(*args: Any, _original: Any = original, _name: str = name, **kwargs: Any) -> Any:
            made.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(tempfile, name, spy)
    yield made


def test_no_uploaded_number_is_left_anywhere(
    client: TestClient,
    app_store: Path,
    cohort: str,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    quiet_temp: list[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    people = _people(client)
    client.app.state.phm.store.snapshot()  # the published tables are built once (in temporary folders of their own)
    quiet_temp.clear()
    own = practice_numbers(app_store, "SYN00001")
    padding = _valid_strangers(all_source_numbers(app_store), 100_000)  # over 1 MB: past Starlette's spool limit
    uploaded = {n.replace(" ", "") for n in own + padding}
    body = csv_list(own + padding)
    assert len(body) > 1024 * 1024
    status, answer = submit(people["cli1"], cohort, "SYN00001", body)
    assert status == 201, answer
    request_id = int(answer["id"])  # type: ignore[call-overload]
    post(people["apr1"], f"/api/reidentification/{request_id}/approve")
    assert people["cli1"].get(f"/api/reidentification/{request_id}/worklist.csv").status_code == 200
    people["cli1"].get("/api/reidentification/999/worklist.csv")  # an error path too
    post(people["cli1"], f"/api/reidentification/{request_id}/close")
    assert quiet_temp == []  # no temporary file, so nothing of the list on disk

    # the app database, every table, every column
    engine = client.app.state.phm.db.kw["bind"]
    dump = []
    with engine.connect() as con:
        for table in sa.inspect(con).get_table_names():
            dump.extend(str(row) for row in con.execute(sa.text(f'SELECT * FROM "{table}"')))
    text = "\n".join(dump)
    assert "reidentification" in " ".join(sa.inspect(engine).get_table_names())
    assert not _numbers(text, uploaded)
    # the store: every text column of every table (one hash join each against the uploaded numbers)
    with duckdb.connect() as con:
        con.execute(f"ATTACH '{app_store}' AS store (READ_ONLY)")
        con.execute("CREATE TEMP TABLE uploaded AS SELECT unnest(?::VARCHAR[]) AS n", [sorted(uploaded)])
        text_columns = con.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_catalog = 'store' AND data_type = 'VARCHAR'"
        ).fetchall()
        assert len(text_columns) > 50
        for table, column in text_columns:
            hits = con.execute(
                f"SELECT count(*) FROM store.\"{table}\" WHERE replace(\"{column}\", ' ', '') IN "
                "(SELECT n FROM uploaded)"
            ).fetchone()
            assert hits == (0,), f"{table}.{column}"
    captured = capsys.readouterr()
    assert not _numbers(caplog.text + captured.out + captured.err, uploaded)
    # the folders the server writes to: the store's (but for the source extract it was built from) and the app
    # database's (SQLite: the database file, its journal and write-ahead log, read as bytes)
    folders = {app_store.parent}
    if engine.dialect.name == "sqlite" and engine.url.database:
        folders.add(Path(engine.url.database).parent)
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file() and "source" not in path.relative_to(folder).parts and path.suffix != ".duckdb":
                assert not _numbers(path.read_bytes().decode("latin-1"), uploaded), path


def test_the_list_of_requests_shows_each_caller_only_what_they_may_see(
    client: TestClient, app_store: Path, cohort: str
) -> None:
    people = _people(client)
    add_user(client, "viewer", "viewer")
    viewer = clone(client)
    assert sign_in(viewer, "viewer") == 303
    cli1, cli3, apr1, apr2, ana = (people[n] for n in ("cli1", "cli3", "apr1", "apr2", "ana"))
    first = submit(cli1, cohort, "SYN00001", csv_list(practice_numbers(app_store, "SYN00001")))[1]["id"]
    third = submit(cli3, cohort, "SYN00003", csv_list(practice_numbers(app_store, "SYN00003")))[1]["id"]

    def ids(browser: TestClient) -> dict[int, dict[str, Any]]:
        response = browser.get("/api/reidentification")
        assert response.status_code == 200, response.text
        return {int(r["id"]): r for r in response.json()}

    # cli1 is a clinician of SYN00001 and an approver of PCN01: their own request, and nothing of PCN02
    assert set(ids(cli1)) == {first} and not ids(cli1)[first]["may_decide"]
    assert set(ids(cli3)) == {third}  # a clinician sees their own only
    assert set(ids(apr1)) == {first} and ids(apr1)[first]["may_decide"]  # SYN00001 lies in PCN01
    assert set(ids(apr2)) == {third} and ids(apr2)[third]["requester"] == "cli3"
    for refused in (viewer, ana):
        response = refused.get("/api/reidentification")
        assert response.status_code == 403 and response.json() == {"message": "your role does not allow this"}
        assert refused.get("/direct-care").status_code == 403

    # decided: the approver still sees it (recent), now without a decision to take; counts, never numbers
    assert post(apr1, f"/api/reidentification/{first}/approve")[0] == 200
    row = ids(apr1)[first]
    assert (row["status"], row["decided_by"], row["may_decide"]) == ("approved", "apr1", False)
    everyone = all_source_numbers(app_store)
    assert set(row) >= {"cohort", "practice_code", "purpose", "submitted", "invalid", "matched", "created_at"}
    for browser in (cli1, apr1, apr2):
        assert not _numbers(browser.get("/api/reidentification").text, everyone)
        assert not _numbers(browser.get("/direct-care").text, everyone)

    # the page: the clinician's form offers only their practices; the approver's queue has the buttons
    page = cli3.get("/direct-care").text
    assert '<option value="SYN00003">' in page and '<option value="SYN00001">' not in page
    assert 'href="/direct-care"' in page  # the nav link, for a clinician
    queue = apr2.get("/direct-care").text
    assert f'action="/api/reidentification/{third}/approve"' in queue and "request-form" not in queue
    assert 'href="/direct-care"' not in viewer.get("/").text
