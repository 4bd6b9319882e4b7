"""The report's charts, built from disclosure-controlled aggregate tables, one set of data per area.

Every count shown comes from a published table (counts of 1-7 redacted to null, the rest rounded to 5);
this module never reads a person-level table for a figure. Percentages, rates and costs per head are
computed here from the rounded counts, and a value whose count was redacted stays null (the page shows
"redacted"). Projections are estimates, not counts, but are shown under the same rule (rounded, and hidden
where they would round into the redacted range) so that no figure on the page reads as a small count.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import polars as pl

from openphm.disclosure import Policy
from openphm.report.charts import SEGMENT_COLOURS, SEGMENTS, STATE_COLOURS, Chart, sequential

AGE_BANDS = [f"{a:02d}-{a + 4:02d}" for a in range(0, 95, 5)] + ["95+"]
QUINTILES = [1, 2, 3, 4, 5]
QUINTILE_LABELS = ["1 most deprived", "2", "3", "4", "5 least deprived"]
SEXES = {"F": "Female", "M": "Male"}
PREVALENCE_TOP = 20
"""Registers shown in the prevalence chart (the most prevalent in the area); the data table has the same rows."""

INEQUALITY_MEASURES = {
    "emergency_admissions": ("Emergency admissions", "per 1,000 people"),
    "segment:long_term_conditions": ("People with long-term conditions", "per 100 people"),
    "segment:frailty_and_dementia": ("People with frailty or dementia", "per 100 people"),
    "cost_total": ("Cost of care", "£ per head"),
}
"""Headline measures drawn as gradients, when ``agg_inequality`` has them; every other measure stays in the table."""

AreaTables = Mapping[str, pl.DataFrame]
"""One area's rows of each published table, by table name (a table may be absent)."""


@dataclass(frozen=True)
class Context:
    """What every chart builder may need besides the area's tables."""

    latest: date | None
    policy: Policy
    names: Mapping[str, str]
    """Display names of register definitions and cohorts, by id."""
    deficits_only: frozenset[str]
    """Definitions used only as deficits of the frailty index: not registers a reader would look for."""


def _rows(tables: AreaTables, name: str, **equal: object) -> pl.DataFrame:
    frame = tables.get(name)
    if frame is None or frame.is_empty():
        return pl.DataFrame()
    for column, value in equal.items():
        frame = frame.filter(pl.col(column).is_null() if value is None else pl.col(column) == value)
    return frame


def _lookup(frame: pl.DataFrame, keys: list[str], value: str) -> dict[tuple[object, ...], float | None]:
    if frame.is_empty():
        return {}
    return {tuple(row[:-1]): row[-1] for row in frame.select(*keys, value).iter_rows()}


def tidy(value: float | None, digits: int) -> float | None:
    """``value`` rounded for display, first to 9 decimals so that engines' last-bit differences round alike."""
    return None if value is None else round(round(value, 9), digits)


def share(part: float | None, whole: float | None) -> float | None:
    """100 * part / whole from rounded counts; None when either is redacted or the whole is zero."""
    if part is None or whole is None or whole == 0:
        return None
    return tidy(100.0 * part / whole, 1)


def estimate(value: float | None, policy: Policy) -> float | None:
    """A modelled number of people shown like a count: rounded under the policy, hidden when small."""
    if value is None:
        return None
    rounded = float(round(value / policy.round_to) * policy.round_to)
    return None if 0 < rounded <= policy.redact_up_to else rounded


# -- chart builders: each returns the chart's data for one area, or None when there is nothing --------------


def segments_by_age_sex(tables: AreaTables, ctx: Context) -> dict[str, object] | None:
    rows = _rows(tables, "agg_population", as_of=ctx.latest, breakdown="segment+age_band+sex")
    if rows.is_empty():
        return None
    people = _lookup(rows, ["segment", "age_band", "sex"], "people")
    series = [
        {
            "name": label,
            "group": sex_label,
            "color": SEGMENT_COLOURS[segment],
            "values": [people.get((segment, band, sex), 0) for band in AGE_BANDS],
        }
        for sex, sex_label in SEXES.items()
        for segment, label in SEGMENTS.items()
    ]
    return {"categories": AGE_BANDS, "series": series}


