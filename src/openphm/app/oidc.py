"""Sign-in with OpenID Connect (NHS CIS2, Entra ID): the authorisation code flow with PKCE, ``state`` and ``nonce``.

Why this shape:

- The flow is small enough to write out (discovery, one redirect, one token request), and writing it keeps the
  app's own server-side sessions: after the callback the user gets exactly the session a password sign-in gives.
  An OAuth client framework (authlib's Starlette client) would bring its own cookie-signed session middleware.
- The ID token is verified with PyJWT, whose ``decode`` needs the list of algorithms it may accept: only RS256
  is given, so an unsigned token (``alg: none``) or an HS256 token "signed" with the provider's public key is
  refused by construction, as are a wrong issuer, audience, expiry or nonce. Keys come from the provider's JWKS
  (its ``jwks_uri``), fetched again once when a token names a key id not seen yet (key rotation).
- ``state``, ``nonce`` and the PKCE verifier of a sign-in in progress live in a short-lived cookie signed with
  the app's key (HttpOnly, SameSite=Lax, 10 minutes), removed at the callback, so a replayed callback fails on
  ``state``; the provider refuses a replayed code.
- By default the provider proves who someone is and the app decides what they may do: the person must already
  have an account (``phm users add NAME --oidc-subject SUB``, or one whose user name equals the configured claim,
  which binds the subject at first sign-in) whose grants apply. An unknown subject is refused and audited. With
  ``roles_claim`` the provider's claim values map to grants instead, replacing the account's grants at each
  sign-in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Protocol
from urllib.parse import quote_plus, urlencode, urlsplit

import httpx
import jwt
import sqlalchemy as sa
import yaml
from fastapi import FastAPI, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from openphm.app import audit
from openphm.app.accounts import AccountError, Scope
from openphm.app.db import Grant, User, now
from openphm.app.policy import Need, requires
from openphm.app.roles import ROLES
from openphm.errors import OpenPHMError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger("openphm.app.oidc")

FLOW_COOKIE = "phm_oidc"
FLOW_SECONDS = 600  # a sign-in at the provider must finish within ten minutes
ALGORITHMS = ["RS256"]  # the only signature accepted on an ID token (CIS2 and Entra ID sign with RS256)
LEEWAY = 60  # seconds of clock difference allowed on exp / iat
METADATA_SECONDS = 3600  # discovery is fetched again after an hour
CALLBACK_PATH = "/oidc/callback"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class OidcConfigError(OpenPHMError):
    """A bad ``--oidc-config`` file: one line naming the setting."""


class RoleRule(BaseModel):
    """One grant given to everyone whose ``roles_claim`` holds the rule's value."""

    model_config = ConfigDict(extra="forbid")
    role: str
    scope: str = "national"

    @field_validator("role")
    @classmethod
    def _known_role(cls, role: str) -> str:
        if role not in ROLES:
            raise ValueError(f"role '{role}' is not one of {', '.join(ROLES)}")
        return role

    @field_validator("scope")
    @classmethod
    def _scope(cls, scope: str) -> str:
        try:
            return str(Scope.parse(scope))
        except AccountError as exc:
            raise ValueError(str(exc)) from None


class OidcConfig(BaseModel):
    """The ``--oidc-config`` YAML file."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    issuer: str
    client_id: str
    client_secret_file: Path | None = None
    """A file holding the client secret (never the secret itself in this file); none for a public client."""
    redirect_url: str
    """This app's callback as the provider sees it: ``https://HOST/oidc/callback``."""
    scopes: tuple[str, ...] = ("openid", "profile")
    username_claim: str = "sub"
    """The ID token claim that names the account (e.g. ``preferred_username``; ``sub`` by default)."""
    display_name: str = "NHS Care Identity Service 2"
    local_accounts: bool = True
    """False: the password form is gone and only the provider signs people in."""
    roles_claim: str | None = None
    """With ``roles``: the claim whose values (a string or a list) map to grants."""
    roles: dict[str, list[RoleRule]] = {}

    @field_validator("issuer", "redirect_url")
    @classmethod
    def _https(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in LOOPBACK):
            raise ValueError("must be an https:// URL (http:// only on loopback, for testing)")
        return url.rstrip("/") if parts.path.endswith("/") else url

    @field_validator("scopes")
    @classmethod
    def _openid(cls, scopes: tuple[str, ...]) -> tuple[str, ...]:
        if "openid" not in scopes:
            raise ValueError("must include 'openid'")
        return scopes


@dataclass(frozen=True)
class OidcSettings:
    """The configuration with the client secret read from its file."""

    config: OidcConfig
    client_secret: str | None = field(default=None, repr=False)


