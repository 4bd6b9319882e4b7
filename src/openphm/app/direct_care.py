"""Re-identification for direct care: the routes under ``/api/reidentification`` (docs/direct-care.md).

A clinician uploads the practice's own registered list; the server matches it in memory against the cohort's
members registered at that practice (:func:`openphm.reidentify.match`, the one rule ``phm reidentify`` also
uses) and keeps only the matched (pseudonym -> NHS number) pairs, sealed (:mod:`openphm.app.sealed`). An
approver whose scope covers the practice, and who is not the requester, approves or refuses; the requester then
downloads the identified worklist (and, with ``--fhir-writeback``, a FHIR Bundle) until the request expires or
they close it, when the sealed pairs are deleted. Every request, decision, download, closing and expiry is an
audit row with the purpose, user, practice, cohort and counts - never a number or a pseudonym.

The upload is read from the request body into memory and parsed there (never Starlette's spooled temporary
file, which goes to disk above 1 MB): the route declares no form parameters for that reason, and the body is
read only after the access check passed.
"""

from __future__ import annotations

import email.parser
import email.policy
import io
from datetime import timedelta
from enum import Enum
from typing import Annotated, Any

import pyarrow.csv as pacsv
import sqlalchemy as sa
from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel
from sqlalchemy.orm import Session

from openphm.app import audit
from openphm.app.db import Reidentification, ReidentificationList, User, now
from openphm.app.policy import Need, Principal, covers, requires
from openphm.app.roles import Permission
from openphm.app.sealed import open_pairs, seal_pairs
from openphm.errors import InputError
from openphm.fhir_writeback import bundle
from openphm.outputs.safe import neutralise_table
from openphm.reidentify import MAX_LIST_BYTES, Match, check_purpose, match, read_list, worklist
from openphm.segments.rules import load_rules

PREFIX = "/api/reidentification"
TAGS: list[str | Enum] = ["direct care"]
Requester = Annotated[Principal, requires(Need.REIDENTIFY)]
Approver = Annotated[Principal, requires(Need.APPROVE)]
Either = Annotated[Principal, requires(Need.DIRECT_CARE)]

OPEN = ("pending", "approved")
"""States in which the sealed list still exists."""
_FORM_SLACK = 64 * 1024
"""Room in the body for the form's other fields and the multipart boundaries."""


class Submitted(BaseModel):
    id: int
    status: str
    submitted: int
    invalid: int
    matched: int


class Decision(BaseModel):
    id: int
    status: str


class Listed(BaseModel):
    """One request as the list shows it: counts and dates, never a number, a pseudonym or the list."""

    id: int
    cohort: str
    practice_code: str
    purpose: str
    status: str
    as_of: str
    submitted: int
    invalid: int
    matched: int
    requester: str
    decided_by: str | None
    created_at: str
    decided_at: str | None
    expires_at: str
    mine: bool
    may_decide: bool
    """Pending, of a practice within the caller's approver scope, and not their own."""


_UPLOAD = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["cohort", "practice_code", "purpose", "list"],
                    "properties": {
                        "cohort": {"type": "string", "maxLength": 128},
                        "practice_code": {"type": "string", "maxLength": 32},
                        "purpose": {"type": "string", "minLength": 10, "maxLength": 500},
                        "list": {"type": "string", "format": "binary"},
                    },
                }
            }
        },
    }
}


async def _multipart(request: Request) -> tuple[dict[str, str], bytes]:
    """The form fields and the ``list`` file of a multipart body, parsed in memory."""
    kind = request.headers.get("content-type", "")
    if not kind.startswith("multipart/form-data"):
        raise HTTPException(415, "send multipart/form-data with the fields cohort, practice_code, purpose and list")
    limit = MAX_LIST_BYTES + _FORM_SLACK
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise HTTPException(413, f"the upload is larger than {MAX_LIST_BYTES // (1024 * 1024)} MB")
    head = f"Content-Type: {kind}\r\n\r\n".encode("latin-1", "replace")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + bytes(body))
    body.clear()
    if not message.is_multipart():
        raise HTTPException(422, "the body is not a multipart form")
    fields: dict[str, str] = {}
    upload: bytes | None = None
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if name == "list":
            upload = data
        elif isinstance(name, str):
            fields[name] = data.decode("utf-8", "replace").strip()
    if upload is None:
        raise HTTPException(422, "the form has no file 'list'")
    return fields, upload


