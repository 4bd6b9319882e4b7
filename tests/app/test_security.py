"""Sign-in, sessions, CSRF, lock-out and headers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import sqlalchemy as sa
from fastapi.testclient import TestClient

from openphm.app.db import LoginAttempt, now
from openphm.app.security import Limits
from tests.support.app import PASSWORD, add_user, clone, login_token, sign_in


def _me(client: TestClient) -> dict:
    response = client.get("/api/me")
    assert response.status_code == 200
    return response.json()


def test_sign_in_sets_a_guarded_cookie_and_headers(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    add_user(client, "ana", "analyst", "pcn:PCN01")
    page = client.get("/login")
    assert page.headers["content-security-policy"].count("'unsafe") == 0
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "same-origin"  # no-referrer would make browsers send Origin: null
    assert page.headers["x-content-type-options"] == "nosniff"
    token = login_token(client)
    response = client.post("/login", data={"username": "ana", "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 303
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("phm_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    me = _me(client)
    assert me["username"] == "ana" and me["person_level_scopes"] == ["pcn:PCN01"] and len(me["csrf_token"]) == 64


def test_cookie_is_secure_behind_a_tls_proxy_or_over_https(make_client: Callable[..., TestClient]) -> None:
    proxied = make_client(behind_tls_proxy=True)  # the proxy speaks TLS; the app sees plain http
    assert "Secure" in proxied.get("/login").headers["set-cookie"]
    client = make_client(base_url="https://testserver")
    add_user(client, "ana", "viewer")
    token = login_token(client)
    response = client.post("/login", data={"username": "ana", "password": PASSWORD, "csrf_token": token})
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("phm_session="))
    assert "Secure" in cookie


def test_wrong_password_unknown_user_and_disabled_account(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    add_user(client, "ana", "viewer")
    assert sign_in(client, "ana", "wrong password!!") == 401
    assert sign_in(client, "nobody", PASSWORD) == 401
    assert client.get("/api/me").status_code == 401
    from openphm.app import accounts

    accounts.disable_user(client.app.state.phm.db, "ana")
    assert sign_in(client, "ana") == 401


def test_csrf_on_every_state_change(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    add_user(client, "ana", "viewer")
    add_user(client, "bob", "viewer")
    # the sign-in form: no token, a made-up token, a token bound to another browser's cookie
    assert (
        client.post("/login", data={"username": "ana", "password": PASSWORD, "csrf_token": "x" * 64}).status_code == 403
    )
    other = clone(client)
    foreign = login_token(other)
    client.get("/login")
    assert (
        client.post("/login", data={"username": "ana", "password": PASSWORD, "csrf_token": foreign}).status_code == 403
    )
    assert client.post("/login", data={"username": "ana", "password": PASSWORD}).status_code == 422
    assert sign_in(client, "ana") == 303
    assert sign_in(other, "bob") == 303
    # sign-out: without a token, with another session's token, cross-site, then right (header and form)
    assert client.post("/logout").status_code == 403
    assert client.post("/logout", headers={"X-CSRF-Token": _me(other)["csrf_token"]}).status_code == 403
    token = _me(client)["csrf_token"]
    cross = client.post("/logout", headers={"X-CSRF-Token": token, "Origin": "https://evil.example"})
    assert cross.status_code == 403
    assert client.get("/api/me").status_code == 200  # still signed in after every refused attempt
    assert client.post("/logout", data={"csrf_token": token}).status_code == 303
    assert client.get("/api/me").status_code == 401
    assert other.post("/logout", headers={"X-CSRF-Token": _me(other)["csrf_token"]}).status_code == 303


def test_lock_out_by_account_and_by_client(make_client: Callable[..., TestClient]) -> None:
    client = make_client(limits=Limits(account_failures=3, client_failures=6))
    for name in ("ana", "bob", "cat"):
        add_user(client, name, "viewer")
    for _ in range(3):
        assert sign_in(client, "ana", "wrong password!!") == 401
    assert sign_in(client, "ana") == 429  # the right password no longer helps
    assert sign_in(client, "bob") == 303  # another account from the same client still may
    for _ in range(2):
        assert sign_in(clone(client), "cat", "wrong password!!") == 401
    assert sign_in(clone(client), "bob") == 429  # six failures from this client: everyone here waits
    with client.app.state.phm.db() as db, db.begin():  # the window passes
        db.execute(sa.update(LoginAttempt).values(at=now() - timedelta(minutes=16)))
    assert sign_in(clone(client), "ana") == 303


def test_sessions_expire_idle_and_absolute(make_client: Callable[..., TestClient]) -> None:
    from openphm.app.db import Session

    client = make_client(limits=Limits(idle=timedelta(minutes=30), absolute=timedelta(hours=8)))
    add_user(client, "ana", "viewer")
    assert sign_in(client, "ana") == 303
    with client.app.state.phm.db() as db, db.begin():
        db.execute(sa.update(Session).values(last_seen_at=now() - timedelta(minutes=29)))
    assert client.get("/api/me").status_code == 200  # active use keeps it alive ...
    with client.app.state.phm.db() as db, db.begin():
        db.execute(sa.update(Session).values(last_seen_at=now() - timedelta(minutes=31)))
    assert client.get("/api/me").status_code == 401  # ... idle ends it
    assert sign_in(client, "ana") == 303
    with client.app.state.phm.db() as db, db.begin():
        db.execute(sa.update(Session).values(created_at=now() - timedelta(hours=8, minutes=1)))
    assert client.get("/api/me").status_code == 401  # in use, but past the absolute limit
    with client.app.state.phm.db() as db:
        assert db.scalar(sa.select(sa.func.count()).select_from(Session)) == 0  # expired rows are removed


def test_errors_are_json_without_a_trace(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    add_user(client, "ana", "viewer")
    assert sign_in(client, "ana") == 303
    for path, params, status in (
        ("/api/aggregates/agg_nothing", {"level": "national", "area_code": "E92000001"}, 404),
        ("/api/aggregates/agg_population", {"level": "galaxy", "area_code": "E92000001"}, 422),
        ("/api/aggregates/agg_population", {"level": "national", "area_code": "E92000001", "as_of": "soon"}, 422),
        ("/api/cohorts/nothing/members", {}, 403),
    ):
        response = client.get(path, params=params)
        assert response.status_code == status, path
        body = response.json()
        assert isinstance(body["message"], str) and "Traceback" not in response.text and "soon" not in response.text


def test_a_request_reads_its_session_without_the_write_lock(make_client: Callable[..., TestClient]) -> None:
    """Within a minute of the last write a signed-in request only reads the app database: it is answered while
    another transaction holds SQLite's write lock (it used to queue behind it), and last_seen_at is left alone;
    after a minute it is written again, so idle expiry stays exact to the minute."""
    import sqlite3

    from openphm.app.db import Session

    client = make_client()
    add_user(client, "ana", "viewer")
    assert sign_in(client, "ana") == 303
    factory = client.app.state.phm.db

    def last_seen() -> object:
        with factory() as db:
            return db.scalar(sa.select(Session.last_seen_at))

    recent = now() - timedelta(seconds=50)
    with factory() as db, db.begin():
        db.execute(sa.update(Session).values(last_seen_at=recent))
    engine = factory.kw["bind"]
    if engine.dialect.name == "sqlite":
        writer = sqlite3.connect(engine.url.database, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")  # someone else is writing (a sign-in, an audit row)
        try:
            assert client.get("/api/me").status_code == 200
        finally:
            writer.execute("ROLLBACK")
            writer.close()
    else:
        assert client.get("/api/me").status_code == 200
    assert last_seen() == recent
    with factory() as db, db.begin():
        db.execute(sa.update(Session).values(last_seen_at=now() - timedelta(minutes=2)))
    assert client.get("/api/me").status_code == 200
    assert last_seen() >= now() - timedelta(seconds=5)