def load_config(path: Path) -> OidcSettings:
    """Read and check ``--oidc-config``; any problem is one :class:`OidcConfigError` line."""
    where = f"--oidc-config {path}"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise OidcConfigError(f"{where}: cannot read it ({exc.strerror})") from None
    except yaml.YAMLError:
        raise OidcConfigError(f"{where}: not valid YAML") from None
    if not isinstance(raw, dict):
        raise OidcConfigError(f"{where}: expected a mapping of settings")
    if "client_secret" in raw:
        raise OidcConfigError(f"{where}: give client_secret_file (a path to the secret), not the secret itself")
    try:
        config = OidcConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(p) for p in first["loc"]) or "file"
        raise OidcConfigError(f"{where}: {name}: {first['msg']}") from None
    if urlsplit(config.redirect_url).path != CALLBACK_PATH:
        raise OidcConfigError(f"{where}: redirect_url must end in {CALLBACK_PATH}")
    if config.roles and not config.roles_claim:
        raise OidcConfigError(f"{where}: roles needs roles_claim (the claim whose values they map)")
    secret = None
    if config.client_secret_file is not None:
        secret_path = config.client_secret_file
        if not secret_path.is_absolute():
            secret_path = path.parent / secret_path
        try:
            secret = secret_path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise OidcConfigError(f"{where}: client_secret_file: cannot read it ({exc.strerror})") from None
        if not secret:
            raise OidcConfigError(f"{where}: client_secret_file is empty")
    return OidcSettings(config, secret)