def _stacked_by_quintile(
    tables: AreaTables, ctx: Context, dimension: str, groups: Sequence[tuple[object, str, str]]
) -> dict[str, object] | None:
    rows = _rows(tables, "agg_population", as_of=ctx.latest, breakdown=f"{dimension}+imd_quintile")
    totals = _lookup(
        _rows(tables, "agg_population", as_of=ctx.latest, breakdown="imd_quintile"), ["imd_quintile"], "people"
    )
    if rows.is_empty():
        return None
    people = _lookup(rows, [dimension, "imd_quintile"], "people")
    series = []
    for key, label, colour in groups:
        counts = [people.get((key, q), 0) for q in QUINTILES]
        series.append(
            {
                "name": label,
                "color": colour,
                "values": [share(c, totals.get((q,))) for c, q in zip(counts, QUINTILES, strict=True)],
                "counts": counts,
            }
        )
    return {"categories": QUINTILE_LABELS, "series": series}


def segments_by_imd(tables: AreaTables, ctx: Context) -> dict[str, object] | None:
    groups = [(s, label, SEGMENT_COLOURS[s]) for s, label in SEGMENTS.items()]
    return _stacked_by_quintile(tables, ctx, "segment", groups)


NEED_TIERS = list(range(1, 12))


def need_by_imd(tables: AreaTables, ctx: Context) -> dict[str, object] | None:
    colours = sequential(len(NEED_TIERS))
    groups = [(t, f"Tier {t}", colours[i]) for i, t in enumerate(NEED_TIERS)]
    return _stacked_by_quintile(tables, ctx, "need_tier", groups)


def prevalence(tables: AreaTables, ctx: Context) -> dict[str, object] | None:
    rows = _rows(tables, "agg_register", as_of=ctx.latest, kind="condition")
    if rows.is_empty():
        return None
    rows = rows.filter(~pl.col("definition").is_in(list(ctx.deficits_only)))
    shares = [
        (ctx.names.get(d, d), share(people, population))
        for d, people, population in rows.select("definition", "people", "population").iter_rows()
    ]
    shown = sorted((s for s in shares if s[1]), key=lambda s: (-(s[1] or 0.0), s[0]))[:PREVALENCE_TOP]
    if not shown:
        return None
    hidden = len(shares) - len(shown)
    note = f"Not shown: {hidden} more (redacted, or beyond the {PREVALENCE_TOP} most prevalent)." if hidden else ""
    return {
        "categories": [name for name, _ in shown],
        "series": [{"name": "Prevalence", "values": [v for _, v in shown]}],
        "note": note,
    }


def cost_per_head(tables: AreaTables, ctx: Context) -> dict[str, object] | None:
    rows = _rows(tables, "agg_population", as_of=ctx.latest, breakdown="segment")
    if rows.is_empty() or rows["cost_total"].is_null().all():
        return None
    found = {seg: (people, cost) for seg, people, cost in rows.select("segment", "people", "cost_total").iter_rows()}
    shown = [s for s in SEGMENTS if s in found and found[s][0] != 0]  # a segment with nobody has no cost per head
    values = []
    for segment in shown:
        people, cost = found[segment]
        values.append(None if people is None or cost is None else tidy(cost / people, 0))
    total = _rows(tables, "agg_population", as_of=ctx.latest, breakdown="total")
    note = ""
    if not total.is_empty():
        people, cost = total.select("people", "cost_total").row(0)
        if people and cost is not None:
            note = f"Whole area: £{cost / people:,.0f} per head."
    return {
        "categories": [SEGMENTS[s] for s in shown],
        "series": [{"name": "Cost per head", "values": values, "color": "#005EB8"}],
        "note": note,
    }


def transitions(tables: AreaTables, ctx: Context) -> dict[str, object] | None:
    rows = _rows(tables, "agg_transition", to_as_of=ctx.latest)
    if rows.is_empty():
        return None
    label = {**SEGMENTS}
    links = [
        {"source": label.get(f, f), "target": label.get(t, t), "value": people}
        for f, t, people in rows.select("from_segment", "to_segment", "people").iter_rows()
        if people is None or people > 0
    ]
    order = {s: i for i, s in enumerate([*SEGMENTS.values(), "joined", "died", "left"])}
    links.sort(key=lambda link: (order.get(link["source"], 99), order.get(link["target"], 99)))
    from_as_of = rows["from_as_of"].min()
    return {
        "left": [*SEGMENTS.values(), "joined"],
        "right": [*SEGMENTS.values(), "died", "left"],
        "links": links,
        "colors": {**{SEGMENTS[s]: c for s, c in SEGMENT_COLOURS.items()}, **STATE_COLOURS},
        "from_label": str(from_as_of),
        "to_label": str(ctx.latest),
    }


