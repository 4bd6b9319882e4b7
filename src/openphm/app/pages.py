"""The analytics pages: SPC, segments, registers and prevalence, inequalities, and the data behind them.

Each page has the geography picker (national > region > ICB > sub-ICB > PCN > practice, with names) and the as_of
picker, and draws its charts with the chart layer the offline report uses (:mod:`openphm.charts`; where the
report has a data builder for a chart, :mod:`openphm.report.data`, the page calls it). Every chart comes with a
text alternative (the spec's description, on the drawing's ARIA label) and its data as a table. Every number
is read from the published `agg_*` tables (:attr:`openphm.app.data.Snapshot.aggregates`, the exports'
disclosure control) or, on the data page, from the run log and quality summaries under the same rule: no page
reads a person-level row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Annotated, Any

import polars as pl
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from openphm import charts
from openphm.analytics.monthly import ALL, MEASURES
from openphm.app import api_analytics
from openphm.app.data import POLICY, Snapshot
from openphm.app.policy import Need, Principal, requires
from openphm.app.roles import LEVELS
from openphm.codes import load_definitions
from openphm.cohorts.definitions import load_cohorts
from openphm.disclosure import POLICIES
from openphm.engine import Engine
from openphm.ingest.policy import store_governance
from openphm.report.build import methods
from openphm.report.charts import SEGMENT_COLOURS, SEGMENTS
from openphm.report.data import (
    INEQUALITY_MEASURES,
    QUINTILE_LABELS,
    QUINTILES,
    AreaTables,
    Context,
    entries,
    share,
    tidy,
)
from openphm.report.model import Methods

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
Aggregates = Annotated[Principal, requires(Need.AGGREGATES)]
Level = Annotated[str, Query(description="national, region, icb, sub_icb, pcn or practice")]
Code = Annotated[str | None, Query(max_length=32)]

ETHNIC_GROUPS = ("White", "Mixed", "Asian", "Black", "Other", "Not stated")
REPORT_CHARTS = {e.chart.id: e for e in entries()}


@dataclass(frozen=True)
class PageChart:
    """A chart of a page that the report does not have (it satisfies :class:`openphm.charts.ChartLike`)."""

    id: str
    kind: str
    title: str
    description: str
    x_label: str
    y_label: str
    value_format: str = "count"
    horizontal: bool = False


def drawn(chart: charts.ChartLike, chart_id: str, data: Mapping[str, Any] | None) -> dict[str, Any]:
    """What the chart macro renders: the spec, its data table and note; or why there is nothing to draw."""
    base: dict[str, Any] = {"id": chart_id, "title": chart.title, "description": chart.description}
    if data is None or not charts.has_values(chart, data):
        return base | {"empty": True}
    return base | {
        "empty": False,
        "spec": charts.spec(chart, data),
        "table": charts.table(chart, data),
        "note": data.get("note", ""),
    }


@cache
def _context_names() -> tuple[dict[str, str], frozenset[str]]:
    """Display names of registers and cohorts, and the eFI-only deficit lists (not registers a reader seeks)."""
    shipped = load_definitions()
    names = {d.id: d.name for d in shipped.values()} | {c.name: c.title for c in load_cohorts().values()}
    return names, frozenset(d.id for d in shipped.values() if set(d.uses) == {"efi"})


def report_context(as_of: date | None) -> Context:
    names, deficits = _context_names()
    return Context(latest=as_of, policy=POLICIES[POLICY], names=names, deficits_only=deficits)


# -- the place: level, area, as_of ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    level: str
    area: dict[str, Any]
    parent: dict[str, Any] | None
    choices: list[dict[str, Any]]
    as_of: date | None
    as_of_options: list[date]

    def context(self, path: str) -> dict[str, Any]:
        return {
            "levels": LEVELS,
            "level": self.level,
            "choices": self.choices,
            "area": self.area,
            "parent": self.parent,
            "as_of": self.as_of,
            "as_of_options": self.as_of_options,
            "action": path,
        }


def place(snapshot: Snapshot, level: str, area_code: str | None, as_of: date | None) -> Place:
    """The chosen area (default: the level's first), its parent and the as_of (default: the latest)."""
    if level not in LEVELS:
        raise HTTPException(422, f"level must be one of {', '.join(LEVELS)}")
    if snapshot.refused:
        raise HTTPException(403, snapshot.refused)
    choices = snapshot.areas.filter(pl.col("level") == level).to_dicts()
    code = area_code or (choices[0]["code"] if choices else None)
    area = next((a for a in choices if a["code"] == code), None)
    if area is None:
        raise HTTPException(404, "no such area")
    parent = next((a for a in snapshot.areas.to_dicts() if a["code"] == area["parent"]), None)
    if as_of is not None and as_of not in snapshot.as_of:
        raise HTTPException(404, "no snapshot at that as_of date")
    when = as_of or (snapshot.as_of[-1] if snapshot.as_of else None)
    return Place(level, area, parent, choices, when, snapshot.as_of)


def area_tables(snapshot: Snapshot, level: str, code: str) -> AreaTables:
    """One area's rows of every published table (the shape the report's data builders read)."""
    return {
        name: frame.filter((pl.col("level") == level) & (pl.col("area_code") == code))
        for name, frame in snapshot.aggregates.items()
        if "level" in frame.columns
    }


def _page(request: Request, principal: Principal, template: str, where: Place, **context: Any) -> Response:
    full = {"principal": principal, **where.context(request.url.path), **context}
    return templates.TemplateResponse(request, template, full)


# -- SPC -------------------------------------------------------------------------------------------------------------


def spc_page(
    request: Request,
    principal: Aggregates,
    level: Level = "national",
    area_code: Code = None,
    as_of: date | None = None,
    measure: Annotated[str, Query(max_length=64)] = "emergency_admissions",
    segment: Annotated[str, Query(max_length=64)] = ALL,
) -> Response:
    """An XmR chart of one monthly measure of one area and segment, up to the chosen snapshot."""
    snapshot = request.app.state.phm.store.snapshot()
    where = place(snapshot, level, area_code, as_of)
    if measure not in MEASURES:
        raise HTTPException(404, f"no SPC measure '{measure}'")
    frame = api_analytics.monthly(snapshot)
    if frame.height and where.as_of is not None:
        frame = frame.filter(pl.col("as_of") <= where.as_of)
    found: dict[str, set[str]] = {c: set(frame[c].to_list()) if frame.height else set() for c in ("measure", "segment")}
    present = [m for m in MEASURES if m in found["measure"]]
    segments = [ALL, *(s for s in SEGMENTS if s in found["segment"])]
    result = None
    figure = None
    if measure in present:
        try:
            result = api_analytics.chart(frame, measure, level, where.area["code"], segment)
        except HTTPException as missing:
            if missing.status_code != 404:
                raise
    if result is not None and result.points:
        chart = PageChart(
            "spc",
            "spc",
            f"{result.title}: XmR chart",
            spc_summary(result),
            "Month",
            result.title,
        )
        data = {
            "categories": [p.month.strftime("%b %Y") for p in result.points],
            "values": [p.value for p in result.points],
            "improvement": result.improvement,
            "rules": result.rules,
        }
        figure = drawn(chart, "spc", data)
    return _page(
        request,
        principal,
        "spc.html",
        where,
        measure=measure,
        measures=[(m, api_analytics.TITLES[m]) for m in present],
        segment=segment,
        segments=[(s, "All people" if s == ALL else SEGMENTS[s]) for s in segments],
        result=result,
        figure=figure,
        variation_icon=api_analytics.VARIATION_ICONS.get(result.variation or "", ("", "")) if result else None,
        assurance_icon=api_analytics.ASSURANCE_ICONS[result.assurance] if result else None,
    )


def spc_summary(result: api_analytics.SpcChart) -> str:
    """The text alternative of an XmR chart: what a reader of the drawing would take from it."""
    flagged = [p for p in result.points if p.special_cause != "common_cause"]
    parts = [f"{len(result.points)} months from {result.points[0].month:%B %Y} to {result.points[-1].month:%B %Y}."]
    if result.mean is not None:
        parts.append(f"Mean {result.mean:,.1f}.")
    if result.enough_points and result.lower_limit is not None and result.upper_limit is not None:
        parts.append(f"Process limits {result.lower_limit:,.1f} to {result.upper_limit:,.1f}.")
        parts.append(f"Latest month: {result.variation_text}.")
    else:
        parts.append("Fewer than 13 months: no limits are drawn.")
    if flagged:
        causes = sorted({p.special_cause.replace("_", " ") for p in flagged})
        parts.append(f"Special cause in {_months(len(flagged))} ({', '.join(causes)}).")
    else:
        parts.append("No month shows special cause.")
    if result.suppressed_months:
        parts.append(f"{_months(len(result.suppressed_months))} suppressed and left out.")
    return " ".join(parts)


def _months(n: int) -> str:
    return "1 month" if n == 1 else f"{n} months"


# -- segments --------------------------------------------------------------------------------------------------------


def segments_by_ethnic_group(tables: AreaTables, ctx: Context) -> dict[str, object] | None:
    """Share of each ethnic group's people in each segment (from the published segment+ethnic_group cells)."""
    frame = tables.get("agg_population")
    if frame is None:
        return None
    rows = frame.filter((pl.col("as_of") == ctx.latest) & (pl.col("breakdown") == "segment+ethnic_group"))
    totals = frame.filter((pl.col("as_of") == ctx.latest) & (pl.col("breakdown") == "ethnic_group"))
    if rows.is_empty():
        return None
    whole = dict(totals.select("ethnic_group", "people").iter_rows())
    people = {(s, g): n for s, g, n in rows.select("segment", "ethnic_group", "people").iter_rows()}
    groups = [g for g in ETHNIC_GROUPS if g in whole]
    series = []
    for segment, label in SEGMENTS.items():
        counts = [people.get((segment, g), 0) for g in groups]
        series.append(
            {
                "name": label,
                "color": SEGMENT_COLOURS[segment],
                "values": [share(c, whole.get(g)) for c, g in zip(counts, groups, strict=True)],
                "counts": counts,
            }
        )
    return {"categories": groups, "series": series}


SEGMENT_ETHNIC = PageChart(
    "segments_ethnic",
    "stacked",
    "Segments by ethnic group",
    "Share of each ethnic group's population (2021 Census groups) in each segment.",
    "Ethnic group",
    "% of people",
    value_format="percent",
)
SEGMENT_CHARTS = ("segments_age_sex", "segments_imd", "cost_per_head", "transitions", "forecast_total")


def segments_page(
    request: Request,
    principal: Aggregates,
    level: Level = "national",
    area_code: Code = None,
    as_of: date | None = None,
) -> Response:
    """Age-sex pyramid, segments by deprivation and ethnic group, cost per head, transitions, forecast."""
    snapshot = request.app.state.phm.store.snapshot()
    where = place(snapshot, level, area_code, as_of)
    tables = area_tables(snapshot, level, where.area["code"])
    ctx = report_context(where.as_of)
    figures = [drawn(REPORT_CHARTS[c].chart, c, REPORT_CHARTS[c].build(tables, ctx)) for c in SEGMENT_CHARTS[:2]]
    figures.append(drawn(SEGMENT_ETHNIC, SEGMENT_ETHNIC.id, segments_by_ethnic_group(tables, ctx)))
    figures += [
        drawn(REPORT_CHARTS[c].chart, c, REPORT_CHARTS[c].build(tables, ctx))
        for c in (*SEGMENT_CHARTS[2:], "forecast_segments")
    ]
    return _page(request, principal, "charts.html", where, title="Segments", figures=figures)


# -- registers -------------------------------------------------------------------------------------------------------


def prevalence_comparison(
    snapshot: Snapshot, where: Place, kind: str | None = None
) -> tuple[list[dict[str, Any]], dict[str, object] | None]:
    """Every register's prevalence in the area, its parent and its peers (the other areas with the same parent),
    all from published counts; and the chart data of the area's most prevalent conditions."""
    frame = snapshot.aggregates.get("agg_register")
    if frame is None or frame.is_empty():
        return [], None
    frame = frame.filter(pl.col("as_of") == where.as_of)
    code = where.area["code"]
    peers = [a["code"] for a in where.choices if a["parent"] == where.area["parent"] and a["code"] != code]

    def rates(rows: pl.DataFrame) -> dict[str, tuple[float | None, float | None, float | None]]:
        summed = rows.group_by("definition").agg(
            pl.col("people").sum().alias("people"),
            pl.col("population").sum().alias("population"),
            pl.col("people").null_count().alias("hidden"),
        )
        return {
            d: (None if hidden else float(p), float(n) if n is not None else None, share(None if hidden else p, n))
            for d, p, n, hidden in summed.select("definition", "people", "population", "hidden").iter_rows()
        }

    own = frame.filter((pl.col("level") == where.level) & (pl.col("area_code") == code))
    above = where.parent
    parent = (
        rates(frame.filter((pl.col("level") == above["level"]) & (pl.col("area_code") == above["code"])))
        if above
        else {}
    )
    peer = rates(frame.filter((pl.col("level") == where.level) & pl.col("area_code").is_in(peers))) if peers else {}
    names, deficits = _context_names()
    rows = []
    for definition, kind_of, people, population in own.select("definition", "kind", "people", "population").iter_rows():
        if definition in deficits or (kind is not None and kind_of != kind):
            continue
        rows.append(
            {
                "definition": definition,
                "name": names.get(definition, definition),
                "kind": kind_of,
                "people": people,
                "prevalence": share(people, population),
                "parent": parent.get(definition, (None, None, None))[2],
                "peers": peer.get(definition, (None, None, None))[2],
            }
        )
    rows.sort(key=lambda r: (-(r["prevalence"] or 0.0), r["name"]))
    top = [r for r in rows if r["kind"] == "condition" and r["prevalence"]][:20]
    if not top:
        return rows, None
    series = [{"name": where.area["name"] or code, "values": [r["prevalence"] for r in top], "color": "#005EB8"}]
    if where.parent:
        series.append(
            {
                "name": f"Parent: {where.parent['name'] or where.parent['code']}",
                "values": [r["parent"] for r in top],
                "color": "#E69F00",
            }
        )
    if peers:
        series.append({"name": f"Peers ({len(peers)} areas)", "values": [r["peers"] for r in top], "color": "#009E73"})
    return rows, {"categories": [r["name"] for r in top], "series": series}


PREVALENCE = PageChart(
    "prevalence_compared",
    "bar",
    "Recorded prevalence against the parent area and peers",
    "People on each active condition register as a share of the registered population (crude, all ages), for "
    "the area, its parent area and its peers (the other areas of its level with the same parent, pooled); the 20 "
    "most prevalent conditions of the area.",
    "Condition",
    "% of people",
    value_format="percent",
    horizontal=True,
)


def registers_page(
    request: Request,
    principal: Aggregates,
    level: Level = "national",
    area_code: Code = None,
    as_of: date | None = None,
) -> Response:
    """Every register's recorded prevalence in the area, beside its parent area and its peers."""
    snapshot = request.app.state.phm.store.snapshot()
    where = place(snapshot, level, area_code, as_of)
    rows, data = prevalence_comparison(snapshot, where)
    figure = drawn(PREVALENCE, PREVALENCE.id, data)
    return _page(request, principal, "registers.html", where, figures=[figure], registers=rows)


# -- inequalities ----------------------------------------------------------------------------------------------------


def _rates_by(rows: pl.DataFrame, groups: Sequence[str], labels: Sequence[str]) -> dict[str, object] | None:
    if rows.is_empty():
        return None
    per = rows["per"][0]
    digits = 0 if per == 1 else 1
    found = {
        g: (tidy(v, digits), tidy(lo, digits), tidy(hi, digits))
        for g, v, lo, hi in rows.select("group", "dsr", "dsr_lower", "dsr_upper").iter_rows()
    }
    picked = [found.get(g, (None, None, None)) for g in groups]
    return {
        "categories": list(labels),
        "series": [
            {
                "name": "Standardised rate",
                "color": "#005EB8",
                "values": [p[0] for p in picked],
                "lower": [p[1] for p in picked],
                "upper": [p[2] for p in picked],
            }
        ],
    }


def inequality_figures(tables: AreaTables, ctx: Context, measure: str) -> list[dict[str, Any]]:
    """Standardised rates with 95% intervals by IMD quintile, ethnic group, and Core20 against the rest."""
    frame = tables.get("agg_inequality")
    rows = (
        pl.DataFrame()
        if frame is None
        else frame.filter((pl.col("as_of") == ctx.latest) & (pl.col("measure") == measure))
    )
    title, unit = INEQUALITY_MEASURES.get(measure, (measure.replace("_", " ").replace(":", ": "), "rate"))
    if not rows.is_empty():
        per = rows["per"][0]
        unit = "£ per head" if per == 1 else f"per {per:,} people"
    value_format = "gbp" if measure == "cost_total" else "rate"
    method = "Age-sex standardised rate (European Standard Population 2013) with 95% confidence intervals"

    def chart(suffix: str, label: str, x_label: str) -> PageChart:
        return PageChart(
            f"inequality_{suffix}", "bar", f"{title} by {label}", f"{method}, by {label}.", x_label, unit, value_format
        )

    def of(group_type: str) -> pl.DataFrame:
        return rows.filter(pl.col("group_type") == group_type) if not rows.is_empty() else rows

    quintile = _rates_by(of("imd_quintile"), [str(q) for q in QUINTILES], QUINTILE_LABELS)
    ethnic = of("ethnic_group")
    ethnic_groups = [g for g in ETHNIC_GROUPS if not ethnic.is_empty() and g in set(ethnic["group"].to_list())]
    return [
        drawn(chart("imd", "IMD quintile", "IMD quintile"), "inequality_imd", quintile),
        drawn(
            chart("ethnic", "ethnic group", "Ethnic group"),
            "inequality_ethnic",
            _rates_by(ethnic, ethnic_groups, ethnic_groups),
        ),
        drawn(
            chart("core20", "Core20 against the rest", "Group"),
            "inequality_core20",
            _rates_by(of("core20"), ["Core20", "Rest"], ["Core20 (IMD deciles 1-2)", "Rest (deciles 3-10)"]),
        ),
    ]


def inequalities_page(
    request: Request,
    principal: Aggregates,
    level: Level = "national",
    area_code: Code = None,
    as_of: date | None = None,
    measure: Annotated[str, Query(max_length=128)] = "emergency_admissions",
) -> Response:
    """Standardised rates by deprivation, ethnic group and Core20; the SII and RII of every measure."""
    snapshot = request.app.state.phm.store.snapshot()
    where = place(snapshot, level, area_code, as_of)
    tables = area_tables(snapshot, level, where.area["code"])
    ctx = report_context(where.as_of)
    frame = tables.get("agg_inequality")
    available = sorted(set(frame["measure"].to_list())) if frame is not None and frame.height else []
    if available and measure not in available:
        raise HTTPException(404, f"no inequality measure '{measure}'")
    index = tables.get("agg_inequality_index")
    indices = (
        index.filter(pl.col("as_of") == where.as_of).sort("measure").to_dicts()
        if index is not None and index.height
        else []
    )
    return _page(
        request,
        principal,
        "inequalities.html",
        where,
        measure=measure,
        measures=available,
        figures=inequality_figures(tables, ctx, measure),
        indices=indices,
    )


# -- data ------------------------------------------------------------------------------------------------------------

MONTHLY_CHART = PageChart(
    "coverage",
    "line",
    "Data coverage by month",
    "Events per month in each source measure nationally (disclosure-controlled): a month with none, or far "
    "fewer than its neighbours, is a gap in a source table.",
    "Month",
    "Events",
)


def coverage_by_month(snapshot: Snapshot) -> dict[str, object] | None:
    """National events per month and measure from the published `agg_monthly`, each measure a series."""
    frame = snapshot.aggregates.get("agg_monthly")
    if frame is None or frame.is_empty():
        return None
    national = frame.filter((pl.col("level") == "national") & (pl.col("segment") == ALL))
    summed = national.group_by("month", "measure").agg(
        pl.col("value").sum(), pl.col("value").null_count().alias("hidden")
    )
    months = sorted(set(summed["month"].to_list()))
    values = {
        (m, k): None if h else v for m, k, v, h in summed.select("month", "measure", "value", "hidden").iter_rows()
    }
    series = [
        {"name": api_analytics.TITLES[m], "values": [values.get((month, m), 0) for month in months]}
        for m in MEASURES
        if m != "emergency_bed_days" and any((month, m) in values for month in months)
    ]
    return {"categories": [m.strftime("%b %Y") for m in months], "series": series}


def run_summary(eng: Engine, as_of: list[date]) -> Methods:
    """The report's methods section (purpose, dates, coverage, quarantine, quality failures, definitions) with
    the opt-outs applied at ingest; its counts pass through the same disclosure rule as the aggregates."""
    summary = methods(eng, POLICIES[POLICY], as_of, load_definitions())
    summary.opt_outs = store_governance(eng).statement()
    return summary


def data_page(
    request: Request,
    principal: Aggregates,
    level: Level = "national",
    area_code: Code = None,
    as_of: date | None = None,
) -> Response:
    """The run's purpose and dates, coverage by table and month, quarantine, failed quality checks, definitions."""
    reader = request.app.state.phm.store
    snapshot = reader.snapshot()
    where = place(snapshot, level, area_code, as_of)
    summary = reader.derived("methods", lambda eng: run_summary(eng, snapshot.as_of))
    figure = drawn(MONTHLY_CHART, MONTHLY_CHART.id, coverage_by_month(snapshot))
    return _page(request, principal, "data.html", where, summary=summary, figures=[figure])


def area_options(request: Request, _principal: Aggregates, level: Level = "national") -> Response:
    """The area list of one level as ``<option>`` elements: htmx swaps it in when the level picker changes."""
    if level not in LEVELS:
        raise HTTPException(422, f"level must be one of {', '.join(LEVELS)}")
    choices = request.app.state.phm.store.snapshot().areas.filter(pl.col("level") == level).to_dicts()
    return templates.TemplateResponse(request, "_area_options.html", {"choices": choices, "area": None})


def register(app: FastAPI) -> None:
    """Add the pages to ``app`` as its own routes (so the declaration check and the access tests see them)."""
    for path, endpoint in (
        ("/spc", spc_page),
        ("/segments", segments_page),
        ("/registers", registers_page),
        ("/inequalities", inequalities_page),
        ("/data", data_page),
        ("/partials/areas", area_options),
    ):
        app.add_api_route(path, endpoint, methods=["GET"], response_class=HTMLResponse, include_in_schema=False)
