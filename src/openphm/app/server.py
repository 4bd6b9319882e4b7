"""The FastAPI application: pages, the JSON API under ``/api/`` and the OpenAPI description.

Every route takes exactly one :func:`openphm.app.policy.requires` declaration; :func:`create_app` refuses to
build an app where one is missing. Errors are JSON (``{"message": ...}``) for the API and never carry a trace.
"""

from __future__ import annotations

import io
import logging
from datetime import date
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any

import polars as pl
import pyarrow.csv as pacsv
import sqlalchemy as sa
from fastapi import FastAPI, Form, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from openphm.analytics import AGG_TABLES
from openphm.app import accounts, api_analytics, audit, direct_care, pages, person
from openphm.app.data import Snapshot, StoreReader
from openphm.app.db import AuditRow, LoginAttempt, User, now
from openphm.app.policy import Need, Principal, check_declarations, covers, requires
from openphm.app.roles import LEVELS, ROLES
from openphm.app.security import HEADERS, Sessions
from openphm.app.settings import AppSettings, open_db
from openphm.outputs.safe import neutralise_table

HERE = Path(__file__).parent
CHARTS_VENDOR = Path(str(files("openphm.charts").joinpath("vendor")))
log = logging.getLogger("openphm.app")


class State:
    """What every request shares: the app database, sessions and the store reader."""

    def __init__(self, settings: AppSettings) -> None:
        self.settings = settings
        self.db = open_db(settings.app_db)
        self.sessions = Sessions(self.db, settings.key, settings.limits, settings.behind_tls_proxy)
        mismatch = settings.allow_purpose_mismatch
        self.store = StoreReader(settings.store, settings.engine, allow_purpose_mismatch=mismatch)
        if settings.allow_purpose_mismatch:
            with self.db() as db, db.begin():
                audit.record(db, "system", "purpose_override", store=settings.store.name)
        with self.db() as db, db.begin():
            direct_care.expire(db)  # lists whose requests expired while the server was down are destroyed now


# -- response models (the OpenAPI description) -------------------------------------------------------------------


class Grant(BaseModel):
    role: str
    scope_level: str
    scope_code: str


class Me(BaseModel):
    username: str
    roles: list[str]
    grants: list[Grant]
    person_level_scopes: list[str]
    csrf_token: str


class Area(BaseModel):
    level: str
    code: str
    name: str | None
    parent: str | None


class Cohort(BaseModel):
    name: str
    people: int | None  # national count at the latest as_of, disclosure-controlled (null when redacted)


class Health(BaseModel):
    status: str


Signed = Annotated[Principal, requires(Need.SIGNED_IN)]
Aggregates = Annotated[Principal, requires(Need.AGGREGATES)]
PersonLevel = Annotated[Principal, requires(Need.PERSON_LEVEL)]
Administer = Annotated[Principal, requires(Need.ADMINISTER)]
Level = Annotated[str, Query(description="national, region, icb, sub_icb, pcn or practice")]


def _rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """JSON-safe rows: NaN (a redacted or undefined rate) becomes null."""
    floats = [c for c, t in frame.schema.items() if t.is_float()]
    return frame.with_columns(pl.col(c).fill_nan(None) for c in floats).to_dicts()


def _json(frame: pl.DataFrame) -> Response:
    """The rows as a JSON array, written by Polars: the same JSON as :func:`_rows` through FastAPI's encoder (NaN
    as null, dates in ISO form) at a tenth of the time for a member list of thousands of rows, without the
    response model's validation pass over every row."""
    return Response(frame.write_json(), media_type="application/json")


def _check_level(level: str) -> None:
    if level not in LEVELS:
        raise HTTPException(422, f"level must be one of {', '.join(LEVELS)}")


