"""Local accounts: argon2 password hashes, grants of (role, scope level, scope code), disabling.

Shared by ``phm users`` and the admin pages; every change is an audit event.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session, sessionmaker

from openphm.app import audit
from openphm.app.db import Grant, User, now
from openphm.app.roles import LEVELS, NATIONAL_CODE, ROLES
from openphm.errors import OpenPHMError

HASHER = PasswordHasher()  # argon2id with the library's (RFC 9106 low-memory) defaults
MIN_PASSWORD = 12
# Verified against when the account does not exist, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = HASHER.hash("openphm-no-such-account")


class AccountError(OpenPHMError):
    """A bad user name, role, scope or password file."""


@dataclass(frozen=True)
class Scope:
    level: str
    code: str

    @classmethod
    def parse(cls, text: str) -> Scope:
        """``LEVEL:CODE`` (``national`` alone means England)."""
        level, _, code = text.partition(":")
        level = level.strip().lower().replace("-", "_")
        if level not in LEVELS:
            raise AccountError(f"scope '{text}': the level must be one of {', '.join(LEVELS)}")
        if level == "national":
            return cls("national", code.strip() or NATIONAL_CODE)
        if not code.strip():
            raise AccountError(f"scope '{text}': give LEVEL:CODE, e.g. practice:A81001")
        return cls(level, code.strip().upper())

    def __str__(self) -> str:
        return f"{self.level}:{self.code}"


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    disabled: bool
    grants: tuple[tuple[str, Scope], ...]


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password must have at least {MIN_PASSWORD} characters")
    return password


def hash_password(password: str) -> str:
    return HASHER.hash(check_password(password))


def password_matches(stored: str | None, password: str) -> bool:
    try:
        return HASHER.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def add_user(
    factory: sessionmaker[Session],
    username: str,
    role: str,
    scopes: list[Scope],
    password: str | None,
    actor: str = "cli",
    oidc_subject: str | None = None,
) -> Account:
    """A new account with ``role`` at each of ``scopes`` (national when none is given). It signs in with a
    password, with OpenID Connect as ``oidc_subject`` (the provider's ``sub``), or both."""
    if password is None and not oidc_subject:
        raise AccountError("give a password file, an OpenID Connect subject, or both")
    if role not in ROLES:
        raise AccountError(f"role '{role}' is not one of {', '.join(ROLES)}")
    username = username.strip()
    if not username or len(username) > 128 or any(c.isspace() for c in username):
        raise AccountError("a user name is 1-128 characters without spaces")
    scopes = scopes or [Scope("national", NATIONAL_CODE)]
    with factory() as db, db.begin():
        if db.scalar(sa.select(User.id).where(User.username == username)) is not None:
            raise AccountError(f"user '{username}' exists")
        if oidc_subject and db.scalar(sa.select(User.id).where(User.oidc_subject == oidc_subject)) is not None:
            raise AccountError("another account has that OpenID Connect subject")
        hashed = hash_password(password) if password is not None else None
        user = User(
            username=username, password_hash=hashed, disabled=False, created_at=now(), oidc_subject=oidc_subject or None
        )
        db.add(user)
        db.flush()
        audit.record(db, actor, "user_added", user=username, oidc=bool(oidc_subject))
        for scope in scopes:
            db.add(Grant(user_id=user.id, role=role, scope_level=scope.level, scope_code=scope.code, created_at=now()))
            audit.record(db, actor, "grant_added", user=username, role=role, scope=str(scope))
    return load(factory, username)


def add_grant(factory: sessionmaker[Session], username: str, role: str, scope: Scope, actor: str = "cli") -> None:
    """Give an existing account one more (role, scope)."""
    if role not in ROLES:
        raise AccountError(f"role '{role}' is not one of {', '.join(ROLES)}")
    with factory() as db, db.begin():
        user_id = db.scalar(sa.select(User.id).where(User.username == username))
        if user_id is None:
            raise AccountError(f"no user '{username}'")
        db.add(Grant(user_id=user_id, role=role, scope_level=scope.level, scope_code=scope.code, created_at=now()))
        audit.record(db, actor, "grant_added", user=username, role=role, scope=str(scope))


def load(factory: sessionmaker[Session], username: str) -> Account:
    with factory() as db:
        user = db.scalar(sa.select(User).where(User.username == username))
        if user is None:
            raise AccountError(f"no user '{username}'")
        return _account(db, user)


def _account(db: Session, user: User) -> Account:
    grants = db.execute(sa.select(Grant).where(Grant.user_id == user.id).order_by(Grant.id)).scalars()
    return Account(
        user.id, user.username, user.disabled, tuple((g.role, Scope(g.scope_level, g.scope_code)) for g in grants)
    )


def list_users(factory: sessionmaker[Session]) -> list[Account]:
    with factory() as db:
        return [_account(db, u) for u in db.execute(sa.select(User).order_by(User.username)).scalars()]


def disable_user(factory: sessionmaker[Session], username: str, actor: str = "cli") -> None:
    """Disable an account and end its sessions at once (the row stays: the audit log names it)."""
    from openphm.app.db import Session as SessionRow

    with factory() as db, db.begin():
        user = db.scalar(sa.select(User).where(User.username == username))
        if user is None:
            raise AccountError(f"no user '{username}'")
        user.disabled = True
        db.execute(sa.delete(SessionRow).where(SessionRow.user_id == user.id))
        audit.record(db, actor, "user_disabled", user=username)
