"""Sign-in with OpenID Connect against the mock provider of ``tests/support/oidc_provider.py`` (on SQLite and
PostgreSQL through ``make_client``): the whole flow, then each way a sign-in must fail."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import sqlalchemy as sa
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from openphm.app import accounts
from openphm.app.accounts import Scope
from openphm.app.db import AuditRow, Grant, User
from openphm.app.oidc import FLOW_COOKIE, OidcConfigError, load_config
from openphm.cli import app as cli
from tests.support.app import PASSWORD, add_user
from tests.support.oidc_provider import CLIENT_ID, CLIENT_SECRET, ISSUER, REDIRECT, Mock, new_key, provider_app

Maker = Callable[..., TestClient]


@pytest.fixture(scope="module")
def rsa_key() -> Any:
    return new_key()


def _config(folder: Path, **changes: object) -> Path:
    secret = folder / "client-secret"
    secret.write_text(CLIENT_SECRET + "\n")
    body = {
        "issuer": ISSUER,
        "client_id": CLIENT_ID,
        "client_secret_file": "client-secret",  # relative: beside the config file
        "redirect_url": REDIRECT,
        "scopes": ["openid", "profile"],
        "username_claim": "preferred_username",
        **changes,
    }
    path = folder / "oidc.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def _app(make_client: Maker, folder: Path, key: Any, **changes: object) -> tuple[TestClient, Mock, TestClient]:
    """A client of an app signing in with the mock provider, the mock's state, and a browser at the provider."""
    client = make_client(oidc=load_config(_config(folder, **changes)), base_url="http://localhost")
    mock = Mock(key)
    provider = TestClient(provider_app(mock), base_url=ISSUER, follow_redirects=False)
    client.app.state.oidc.http = provider
    return client, mock, provider


def _to_provider(client: TestClient) -> str:
    start = client.get("/oidc/login")
    assert start.status_code == 303 and FLOW_COOKIE in start.headers["set-cookie"]
    assert "HttpOnly" in start.headers["set-cookie"] and "SameSite=lax" in start.headers["set-cookie"]
    url = start.headers["location"]
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(f"{ISSUER}/authorize?") and query["code_challenge_method"] == ["S256"]
    assert len(query["state"][0]) >= 32 and len(query["nonce"][0]) >= 32
    return url


def _callback(client: TestClient, provider: TestClient) -> str:
    """Through the provider's approval: the callback URL it sends the browser back to."""
    back = provider.get(_to_provider(client))
    assert back.status_code == 302
    return back.headers["location"]


def _audit(client: TestClient) -> list[tuple[str, str, dict[str, Any]]]:
    with client.app.state.phm.db() as db:
        rows = db.execute(sa.select(AuditRow).order_by(AuditRow.id)).scalars()
        return [(r.actor, r.action, json.loads(r.detail)) for r in rows]


def test_sign_in_gives_the_same_session_as_a_password(make_client: Maker, tmp_path: Path, rsa_key: Any) -> None:
    client, mock, provider = _app(make_client, tmp_path, rsa_key)
    accounts.add_user(
        client.app.state.phm.db, "ana", "analyst", [Scope.parse("pcn:PCN01")], None, oidc_subject="sub-ana"
    )
    page = client.get("/login")
    assert "Sign in with NHS Care Identity Service 2" in page.text and 'href="/oidc/login"' in page.text
    assert 'name="password"' in page.text  # local accounts stay on by default
    done = client.get(_callback(client, provider))
    assert done.status_code == 303 and done.headers["location"] == "/"
    assert FLOW_COOKIE in done.headers["set-cookie"] and 'phm_oidc=""' in done.headers["set-cookie"]  # removed
    me = client.get("/api/me").json()
    assert me["username"] == "ana" and me["person_level_scopes"] == ["pcn:PCN01"]
    assert client.get("/api/cohorts/severe_frailty/members", params={"practice_code": "SYN00003"}).status_code == 403
    assert client.post("/logout", data={"csrf_token": me["csrf_token"]}).status_code == 303
    assert ("ana", "sign_in", {"client": "testclient", "method": "oidc"}) in _audit(client)
    # a second person, matched by user name (no subject recorded yet): the subject is bound at that sign-in
    add_user(client, "bob", "viewer")
    mock.subject, mock.claims = "sub-bob", {"preferred_username": "bob"}
    assert client.get(_callback(client, provider)).status_code == 303
    assert client.get("/api/me").json()["username"] == "bob"
    with client.app.state.phm.db() as db:
        assert db.scalar(sa.select(User.oidc_subject).where(User.username == "bob")) == "sub-bob"
    assert ("bob", "oidc_subject_bound", {"client": "testclient"}) in _audit(client)
    # ... after which another subject carrying the same user name is a stranger
    fresh = TestClient(client.app, base_url=str(client.base_url), follow_redirects=False)
    mock.subject = "sub-mallory"
    assert fresh.get(_callback(fresh, provider)).status_code == 401
    assert fresh.get("/api/me").status_code == 401
    assert _audit(client)[-1][1:] == (
        "sign_in_failed",
        {"client": "testclient", "method": "oidc", "reason": "unknown_subject"},
    )