def create_app(settings: AppSettings) -> FastAPI:
    app = FastAPI(
        title="openphm",
        summary="Population health management: disclosure-controlled aggregates and scoped, audited cohort lists.",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    state = State(settings)
    app.state.phm = state
    templates = Jinja2Templates(directory=HERE / "templates")
    local_accounts = settings.oidc is None or settings.oidc.config.local_accounts

    # -- errors and headers --------------------------------------------------------------------------------------

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 401 and request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            return RedirectResponse("/login", status_code=303)
        return JSONResponse({"message": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> Response:
        # The location and the rule only: never the value sent, which could be anything.
        errors = [{"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg", "")} for e in exc.errors()]
        return JSONResponse({"message": "invalid request", "errors": errors}, status_code=422)

    @app.exception_handler(Exception)
    async def failed(_request: Request, exc: Exception) -> Response:
        log.error("request failed: %s", type(exc).__name__)  # the type only: a message could quote data
        return JSONResponse({"message": "internal error"}, status_code=500)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers.update(HEADERS)
        if not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    # The chart runtime the report also inlines (vendored Vega, Vega-Lite, vega-embed, the expression interpreter).
    app.mount("/static/charts", StaticFiles(directory=CHARTS_VENDOR), name="charts")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    # -- public ----------------------------------------------------------------------------------------------------

    @app.get("/healthz", dependencies=[requires(Need.PUBLIC)], tags=["public"])
    def healthz() -> Health:
        """Liveness: 200 without sign-in (for load balancers)."""
        return Health(status="ok")

    @app.get("/login", dependencies=[requires(Need.PUBLIC)], response_class=HTMLResponse, tags=["public"])
    def login_page(request: Request) -> Response:
        return _login(request, None, 200)

    def _login(request: Request, message: str | None, status: int) -> Response:
        nonce, token = state.sessions.login_token(request)
        context = {"message": message, "csrf": token, "principal": None, "local_accounts": local_accounts}
        if settings.oidc is not None:
            context["oidc_name"] = settings.oidc.config.display_name
        response = templates.TemplateResponse(request, "login.html", context, status_code=status)
        state.sessions.set_login_cookie(request, response, nonce)
        return response

    @app.post("/login", dependencies=[requires(Need.PUBLIC)], response_class=HTMLResponse, tags=["public"])
    def login(
        request: Request,
        username: Annotated[str, Form(max_length=128)],
        password: Annotated[str, Form(max_length=1024)],
        csrf_token: Annotated[str, Form(max_length=128)],
    ) -> Response:
        """Sign in with a local account; a session cookie on success, a redirect to the overview."""
        if not local_accounts:
            return _login(request, "Local accounts are turned off: use the sign-in service.", 403)
        if not state.sessions.login_token_ok(request, csrf_token):
            return _login(request, "The sign-in form expired. Please try again.", 403)
        client = request.client.host if request.client else "unknown"
        username = username.strip()
        # The argon2 check (tens of milliseconds of CPU) runs between two short transactions, not inside one:
        # on SQLite every transaction holds the write lock, and fifty people signing in at once queued behind
        # each other's hashing past the lock's timeout (benchmarks/app_load.py found it).
        with state.db() as db, db.begin():
            locked = state.sessions.locked(db, username, client)
            user = db.scalar(sa.select(User).where(User.username == username))
        ok = not locked and accounts.password_matches(user.password_hash if user else None, password)
        ok = ok and user is not None and not user.disabled
        with state.db() as db, db.begin():
            if ok and state.sessions.locked(db, username, client):  # failures recorded while we were hashing
                locked, ok = True, False
            db.add(LoginAttempt(at=now(), username=username, client=client, succeeded=ok))
            if ok and user is not None:
                audit.record(db, username, "sign_in", client=client)
                response: Response = RedirectResponse("/", status_code=303)
                state.sessions.start(db, request, response, user.id)
                return response
            audit.record(db, username, "sign_in_failed", reason="locked" if locked else "credentials", client=client)
            outcome = "locked" if locked else "failed"
        if outcome == "locked":
            return _login(request, "Too many failed sign-ins. Try again in 15 minutes.", 429)
        return _login(request, "Wrong user name or password.", 401)

    # -- signed in ---------------------------------------------------------------------------------------------------

    @app.post("/logout", tags=["session"])
    def logout(request: Request, principal: Signed) -> Response:
        """End the session (needs the CSRF token)."""
        response = RedirectResponse("/login", status_code=303)
        state.sessions.end(request, response)
        with state.db() as db, db.begin():
            audit.record(db, principal.username, "sign_out")
        return response

    @app.get("/openapi.json", include_in_schema=False, dependencies=[requires(Need.SIGNED_IN)])
    def openapi() -> dict[str, Any]:
        return app.openapi()

    @app.get("/api/me", tags=["session"])
    def me(principal: Signed) -> Me:
        """Who is signed in, their grants, and the CSRF token for state-changing API requests."""
        return Me(
            username=principal.username,
            roles=sorted({role for role, _ in principal.grants}),
            grants=[Grant(role=r, scope_level=s.level, scope_code=s.code) for r, s in principal.grants],
            person_level_scopes=[str(s) for s in principal.person_scopes()],
            csrf_token=principal.csrf_token,
        )

    @app.get("/api/areas", tags=["aggregates"])
    def areas(_principal: Aggregates, level: Level = "national") -> list[Area]:
        """The areas of one geography level with their names and parent's code."""
        _check_level(level)
        snapshot = state.store.snapshot()
        rows = state.store.derived(f"areas:{level}", lambda _eng: snapshot.areas.filter(pl.col("level") == level))
        return [Area(**row) for row in rows.to_dicts()]

    @app.get("/api/aggregates/{table}", tags=["aggregates"], response_model=list[dict[str, Any]])
    def aggregates(
        _principal: Aggregates,
        table: str,
        level: Level,
        area_code: Annotated[str, Query(max_length=32)],
        as_of: date | None = None,
    ) -> Response:
        """The rows of one ``agg_*`` table for one area, disclosure-controlled as every export is."""
        _check_level(level)
        snapshot = state.store.snapshot()
        if snapshot.refused:
            raise HTTPException(403, snapshot.refused)
        frames = snapshot.aggregates
        if table not in AGG_TABLES or table not in frames:
            raise HTTPException(404, f"no aggregate table '{table}' in this store")
        frame = snapshot.area_rows(table, level, area_code) if table in snapshot.by_area else frames[table]
        if as_of is not None:
            column = next((c for c in ("as_of", "to_as_of") if c in frame.columns), None)
            if column is not None:
                frame = frame.filter(pl.col(column) == as_of)
        return _json(frame)

    @app.get("/api/cohorts", tags=["cohorts"])
    def cohorts(_principal: Aggregates) -> list[Cohort]:
        """The store's cohorts with their national size at the latest as_of (disclosure-controlled)."""
        snapshot = state.store.snapshot()
        sizes: dict[str, int | None] = {}
        frame = snapshot.aggregates.get("agg_cohort")
        if frame is not None and frame.height:
            latest = frame.filter((pl.col("level") == "national") & (pl.col("as_of") == pl.col("as_of").max()))
            sizes = dict(latest.select("cohort", "people").iter_rows())
        return [Cohort(name=name, people=sizes.get(name)) for name in snapshot.cohorts]

    def _members(principal: Principal, name: str, practice_code: str | None, as_of: date | None) -> pl.DataFrame:
        """The one path to person-level rows: the caller's scopes go into the query, and a named practice must
        lie within them."""
        snapshot = state.store.snapshot()
        if name not in snapshot.cohorts:
            raise HTTPException(404, f"no cohort '{name}'")
        scopes = principal.person_scopes()
        if practice_code is not None:
            area = snapshot.practices.get(practice_code)
            national = any(s.level == "national" for s in scopes)
            if area is None and not national:
                raise HTTPException(403, "that practice is outside your scope")
            if area is None:
                raise HTTPException(404, f"no practice '{practice_code}'")
            if not covers(scopes, area):
                raise HTTPException(403, "that practice is outside your scope")
        return state.store.members(name, scopes, practice_code, as_of)

    def _audited_members(
        principal: Principal, name: str, practice_code: str | None, as_of: date | None, action: str
    ) -> pl.DataFrame:
        """The members, with an audit row of what was looked at (never the pseudonyms themselves)."""
        frame = _members(principal, name, practice_code, as_of)
        with state.db() as db, db.begin():
            audit.record(
                db, principal.username, action, cohort=name, practice_code=practice_code, as_of=as_of, rows=frame.height
            )
        return frame

    @app.get("/api/cohorts/{name}/members", tags=["cohorts"], response_model=list[dict[str, Any]])
    def members(
        principal: PersonLevel,
        name: str,
        practice_code: Annotated[str | None, Query(max_length=32)] = None,
        as_of: date | None = None,
    ) -> Response:
        """Pseudonymised members of a cohort within your scope (analysts only; every call is audited)."""
        return _json(_audited_members(principal, name, practice_code, as_of, "person_level_view"))

    @app.get("/api/cohorts/{name}/members.csv", tags=["cohorts"], response_class=Response)
    def members_csv(
        principal: PersonLevel,
        name: str,
        practice_code: Annotated[str | None, Query(max_length=32)] = None,
        as_of: date | None = None,
    ) -> Response:
        """The same list as CSV (audited as a download)."""
        frame = _audited_members(principal, name, practice_code, as_of, "person_level_download")
        out = io.BytesIO()
        pacsv.write_csv(neutralise_table(frame.to_arrow()), out)  # no cell can run as a spreadsheet formula
        return Response(
            out.getvalue(),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{_filename(name)}-members.csv"'},
        )

    # -- pages -------------------------------------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def overview(
        request: Request,
        principal: Aggregates,
        level: Level = "national",
        area_code: Annotated[str | None, Query(max_length=32)] = None,
        as_of: date | None = None,
    ) -> Response:
        _check_level(level)
        snapshot = state.store.snapshot()
        if as_of is not None and as_of not in snapshot.as_of:  # any date may be asked for: not kept
            figures = _overview(snapshot, level, area_code, as_of)
        else:  # the same for everyone for the whole store version: built once (an unknown area is 404, not kept)
            key = f"overview:{level}:{area_code}:{as_of}"
            figures = state.store.derived(key, lambda _eng: _overview(snapshot, level, area_code, as_of))
        context = {"principal": principal, **figures}
        return templates.TemplateResponse(request, "overview.html", context)

    @app.get("/cohorts", response_class=HTMLResponse, include_in_schema=False)
    def cohorts_page(request: Request, principal: Aggregates) -> Response:
        context = {"principal": principal, "cohorts": cohorts(principal), "analyst": bool(principal.person_scopes())}
        return templates.TemplateResponse(request, "cohorts.html", context)

    @app.get("/admin", response_class=HTMLResponse, include_in_schema=False)
    def admin_page(request: Request, principal: Administer) -> Response:
        with state.db() as db:
            trail = db.execute(sa.select(AuditRow).order_by(AuditRow.id.desc()).limit(50)).scalars().all()
        context = {
            "principal": principal,
            "users": accounts.list_users(state.db),
            "audit": trail,
            "roles": list(ROLES),
        }
        return templates.TemplateResponse(request, "admin.html", context)

    api_analytics.register(app)
    pages.register(app)
    if settings.oidc is not None:
        from openphm.app import oidc

        app.state.oidc = oidc.Provider(settings.oidc, settings.key)
        oidc.add_routes(app, app.state.oidc, _login)

    direct_care.register(app, templates)
    person.register(app, templates)
    check_declarations(app)
    return app


def _overview(snapshot: Snapshot, level: str, area_code: str | None, as_of: date | None) -> dict[str, Any]:
    """The overview page's content for one area and as_of (all but who is asking)."""
    areas = snapshot.areas
    choices = areas.filter(pl.col("level") == level).to_dicts()
    code = _drill(areas, choices, area_code)
    area = next((a for a in choices if a["code"] == code), None)
    if area is None:
        raise HTTPException(404, "no such area")
    parent = next((a for a in areas.to_dicts() if a["code"] == area["parent"]), None)
    when = as_of or (snapshot.as_of[-1] if snapshot.as_of else None)
    return {
        "levels": LEVELS,
        "level": level,
        "choices": choices,
        "area": area,
        "as_of": when,
        "as_of_options": snapshot.as_of,
        "columns": [_figures(snapshot, a, when) for a in (area, parent) if a is not None],
        "peers": [_figures(snapshot, a, when, registers=False) for a in [area, *_peers(choices, area)]],
    }


PEERS_SHOWN = 40
"""At most this many peers beside the area (a PCN's practices, an ICB's sub-ICBs; never a whole level)."""


def _peers(choices: list[dict[str, Any]], area: dict[str, Any]) -> list[dict[str, Any]]:
    """The other areas of the level with the same parent: the comparison users make first (practices of a PCN)."""
    if area.get("parent") is None:
        return []
    return [a for a in choices if a["parent"] == area["parent"] and a["code"] != area["code"]][:PEERS_SHOWN]


def _drill(areas: pl.DataFrame, choices: list[dict[str, Any]], area_code: str | None) -> str | None:
    """The area to show at the chosen level. ``area_code`` itself when it is at that level; when it is an area of
    another level (the picker's level was changed, its area not yet), the area of the chosen level that contains
    it, or else the first one within it - so the pickers drill up and down without a script. Otherwise the given
    code (an unknown area: 404) or, with none, the level's first area."""
    codes = [a["code"] for a in choices]
    if area_code is None or area_code in codes:
        return area_code or (codes[0] if codes else None)
    parent = dict(zip(areas["code"].to_list(), areas["parent"].to_list(), strict=True))

    def ancestors(code: str | None) -> list[str]:
        chain: list[str] = []
        while (code := parent.get(code)) is not None and len(chain) < len(LEVELS):
            chain.append(code)
        return chain

    above = next((c for c in ancestors(area_code) if c in codes), None)
    below = next((c for c in codes if area_code in ancestors(c)), None)
    return above or below or area_code


def _filename(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:64]


def _figures(snapshot: Snapshot, area: dict[str, Any], as_of: date | None, *, registers: bool = True) -> dict[str, Any]:
    """The overview's figures for one area: population, segments, largest registers (unless ``registers`` is
    false: the peers' table shows population and activity only), activity per head."""
    where = pl.col("as_of") == as_of
    out: dict[str, Any] = {"area": area, "population": None, "segments": [], "registers": [], "activity": {}}
    if "agg_population" in snapshot.by_area:
        rows = snapshot.area_rows("agg_population", area["level"], area["code"]).filter(where)
        total = rows.filter(pl.col("breakdown") == "total")
        if total.height:
            first = _rows(total)[0]
            out["population"] = first["people"]
            out["activity"] = {
                key: first.get(key)
                for key in (
                    "emergency_admissions_per_1000",
                    "ae_attendances_per_1000",
                    "gp_contacts_per_1000",
                    "cost_per_head",
                )
            }
        out["segments"] = _rows(
            rows.filter(pl.col("breakdown") == "segment").select("segment", "people", "maternal").sort("segment")
        )
    if registers and "agg_register" in snapshot.by_area:
        rows = snapshot.area_rows("agg_register", area["level"], area["code"])
        top = rows.filter(where).sort("people", descending=True, nulls_last=True).head(10)
        out["registers"] = _rows(top.select("definition", "people", "prevalence_pct"))
    return out
