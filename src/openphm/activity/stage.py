"""The activity stage: per person and as_of, contacts, admissions, bed days and cost by setting.

Windows end at the as_of date: the 12 months are the dates after the same day a year earlier, up to and
including as_of, which for the default year-end snapshots is exactly the NHS data year (1 April - 31 March);
24-month counts serve rules with a longer lookback (need tiers, frailty). Every population row gets a row,
with zeros where nothing happened, so a sum over people is always a sum over the right denominator; a
setting whose table is absent is null ('not available'), never a silent zero.

Admissions are hospital provider spells, not consultant episodes (:mod:`openphm.spells`): a stay with three
episodes is one admission, its setting set by the first episode's admission method and its bed days the nights
from the spell's admission to its discharge.

Cost is the recorded one where a record has it, otherwise the default unit cost of its setting
(``content/costs/unit_costs.csv``, replaceable with ``--unit-costs``). An admission's unit cost is priced per
episode, as its ``unit`` column says (the national reference costs are averages per finished consultant
episode), so a spell costs the recorded costs of its episodes plus the unit cost of each episode without one;
a unit cost whose ``unit`` is ``spell`` is priced once per spell instead. A GP contact is a day with a
primary care coded event: the contract carries no appointment table, so this is a proxy, documented as one.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path

import narwhals as nw
import pyarrow as pa
from narwhals.typing import IntoDType

from openphm.content import content_path, csv_rows
from openphm.engine import distinct
from openphm.errors import InputError
from openphm.pipeline import RunContext, required, stage
from openphm.pipeline.dates import day_number, days_between
from openphm.spells import spells
from openphm.tables import ACTIVITY
from openphm.vocabulary import ELECTIVE_ADMISSION_METHODS, EMERGENCY_ADMISSION_METHODS, PERSON_AS_OF

SETTINGS = ("gp", "ae", "emergency", "elective", "other_admissions", "outpatient", "community", "mh", "social_care")
COUNTS = {
    "gp": "gp_contacts",
    "ae": "ae_attendances",
    "emergency": "emergency_admissions",
    "elective": "elective_admissions",
    "other_admissions": "other_admissions",
    "outpatient": "outpatient_attendances",
    "community": "community_contacts",
    "mh": "mh_contacts",
}
"""Setting -> count column over 12 months. Social care is counted in weeks, not contacts."""
COUNTS_24M = {"ae": "ae_attendances_24m", "emergency": "emergency_admissions_24m", "mh": "mh_contacts_24m"}
BED_DAYS = {"emergency": "emergency_bed_days", "elective": "elective_bed_days"}
SOURCES = (
    "gp_event",
    "gp_medication",
    "ae_attendance",
    "apc_episode",
    "op_appointment",
    "community_contact",
    "mh_contact",
    "social_care_service",
    "waiting_list",
)
DAYS_SINCE = {"emergency": "days_since_emergency_admission", "ae": "days_since_ae_attendance"}
"""Setting -> days from its latest event in the 24 months to as_of (null when none): recency for rules such as the
acutely ill segment's window, which a user sets in the segment rules rather than here."""
COUNT_COLUMNS = (*COUNTS.values(), *BED_DAYS.values())
"""The table's 12-month counts: contacts, admissions and bed days (integers)."""
WEEKS_COLUMN = "social_care_weeks"
COST_COLUMNS = (*(f"cost_{s}" for s in SETTINGS), "cost_total")
"""The table's 12-month costs (GBP) per setting and in total."""
EVENT = ("person_id", "date", "setting", "kind", "cost", "unpriced", "bed_days")
"""An event: ``cost`` is what its records carry (null when none), ``unpriced`` how many of its records carry
none (an admission's episodes; 0 or 1 for any other event), priced at the unit cost."""
SOURCE_OF = {
    "gp": "gp_event",
    "ae": "ae_attendance",
    "emergency": "apc_episode",
    "elective": "apc_episode",
    "other_admissions": "apc_episode",
    "outpatient": "op_appointment",
    "community": "community_contact",
    "mh": "mh_contact",
    "social_care": "social_care_service",
}
"""The table each setting is counted from: a setting whose table is absent is null ('not available'), not 0."""