def inequality(measure: str) -> Callable[[AreaTables, Context], dict[str, object] | None]:
    """The builder of one measure's gradient: standardised rate by IMD quintile with 95% CIs, and the SII."""

    def build(tables: AreaTables, ctx: Context) -> dict[str, object] | None:
        rows = _rows(tables, "agg_inequality", as_of=ctx.latest, measure=measure, group_type="imd_quintile")
        if rows.is_empty():
            return None
        per = rows["per"][0]
        digits = 0 if per == 1 else 1  # GBP per head to the pound; rates to one decimal (engines differ in the 15th)
        by_group = {
            g: tuple(tidy(v, digits) for v in values)
            for g, *values in rows.select("group", "dsr", "dsr_lower", "dsr_upper").iter_rows()
        }
        picked = [by_group.get(str(q), (None, None, None)) for q in QUINTILES]
        index = _rows(tables, "agg_inequality_index", as_of=ctx.latest, measure=measure)
        note = ""
        if not index.is_empty():
            sii, lower, upper = index.select("sii", "sii_lower", "sii_upper").row(0)
            if sii is not None:
                if per == 1:
                    gap = f"£{sii:,.0f} per head (95% CI £{lower:,.0f} to £{upper:,.0f})"
                else:
                    gap = f"{sii:,.1f} per {per:,} (95% CI {lower:,.1f} to {upper:,.1f})"
                note = (
                    f"Slope index of inequality: {gap}: the fitted rate at the most deprived end of the IMD deciles "
                    "minus that at the least deprived end (positive: higher where deprivation is greater)."
                )
        return {
            "categories": QUINTILE_LABELS,
            "series": [
                {
                    "name": "Standardised rate",
                    "color": "#005EB8",
                    "values": [p[0] for p in picked],
                    "lower": [p[1] for p in picked],
                    "upper": [p[2] for p in picked],
                }
            ],
            "note": note,
        }

    return build


def _observed_and_forecast(
    tables: AreaTables, ctx: Context, segments: list[str]
) -> tuple[list[str], int, dict[str, tuple[list, list, list]]] | None:
    """Categories (years), the index of the first forecast year, and (values, lower, upper) per segment."""
    forecast = _rows(tables, "agg_forecast", measure="people")
    if forecast.is_empty():
        return None
    forecast = forecast.filter(pl.col("segment").is_in(segments) & (pl.col("year") > 0))
    observed = _rows(tables, "agg_population")
    wanted = "total" if segments == ["all"] else "segment"
    observed = observed.filter(pl.col("breakdown") == wanted) if not observed.is_empty() else observed
    past = sorted(set(observed["as_of"].to_list())) if not observed.is_empty() else []
    future = sorted(set(forecast["as_of"].to_list()))
    categories = [d.strftime("%b %Y") for d in past + future]
    people = _lookup(observed.with_columns(pl.col("segment").fill_null("all")), ["segment", "as_of"], "people")
    ahead = {
        (s, d): (v, lo, hi)
        for s, d, v, lo, hi in forecast.select("segment", "as_of", "value", "lower", "upper").iter_rows()
    }
    out = {}
    for segment in segments:
        values = [people.get((segment, d)) for d in past]
        lower: list[float | None] = [None] * len(past)
        upper: list[float | None] = [None] * len(past)
        for d in future:
            v, lo, hi = ahead.get((segment, d), (None, None, None))
            values.append(estimate(v, ctx.policy))
            lower.append(estimate(lo, ctx.policy))
            upper.append(estimate(hi, ctx.policy))
        if past:  # the band opens at the last observed point so that it joins the observed line
            lower[len(past) - 1] = upper[len(past) - 1] = values[len(past) - 1]
        out[segment] = (values, lower, upper)
    return categories, len(past), out


def forecast_total(tables: AreaTables, ctx: Context) -> dict[str, object] | None:
    built = _observed_and_forecast(tables, ctx, ["all"])
    if built is None:
        return None
    categories, split, series = built
    values, lower, upper = series["all"]
    return {
        "categories": categories,
        "split": split,
        "series": [{"name": "All people", "color": "#005EB8", "values": values, "lower": lower, "upper": upper}],
    }


def forecast_segments(tables: AreaTables, ctx: Context) -> dict[str, object] | None:
    built = _observed_and_forecast(tables, ctx, list(SEGMENTS))
    if built is None:
        return None
    categories, split, series = built
    return {
        "categories": categories,
        "split": split,
        "series": [
            {"name": SEGMENTS[s], "color": SEGMENT_COLOURS[s], "values": v, "lower": lo, "upper": hi}
            for s, (v, lo, hi) in series.items()
        ],
    }


def cohort_sizes(tables: AreaTables, ctx: Context) -> dict[str, object] | None:
    rows = _rows(tables, "agg_cohort", as_of=ctx.latest)
    if rows.is_empty():
        return None
    pairs = sorted(rows.select("cohort", "people").iter_rows(), key=lambda r: r[0])
    return {
        "categories": [ctx.names.get(c, c) for c, _ in pairs],
        "series": [{"name": "People", "color": "#005EB8", "values": [p for _, p in pairs]}],
    }


