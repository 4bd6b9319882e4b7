"""The JSON API of the analytics pages: statistical process control of the monthly series.

``GET /api/spc`` names the measures the store has; ``GET /api/spc/{measure}`` is the XmR chart of one area's
series: every point with its special cause and point type, the mean, the process limits and the two-sigma lines,
and the variation and assurance icons, computed by :func:`openphm.analytics.spc.xmr` (the NHSRplotthedots
rules by default). The series is read from the published `agg_monthly` - the disclosure-controlled counts - so a
month whose count was suppressed is left out of the chart and named in ``suppressed_months``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated, Literal

import polars as pl
from fastapi import FastAPI, HTTPException, Query, Request
from pydantic import BaseModel

from openphm.analytics.monthly import ALL, MEASURES
from openphm.analytics.spc import PROFILES, Improvement, xmr
from openphm.app.data import Snapshot
from openphm.app.policy import Need, Principal, requires
from openphm.app.roles import LEVELS

Aggregates = Annotated[Principal, requires(Need.AGGREGATES)]

TITLES = {
    "emergency_admissions": "Emergency admissions",
    "acsc_emergency_admissions": "Emergency admissions for ambulatory care sensitive conditions",
    "emergency_bed_days": "Emergency bed days",
    "elective_admissions": "Elective admissions",
    "ae_attendances": "A&E attendances",
    "outpatient_attendances": "Outpatient attendances",
}
IMPROVEMENT: dict[str, Improvement] = {
    "emergency_admissions": "decrease",
    "acsc_emergency_admissions": "decrease",
    "emergency_bed_days": "decrease",
    "elective_admissions": "neutral",
    "ae_attendances": "decrease",
    "outpatient_attendances": "neutral",
}
"""Which way is better: fewer unplanned admissions, bed days and A&E attendances; planned care has no direction."""
VARIATION_ICONS = {
    "common_cause": ("Common cause variation", "~"),
    "special_cause_improvement": ("Special cause variation: improvement", "↑ (improving)"),
    "special_cause_concern": ("Special cause variation: concern", "! (concern)"),
    "special_cause_neutral_high": ("Special cause variation: higher", "↑"),
    "special_cause_neutral_low": ("Special cause variation: lower", "↓"),
}
"""Text and symbol of each Making Data Count variation icon (the icon images are not shipped)."""
ASSURANCE_ICONS = {
    "consistent_pass": ("The process will consistently meet the target", "P"),
    "consistent_fail": ("The process will consistently fail the target", "F"),
    "inconsistent": ("The process will hit and miss the target", "?"),
    None: ("No target set: no assurance", "-"),
}


class SpcMeasure(BaseModel):
    name: str
    title: str
    improvement: str
    months: int  # months in the store's national series


class SpcPoint(BaseModel):
    month: date
    value: float
    special_cause: str
    point_type: str


class SpcChart(BaseModel):
    measure: str
    title: str
    level: str
    area_code: str
    area_name: str | None
    segment: str
    improvement: str
    rules: str
    points: list[SpcPoint]
    suppressed_months: list[date]
    mean: float | None
    lower_limit: float | None
    upper_limit: float | None
    lower_two_sigma: float | None
    upper_two_sigma: float | None
    enough_points: bool
    """At least 13 points: with fewer, the limits and icons are not shown (both reference tools warn)."""
    variation: str | None
    variation_text: str
    assurance: str | None
    assurance_text: str
    target: float | None


@dataclass(frozen=True)
class Series:
    """One area's monthly series of a measure, as published."""

    months: list[date]
    values: list[float]
    suppressed: list[date]
    area_name: str | None


def monthly(snapshot: Snapshot) -> pl.DataFrame:
    """The published `agg_monthly` (403 when the store serves no aggregates; empty when it has none)."""
    if snapshot.refused:
        raise HTTPException(403, snapshot.refused)
    frame = snapshot.aggregates.get("agg_monthly")
    return frame if frame is not None else pl.DataFrame(schema={"measure": pl.String})


