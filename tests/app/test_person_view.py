"""The integrated person view: pseudonymised for an analyst within scope, identified for a clinician inside an
approved re-identification, nothing for anyone else; opaque, per-user links; every view audited."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import duckdb
import sqlalchemy as sa
from fastapi.testclient import TestClient

from openphm.app.data import StoreReader
from openphm.app.db import AuditRow
from openphm.person_view import record
from tests.app.test_direct_care import COHORT_QUERY
from tests.support.app import add_user, clone, sign_in
from tests.support.direct_care import csv_list, expected, post, practice_numbers, pseudonym, store_key, submit


def test_person_view_pseudonymised_identified_and_refused(
    make_client: Callable[..., TestClient], app_store: Path
) -> None:
    with duckdb.connect(str(app_store), read_only=True) as con:
        cohort = str((con.execute(COHORT_QUERY).fetchone() or ("",))[0])
    client = make_client(pseudonymisation_key=store_key(app_store))
    for name, role, scope in (
        ("ana", "analyst", "practice:SYN00001"),
        ("far", "analyst", "practice:SYN00003"),
        ("cli1", "clinician", "practice:SYN00001"),
        ("apr1", "approver", "pcn:PCN01"),
    ):
        add_user(client, name, role, scope)
    people = {}
    for name in ("ana", "far", "cli1", "apr1"):
        people[name] = clone(client)
        assert sign_in(people[name], name) == 303

    # the clinician's approved request gives links with the NHS numbers it matched
    own = practice_numbers(app_store, "SYN00001")
    _status, body = submit(people["cli1"], cohort, "SYN00001", csv_list(own))
    request_id = int(body["id"])  # type: ignore[call-overload]
    assert people["cli1"].get(f"/api/reidentification/{request_id}/people").status_code == 403  # not yet approved
    assert post(people["apr1"], f"/api/reidentification/{request_id}/approve")[0] == 200
    links = people["cli1"].get(f"/api/reidentification/{request_id}/people").json()
    want = expected(app_store, cohort, "SYN00001", own)
    assert {link["nhs_number"] for link in links} == want
    number, link = links[0]["nhs_number"], links[0]["view"]
    person = pseudonym(store_key(app_store), number)
    assert person not in link and number not in link  # the URL carries neither

    identified = people["cli1"].get(link.replace("/people/", "/api/people/")).json()
    assert identified["nhs_number"] == number and identified["practice_code"] == "SYN00001"

    # the analyst of the practice sees the same person without the number
    analyst_links = people["ana"].get("/api/person-links", params={"cohort": cohort}).json()
    mine = next(a["view"] for a in analyst_links if a["person_id"] == person)
    seen = people["ana"].get(mine.replace("/people/", "/api/people/")).json()
    assert seen["nhs_number"] is None and seen["pseudonymised"] is True
    assert {k: v for k, v in seen.items() if k not in {"nhs_number", "pseudonymised"}} == {
        k: v for k, v in identified.items() if k not in {"nhs_number", "pseudonymised"}
    }
    assert seen["segments"] and seen["timeline"]["total"] > 0
    page = people["ana"].get(mine).text
    assert 'id="risk-drivers"' in page and "-fold" in page
    assert number not in json.dumps(seen)  # (the pages themselves: tests/app/test_direct_care_browser.py)

    # another user's link opens nothing; an analyst elsewhere gets no links to this practice
    assert people["far"].get(mine).status_code == 404
    elsewhere = {"cohort": cohort, "practice_code": "SYN00001"}
    assert people["far"].get("/api/person-links", params=elsewhere).status_code == 403
    assert people["apr1"].get(mine).status_code == 403  # the approver has no person view at all
    # after closing, the clinician's link no longer shows the person
    assert post(people["cli1"], f"/api/reidentification/{request_id}/close")[0] == 200
    assert people["cli1"].get(link).status_code == 403

    with client.app.state.phm.db() as db:
        rows = list(db.execute(sa.select(AuditRow).order_by(AuditRow.id)).scalars())
        views = [json.loads(r.detail) for r in rows if r.action == "person_view"]
        text = " ".join(r.detail for r in rows)
    assert [v["identified"] for v in views] == [True, False, False]  # the analyst's JSON view, then the page
    assert person not in text and number not in text


def test_the_admission_risk_drivers_rebuild_the_stored_score(app_store: Path, store_reader: StoreReader) -> None:
    """The drivers are the model's terms times the person's own figures: with the intercept they must give back
    the score the admission_risk stage computed in the engine, for people of high and low risk alike."""
    with duckdb.connect(str(app_store), read_only=True) as con:
        applied = con.execute("SELECT count(*) FROM admission_risk_model WHERE kind <> 'intercept'").fetchone()
        chosen = con.execute(
            "SELECT person_id, admission_risk FROM admission_risk WHERE as_of = (SELECT max(as_of) FROM admission_risk)"
            " AND admission_risk IS NOT NULL ORDER BY admission_risk DESC, person_id"
        ).fetchall()
    assert applied is not None and applied[0] > 20 and len(chosen) > 100
    seen = {}
    for person, stored in (chosen[0], chosen[-1]):
        found = store_reader.direct_care(lambda eng, pid=person: record(eng, pid))
        assert found is not None
        seen[person] = found
        drivers = found["risk"]["drivers"]
        assert drivers is not None and found["risk"]["admission_risk"] == stored
        linear = drivers["intercept"] + sum(f["contribution"] for f in drivers["all"])
        assert abs(1.0 / (1.0 + math.exp(-linear)) - stored) < 1e-9
        assert drivers["raising"] == sorted(drivers["raising"], key=lambda f: -f["contribution"])
        assert all(f["contribution"] > 0 for f in drivers["raising"])
        assert all(f["contribution"] < 0 for f in drivers["lowering"])
    top = seen[chosen[0][0]]["risk"]["drivers"]
    words = {f["feature"] for f in top["all"]}
    assert {"Age", "Sex", "Electronic Frailty Index"} <= words
    assert not any("_" in w for w in words)  # plain words, not column names
    assert len(top["raising"]) == 5  # the highest risk of the store has at least five things raising it