def test_state_and_code_are_good_once(make_client: Maker, tmp_path: Path, rsa_key: Any) -> None:
    client, mock, provider = _app(make_client, tmp_path, rsa_key)
    accounts.add_user(client.app.state.phm.db, "ana", "viewer", [], None, oidc_subject="sub-ana")
    url = _callback(client, provider)
    code = parse_qs(urlsplit(url).query)["code"][0]
    wrong = url.replace("state=", "state=x")
    assert client.get(wrong).status_code == 403  # wrong state (and the flow cookie is spent)
    assert mock.token_requests == 0  # refused before the code was used
    assert client.get(url).status_code == 403  # the right state, but the sign-in it belonged to is over
    assert client.get("/api/me").status_code == 401
    # a replayed code in a new sign-in: the state fits, the provider refuses the code
    again = _callback(client, provider)
    assert client.get(again).status_code == 303
    state = parse_qs(urlsplit(_to_provider(client)).query)["state"][0]
    replay = client.get(REDIRECT, params={"code": code, "state": state})
    assert replay.status_code == 401 and mock.token_requests == 2
    # an error from the provider (the person declined) and a callback nobody started
    state = parse_qs(urlsplit(_to_provider(client)).query)["state"][0]
    assert client.get(REDIRECT, params={"error": "access_denied", "state": state}).status_code == 401
    stranger = TestClient(client.app, base_url=str(client.base_url), follow_redirects=False)
    assert stranger.get(url).status_code == 403
    reasons = [d.get("reason") for _, action, d in _audit(client) if action == "sign_in_failed"]
    assert reasons == ["state", "no_flow", "token_request", "provider:access_denied", "no_flow"]


def test_every_bad_id_token_is_refused(make_client: Maker, tmp_path: Path, rsa_key: Any) -> None:
    client, mock, provider = _app(make_client, tmp_path, rsa_key)
    accounts.add_user(client.app.state.phm.db, "ana", "viewer", [], None, oidc_subject="sub-ana")
    expected = {
        "signature": "signature",
        "audience": "audience",
        "expired": "expired",
        "nonce": "nonce",
        "issuer": "issuer",
        "none": "algorithm",
        "hs256": "algorithm",
    }
    for tamper, reason in expected.items():
        mock.tamper = tamper
        response = client.get(_callback(client, provider))
        assert response.status_code == 401, tamper
        assert "did not succeed" in response.text and "phm_session" not in response.headers.get("set-cookie", "")
        assert client.get("/api/me").status_code == 401, tamper
        assert _audit(client)[-1][1:] == (
            "sign_in_failed",
            {"client": "testclient", "method": "oidc", "reason": reason},
        )
    mock.tamper = None  # the same provider, honest again: the sign-in works
    assert client.get(_callback(client, provider)).status_code == 303
    # the provider rotates its key: the new key id is looked up in a fresh JWKS once
    mock.key, mock.kid = new_key(), "test-key-2"
    assert client.get(_callback(client, provider)).status_code == 303


def test_the_subject_column_is_added_without_losing_accounts(tmp_path: Path) -> None:
    """Migration 0002 on a database made by 0001 with an account in it: the grant survives (a batch copy of
    ``users`` on SQLite would have cascaded its deletion)."""
    from alembic import command
    from alembic.config import Config

    from openphm.app.db import MIGRATIONS, connect

    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    engine = sa.create_engine(url)
    with engine.begin() as con:
        con.exec_driver_sql("PRAGMA foreign_keys = ON")
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = con
        command.upgrade(config, "0001")
        at = "'2026-01-01 00:00:00'"
        con.exec_driver_sql(f"INSERT INTO users VALUES (1, 'ana', NULL, 0, {at})")
        con.exec_driver_sql(f"INSERT INTO grants VALUES (1, 1, 'viewer', 'national', 'E92000001', {at})")
    factory = connect(url)
    assert accounts.load(factory, "ana").grants == (("viewer", Scope("national", "E92000001")),)
    accounts.add_user(factory, "bob", "viewer", [], None, oidc_subject="sub-bob")
    with pytest.raises(accounts.AccountError, match="another account has that OpenID Connect subject"):
        accounts.add_user(factory, "bob2", "viewer", [], None, oidc_subject="sub-bob")


