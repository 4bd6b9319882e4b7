"""The application database: users, grants, sessions, sign-in attempts, the audit chain and re-identification
requests (their matched lists encrypted, and deleted when a request closes or expires).

SQLAlchemy 2 models over SQLite (default, a file beside the store) or PostgreSQL (``postgresql+psycopg://...``).
The schema is owned by the Alembic migrations in ``migrations/``; :func:`connect` applies them at start, so a
new release upgrades an existing database in place.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"


def now() -> datetime:
    """The current time in UTC, without microseconds (stored and hashed in ISO form)."""
    return datetime.now(UTC).replace(microsecond=0, tzinfo=None)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(128), unique=True)
    password_hash: Mapped[str | None] = mapped_column(sa.String(256))  # null for accounts that sign in by OIDC
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]
    oidc_subject: Mapped[str | None] = mapped_column(sa.String(255), unique=True, index=True)  # OIDC `sub` (0002)


class Grant(Base):
    """One (role, scope level, scope code) given to a user."""

    __tablename__ = "grants"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(sa.String(32))
    scope_level: Mapped[str] = mapped_column(sa.String(16))
    scope_code: Mapped[str] = mapped_column(sa.String(32))
    created_at: Mapped[datetime]


class Session(Base):
    """A signed-in browser: the cookie holds a random token, the database only its SHA-256."""

    __tablename__ = "sessions"
    token_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]


class LoginAttempt(Base):
    __tablename__ = "login_attempts"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    username: Mapped[str] = mapped_column(sa.String(128), index=True)
    client: Mapped[str] = mapped_column(sa.String(64), index=True)
    succeeded: Mapped[bool]


class AuditRow(Base):
    """One append-only audit event; ``hash`` chains it to the row before (see :mod:`openphm.app.audit`)."""

    __tablename__ = "audit"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(sa.String(128))
    action: Mapped[str] = mapped_column(sa.String(64))
    detail: Mapped[str] = mapped_column(sa.Text)  # canonical JSON: what was looked at, never a pseudonym list
    prev_hash: Mapped[str] = mapped_column(sa.String(64))
    hash: Mapped[str] = mapped_column(sa.String(64))


class AuditHead(Base):
    """The one row every append locks first: it serialises writers and records the chain's last row."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(primary_key=True)
    last_id: Mapped[int]
    last_hash: Mapped[str] = mapped_column(sa.String(64))


class Reidentification(Base):
    """A clinician's request to re-identify the matched members of their practice's own list (no NHS number:
    the matched pairs live encrypted in :class:`ReidentificationList` until the request closes or expires)."""

    __tablename__ = "reidentification"
    id: Mapped[int] = mapped_column(primary_key=True)
    requester_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    cohort: Mapped[str] = mapped_column(sa.String(128))
    practice_code: Mapped[str] = mapped_column(sa.String(32))
    purpose: Mapped[str] = mapped_column(sa.Text)
    as_of: Mapped[date]
    status: Mapped[str] = mapped_column(sa.String(16), index=True)  # pending, approved, refused, closed, expired
    submitted: Mapped[int]
    invalid: Mapped[int]
    matched: Mapped[int]
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    decided_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]


class ReidentificationList(Base):
    """The matched (pseudonym -> NHS number) pairs of one request: AES-GCM ciphertext under a key derived for
    this request alone (:mod:`openphm.app.sealed`). The row is deleted on close, refusal and expiry."""

    __tablename__ = "reidentification_list"
    request_id: Mapped[int] = mapped_column(sa.ForeignKey("reidentification.id", ondelete="CASCADE"), primary_key=True)
    salt: Mapped[bytes] = mapped_column(sa.LargeBinary(32))
    nonce: Mapped[bytes] = mapped_column(sa.LargeBinary(12))
    ciphertext: Mapped[bytes] = mapped_column(sa.LargeBinary)


def default_url(store: Path) -> str:
    """SQLite beside the store: ``phm.duckdb`` -> ``phm.duckdb.app.sqlite``."""
    return f"sqlite:///{store.resolve()}.app.sqlite"


def _sqlite_pragmas(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    dbapi_connection.isolation_level = None  # the driver's own BEGIN is replaced by _sqlite_begin's
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA busy_timeout = 10000")  # concurrent writers wait rather than fail
    cursor.execute("PRAGMA journal_mode = WAL")  # readers do not block the writer
    cursor.close()


READ_ONLY = {"phm_read_only": True}
"""Execution options of a transaction that only reads (``db.connection(execution_options=READ_ONLY)`` first)."""


def _sqlite_begin(connection: sa.Connection) -> None:
    """Every SQLite transaction takes the write lock at its start: one that reads, then writes (a sign-in, an
    audit append) would otherwise fail at once, not wait, when another wrote in between (WAL's stale snapshot).
    A transaction marked :data:`READ_ONLY` (the session check of every request) takes none: under WAL it reads a
    consistent snapshot beside the writer, and fifty people browsing no longer queue on the lock to be recognised."""
    read_only = connection.get_execution_options().get("phm_read_only", False)
    connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def migrate(engine: sa.Engine) -> None:
    """Bring the database to the newest migration (Alembic, run in-process on ``engine``'s connection)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def connect(url: str) -> sessionmaker[sa.orm.Session]:
    """An engine on ``url`` with its schema migrated, and a session factory for it."""
    engine = sa.create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        if engine.url.database and not Path(engine.url.database).exists():
            # password hashes and the audit log: readable by the service's account only
            os.close(os.open(engine.url.database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    migrate(engine)
    return sessionmaker(engine, expire_on_commit=False)