def _field(fields: dict[str, str], name: str, low: int, high: int) -> str:
    value = fields.get(name, "")
    if not low <= len(value) <= high:
        raise HTTPException(422, f"field '{name}' must have {low} to {high} characters")
    return value


def _practice_area(request: Request, code: str) -> dict[str, str | None]:
    area = request.app.state.phm.store.snapshot().practices.get(code)
    if area is None:
        raise HTTPException(404, "no such practice in this store")
    return area


def expire(db: Session) -> None:
    """Mark every open request past its expiry as expired, delete its sealed list and audit it."""
    stale = db.execute(
        sa.select(Reidentification).where(Reidentification.status.in_(OPEN), Reidentification.expires_at <= now())
    ).scalars()
    for row in stale:
        row.status, row.closed_at = "expired", now()
        db.execute(sa.delete(ReidentificationList).where(ReidentificationList.request_id == row.id))
        audit.record(db, "system", "reidentification_expired", **_detail(row))


def _detail(row: Reidentification, **more: object) -> dict[str, object]:
    """What an audit row says about a request: never a number, a pseudonym or the list."""
    return {
        "request": row.id,
        "purpose": row.purpose,
        "practice_code": row.practice_code,
        "cohort": row.cohort,
        "as_of": row.as_of,
        "submitted": row.submitted,
        "invalid": row.invalid,
        "matched": row.matched,
        **more,
    }


def sweep(request: Request) -> None:
    """Expire what is due, in a transaction of its own (a refusal later in the request must not roll it back)."""
    with request.app.state.phm.db() as db, db.begin():
        expire(db)


def _load(db: Session, request_id: int) -> Reidentification:
    """The request ``request_id`` (call :func:`sweep` first, outside the transaction of ``db``)."""
    row = db.get(Reidentification, request_id)
    if row is None:
        raise HTTPException(404, "no such request")
    if row.status in OPEN and row.expires_at <= now():  # expired since the sweep: the next one destroys it
        raise HTTPException(410, "the request is expired: its list was destroyed")
    return row


def _username(db: Session, user_id: int) -> str:
    return db.scalar(sa.select(User.username).where(User.id == user_id)) or "unknown"


async def submit(request: Request, principal: Requester) -> Submitted:
    """Ask to re-identify the members of a cohort registered at your practice, from the practice's own list
    (multipart: ``cohort``, ``practice_code``, ``purpose``, file ``list`` - a CSV of NHS numbers). Invalid numbers
    are counted, never echoed. Pending until an approver decides."""
    state = request.app.state.phm
    fields, upload = await _multipart(request)
    cohort = _field(fields, "cohort", 1, 128)
    practice_code = _field(fields, "practice_code", 1, 32).upper()
    try:
        purpose = check_purpose(fields.get("purpose", ""))
    except InputError as error:
        raise HTTPException(422, str(error)) from None
    if not covers(principal.scopes_for(Permission.REIDENTIFY), _practice_area(request, practice_code)):
        raise HTTPException(403, "that practice is outside your scope")
    if cohort not in state.store.snapshot().cohorts:
        raise HTTPException(404, "no such cohort in this store")
    try:
        parsed = read_list(upload)
    except InputError as error:
        raise HTTPException(422, str(error)) from None
    key: bytes = state.settings.pseudonymisation_key
    numbers, submitted, invalid = parsed.numbers, parsed.submitted, parsed.invalid
    found: Match = await run_in_threadpool(
        state.store.direct_care, lambda eng: match(eng, key, cohort, practice_code, numbers)
    )
    created = now()
    sweep(request)
    with state.db() as db, db.begin():
        row = Reidentification(
            requester_id=principal.user_id,
            cohort=cohort,
            practice_code=practice_code,
            purpose=purpose,
            as_of=found.as_of,
            status="pending",
            submitted=submitted,
            invalid=invalid,
            matched=len(found.pairs),
            created_at=created,
            expires_at=created + timedelta(days=state.settings.reidentification_days),
        )
        db.add(row)
        db.flush()
        salt, nonce, sealed = seal_pairs(key, row.id, found.pairs)
        db.add(ReidentificationList(request_id=row.id, salt=salt, nonce=nonce, ciphertext=sealed))
        audit.record(db, principal.username, "reidentification_requested", **_detail(row))
        answer = Submitted(
            id=row.id, status=row.status, submitted=row.submitted, invalid=row.invalid, matched=row.matched
        )
    return answer


