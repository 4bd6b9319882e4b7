"""The integrated person view: ``/people/{token}`` (a page) and ``/api/people/{token}`` (the same as JSON).

A URL ends up in proxy and server logs, so it never carries a pseudonym: the lists that lead to a person
(``/api/person-links`` for analysts, ``/api/reidentification/{id}/people`` for a clinician's approved request)
hand out opaque tokens, sealed for the user who asked and valid for an hour (:func:`openphm.app.sealed.view_token`);
the view is a GET with no form to post.

Who sees what (``Need.PERSON_VIEW``, then the person's practice against the grant's scope, here):

- an analyst whose person-level scope covers the person's practice: the view, pseudonymised;
- a clinician inside an approved, unexpired re-identification of their own that matched the person: the view with
  the NHS number (the practice supplied it); a clinician outside one: refused (the role has no pseudonymised view);
- anyone else, or a token of another user or past its hour: 403 / 404 with no detail of the person.

Every view is an audit row (identified or not, the practice, the request; never the pseudonym).
"""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from openphm.app import audit, direct_care
from openphm.app.db import Reidentification, ReidentificationList, now
from openphm.app.policy import Need, Principal, covers, requires
from openphm.app.roles import Permission
from openphm.app.sealed import open_pairs, open_view_token, view_token
from openphm.person_view import record

Viewer = Annotated[Principal, requires(Need.PERSON_VIEW)]
Analyst = Annotated[Principal, requires(Need.PERSON_LEVEL)]
Requester = Annotated[Principal, requires(Need.REIDENTIFY)]


def _identified(request: Request, principal: Principal, person_id: str) -> tuple[str, int] | None:
    """(NHS number, request id) when an approved, unexpired request of ``principal``'s matched the person."""
    state = request.app.state.phm
    key = state.settings.pseudonymisation_key
    if key is None or not principal.can(Permission.REIDENTIFY):
        return None
    direct_care.sweep(request)
    with state.db() as db:
        rows = db.execute(
            sa.select(Reidentification, ReidentificationList)
            .join(ReidentificationList, ReidentificationList.request_id == Reidentification.id)
            .where(
                Reidentification.requester_id == principal.user_id,
                Reidentification.status == "approved",
                Reidentification.expires_at > now(),
            )
        ).all()
    scopes = principal.scopes_for(Permission.REIDENTIFY)
    practices = state.store.snapshot().practices
    for row, sealed in rows:
        area = practices.get(row.practice_code)
        if area is None or not covers(scopes, area):
            continue
        pairs = open_pairs(key, row.id, sealed.salt, sealed.nonce, sealed.ciphertext)
        if person_id in pairs:
            return pairs[person_id], row.id
    return None


def view(request: Request, principal: Principal, token: str) -> dict[str, Any]:
    """The person behind ``token`` as ``principal`` may see them (audited)."""
    state = request.app.state.phm
    person_id = open_view_token(state.settings.key, principal.user_id, token)
    if person_id is None:
        raise HTTPException(404, "this link is not yours or has expired; open the person again from your list")
    found = state.store.direct_care(lambda eng: record(eng, person_id))
    if found is None:
        raise HTTPException(404, "no such person in this store")
    area = state.store.snapshot().practices.get(found["practice_code"]) or {}
    identified = _identified(request, principal, person_id)
    if identified is None and not covers(principal.person_scopes(), area):
        raise HTTPException(403, "that person is outside your scope, or your re-identification has ended")
    with state.db() as db, db.begin():
        audit.record(
            db,
            principal.username,
            "person_view",
            identified=identified is not None,
            request=identified[1] if identified else None,
            practice_code=found["practice_code"],
            as_of=found["as_of"],
        )
    return {**found, "nhs_number": identified[0] if identified else None, "pseudonymised": identified is None}


def person_links(
    request: Request,
    principal: Analyst,
    cohort: Annotated[str, Query(max_length=128)],
    practice_code: Annotated[str | None, Query(max_length=32)] = None,
) -> list[dict[str, str]]:
    """Person-view links of a cohort's pseudonymised members within your scope (audited as a person-level view)."""
    state = request.app.state.phm
    snapshot = state.store.snapshot()
    if cohort not in snapshot.cohorts:
        raise HTTPException(404, "no such cohort")
    scopes = principal.person_scopes()
    if practice_code is not None and not covers(scopes, snapshot.practices.get(practice_code) or {}):
        raise HTTPException(403, "that practice is outside your scope")
    frame = state.store.members(cohort, scopes, practice_code, None)
    with state.db() as db, db.begin():
        audit.record(
            db, principal.username, "person_level_view", cohort=cohort, practice_code=practice_code, rows=frame.height
        )
    secret = state.settings.key
    return [
        {"person_id": pid, "view": f"/people/{view_token(secret, principal.user_id, pid)}"}
        for pid in frame["person_id"].to_list()
    ]


def request_people(request: Request, principal: Requester, request_id: int) -> list[dict[str, str]]:
    """Person-view links of the people your approved request matched, with their NHS numbers (audited)."""
    found, _cohort = direct_care.approved(request, principal, request_id, "people")
    secret = request.app.state.phm.settings.key
    return [
        {"nhs_number": number, "view": f"/people/{view_token(secret, principal.user_id, pid)}"}
        for pid, number in sorted(found.pairs.items(), key=lambda p: p[1])
    ]


def register(app: FastAPI, templates: Jinja2Templates) -> None:
    """Add the person view's routes to ``app`` (one line in :func:`openphm.app.server.create_app`)."""

    @app.get("/api/people/{token}", tags=["person view"])
    def person_json(request: Request, principal: Viewer, token: str) -> dict[str, Any]:
        """One person's record across the store (see the module's rules on who sees what)."""
        return view(request, principal, token)

    @app.get("/people/{token}", response_class=HTMLResponse, include_in_schema=False)
    def person_page(request: Request, principal: Viewer, token: str) -> Response:
        found = view(request, principal, token)
        return templates.TemplateResponse(request, "person.html", {"principal": principal, "person": found})

    @app.get("/direct-care/{request_id}/people", response_class=HTMLResponse, include_in_schema=False)
    def request_people_page(request: Request, principal: Requester, request_id: int) -> Response:
        """The people of your approved request, with their NHS numbers and person-view links (audited)."""
        people = request_people(request, principal, request_id)
        context = {"principal": principal, "request_id": request_id, "people": people}
        return templates.TemplateResponse(request, "direct_care_people.html", context)

    app.get("/api/person-links", tags=["person view"])(person_links)
    app.get("/api/reidentification/{request_id}/people", tags=["direct care"])(request_people)