def cohort_attrition(tables: AreaTables, ctx: Context) -> dict[str, object] | None:
    """People left after each rule of each cohort (the whole store only: attrition is not broken down by area)."""
    rows = _rows(tables, "cohort_attrition", as_of=ctx.latest)
    if rows.is_empty():
        return None
    rows = rows.sort("cohort", "step")
    categories = [
        ctx.names.get(c, c) if step == 0 else f"↳ {'not ' if kind == 'exclude' else ''}{rule.replace('_', ' ')}"
        for c, step, rule, kind in rows.select("cohort", "step", "rule", "kind").iter_rows()
    ]
    return {
        "categories": categories,
        "series": [{"name": "People remaining", "color": "#005EB8", "values": rows["people"].to_list()}],
        "note": "Under each cohort's name (everyone in the population), each bar is the number of people still in "
        "the cohort after that rule, the rules applied in order.",
    }


@dataclass(frozen=True)
class Entry:
    """A chart and the function that builds its data for an area."""

    chart: Chart
    build: Callable[[AreaTables, Context], dict[str, object] | None]
    national_only: bool = False


def entries() -> list[Entry]:
    """Every chart the report can hold, in page order."""
    charts = [
        Entry(
            Chart(
                "segments_age_sex", "population", "pyramid", "People by segment, age band and sex",
                "Bridges to Health segments by five-year age band; females to the left, males to the right.",
                "Age band", "People",
            ),
            segments_by_age_sex,
        ),
        Entry(
            Chart(
                "segments_imd", "population", "stacked", "Segments by deprivation",
                "Share of each IMD 2019 quintile's population in each segment.",
                "IMD quintile", "% of people", value_format="percent",
            ),
            segments_by_imd,
        ),
        Entry(
            Chart(
                "need_imd", "need", "stacked", "Need tiers by deprivation",
                "Share of each IMD quintile's population in each need tier (1 = least need).",
                "IMD quintile", "% of people", value_format="percent",
            ),
            need_by_imd,
        ),
        Entry(
            Chart(
                "prevalence", "need", "bar", "Register prevalence",
                "People on each active condition register, as a share of the registered population (crude, all ages).",
                "Condition", "% of people", value_format="percent", horizontal=True,
            ),
            prevalence,
        ),
        Entry(
            Chart(
                "cost_per_head", "need", "bar", "Cost per head by segment",
                "Recorded or unit cost of all care in the 12 months to the snapshot, per person in the segment.",
                "Segment", "£ per head", value_format="gbp", horizontal=True,
            ),
            cost_per_head,
        ),
        Entry(
            Chart(
                "transitions", "change", "sankey", "Movement between segments",
                "Where the people of each segment at the previous snapshot were at the latest, with those who "
                "joined, died or left.",
                "Segment", "People",
            ),
            transitions,
        ),
        Entry(
            Chart(
                "forecast_total", "change", "line", "Population: observed and projected",
                "People in the population at each snapshot, then projected five years ahead with a 95% interval.",
                "Snapshot", "People",
            ),
            forecast_total,
        ),
        Entry(
            Chart(
                "forecast_segments", "change", "line", "Segment sizes: observed and projected",
                "People in each segment at each snapshot, then projected five years ahead with 95% intervals.",
                "Snapshot", "People",
            ),
            forecast_segments,
        ),
    ]  # fmt: skip
    for measure, (title, unit) in INEQUALITY_MEASURES.items():
        charts.append(
            Entry(
                Chart(
                    f"inequality_{measure.replace(':', '_')}", "inequality", "bar", f"{title} by deprivation",
                    "Age-sex standardised rate (European Standard Population 2013) by IMD quintile, with 95% "
                    "confidence intervals; the slope index of inequality is across IMD deciles.",
                    "IMD quintile", unit, value_format="gbp" if measure == "cost_total" else "rate",
                ),
                inequality(measure),
            )
        )  # fmt: skip
    charts += [
        Entry(
            Chart(
                "cohort_sizes", "cohorts", "bar", "Cohort sizes",
                "People in the population who meet each cohort's rules at the latest snapshot.",
                "Cohort", "People", horizontal=True,
            ),
            cohort_sizes,
        ),
        Entry(
            Chart(
                "cohort_attrition", "cohorts", "bar", "Cohort attrition",
                "How each rule narrows each cohort, for the whole store (not broken down by area).",
                "Cohort and rule", "People", horizontal=True,
            ),
            cohort_attrition,
            national_only=True,
        ),
    ]  # fmt: skip
    return charts