def _decide(request: Request, principal: Principal, request_id: int, approve: bool) -> Decision:
    state = request.app.state.phm
    sweep(request)
    with state.db() as db, db.begin():
        row = _load(db, request_id)
        if not covers(principal.scopes_for(Permission.APPROVE), _practice_area(request, row.practice_code)):
            raise HTTPException(403, "that practice is outside your scope")
        if row.requester_id == principal.user_id:
            raise HTTPException(403, "you cannot decide your own request")
        if row.status != "pending":
            raise HTTPException(409, f"the request is {row.status}, not pending")
        row.status = "approved" if approve else "refused"
        row.decided_by_id, row.decided_at = principal.user_id, now()
        if not approve:  # a refused list has no further use
            db.execute(sa.delete(ReidentificationList).where(ReidentificationList.request_id == row.id))
        action = "reidentification_approved" if approve else "reidentification_refused"
        audit.record(db, principal.username, action, **_detail(row, requester=_username(db, row.requester_id)))
        return Decision(id=row.id, status=row.status)


def approve(request: Request, principal: Approver, request_id: int) -> Decision:
    """Approve a pending request of a practice within your scope (not your own)."""
    return _decide(request, principal, request_id, approve=True)


def refuse(request: Request, principal: Approver, request_id: int) -> Decision:
    """Refuse a pending request of a practice within your scope (not your own); its list is destroyed."""
    return _decide(request, principal, request_id, approve=False)


def close(request: Request, principal: Requester, request_id: int) -> Decision:
    """Close your own request: its list is destroyed and nothing more can be downloaded."""
    state = request.app.state.phm
    sweep(request)
    with state.db() as db, db.begin():
        row = _load(db, request_id)
        if row.requester_id != principal.user_id:
            raise HTTPException(403, "only the requester may close a request")
        if row.status not in OPEN:
            raise HTTPException(409, f"the request is already {row.status}")
        row.status, row.closed_at = "closed", now()
        db.execute(sa.delete(ReidentificationList).where(ReidentificationList.request_id == row.id))
        audit.record(db, principal.username, "reidentification_closed", **_detail(row))
        return Decision(id=row.id, status=row.status)


def approved(request: Request, principal: Principal, request_id: int, kind: str) -> tuple[Match, Any]:
    """The matched pairs of an approved, unexpired request of ``principal``'s, with a download audit row."""
    state = request.app.state.phm
    sweep(request)
    with state.db() as db, db.begin():
        row = _load(db, request_id)
        if row.requester_id != principal.user_id:
            raise HTTPException(403, "only the requester may download the worklist")
        if not covers(principal.scopes_for(Permission.REIDENTIFY), _practice_area(request, row.practice_code)):
            raise HTTPException(403, "that practice is no longer within your scope")
        if row.status in ("closed", "expired"):
            raise HTTPException(410, f"the request is {row.status}: its list was destroyed")
        if row.status != "approved":
            raise HTTPException(403, f"the request is {row.status}, not approved")
        sealed = db.get(ReidentificationList, row.id)
        if sealed is None:  # an approved request always has its list; a missing one is never served
            raise HTTPException(410, "the request's list was destroyed")
        pairs = open_pairs(state.settings.pseudonymisation_key, row.id, sealed.salt, sealed.nonce, sealed.ciphertext)
        audit.record(db, principal.username, "reidentification_download", **_detail(row, kind=kind, rows=len(pairs)))
        return Match(row.as_of, pairs), row.cohort


RECENT = timedelta(days=30)
"""How long a decided request of another user stays on an approver's list (their own stay as long as they exist)."""
LISTED = 200
"""The most requests a list shows, newest first."""