class SignInRefusedError(Exception):
    """A sign-in that must not succeed; ``reason`` goes to the audit log (never a token or a claim value)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_TOKEN_ERRORS: dict[type[Exception], str] = {
    jwt.ExpiredSignatureError: "expired",
    jwt.InvalidAudienceError: "audience",
    jwt.InvalidIssuerError: "issuer",
    jwt.InvalidSignatureError: "signature",
    jwt.InvalidAlgorithmError: "algorithm",
    jwt.ImmatureSignatureError: "not_yet_valid",
    jwt.MissingRequiredClaimError: "missing_claim",
}


@dataclass(frozen=True)
class Flow:
    """One sign-in in progress: what the callback must find again."""

    state: str
    nonce: str
    verifier: str
    started: int


class Provider:
    """The identity provider as this app uses it: discovery, keys, the authorisation URL and the token request.

    ``http`` is the client every provider call goes through (the tests mount their mock provider there)."""

    def __init__(self, settings: OidcSettings, key: bytes, http: httpx.Client | None = None) -> None:
        self.settings = settings
        self.config = settings.config
        self.key = key
        self.http = http or httpx.Client(timeout=10.0)
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._keys: jwt.PyJWKSet | None = None

    # -- discovery and keys ------------------------------------------------------------------------------------

    def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = self.http.get(url)
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise SignInRefusedError("provider_unreachable") from exc
        if not isinstance(body, dict):
            raise SignInRefusedError("provider_unreachable")
        return body

    def metadata(self) -> dict[str, Any]:
        """The discovery document, checked to name this issuer (OpenID Connect Discovery 1.0, section 4.3)."""
        with self._lock:
            if self._metadata is None or time.monotonic() - self._metadata_at > METADATA_SECONDS:
                found = self._get_json(self.config.issuer + "/.well-known/openid-configuration")
                if found.get("issuer") != self.config.issuer:
                    log.error("the discovery document names another issuer")
                    raise SignInRefusedError("discovery_issuer")
                endpoints = ("authorization_endpoint", "token_endpoint", "jwks_uri")
                if not all(isinstance(found.get(k), str) for k in endpoints):
                    raise SignInRefusedError("discovery_incomplete")
                self._metadata, self._metadata_at, self._keys = found, time.monotonic(), None
            return self._metadata

    def _signing_key(self, kid: str | None) -> jwt.PyJWK:
        for refresh in (False, True):
            with self._lock:
                keys = self._keys
            if keys is None or refresh:
                try:
                    keys = jwt.PyJWKSet.from_dict(self._get_json(self.metadata()["jwks_uri"]))
                except jwt.PyJWKSetError as exc:
                    raise SignInRefusedError("jwks") from exc
                with self._lock:
                    self._keys = keys
            signing = [k for k in keys.keys if k.public_key_use in (None, "sig")]
            if kid is None and len(signing) == 1:
                return signing[0]
            match = next((k for k in signing if k.key_id == kid), None)
            if match is not None:
                return match
        raise SignInRefusedError("unknown_key")

    # -- the flow ----------------------------------------------------------------------------------------------

    def begin(self) -> tuple[str, str]:
        """The provider's authorisation URL and the signed cookie that remembers this sign-in."""
        flow = Flow(secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(48), int(time.time()))
        challenge = _b64(hashlib.sha256(flow.verifier.encode()).digest())
        query = {
            "response_type": "code",
            "client_id": self.config.client_id,
            "redirect_uri": self.config.redirect_url,
            "scope": " ".join(self.config.scopes),
            "state": flow.state,
            "nonce": flow.nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        return self.metadata()["authorization_endpoint"] + "?" + urlencode(query), self._seal(flow)

    def _mac(self, body: str) -> str:
        return hmac.new(self.key, f"oidc-flow:{body}".encode(), hashlib.sha256).hexdigest()

    def _seal(self, flow: Flow) -> str:
        body = _b64(json.dumps([flow.state, flow.nonce, flow.verifier, flow.started]).encode())
        return f"{body}.{self._mac(body)}"

    def unseal(self, cookie: str | None) -> Flow:
        """The sign-in this browser started, if the cookie is ours and not older than ten minutes."""
        body, _, mac = (cookie or "").partition(".")
        if not body or not hmac.compare_digest(self._mac(body), mac):
            raise SignInRefusedError("no_flow")
        state, nonce, verifier, started = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        if time.time() - started > FLOW_SECONDS:
            raise SignInRefusedError("flow_expired")
        return Flow(state, nonce, verifier, started)

    def exchange(self, code: str, verifier: str) -> str:
        """The ID token for ``code`` (the token request, with the PKCE verifier and the client's secret)."""
        metadata = self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.config.redirect_url,
            "code_verifier": verifier,
            "client_id": self.config.client_id,
        }
        headers: dict[str, str] = {}
        secret = self.settings.client_secret
        if secret is not None:
            methods = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
            if "client_secret_basic" in methods:  # the default of OpenID Connect Core 1.0, section 9
                # RFC 6749 section 2.3.1: each part form-encoded, then joined and base64-encoded
                pair = f"{quote_plus(self.config.client_id)}:{quote_plus(secret)}"
                headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
            else:
                form["client_secret"] = secret
        try:
            response = self.http.post(metadata["token_endpoint"], data=form, headers=headers)
        except httpx.HTTPError as exc:
            raise SignInRefusedError("provider_unreachable") from exc
        if response.status_code != 200:
            raise SignInRefusedError("token_request")
        try:
            token = response.json().get("id_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str):
            raise SignInRefusedError("no_id_token")
        return token

    def verify(self, token: str, nonce: str) -> dict[str, Any]:
        """The ID token's claims once its signature, issuer, audience, times and nonce are right."""
        try:
            header = jwt.get_unverified_header(token)
            key = self._signing_key(header.get("kid"))
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=self.config.client_id,
                issuer=self.config.issuer,
                leeway=LEEWAY,
                options={"require": ["iss", "sub", "aud", "exp", "iat"]},
            )
        except jwt.InvalidTokenError as exc:
            reason = next((r for t, r in _TOKEN_ERRORS.items() if isinstance(exc, t)), "invalid_token")
            raise SignInRefusedError(reason) from exc
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.config.client_id:
            raise SignInRefusedError("audience")
        if not isinstance(claims.get("nonce"), str) or not hmac.compare_digest(claims["nonce"], nonce):
            raise SignInRefusedError("nonce")
        if not isinstance(claims["sub"], str) or not claims["sub"]:
            raise SignInRefusedError("missing_claim")
        return claims


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# -- accounts ----------------------------------------------------------------------------------------------------


def _claim_values(claims: dict[str, Any], name: str) -> list[str]:
    value = claims.get(name)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def account_for(db: Session, config: OidcConfig, claims: dict[str, Any], client: str) -> User:
    """The enabled account these verified claims sign in as, its grants brought in line with ``roles`` when that
    mapping is configured; :class:`SignInRefusedError` (audited by the caller) otherwise."""
    subject = claims["sub"]
    names = _claim_values(claims, config.username_claim)
    user = db.scalar(sa.select(User).where(User.oidc_subject == subject))
    if user is None and names:
        candidate = db.scalar(sa.select(User).where(User.username == names[0]))
        if candidate is not None and candidate.oidc_subject is None:  # first sign-in: bind the subject for good
            candidate.oidc_subject = subject
            audit.record(db, candidate.username, "oidc_subject_bound", client=client)
            user = candidate
    if user is None:
        raise SignInRefusedError("unknown_subject")
    if user.disabled:
        raise SignInRefusedError("disabled")
    if config.roles_claim:
        _sync_grants(db, user, config, claims)
    return user


