"""Access: every route declares what it needs, and person-level rows never leave a grant's scope.

The matrix crosses every role and scope with every person-level route, every practice (and none, and an unknown
one) and every cohort, and compares what comes back with the members read straight from the store."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from openphm.app import accounts
from openphm.app.db import Session as SessionRow
from openphm.app.db import now
from openphm.app.policy import Need, check_declarations, declared_need
from tests.support.app import HIERARCHY, PRACTICES, add_user, clone, sign_in

LEVEL_INDEX = {"pcn": 0, "sub_icb": 1, "icb": 2, "region": 3}
# (user, role, scopes): every role at every level that has an inside and an outside in the test store.
USERS = [
    ("viewer_nat", "viewer", ["national"]),
    ("viewer_p1", "viewer", ["practice:SYN00001"]),
    ("admin_nat", "admin", ["national"]),
    ("analyst_nat", "analyst", ["national"]),
    ("analyst_reg", "analyst", ["region:REG01"]),
    ("analyst_icb2", "analyst", ["icb:ICB02"]),
    ("analyst_sub1", "analyst", ["sub_icb:SUB01"]),
    ("analyst_pcn2", "analyst", ["pcn:PCN02"]),
    ("analyst_p1", "analyst", ["practice:SYN00001"]),
    ("analyst_p1_p4", "analyst", ["practice:SYN00001", "practice:SYN00004"]),
]


def _allowed(role: str, scopes: list[str]) -> set[str]:
    """The practices whose members ``role`` at ``scopes`` may see (worked out here, not by the app)."""
    if role != "analyst":
        return set()
    out: set[str] = set()
    for text in scopes:
        level, _, code = text.partition(":")
        for practice in PRACTICES:
            if (
                level == "national"
                or (level == "practice" and practice == code)
                or (level in LEVEL_INDEX and HIERARCHY[practice][LEVEL_INDEX[level]] == code)
            ):
                out.add(practice)
    return out


def _store_members(store: Path) -> dict[str, dict[str, str]]:
    """cohort -> {pseudonym: practice} at the latest as_of, read from the store with DuckDB's own SQL."""
    con = duckdb.connect(str(store), read_only=True)
    try:
        rows = con.sql(
            "SELECT m.cohort, m.person_id, p.practice_code FROM cohort_member m "
            "JOIN population p USING (person_id, as_of) "
            "WHERE m.as_of = (SELECT max(as_of) FROM cohort_member c WHERE c.cohort = m.cohort)"
        ).fetchall()
    finally:
        con.close()
    out: dict[str, dict[str, str]] = {}
    for cohort, person, practice in rows:
        out.setdefault(cohort, {})[person] = practice
    return out


def test_every_route_declares_one_need(make_client: Callable[..., TestClient]) -> None:
    app = make_client().app
    routes = [r for r in app.routes if isinstance(r, APIRoute)]
    assert len(routes) >= 12
    public = {r.path for r in routes if declared_need(r) == [Need.PUBLIC]}
    assert public == {"/healthz", "/login"}
    for route in routes:
        assert len(declared_need(route)) == 1, route.path


def test_an_undeclared_route_stops_the_app() -> None:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/leak")
    def leak() -> dict[str, str]:
        return {}

    with pytest.raises(RuntimeError, match="/leak"):
        check_declarations(app)


def test_nothing_but_health_and_sign_in_without_a_session(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    assert client.get("/healthz").status_code == 200
    assert client.get("/login").status_code == 200
    for route in client.app.routes:
        if not isinstance(route, APIRoute) or declared_need(route) == [Need.PUBLIC]:
            continue
        path = route.path.replace("{table}", "agg_population").replace("{name}", "severe_frailty")
        for method in route.methods:
            response = client.request(method, path, params={"level": "national", "area_code": "E92000001"})
            assert response.status_code == 401, (method, path, response.status_code)
            assert response.json() == {"message": "sign in first"}
    page = client.get("/cohorts", headers={"Accept": "text/html"})  # a browser is sent to the sign-in page
    assert page.status_code == 303 and page.headers["location"] == "/login"


def test_access_matrix(make_client: Callable[..., TestClient], app_store: Path) -> None:
    client = make_client()
    every = _store_members(app_store)
    # the two largest cohorts: members in every practice (the others add requests, not cases)
    truth = {c: every[c] for c in sorted(every, key=lambda c: -len(every[c]))[:2]}
    assert all({p for p in m.values()} == set(PRACTICES) for m in truth.values())
    clients: dict[str, TestClient] = {}
    for name, role, scopes in USERS:
        add_user(client, name, role, *scopes)
        clients[name] = clone(client)
        assert sign_in(clients[name], name) == 303
    # a disabled analyst and an expired session (both were signed in first)
    for name in ("analyst_disabled", "analyst_idle", "analyst_old"):
        add_user(client, name, "analyst", "national")
        clients[name] = clone(client)
        assert sign_in(clients[name], name) == 303
    accounts.disable_user(client.app.state.phm.db, "analyst_disabled")
    with client.app.state.phm.db() as db, db.begin():
        idle = sa.select(accounts.User.id).where(accounts.User.username == "analyst_idle").scalar_subquery()
        old = sa.select(accounts.User.id).where(accounts.User.username == "analyst_old").scalar_subquery()
        db.execute(
            sa.update(SessionRow).where(SessionRow.user_id == idle).values(last_seen_at=now() - timedelta(minutes=31))
        )
        db.execute(sa.update(SessionRow).where(SessionRow.user_id == old).values(created_at=now() - timedelta(hours=9)))
    clients["anonymous"] = clone(client)
    roles = {name: (role, scopes) for name, role, scopes in USERS}

    checked = 0
    for name, user_client in clients.items():
        role, scopes = roles.get(name, ("none", []))
        allowed = _allowed(role, scopes)
        for cohort, members in truth.items():
            for practice in (None, *PRACTICES, "NOPE1"):
                for suffix in ("", ".csv"):
                    params = {} if practice is None else {"practice_code": practice}
                    response = user_client.get(f"/api/cohorts/{cohort}/members{suffix}", params=params)
                    checked += 1
                    if name not in roles:
                        assert response.status_code == 401, (name, cohort, practice)
                        assert not any(p in response.text for p in members)
                        continue
                    if not allowed or (practice is not None and practice not in allowed):
                        expected = 404 if practice == "NOPE1" and role == "analyst" and "national" in scopes else 403
                        assert response.status_code == expected, (name, cohort, practice, response.status_code)
                        assert not any(p in response.text for p in members), (name, cohort, practice)
                        continue
                    assert response.status_code == 200, (name, cohort, practice, response.text)
                    rows = list(csv.DictReader(io.StringIO(response.text))) if suffix else response.json()
                    got = {row["person_id"]: row["practice_code"] for row in rows}
                    wanted = {
                        p: where
                        for p, where in members.items()
                        if where in allowed and (practice is None or where == practice)
                    }
                    assert got == wanted, (name, cohort, practice)
    assert checked == len(clients) * len(truth) * 6 * 2


def test_viewer_and_admin_see_aggregates_not_people(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    for name, role in (("v", "viewer"), ("a", "admin")):
        add_user(client, name, role, "practice:SYN00002")
        browser = clone(client)
        assert sign_in(browser, name) == 303
        assert (
            browser.get(
                "/api/aggregates/agg_population", params={"level": "practice", "area_code": "SYN00001"}
            ).status_code
            == 200
        )
        assert (
            browser.get("/api/cohorts/severe_frailty/members", params={"practice_code": "SYN00002"}).status_code == 403
        )
        assert browser.get("/admin").status_code == (200 if role == "admin" else 403)
