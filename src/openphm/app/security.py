"""Sessions, CSRF tokens, sign-in lock-out and security headers.

- Sessions live in the app database: the cookie carries a random token (HttpOnly, SameSite=Lax, Secure over TLS
  or behind a TLS proxy), the database only its SHA-256, so a copy of the database opens no session. A session
  ends after ``idle`` without a request or ``absolute`` after sign-in, whichever comes first.
- The CSRF token of a session is HMAC-SHA256(key, session hash): bound to the session, never stored, and useless
  to another session. The sign-in form, before any session, binds its token to a random pre-session cookie.
- Sign-in is refused for a while after too many failures for one account or from one client address; the
  attempts are rows of the app database, so every worker and restart sees them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from fastapi import Request, Response
from sqlalchemy.orm import Session as DBSession
from sqlalchemy.orm import sessionmaker

from openphm.app.accounts import Scope
from openphm.app.db import READ_ONLY, Grant, LoginAttempt, Session, User, now
from openphm.app.policy import Principal

SESSION_COOKIE = "phm_session"
LOGIN_COOKIE = "phm_login"
TOUCH_EVERY = timedelta(minutes=1)
"""last_seen_at is written at most this often: idle expiry is measured to the minute, and a request within the
minute only reads the database."""

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    # same-origin, not no-referrer: under no-referrer a browser sends "Origin: null" on its own forms (Fetch
    # standard, "append a request Origin header"), and the cross-site Origin check then refuses sign-out
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


@dataclass(frozen=True)
class Limits:
    idle: timedelta = timedelta(minutes=30)
    absolute: timedelta = timedelta(hours=8)
    window: timedelta = timedelta(minutes=15)
    account_failures: int = 5  # failed sign-ins for one user name within the window lock it
    client_failures: int = 20  # ... and from one client address lock that address


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Sessions:
    """Server-side sessions and the tokens bound to them."""

    def __init__(self, factory: sessionmaker[DBSession], key: bytes, limits: Limits, behind_tls_proxy: bool) -> None:
        self.factory, self.key, self.limits, self.behind_tls_proxy = factory, key, limits, behind_tls_proxy

    def _mac(self, purpose: str, value: str) -> str:
        return hmac.new(self.key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()

    def secure(self, request: Request) -> bool:
        return self.behind_tls_proxy or request.url.scheme == "https"

    def _cookie(self, request: Request, response: Response, name: str, value: str, max_age: int | None) -> None:
        response.set_cookie(
            name, value, max_age=max_age, httponly=True, samesite="lax", secure=self.secure(request), path="/"
        )

    # -- the sign-in form ----------------------------------------------------------------------------------------

    def login_token(self, request: Request) -> tuple[str, str]:
        """The sign-in form's (pre-session nonce, CSRF token): the token is bound to the nonce's cookie."""
        nonce = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)
        return nonce, self._mac("login", nonce)

    def set_login_cookie(self, request: Request, response: Response, nonce: str) -> None:
        self._cookie(request, response, LOGIN_COOKIE, nonce, 3600)

    def login_token_ok(self, request: Request, sent: str) -> bool:
        nonce = request.cookies.get(LOGIN_COOKIE)
        return bool(nonce and sent) and hmac.compare_digest(self._mac("login", nonce or ""), sent)

    # -- lock-out ----------------------------------------------------------------------------------------------

    def locked(self, db: DBSession, username: str, client: str) -> bool:
        since = now() - self.limits.window
        failed = sa.select(sa.func.count()).where(LoginAttempt.at >= since, ~LoginAttempt.succeeded)
        by_account = db.scalar(failed.where(LoginAttempt.username == username)) or 0
        by_client = db.scalar(failed.where(LoginAttempt.client == client)) or 0
        return by_account >= self.limits.account_failures or by_client >= self.limits.client_failures

    # -- sessions ----------------------------------------------------------------------------------------------

    def start(self, db: DBSession, request: Request, response: Response, user_id: int) -> None:
        token = secrets.token_urlsafe(32)
        at = now()
        db.add(Session(token_hash=_hash(token), user_id=user_id, created_at=at, last_seen_at=at))
        self._cookie(request, response, SESSION_COOKIE, token, int(self.limits.absolute.total_seconds()))
        response.delete_cookie(LOGIN_COOKIE, path="/")

    def end(self, request: Request, response: Response) -> None:
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            with self.factory() as db, db.begin():
                db.execute(sa.delete(Session).where(Session.token_hash == _hash(token)))
        response.delete_cookie(SESSION_COOKIE, path="/")

    def principal(self, request: Request) -> Principal | None:
        """The signed-in user of ``request``, or None (no cookie, unknown, expired, or a disabled account)."""
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            return None
        token_hash = _hash(token)
        at = now()
        with self.factory() as db, db.begin():
            db.connection(execution_options=READ_ONLY)  # only reads: no write lock on SQLite
            row = db.execute(
                sa.select(Session, User).join(User, User.id == Session.user_id).where(Session.token_hash == token_hash)
            ).one_or_none()
            if row is None:
                return None
            session, user = row
            expired = at - session.last_seen_at > self.limits.idle or at - session.created_at > self.limits.absolute
            grants = db.execute(sa.select(Grant).where(Grant.user_id == user.id).order_by(Grant.id)).scalars().all()
        if expired or user.disabled:
            with self.factory() as db, db.begin():
                db.execute(sa.delete(Session).where(Session.token_hash == token_hash))
            return None
        if at - session.last_seen_at >= TOUCH_EVERY:
            with self.factory() as db, db.begin():
                db.execute(sa.update(Session).where(Session.token_hash == token_hash).values(last_seen_at=at))
        return Principal(
            user_id=user.id,
            username=user.username,
            grants=tuple((g.role, Scope(g.scope_level, g.scope_code)) for g in grants),
            session_hash=token_hash,
            csrf_token=self._mac("csrf", token_hash),
        )