def _sync_grants(db: Session, user: User, config: OidcConfig, claims: dict[str, Any]) -> None:
    """Make the account's grants exactly those its ``roles_claim`` values map to (each change audited)."""
    values = _claim_values(claims, config.roles_claim or "")
    wanted = {(rule.role, rule.scope) for value in values for rule in config.roles.get(value, [])}
    if not wanted:
        raise SignInRefusedError("no_mapped_role")
    held = list(db.execute(sa.select(Grant).where(Grant.user_id == user.id)).scalars())
    for grant in held:
        key = (grant.role, f"{grant.scope_level}:{grant.scope_code}")
        if key in wanted:
            wanted.discard(key)
        else:
            db.delete(grant)
            audit.record(db, "oidc", "grant_removed", user=user.username, role=grant.role, scope=key[1])
    for role, text in sorted(wanted):
        scope = Scope.parse(text)
        db.add(Grant(user_id=user.id, role=role, scope_level=scope.level, scope_code=scope.code, created_at=now()))
        audit.record(db, "oidc", "grant_added", user=user.username, role=role, scope=text)


# -- routes ------------------------------------------------------------------------------------------------------


class LoginPage(Protocol):
    def __call__(self, request: Request, message: str | None, status: int) -> Response: ...


def _safe(text: str) -> str:
    """A provider's error code as it may enter the audit log: letters and underscores, short."""
    return re.sub(r"[^a-z_]", "", text.lower())[:40] or "unknown"


def add_routes(app: FastAPI, provider: Provider, login_page: LoginPage) -> None:
    """``/oidc/login`` (start) and ``/oidc/callback`` (finish): both public, as a sign-in page must be. Added to
    ``app`` itself, not through a router, so :func:`openphm.app.policy.check_declarations` sees each route."""
    name = provider.config.display_name

    @app.get("/oidc/login", dependencies=[requires(Need.PUBLIC)], include_in_schema=False)
    def start(request: Request) -> Response:
        """Send the browser to the provider, remembering state, nonce and the PKCE verifier in a signed cookie."""
        try:
            url, sealed = provider.begin()
        except SignInRefusedError as refused:
            log.error("OpenID Connect provider unavailable: %s", refused.reason)
            return login_page(request, f"{name} cannot be reached. Please try again later.", 502)
        response = RedirectResponse(url, status_code=303)
        secure = request.app.state.phm.sessions.secure(request)
        response.set_cookie(
            FLOW_COOKIE, sealed, max_age=FLOW_SECONDS, httponly=True, samesite="lax", secure=secure, path="/oidc"
        )
        return response

    @app.get(CALLBACK_PATH, dependencies=[requires(Need.PUBLIC)], include_in_schema=False)
    def callback(
        request: Request,
        code: Annotated[str | None, Query(max_length=4096)] = None,
        state: Annotated[str | None, Query(max_length=512)] = None,
        error: Annotated[str | None, Query(max_length=256)] = None,
    ) -> Response:
        """Finish the sign-in: check state, exchange the code, verify the ID token, start the session."""
        phm = request.app.state.phm
        client = request.client.host if request.client else "unknown"
        actor = "oidc"
        response: Response
        try:
            flow = provider.unseal(request.cookies.get(FLOW_COOKIE))
            if error is not None:
                raise SignInRefusedError(f"provider:{_safe(error)}")
            if not state or not hmac.compare_digest(state, flow.state):
                raise SignInRefusedError("state")
            if not code:
                raise SignInRefusedError("no_code")
            claims = provider.verify(provider.exchange(code, flow.verifier), flow.nonce)
            names = _claim_values(claims, provider.config.username_claim)
            actor = names[0][:128] if names else actor
            with phm.db() as db, db.begin():
                user = account_for(db, provider.config, claims, client)
                audit.record(db, user.username, "sign_in", client=client, method="oidc")
                response = RedirectResponse("/", status_code=303)
                phm.sessions.start(db, request, response, user.id)
        except SignInRefusedError as refused:
            with phm.db() as db, db.begin():
                audit.record(db, actor, "sign_in_failed", reason=refused.reason, client=client, method="oidc")
            status = 403 if refused.reason in ("state", "no_flow", "flow_expired") else 401
            response = login_page(request, f"Sign-in with {name} did not succeed. Please try again.", status)
        response.delete_cookie(FLOW_COOKIE, path="/oidc")
        return response