def unit_costs(path: Path | None = None) -> pa.Table:
    """The unit cost table (setting, kind, unit_cost, per_spell), from the package or a user's file.

    A user's file needs setting, kind and cost_gbp; ``unit`` is optional, and only ``spell`` changes anything
    (an admission priced once per spell rather than per episode).
    """
    try:
        rows = csv_rows(content_path("costs", "unit_costs.csv") if path is None else path)
    except (OSError, UnicodeDecodeError):
        raise InputError(f"{path}: cannot read the unit costs file") from None
    try:
        costs = [float(r["cost_gbp"]) for r in rows]
        keys = [(r["setting"], r["kind"]) for r in rows]
        per_spell = [(r.get("unit") or "").strip() == "spell" for r in rows]
    except (KeyError, ValueError):
        raise InputError(f"{path}: unit costs need columns setting, kind, cost_gbp (a number)") from None
    unknown = sorted({s for s, _ in keys} - set(SETTINGS))
    if unknown:
        raise InputError(f"{path}: unknown setting '{unknown[0]}' in unit costs")
    return pa.table(
        {
            "setting": pa.array([k[0] for k in keys], pa.string()),
            "kind": pa.array([k[1] for k in keys], pa.string()),
            "unit_cost": pa.array(costs, pa.float64()),
            "per_spell": pa.array(per_spell, pa.bool_()),
        }
    )


def years_before(day: date, years: int) -> date:
    """The same calendar day ``years`` earlier (29 February becomes 28 February)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def _dates(context: RunContext) -> nw.LazyFrame:
    def column(years: int) -> pa.Array:
        return pa.array([years_before(d, years) for d in context.as_of], pa.date32())

    return context.engine.frame(
        pa.table({"as_of": pa.array(context.as_of, pa.date32()), "start_12m": column(1), "start_24m": column(2)})
    )


def _events(frame: nw.LazyFrame, date_column: str, setting: str | nw.Expr, *, cost: bool = True) -> nw.LazyFrame:
    return frame.select(
        "person_id",
        nw.col(date_column).alias("date"),
        (nw.lit(setting) if isinstance(setting, str) else setting).alias("setting"),
        nw.lit("any").alias("kind"),
        (nw.col("cost") if cost else nw.lit(None, nw.Float64)).cast(nw.Float64).alias("cost"),
        (nw.col("cost").is_null() if cost else nw.lit(True)).cast(nw.Int64).alias("unpriced"),
        nw.lit(None, nw.Int64).alias("bed_days"),
    )


def _admissions(episodes: nw.LazyFrame) -> nw.LazyFrame:
    """Spells as events; bed days are nights from the spell's admission to its discharge (in hospital: none yet)."""
    method = nw.col("admission_method")
    setting = (
        nw.when(method.is_in(EMERGENCY_ADMISSION_METHODS))
        .then(nw.lit("emergency"))
        .when(method.is_in(ELECTIVE_ADMISSION_METHODS))
        .then(nw.lit("elective"))
        .otherwise(nw.lit("other_admissions"))
    )
    nights = days_between("admission_date", "discharge_date")
    return spells(episodes).select(
        "person_id",
        nw.col("admission_date").alias("date"),
        setting.alias("setting"),
        nw.when(nights == 0).then(nw.lit("day_case")).otherwise(nw.lit("inpatient")).alias("kind"),
        nw.col("cost").cast(nw.Float64),
        (nw.col("episodes") - nw.col("costed_episodes")).alias("unpriced"),
        nights.alias("bed_days"),
    )


def _event_sources(tables: Mapping[str, nw.LazyFrame | None]) -> list[nw.LazyFrame]:
    parts = []
    if (gp := tables.get("gp_event")) is not None:
        parts.append(_events(gp.select("person_id", "event_date").pipe(distinct), "event_date", "gp", cost=False))
    if (medication := tables.get("gp_medication")) is not None:
        # Issues count only towards any_contact_24m (whether there was any event), so each issue is an event:
        # the distinct issue days of every person, nearly one per issue, cost a hash table as large as the table.
        parts.append(_events(medication, "issue_date", "medication", cost=False))
    if (ae := tables.get("ae_attendance")) is not None:
        parts.append(_events(ae, "arrival_date", "ae"))
    if (apc := tables.get("apc_episode")) is not None:
        parts.append(_admissions(apc))
    if (op := tables.get("op_appointment")) is not None:
        parts.append(_events(op.filter(nw.col("attended").fill_null(False)), "appointment_date", "outpatient"))
    for table, setting in (("community_contact", "community"), ("mh_contact", "mh")):
        if (contacts := tables.get(table)) is not None:
            parts.append(_events(contacts, "contact_date", setting))
    return parts