def test_unknown_and_disabled_accounts_are_refused(make_client: Maker, tmp_path: Path, rsa_key: Any) -> None:
    client, mock, provider = _app(make_client, tmp_path, rsa_key, local_accounts=False, display_name="Entra ID")
    page = client.get("/login")
    assert "Sign in with Entra ID" in page.text and 'name="password"' not in page.text
    add_user(client, "ana", "viewer")  # has a password, but local sign-in is off
    refused = client.post("/login", data={"username": "ana", "password": PASSWORD, "csrf_token": "x" * 64})
    assert refused.status_code == 403 and "Local accounts are turned off" in refused.text
    mock.subject = "sub-nobody"
    assert client.get(_callback(client, provider)).status_code == 401
    accounts.add_user(client.app.state.phm.db, "cat", "viewer", [], None, oidc_subject="sub-cat")
    accounts.disable_user(client.app.state.phm.db, "cat")
    mock.subject = "sub-cat"
    assert client.get(_callback(client, provider)).status_code == 401
    assert client.get("/api/me").status_code == 401
    failed = [(a, d["reason"]) for a, action, d in _audit(client) if action == "sign_in_failed"]
    assert failed == [("oidc", "unknown_subject"), ("oidc", "disabled")]  # no username claim: actor 'oidc'


def test_claims_can_map_to_grants(make_client: Maker, tmp_path: Path, rsa_key: Any) -> None:
    roles = {"phm-analyst-pcn01": [{"role": "analyst", "scope": "pcn:PCN01"}], "phm-viewer": [{"role": "viewer"}]}
    client, mock, provider = _app(make_client, tmp_path, rsa_key, roles_claim="groups", roles=roles)
    add_user(client, "ana", "admin")
    mock.subject, mock.claims = "sub-ana", {"preferred_username": "ana", "groups": ["phm-analyst-pcn01", "other"]}
    assert client.get(_callback(client, provider)).status_code == 303
    with client.app.state.phm.db() as db:
        held = db.execute(sa.select(Grant.role, Grant.scope_level, Grant.scope_code)).all()
    assert [tuple(g) for g in held] == [("analyst", "pcn", "PCN01")]  # the admin grant went: the claim decides
    assert client.get("/admin").status_code == 403
    mock.claims = {"groups": "unmapped"}
    other = TestClient(client.app, base_url=str(client.base_url), follow_redirects=False)
    assert other.get(_callback(other, provider)).status_code == 401
    assert _audit(client)[-1][2]["reason"] == "no_mapped_role"


def test_the_config_file_is_checked(tmp_path: Path) -> None:
    ok = load_config(_config(tmp_path))
    assert ok.client_secret == CLIENT_SECRET and "s3cret" not in repr(ok)
    for changes, message in (
        ({"client_secret": "inline"}, "give client_secret_file"),
        ({"issuer": "http://idp.example"}, "issuer: Value error, must be an https:// URL"),
        ({"scopes": ["profile"]}, "must include 'openid'"),
        ({"redirect_url": "https://phm.example/callback"}, "must end in /oidc/callback"),
        ({"client_secret_file": "missing"}, "client_secret_file: cannot read it"),
        ({"roles": {"g": [{"role": "analyst"}]}}, "roles needs roles_claim"),
        ({"roles_claim": "g", "roles": {"g": [{"role": "superuser"}]}}, "role 'superuser' is not one of"),
        ({"colour": "blue"}, "colour: Extra inputs are not permitted"),
    ):
        with pytest.raises(OidcConfigError, match=message):
            load_config(_config(tmp_path, **changes))


def test_the_commands(app_store: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    db = f"sqlite:///{tmp_path / 'app.sqlite'}"
    added = runner.invoke(cli, ["users", "add", "ana", "--store", str(app_store), "--app-db", db, "--role", "viewer",
                                "--oidc-subject", "sub-ana"])  # fmt: skip
    assert added.exit_code == 0, added.output
    neither = runner.invoke(cli, ["users", "add", "bob", "--store", str(app_store), "--app-db", db, "--role", "viewer"])
    assert neither.exit_code == 2 and "give a password file, an OpenID Connect subject, or both" in neither.output
    bad = _config(tmp_path, client_secret="inline")
    served = runner.invoke(cli, ["serve", "--store", str(app_store), "--app-db", db, "--oidc-config", str(bad)])
    assert served.exit_code == 2 and "client_secret_file" in served.output and "Traceback" not in served.output


def test_an_unreachable_provider_is_a_message(make_client: Maker, tmp_path: Path, rsa_key: Any) -> None:
    client, _mock, _provider = _app(make_client, tmp_path, rsa_key)

    def refuse(_request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    client.app.state.oidc.http = httpx.Client(transport=httpx.MockTransport(refuse))
    response = client.get("/oidc/login")
    assert response.status_code == 502 and "cannot be reached" in response.text
