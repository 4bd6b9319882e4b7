"""The API as each role sees it: aggregates through disclosure control, a replaced store picked up, pages render,
and schemathesis over the OpenAPI description (no 5xx)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb
import hypothesis
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from openphm.analytics.published import published_tables
from openphm.app.server import create_app
from tests.support.app import add_user, clone, sign_in
from tests.support.app import settings as app_settings

ROLES = {"viewer": ["national"], "analyst": ["pcn:PCN02"], "admin": ["national"]}


def test_aggregates_are_the_published_rows(make_client: Callable[..., TestClient], app_store: Path) -> None:
    client = make_client()
    add_user(client, "vic", "viewer", "practice:SYN00001")
    assert sign_in(client, "vic") == 303
    published = published_tables(app_store, policy="nhs")["agg_population"]
    rows = client.get(
        "/api/aggregates/agg_population", params={"level": "pcn", "area_code": "PCN02", "as_of": "2025-03-31"}
    ).json()
    expected = [
        r
        for r in published.to_pylist()
        if r["level"] == "pcn" and r["area_code"] == "PCN02" and str(r["as_of"]) == "2025-03-31"
    ]
    assert len(rows) == len(expected) > 10
    assert sorted((r["breakdown"], str(r["people"])) for r in rows) == sorted(
        (r["breakdown"], str(r["people"])) for r in expected
    )
    people = [r["people"] for r in rows if r["people"] is not None]
    assert all(p % 5 == 0 and p > 7 for p in people)  # rounded to 5, nothing from 1 to 7
    assert any(r["people"] is None for r in rows)  # small cells are redacted
    areas = client.get("/api/areas", params={"level": "pcn"}).json()
    assert {(a["code"], a["parent"]) for a in areas} == {("PCN01", "SUB01"), ("PCN02", "SUB02")}
    assert client.get("/api/areas", params={"level": "national"}).json()[0]["code"] == "E92000001"


def test_a_replaced_store_is_picked_up(app_store: Path, tmp_path: Path, new_db: Callable[[], str]) -> None:
    store = tmp_path / "phm.duckdb"
    shutil.copy2(app_store, store)
    app = create_app(app_settings(store, new_db()))
    client = TestClient(app, follow_redirects=False)
    add_user(client, "vic", "viewer")
    assert sign_in(client, "vic") == 303
    params = {"level": "national", "area_code": "E92000001"}
    before = client.get("/api/aggregates/agg_cohort", params=params).json()
    assert {r["cohort"] for r in before} >= {"severe_frailty"}
    staging = tmp_path / ".phm.duckdb.building"
    shutil.copy2(app_store, staging)
    con = duckdb.connect(str(staging))
    con.execute("DELETE FROM agg_cohort WHERE cohort = 'severe_frailty'")
    con.close()
    staging.replace(store)  # what 'phm run' does when it publishes
    after = client.get("/api/aggregates/agg_cohort", params=params).json()
    assert "severe_frailty" not in {r["cohort"] for r in after} and len(after) < len(before)


def test_pages_render_for_each_role(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    for role, scopes in ROLES.items():
        add_user(client, role, role, *scopes)
        browser = clone(client)
        assert sign_in(browser, role) == 303
        page = browser.get("/", params={"level": "pcn", "area_code": "PCN02"})
        assert page.status_code == 200 and "Population" in page.text and "Parent: sub_icb SUB02" in page.text
        assert "<script>" not in page.text and "style=" not in page.text  # nothing inline: the CSP forbids it
        cohorts = browser.get("/cohorts")
        assert cohorts.status_code == 200 and ("Download CSV" in cohorts.text) == (role == "analyst")
        assert browser.get("/admin").status_code == (200 if role == "admin" else 403)
    assert client.get("/static/vendor/nhsuk-frontend/nhsuk-frontend.min.css").status_code == 200


@pytest.mark.parametrize("role", list(ROLES))
def test_schemathesis_finds_no_server_error(make_client: Callable[..., TestClient], role: str) -> None:
    client = make_client()
    add_user(client, role, role, *ROLES[role])
    assert sign_in(client, role) == 303
    token = client.get("/api/me").json()["csrf_token"]
    description = client.get("/openapi.json").json()
    schema = schemathesis.openapi.from_dict(description)
    schema.app = client.app
    cookies = dict(client.cookies)
    failures: list[str] = []
    statuses: set[int] = set()
    operations = [op.ok() for op in schema.get_all_operations()]
    tested = [op for op in operations if op.path not in ("/login", "/logout")]  # sign-in has its own tests
    assert len(tested) >= 6

    for operation in tested:

        @settings(max_examples=8, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @hypothesis.given(case=operation.as_strategy())
        def check(case: schemathesis.Case) -> None:
            response = case.call(cookies=cookies, headers={"X-CSRF-Token": token})
            statuses.add(response.status_code)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} {case.query} -> {response.status_code}")

        check()
    assert not failures, failures[:5]
    assert 200 in statuses  # the session held: generated requests reached the routes


def test_a_store_not_ingested_for_planning_serves_no_aggregates(
    demo_source: Path, tmp_path: Path, new_db: Callable[[], str]
) -> None:
    """Aggregates are planning outputs: a direct-care store (no opt-outs removed) is refused, as by the exports."""
    from openphm import api
    from openphm.app import audit

    store = tmp_path / "direct.duckdb"
    api.ingest(demo_source, store, key=api.new_key(), purpose="direct-care")
    client = TestClient(create_app(app_settings(store, new_db())), follow_redirects=False)
    add_user(client, "vic", "viewer")
    assert sign_in(client, "vic") == 303
    refused = client.get("/api/aggregates/agg_population", params={"level": "national", "area_code": "E92000001"})
    assert refused.status_code == 403
    assert "ingested for direct-care" in refused.json()["message"]

    url = new_db()
    allowed = TestClient(create_app(app_settings(store, url, allow_purpose_mismatch=True)), follow_redirects=False)
    add_user(allowed, "vic", "viewer")
    assert sign_in(allowed, "vic") == 303
    answer = allowed.get("/api/aggregates/agg_population", params={"level": "national", "area_code": "E92000001"})
    assert answer.status_code != 403  # not refused (this store has no run yet, so no such table: 404)
    with allowed.app.state.phm.db() as db:
        assert "purpose_override" in {row.action for row in db.query(audit.AuditRow)}


def test_the_overview_sets_the_area_beside_its_peers(make_client: Callable[..., TestClient]) -> None:
    """A practice beside the other practices of its PCN (and no other), each with its published population."""
    client = make_client()
    add_user(client, "vic", "viewer")
    assert sign_in(client, "vic") == 303
    page = client.get("/", params={"level": "practice", "area_code": "SYN00001", "as_of": "2025-03-31"}).text
    peers = page[page.index('id="peers"') : page.index("</table>", page.index('id="peers"'))]
    assert "SYN00002" in peers and "SYN00003" not in peers and "SYN00004" not in peers
    rows = client.get(
        "/api/aggregates/agg_population", params={"level": "practice", "area_code": "SYN00002", "as_of": "2025-03-31"}
    ).json()
    people = next(r["people"] for r in rows if r["breakdown"] == "total")
    assert f">{people:,}<" in peers
