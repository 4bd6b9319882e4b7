"""The audit chain: what is recorded, verification, and tampering (altered, deleted, inserted rows)."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from openphm.app import audit
from openphm.app.db import AuditHead, AuditRow, connect
from openphm.cli import app as cli
from tests.support.app import PASSWORD, add_user, sign_in


def _signed_session_activity(client: TestClient) -> None:
    add_user(client, "ana", "analyst", "practice:SYN00001")
    assert sign_in(client, "ana", "wrong password!!") == 401
    assert sign_in(client, "ana") == 303
    assert client.get("/api/cohorts/severe_frailty/members", params={"practice_code": "SYN00001"}).status_code == 200
    assert client.get("/api/cohorts/severe_frailty/members.csv").status_code == 200
    assert client.get("/api/cohorts/severe_frailty/members", params={"practice_code": "SYN00003"}).status_code == 403


def _rows(client: TestClient) -> list[AuditRow]:
    with client.app.state.phm.db() as db:
        return list(db.execute(sa.select(AuditRow).order_by(AuditRow.id)).scalars())


def test_events_are_recorded_without_pseudonyms(make_client: Callable[..., TestClient], app_store: Path) -> None:
    client = make_client()
    _signed_session_activity(client)
    rows = _rows(client)
    assert [r.action for r in rows] == [
        "user_added",
        "grant_added",
        "sign_in_failed",
        "sign_in",
        "person_level_view",
        "person_level_download",
    ]
    view = json.loads(rows[4].detail)
    assert view["cohort"] == "severe_frailty" and view["practice_code"] == "SYN00001" and view["rows"] > 0
    members = client.get("/api/cohorts/severe_frailty/members").json()
    text = " ".join(r.detail for r in _rows(client))
    assert members and not any(m["person_id"] in text for m in members)
    assert audit.verify(client.app.state.phm.db).intact


def _tamper(client: TestClient, statement: str) -> audit.Verdict:
    with client.app.state.phm.db() as db, db.begin():
        db.execute(sa.text(statement))
    return audit.verify(client.app.state.phm.db)


def test_verify_finds_an_altered_row(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    _signed_session_activity(client)
    verdict = _tamper(client, "UPDATE audit SET actor = 'mallory' WHERE id = 5")
    assert (verdict.broken_at, verdict.reason) == (5, "its content does not match its hash (altered)")


def test_verify_finds_a_deleted_row(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    _signed_session_activity(client)
    assert _tamper(client, "DELETE FROM audit WHERE id = 3").broken_at == 4


def test_verify_finds_a_deleted_last_row(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    _signed_session_activity(client)
    verdict = _tamper(client, "DELETE FROM audit WHERE id = 6")
    assert verdict.broken_at == 6 and "head" in verdict.reason


def test_verify_finds_an_inserted_row(make_client: Callable[..., TestClient]) -> None:
    """A forged row slotted in at 4, every later row renumbered, its hash computed correctly."""
    client = make_client()
    _signed_session_activity(client)
    factory = client.app.state.phm.db
    with factory() as db, db.begin():
        rows = list(db.execute(sa.select(AuditRow).order_by(AuditRow.id.desc())).scalars())
        for row in rows:
            if row.id >= 4:
                db.execute(sa.update(AuditRow).where(AuditRow.id == row.id).values(id=row.id + 1))
        third = next(r for r in rows if r.id == 3)
        forged = audit.canonical(4, third.at, "mallory", "sign_in", "{}", third.hash)
        import hashlib

        db.add(
            AuditRow(
                id=4,
                at=third.at,
                actor="mallory",
                action="sign_in",
                detail="{}",
                prev_hash=third.hash,
                hash=hashlib.sha256(forged).hexdigest(),
            )
        )
        db.execute(sa.update(AuditHead).values(last_id=7))
    verdict = audit.verify(factory)
    assert verdict.broken_at == 5  # the renumbered row: its hash covered its old number and link


def test_concurrent_writers_keep_one_chain(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    factory = client.app.state.phm.db

    def write(n: int) -> None:
        for i in range(15):
            with factory() as db, db.begin():
                db.execute(sa.select(AuditRow.id).limit(1)).all()  # a read first, as a request does
                audit.record(db, f"writer{n}", "person_level_view", rows=i)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    verdict = audit.verify(factory)
    assert verdict.intact and verdict.rows == 60


def test_cli_verify_exit_codes(make_client: Callable[..., TestClient], app_store: Path) -> None:
    client = make_client()
    _signed_session_activity(client)
    url = str(client.app.state.phm.settings.app_db)
    runner = CliRunner()
    ok = runner.invoke(cli, ["audit", "verify", "--store", str(app_store), "--app-db", url])
    assert ok.exit_code == 0 and "intact: 6 rows" in ok.output
    _tamper(client, "UPDATE audit SET actor = 'someone' WHERE id = 2")
    broken = runner.invoke(cli, ["audit", "verify", "--store", str(app_store), "--app-db", url])
    assert broken.exit_code == 1 and "row 2" in broken.output


def test_users_cli(app_store: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    password = tmp_path / "pw"
    password.write_text(PASSWORD + "\n")
    runner = CliRunner()
    base = ["--store", str(app_store), "--app-db", url]
    added = runner.invoke(
        cli,
        [
            "users",
            "add",
            "ana",
            *base,
            "--role",
            "analyst",
            "--scope",
            "pcn:PCN01",
            "--scope",
            "practice:SYN00004",
            "--password-file",
            str(password),
        ],
    )
    assert added.exit_code == 0, added.output
    assert runner.invoke(cli, ["users", "disable", "ana", *base]).exit_code == 0
    listed = runner.invoke(cli, ["users", "list", *base])
    assert "ana" in listed.output and "disabled" in listed.output and "practice:SYN00004" in listed.output
    for bad in (["--role", "boss"], ["--role", "viewer", "--scope", "planet:X"]):
        out = runner.invoke(cli, ["users", "add", "bob", *base, *bad, "--password-file", str(password)])
        assert out.exit_code == 2 and "Traceback" not in out.output
    grants = audit.verify(connect(url))
    assert grants.intact and grants.rows == 4  # user, two grants, disabled
    unreachable = runner.invoke(
        cli, ["users", "list", "--store", str(app_store), "--app-db", "postgresql+psycopg://postgres@127.0.0.1:1/none"]
    )
    assert unreachable.exit_code == 2 and "cannot open the app database" in unreachable.output


def test_demo_account(app_store: Path, tmp_path: Path) -> None:
    """``phm demo``'s last step: an admin with a generated password (file mode 600) and the serve command."""
    from openphm.app import accounts
    from openphm.app.settings import app_db_url
    from openphm.cli.serve import demo_account

    store = tmp_path / "demo.duckdb"
    shutil.copy2(app_store, store)
    command = demo_account(store, tmp_path)
    assert command == f"phm serve --store {store}"
    password_file = tmp_path / "demo-password.txt"
    assert password_file.stat().st_mode & 0o777 == 0o600
    database = Path(f"{store}.app.sqlite")
    assert database.stat().st_mode & 0o777 == 0o600  # hashes and the audit log: the owner's only
    factory = connect(app_db_url(store, None))
    account = accounts.load(factory, "demo")
    assert [role for role, _ in account.grants] == ["admin", "analyst"]
    with factory() as db:
        stored = db.scalar(sa.select(accounts.User.password_hash).where(accounts.User.username == "demo"))
    assert accounts.password_matches(stored, password_file.read_text().strip())
    assert demo_account(store, tmp_path) == command  # a second demo keeps the account and its file