def series(frame: pl.DataFrame, measure: str, level: str, area_code: str, segment: str) -> Series:
    """The months in order with their published values; a month with a suppressed part is suppressed."""
    rows = frame.filter(
        (pl.col("measure") == measure)
        & (pl.col("level") == level)
        & (pl.col("area_code") == area_code)
        & (pl.col("segment") == segment)
    )
    by_month = (
        rows.group_by("month")
        .agg(pl.col("value").sum(), pl.col("value").null_count().alias("hidden"), pl.col("area_name").first())
        .sort("month")
    )
    shown = by_month.filter(pl.col("hidden") == 0)
    name = by_month["area_name"].drop_nulls()
    return Series(
        shown["month"].to_list(),
        [float(v) for v in shown["value"].to_list()],
        by_month.filter(pl.col("hidden") > 0)["month"].to_list(),
        name[0] if name.len() else None,
    )


def chart(
    frame: pl.DataFrame,
    measure: str,
    level: str,
    area_code: str,
    segment: str = ALL,
    rules: str = "nhsr",
    target: float | None = None,
) -> SpcChart:
    """The XmR chart of one series (404 when the area has no months of it)."""
    if measure not in MEASURES:
        raise HTTPException(404, f"no SPC measure '{measure}'")
    if level not in LEVELS:
        raise HTTPException(422, f"level must be one of {', '.join(LEVELS)}")
    if rules not in PROFILES:
        raise HTTPException(422, f"rules must be one of {', '.join(PROFILES)}")
    found = series(frame, measure, level, area_code, segment) if frame.height else Series([], [], [], None)
    if not found.months and not found.suppressed:
        raise HTTPException(404, "no months of this measure for that area and segment")
    improvement = IMPROVEMENT[measure]
    result = xmr(found.values, improvement=improvement, rules=rules, target=target) if found.values else None
    points = (
        [
            SpcPoint(month=m, value=v, special_cause=c, point_type=t)
            for m, v, c, t in zip(found.months, result.values, result.special_cause, result.point_type, strict=True)
        ]
        if result
        else []
    )
    limits = result is not None and result.enough_points
    variation = result.variation if limits and result else None
    assurance = result.assurance if limits and result else None
    return SpcChart(
        measure=measure,
        title=TITLES[measure],
        level=level,
        area_code=area_code,
        area_name=found.area_name,
        segment=segment,
        improvement=improvement,
        rules=rules,
        points=points,
        suppressed_months=found.suppressed,
        mean=result.mean if result else None,
        lower_limit=result.lower_limit if limits and result else None,
        upper_limit=result.upper_limit if limits and result else None,
        lower_two_sigma=result.lower_near if limits and result else None,
        upper_two_sigma=result.upper_near if limits and result else None,
        enough_points=limits,
        variation=variation,
        variation_text=VARIATION_ICONS[variation][0] if variation else "Too few points to judge variation",
        assurance=assurance,
        assurance_text=ASSURANCE_ICONS[assurance][0],
        target=target,
    )


def spc_measures(request: Request, _principal: Aggregates) -> list[SpcMeasure]:
    """The monthly measures the store has, with their improvement direction and the national series' length."""
    frame = monthly(request.app.state.phm.store.snapshot())
    present = set(frame["measure"].to_list())
    national = frame.filter((pl.col("level") == "national") & (pl.col("segment") == ALL)) if frame.height else frame
    return [
        SpcMeasure(
            name=m,
            title=TITLES[m],
            improvement=IMPROVEMENT[m],
            months=national.filter(pl.col("measure") == m)["month"].n_unique() if national.height else 0,
        )
        for m in MEASURES
        if m in present
    ]


def spc_chart(
    request: Request,
    _principal: Aggregates,
    measure: str,
    level: Annotated[str, Query(description="national, region, icb, sub_icb, pcn or practice")] = "national",
    area_code: Annotated[str, Query(max_length=32)] = "E92000001",
    segment: Annotated[str, Query(max_length=64)] = ALL,
    rules: Literal["nhsr", "mdc_excel"] = "nhsr",
    target: Annotated[float | None, Query(allow_inf_nan=False)] = None,
) -> SpcChart:
    """The XmR chart of one area's monthly series: points, special causes, mean, limits and icons."""
    frame = monthly(request.app.state.phm.store.snapshot())
    return chart(frame, measure, level, area_code, segment, rules, target)


def register(app: FastAPI) -> None:
    """Add the SPC routes to ``app`` as its own routes (so the declaration check and the access tests see them)."""
    app.add_api_route("/api/spc", spc_measures, methods=["GET"], tags=["analytics"])
    app.add_api_route("/api/spc/{measure}", spc_chart, methods=["GET"], tags=["analytics"])