def _periods(as_of: tuple[date, ...]) -> tuple[list[date], pa.Table]:
    """The window edges, and which (as_of, window) each period between two consecutive edges belongs to.

    Every 12- and 24-month window is a union of these periods, so events summed once per period can be
    added up per window with an equi-join, however many as_of dates there are and however they overlap.
    """
    windows = {(d, months): years_before(d, months // 12) for d in as_of for months in (12, 24)}
    edges = sorted({*as_of, *windows.values()})
    rows = [
        (period, d, months)
        for period in range(1, len(edges))
        for (d, months), start in windows.items()
        if start <= edges[period - 1] and edges[period] <= d
    ]
    return edges, pa.table(
        {
            "period": pa.array([r[0] for r in rows], pa.int64()),
            "as_of": pa.array([r[1] for r in rows], pa.date32()),
            "months": pa.array([r[2] for r in rows], pa.int64()),
        }
    )


def _window_sums(events: nw.LazyFrame, context: RunContext, costs: nw.LazyFrame) -> nw.LazyFrame:
    """Per person and as_of, the counts, bed days and costs of the events in each window.

    Events are first summed per person, setting and period between window edges (simple sums over many
    rows), then the periods are added up into each as_of's windows (conditional sums over far fewer rows).
    Conditional sums straight over every event, or a cross join of events and as_of dates, were the
    bottleneck of the stage at a million people.
    """
    edges, periods = _periods(context.as_of)
    period = nw.lit(0)
    for index in range(len(edges) - 1, 0, -1):  # the period (edges[i-1], edges[i]] holding the date, else 0
        period = (
            nw.when((nw.col("date") > nw.lit(edges[index - 1])) & (nw.col("date") <= nw.lit(edges[index])))
            .then(nw.lit(index))
            .otherwise(period)
        )
    # Each event priced once: its recorded cost, plus the unit cost of its kind (else of its setting) for each
    # record without one - or once, for a spell without any recorded cost, when the unit cost is per spell.
    unit = nw.coalesce(nw.col("unit_cost"), nw.col("setting_cost"), nw.lit(0.0))
    per_spell = nw.coalesce(nw.col("per_spell"), nw.col("setting_per_spell"), nw.lit(False))
    units = nw.when(per_spell).then(nw.col("cost").is_null().cast(nw.Int64)).otherwise(nw.col("unpriced"))
    by_period = (
        events.join(costs, on=["setting", "kind"], how="left")
        .join(
            costs.filter(nw.col("kind") == "any").select(
                "setting",
                nw.col("unit_cost").alias("setting_cost"),
                nw.col("per_spell").alias("setting_per_spell"),
            ),
            on="setting",
            how="left",
        )
        .with_columns(
            (nw.col("cost").fill_null(0.0) + unit * units.cast(nw.Float64)).alias("cost"),
            period.alias("period"),
        )
        .filter(nw.col("period") > 0)
        .group_by("person_id", "setting", "period")
        .agg(
            nw.len().alias("events"),
            nw.col("bed_days").fill_null(0).sum().alias("bed_days"),
            nw.col("cost").sum().alias("cost"),
            nw.col("date").max().alias("last_date"),
        )
        .join(context.engine.frame(periods), on="period", how="inner")
    )

    def total(value: str, setting: str | None = None) -> nw.Expr:
        if setting is None:
            return nw.col(value).sum()
        return nw.when(nw.col("setting") == setting).then(nw.col(value)).otherwise(nw.lit(0)).sum()

    # The 12- and 24-month windows are summed apart, each over its own periods: one aggregation choosing every
    # column's rows by window and setting spent most of the stage's time evaluating conditions that were false.
    # The 24-month windows hold the 12-month ones, so everyone with a 12-month row has a 24-month row.
    keys = list(PERSON_AS_OF)
    twelve = (
        by_period.filter(nw.col("months") == 12)
        .group_by(*keys)
        .agg(
            *[total("events", s).alias(c) for s, c in COUNTS.items()],
            *[total("bed_days", s).alias(c) for s, c in BED_DAYS.items()],
            *[total("cost", s).cast(nw.Float64).alias(f"cost_{s}") for s in SETTINGS if s != "social_care"],
        )
    )
    twenty_four = (
        by_period.filter(nw.col("months") == 24)
        .group_by(*keys)
        .agg(
            *[total("events", s).alias(c) for s, c in COUNTS_24M.items()],
            total("events").alias("events_24m"),
            *[_latest(s).alias(f"last_{s}") for s in DAYS_SINCE],
        )
        .with_columns(*[days_between(f"last_{s}", "as_of").alias(c) for s, c in DAYS_SINCE.items()])
    )
    return twenty_four.join(twelve, on=keys, how="left")


def _latest(setting: str) -> nw.Expr:
    """The latest event date of ``setting`` in the 24-month window's periods (other settings' rows are null)."""
    return nw.when(nw.col("setting") == setting).then(nw.col("last_date")).max()


def _social_care(services: nw.LazyFrame, dates: nw.LazyFrame, costs: nw.LazyFrame) -> nw.LazyFrame:
    """Weeks of long-term support overlapping the 12 months, and their cost (weekly cost x weeks)."""
    # Days in (window start, window end] that the service covers: its first day counts, like the as_of.
    before_first_day = nw.max_horizontal(day_number("start_date") - 1, day_number("start_12m"))
    last_day = day_number(nw.min_horizontal(nw.coalesce(nw.col("end_date"), nw.col("as_of")), nw.col("as_of")))
    overlap = (
        services.join(dates, how="cross")
        .filter(
            (nw.col("start_date") <= nw.col("as_of"))
            & (nw.col("end_date").is_null() | (nw.col("end_date") > nw.col("start_12m")))
        )
        .with_columns(((last_day - before_first_day) / 7).alias("weeks"))
        .join(
            costs.filter(nw.col("setting") == "social_care").select(nw.col("kind").alias("service_type"), "unit_cost"),
            on="service_type",
            how="left",
        )
        .with_columns(
            (nw.coalesce(nw.col("weekly_cost"), nw.col("unit_cost"), nw.lit(0.0)) * nw.col("weeks")).alias("cost")
        )
    )
    return overlap.group_by(*PERSON_AS_OF).agg(
        nw.col("weeks").sum().alias("social_care_weeks"), nw.col("cost").sum().alias("cost_social_care")
    )


def _open_waiting_lists(waiting: nw.LazyFrame, dates: nw.LazyFrame) -> nw.LazyFrame:
    return (
        waiting.join(dates.select("as_of"), how="cross")
        .filter(
            (nw.col("referral_date") <= nw.col("as_of"))
            & (nw.col("removal_date").is_null() | (nw.col("removal_date") > nw.col("as_of")))
        )
        .group_by(*PERSON_AS_OF)
        .agg(nw.len().alias("open_waiting_lists"))
    )


def _costs_frame(context: RunContext) -> nw.LazyFrame:
    return context.engine.frame(unit_costs(context.options.unit_costs))


@stage(
    "activity",
    inputs=("population",),
    optional_inputs=SOURCES,
    outputs=(ACTIVITY,),
    per_person=True,
    per_snapshot=True,
)
def activity(tables: Mapping[str, nw.LazyFrame | None], context: RunContext) -> Mapping[str, nw.LazyFrame]:
    """Contacts, admissions, bed days and cost per setting over 12 months (and some over 24) per person and as_of."""
    population = required(tables, "population")
    keys = list(PERSON_AS_OF)
    dates = _dates(context)
    costs = _costs_frame(context)
    result = population.select(*keys)

    if parts := _event_sources(tables):
        sums = _window_sums(nw.concat([p.select(*EVENT) for p in parts], how="vertical"), context, costs)
        result = result.join(sums, on=keys, how="left")
    else:
        result = result.with_columns(nw.lit(None, nw.Int64).alias("events_24m"))
    if (services := tables.get("social_care_service")) is not None:
        result = result.join(_social_care(services, dates, costs), on=keys, how="left")
    if (waiting := tables.get("waiting_list")) is not None:
        result = result.join(_open_waiting_lists(waiting, dates), on=keys, how="left")

    def available(setting: str) -> bool:
        return tables.get(SOURCE_OF[setting]) is not None

    ints = {c: available(s) for s, c in [*COUNTS.items(), *COUNTS_24M.items(), *BED_DAYS.items()]}
    ints["open_waiting_lists"] = tables.get("waiting_list") is not None
    floats = {f"cost_{s}": available(s) for s in SETTINGS} | {"social_care_weeks": available("social_care")}
    present = set(result.collect_schema().names())
    recency = [(nw.col(c) if c in present else nw.lit(None)).cast(nw.Int64).alias(c) for c in DAYS_SINCE.values()]

    def filled(column: str, is_available: bool, zero: float, dtype: IntoDType) -> nw.Expr:
        if not is_available:
            return nw.lit(None, dtype).alias(column)
        return (nw.col(column).fill_null(zero) if column in present else nw.lit(zero)).cast(dtype).alias(column)

    result = result.with_columns(
        *[filled(c, ok, 0, nw.Int64) for c, ok in ints.items()],
        *[filled(c, ok, 0.0, nw.Float64) for c, ok in floats.items()],
        (nw.col("events_24m").fill_null(0) > 0 if parts else nw.lit(None, nw.Boolean)).alias("any_contact_24m"),
        *recency,
    )
    result = result.with_columns(
        nw.sum_horizontal(*[nw.col(f"cost_{s}").fill_null(0.0) for s in SETTINGS]).alias("cost_total")
    )
    columns = [
        *keys,
        *COUNT_COLUMNS,
        WEEKS_COLUMN,
        *COST_COLUMNS,
        *COUNTS_24M.values(),
        *DAYS_SINCE.values(),
        "any_contact_24m",
        "open_waiting_lists",
    ]
    return {"activity": result.select(*columns)}
