"""Who may call what: the one place the application decides access.

Every route declares what it needs by taking a :func:`requires` dependency (``Need``). A route without one is
refused when the app is built (:func:`check_declarations`), so nothing is reachable by default. The checks:

- ``PUBLIC``: anyone (only ``/healthz``, the sign-in page and the design system's static files);
- ``SIGNED_IN``: a live session of an enabled account;
- ``AGGREGATES``: any signed-in role with the aggregates permission - the statistics are disclosure-controlled,
  so every area is visible;
- ``PERSON_LEVEL``: a grant whose role allows pseudonymised person-level rows; the rows are then limited to the
  grants' scopes by :meth:`Principal.person_scopes`, which the data layer applies on every query;
- ``ADMINISTER``: a grant whose role allows managing users, grants and the audit log;
- ``REIDENTIFY`` / ``APPROVE``: a grant whose role may ask for, or decide, the re-identification of a practice's
  own list (``clinician``, ``approver``), and a server started with the pseudonymisation key: without it these
  routes answer 403 "re-identification is disabled". Which practice a grant covers is checked with
  :meth:`Principal.scopes_for` and :func:`covers` in :mod:`openphm.app.direct_care`, for the request's practice;
- ``DIRECT_CARE``: either of those two (the list of requests and the ``/direct-care`` page, which serve both
  roles); which requests a caller sees is then decided by :func:`openphm.app.direct_care.visible`: their own, and
  those of practices within their approver scope;
- ``PERSON_VIEW``: the person view: a grant allowing person-level rows or re-identification; the person's
  practice must lie within that grant's scope (:mod:`openphm.app.person`).

A state-changing request (anything but GET, HEAD, OPTIONS) must also carry the session's CSRF token: the
``X-CSRF-Token`` header (API) or a ``csrf_token`` form field (pages).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from fastapi import Depends, HTTPException, Request
from fastapi.routing import APIRoute
from starlette.routing import Mount

from openphm.app.accounts import Scope
from openphm.app.roles import Permission, permissions

if TYPE_CHECKING:
    from fastapi import FastAPI

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC_MOUNTS = frozenset({"/static", "/static/charts"})
"""Mounted file trees anyone may read: the CSS, scripts and fonts the sign-in page needs, and the vendored chart
runtime. No data lives there."""


class Need(StrEnum):
    PUBLIC = "public"
    SIGNED_IN = "signed_in"
    AGGREGATES = "aggregates"
    PERSON_LEVEL = "person_level"
    ADMINISTER = "administer"
    REIDENTIFY = "reidentify"
    APPROVE = "approve"
    DIRECT_CARE = "direct_care"
    PERSON_VIEW = "person_view"


_PERMISSION = {
    Need.AGGREGATES: (Permission.AGGREGATES,),
    Need.PERSON_LEVEL: (Permission.PERSON_LEVEL,),
    Need.ADMINISTER: (Permission.ADMINISTER,),
    Need.REIDENTIFY: (Permission.REIDENTIFY,),
    Need.APPROVE: (Permission.APPROVE,),
    Need.DIRECT_CARE: (Permission.REIDENTIFY, Permission.APPROVE),
    Need.PERSON_VIEW: (Permission.PERSON_LEVEL, Permission.REIDENTIFY),
}
"""The permissions that satisfy each need (any one of them)."""
NEEDS_KEY = frozenset({Need.REIDENTIFY, Need.APPROVE, Need.DIRECT_CARE})
"""Needs that exist only on a server holding the pseudonymisation key."""
DISABLED = "re-identification is disabled: this server was started without the pseudonymisation key (--key-file)"


@dataclass(frozen=True)
class Principal:
    """The signed-in user of one request."""

    user_id: int
    username: str
    grants: tuple[tuple[str, Scope], ...]
    session_hash: str
    csrf_token: str

    def can(self, permission: Permission) -> bool:
        return any(permission in permissions(role) for role, _ in self.grants)

    def person_scopes(self) -> tuple[Scope, ...]:
        """The areas within which this user may see person-level rows (empty: none)."""
        return self.scopes_for(Permission.PERSON_LEVEL)

    def scopes_for(self, permission: Permission) -> tuple[Scope, ...]:
        """The areas within which this user holds ``permission`` (empty: none)."""
        return tuple(scope for role, scope in self.grants if permission in permissions(role))


def covers(scopes: tuple[Scope, ...], area: Mapping[str, str | None]) -> bool:
    """Whether any scope contains ``area``: a mapping of level -> code for the area and all its ancestors
    (e.g. a practice's row of the store's ``practice`` table: its pcn, sub_icb, icb and region codes)."""
    return any(scope.level == "national" or area.get(scope.level) == scope.code for scope in scopes)


class Access:
    """The dependency a route declares; it checks the session, the CSRF token and the permission."""

    def __init__(self, need: Need) -> None:
        self.need = need

    async def __call__(self, request: Request) -> Principal | None:
        if self.need is Need.PUBLIC:
            return None
        state = request.app.state.phm
        principal = state.sessions.principal(request)
        if principal is None:
            raise HTTPException(401, "sign in first")
        if request.method not in SAFE_METHODS:
            await check_csrf(request, principal.csrf_token)
        if self.need in NEEDS_KEY and state.settings.pseudonymisation_key is None:
            raise HTTPException(403, DISABLED)
        allowed = _PERMISSION.get(self.need)
        if allowed is not None and not any(principal.can(p) for p in allowed):
            raise HTTPException(403, "your role does not allow this")
        request.state.principal = principal
        return principal


async def check_csrf(request: Request, expected: str) -> None:
    """The request's token (header, else form field) must equal ``expected``; a cross-site Origin is refused."""
    origin = request.headers.get("origin")
    if origin and origin.rstrip("/") != f"{request.url.scheme}://{request.url.netloc}":
        raise HTTPException(403, "cross-site request refused")
    sent = request.headers.get("x-csrf-token")
    if sent is None and request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        value = (await request.form()).get("csrf_token")
        sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent, expected):
        raise HTTPException(403, "missing or wrong CSRF token")


def requires(need: Need) -> Any:
    """``Depends`` on the access check for ``need``: the one way a route says what it needs."""
    return Depends(Access(need))


def declared_need(route: APIRoute) -> list[Need]:
    """Every access declaration of ``route`` (a correct route has exactly one)."""
    found: list[Need] = []
    stack = list(route.dependant.dependencies)
    while stack:
        dependant = stack.pop()
        if isinstance(dependant.call, Access):
            found.append(dependant.call.need)
        stack.extend(dependant.dependencies)
    return found


def check_declarations(app: FastAPI) -> None:
    """Refuse to build an app with a route that does not declare exactly one need (deny by default)."""
    for route in app.routes:
        if isinstance(route, APIRoute):
            if len(declared_need(route)) != 1:
                raise RuntimeError(f"route {route.path} must declare exactly one access need")
        elif isinstance(route, Mount):
            if route.path not in PUBLIC_MOUNTS:
                raise RuntimeError(f"mount {route.path} is not a declared public file tree")
        else:
            raise RuntimeError(f"route {getattr(route, 'path', route)!r} is not a FastAPI route with a declaration")