def visible(request: Request, principal: Principal) -> list[Listed]:
    """The requests ``principal`` may see: their own (with the reidentify permission), and the pending or
    recently decided requests of practices within their approver scope. Nothing else - the scope filter of
    ``Need.DIRECT_CARE``, applied here once for the list route and the page."""
    state = request.app.state.phm
    mine = principal.can(Permission.REIDENTIFY)
    approving = principal.scopes_for(Permission.APPROVE)
    practices = state.store.snapshot().practices
    sweep(request)
    with state.db() as db:
        recent = sa.or_(Reidentification.status == "pending", Reidentification.decided_at >= now() - RECENT)
        own = Reidentification.requester_id == principal.user_id
        where = sa.or_(own, recent) if mine and approving else own if mine else recent
        rows = db.execute(
            sa.select(Reidentification).where(where).order_by(Reidentification.id.desc()).limit(LISTED)
        ).scalars()
        names: dict[int, str] = {uid: name for uid, name in db.execute(sa.select(User.id, User.username))}
        out: list[Listed] = []
        for row in rows:
            is_mine = mine and row.requester_id == principal.user_id
            in_scope = bool(approving) and covers(approving, practices.get(row.practice_code) or {})
            if not (is_mine or in_scope):
                continue
            out.append(
                Listed(
                    id=row.id,
                    cohort=row.cohort,
                    practice_code=row.practice_code,
                    purpose=row.purpose,
                    status=row.status,
                    as_of=row.as_of.isoformat(),
                    submitted=row.submitted,
                    invalid=row.invalid,
                    matched=row.matched,
                    requester=names.get(row.requester_id, "unknown"),
                    decided_by=names.get(row.decided_by_id) if row.decided_by_id is not None else None,
                    created_at=f"{row.created_at:%Y-%m-%d %H:%M}",
                    decided_at=f"{row.decided_at:%Y-%m-%d %H:%M}" if row.decided_at else None,
                    expires_at=f"{row.expires_at:%Y-%m-%d %H:%M}",
                    mine=row.requester_id == principal.user_id,
                    may_decide=in_scope and row.status == "pending" and row.requester_id != principal.user_id,
                )
            )
    return out


def listing(request: Request, principal: Either) -> list[Listed]:
    """The re-identification requests you may see: a clinician's own; an approver's pending and recently decided
    requests of practices within their scope. Counts, cohort, practice, purpose, status and dates only."""
    return visible(request, principal)


def worklist_csv(request: Request, principal: Requester, request_id: int) -> Response:
    """The identified worklist of your approved request: NHS number, segment, need tier, risk scores, cohorts,
    the facts behind them and their plain-English explanations (spreadsheet-safe CSV; audited)."""
    found, _cohort = approved(request, principal, request_id, "worklist.csv")
    table = request.app.state.phm.store.direct_care(lambda eng: worklist(eng, found))
    out = io.BytesIO()
    pacsv.write_csv(neutralise_table(table), out)
    return Response(
        out.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="worklist-{request_id}.csv"'},
    )


def observations(request: Request, principal: Requester, request_id: int) -> JSONResponse:
    """FHIR R4 Bundle (collection) of UK Core Observations - segment and need tier - one per matched person of
    your approved request (only with ``phm serve --fhir-writeback``; audited)."""
    if not request.app.state.phm.settings.fhir_writeback:
        raise HTTPException(403, "FHIR write-back is off: start phm serve with --fhir-writeback")
    found, _cohort = approved(request, principal, request_id, "observations.json")
    table = request.app.state.phm.store.direct_care(lambda eng: worklist(eng, found))
    document = bundle(table, found.as_of, load_rules().version)
    return JSONResponse(document, media_type="application/fhir+json")


def register(app: FastAPI, templates: Jinja2Templates) -> None:
    """Add the routes to ``app`` (one line in :func:`openphm.app.server.create_app`). They are added one by one,
    not as an included router, so the declaration check walks each of them like every other route."""

    @app.get("/direct-care", response_class=HTMLResponse, include_in_schema=False)
    def direct_care_page(request: Request, principal: Either) -> Response:
        """The clinician's request form and requests, and the approver's queue (docs/direct-care.md)."""
        snapshot = request.app.state.phm.store.snapshot()
        scopes = principal.scopes_for(Permission.REIDENTIFY)
        context = {
            "principal": principal,
            "requests": visible(request, principal),
            "cohorts": sorted(snapshot.cohorts),
            "practices": sorted(code for code, area in snapshot.practices.items() if covers(scopes, area)),
            "clinician": bool(scopes),
            "approver": bool(principal.scopes_for(Permission.APPROVE)),
        }
        return templates.TemplateResponse(request, "direct_care.html", context)

    app.get(PREFIX, tags=TAGS)(listing)
    app.post(PREFIX, status_code=201, tags=TAGS, openapi_extra=_UPLOAD)(submit)
    app.post(PREFIX + "/{request_id}/approve", tags=TAGS)(approve)
    app.post(PREFIX + "/{request_id}/refuse", tags=TAGS)(refuse)
    app.post(PREFIX + "/{request_id}/close", tags=TAGS)(close)
    app.get(PREFIX + "/{request_id}/worklist.csv", tags=TAGS, response_class=Response)(worklist_csv)
    app.get(PREFIX + "/{request_id}/observations.json", tags=TAGS)(observations)
