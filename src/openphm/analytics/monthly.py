"""`agg_monthly`: monthly counts of hospital activity per area and segment, the series SPC charts read.

Planning asks "is this month different?", which a yearly snapshot cannot answer. This table counts the events
of the source tables per calendar month of their date (an admission's month is its admission date's, with all its
bed days), for every geography level and for every segment and 'all'.

Each event is attributed to one snapshot: the first as_of on or after its date whose 12-month window (the activity
stage's: after the same day a year earlier, up to and including as_of) holds it. The person's practice (hence every
area) and segment are read at that as_of, and only people in the population at that as_of are counted - the same
people and events as `activity`, so the twelve months of a year-end snapshot add up to `agg_population`'s
yearly counts. Events outside every window are not counted. A snapshot not on a month end leaves its first and
last months partial (two rows of one month under two as_of dates).

Counts are exact here; disclosure control is applied when the table leaves the store (:mod:`.published`), like
every other `agg_*` table. Written once in narwhals: the same rows on every engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from functools import cache

import narwhals as nw
import pyarrow as pa

from openphm.activity.stage import years_before
from openphm.analytics.aggregates import CODE_COLUMNS, LEVELS, in_level
from openphm.cohorts.acsc import qualifying_spells
from openphm.cohorts.definitions import RuleSetRow, read_cohort
from openphm.content import content_path
from openphm.engine import Engine, distinct
from openphm.pipeline.dates import days_between
from openphm.spells import ranked, spells
from openphm.vocabulary import ELECTIVE_ADMISSION_METHODS, EMERGENCY_ADMISSION_METHODS, PERSON_AS_OF

MEASURES = {
    "emergency_admissions": "apc_episode",
    "acsc_emergency_admissions": "apc_diagnosis",
    "emergency_bed_days": "apc_episode",
    "elective_admissions": "apc_episode",
    "ae_attendances": "ae_attendance",
    "outpatient_attendances": "op_appointment",
}
"""Measure -> the source table it needs (ACSC admissions also need `apc_episode`): a measure whose tables are
absent has no rows at all (not available), never zeros."""
SOURCES = ("apc_episode", "apc_diagnosis", "apc_procedure", "ae_attendance", "op_appointment")
ALL = "all"
ACSC_COHORT = "acsc_emergency_admissions.yaml"
"""The shipped cohort whose rule set defines an ACSC admission (`content/cohorts/acsc_rules.csv`)."""

MONTHLY_SCHEMA = pa.schema(
    [
        ("level", pa.string()),
        ("area_code", pa.string()),
        ("area_name", pa.string()),
        ("as_of", pa.date32()),
        ("month", pa.date32()),
        ("segment", pa.string()),
        ("measure", pa.string()),
        ("value", pa.int64()),
    ]
)


@cache
def acsc_rules() -> tuple[RuleSetRow, ...]:
    """The ACSC rule set of the shipped cohort definition, so that the series and the cohort count alike."""
    folder = content_path("cohorts")
    cohort = read_cohort(folder.joinpath(ACSC_COHORT), folder)
    return next(rule.rule_set for rule in cohort.rules if rule.rule_set and not rule.exclude)


def snapshot_of(as_of: tuple[date, ...]) -> nw.Expr:
    """The as_of an event's ``date`` is attributed to: the first on or after it whose year holds it, else null."""
    chosen = nw.lit(None, dtype=nw.Date())
    previous: date | None = None
    edges = []
    for day in sorted(set(as_of)):
        start = years_before(day, 1)
        edges.append((max(start, previous) if previous is not None else start, day))
        previous = day
    for start, day in reversed(edges):
        chosen = (
            nw.when((nw.col("date") > nw.lit(start)) & (nw.col("date") <= nw.lit(day)))
            .then(nw.lit(day, dtype=nw.Date()))
            .otherwise(chosen)
        )
    return chosen


def _events(tables: Mapping[str, nw.LazyFrame | None], engine: Engine) -> list[nw.LazyFrame]:
    """(person_id, date, measure, value) of every available measure: one row per event (bed days: its nights)."""
    parts: list[nw.LazyFrame] = []

    def event(frame: nw.LazyFrame, column: str, measure: str, value: nw.Expr | None = None) -> nw.LazyFrame:
        return frame.select(
            "person_id",
            nw.col(column).alias("date"),
            nw.lit(measure).alias("measure"),
            (nw.lit(1) if value is None else value).cast(nw.Int64).alias("value"),
        )

    if (apc := tables.get("apc_episode")) is not None:
        # Admissions are hospital spells (openphm.spells), dated by their first episode, as activity counts them.
        # The episodes are ordered into spells once: both the admissions and the ACSC rule set read them.
        apc = engine.persist(ranked(apc))
        stays = spells(apc)
        emergency = stays.filter(nw.col("admission_method").is_in(EMERGENCY_ADMISSION_METHODS))
        parts.append(event(emergency, "admission_date", "emergency_admissions"))
        nights = days_between("admission_date", "discharge_date").fill_null(0)
        parts.append(event(emergency, "admission_date", "emergency_bed_days", nights))
        elective = stays.filter(nw.col("admission_method").is_in(ELECTIVE_ADMISSION_METHODS))
        parts.append(event(elective, "admission_date", "elective_admissions"))
        if (diagnoses := tables.get("apc_diagnosis")) is not None:
            accepted = qualifying_spells(acsc_rules(), apc, diagnoses, tables.get("apc_procedure"), engine)
            acsc = emergency.join(accepted.select("spell_key").pipe(distinct), on="spell_key", how="inner")
            parts.append(event(acsc, "admission_date", "acsc_emergency_admissions"))
    if (ae := tables.get("ae_attendance")) is not None:
        parts.append(event(ae, "arrival_date", "ae_attendances"))
    if (op := tables.get("op_appointment")) is not None:
        attended = op.filter(nw.col("attended").fill_null(False))
        parts.append(event(attended, "appointment_date", "outpatient_attendances"))
    return parts


def monthly_aggregates(
    engine: Engine,
    tables: Mapping[str, nw.LazyFrame | None],
    residents: nw.LazyFrame,
    segment: nw.LazyFrame | None,
    names: nw.LazyFrame,
    as_of: tuple[date, ...],
) -> nw.LazyFrame:
    """`agg_monthly`: events per level, area, as_of, month, segment ('all' and each) and measure."""
    parts = _events(tables, engine)
    if not parts:
        return engine.frame(MONTHLY_SCHEMA.empty_table())
    events = (
        nw.concat(parts, how="vertical")
        .with_columns(snapshot_of(as_of).alias("as_of"))
        .filter(~nw.col("as_of").is_null())
        .with_columns(nw.col("date").dt.truncate("1mo").cast(nw.Date()).alias("month"))
    )
    people = residents.select("person_id", "as_of", *CODE_COLUMNS.values())
    if segment is None:
        people = people.with_columns(nw.lit(None, dtype=nw.String()).alias("segment"))
    else:
        people = people.join(segment.select("person_id", "as_of", "segment"), on=list(PERSON_AS_OF), how="left")
        people = people.with_columns(nw.col("segment").fill_null("Unknown"))
    # Summed once per combination of areas and segment (far fewer rows than events), then per level.
    cells = engine.persist(
        events.join(people, on=list(PERSON_AS_OF), how="inner")
        .group_by("as_of", "month", *CODE_COLUMNS.values(), "segment", "measure")
        .agg(nw.col("value").sum().cast(nw.Int64))
    )
    frames = []
    for level in LEVELS:
        located = in_level(cells, level)
        keys = ("area_code", "as_of", "month", "measure")
        whole = located.group_by(*keys).agg(nw.col("value").sum()).with_columns(nw.lit(ALL).alias("segment"))
        frames.append(whole.select(nw.lit(level).alias("level"), *keys, "segment", "value"))
        if segment is not None:
            split = located.group_by(*keys, "segment").agg(nw.col("value").sum())
            frames.append(split.select(nw.lit(level).alias("level"), *keys, "segment", "value"))
    frame = nw.concat(frames, how="vertical").with_columns(nw.col("value").cast(nw.Int64))
    return frame.join(names, on=["level", "area_code"], how="left").select(*MONTHLY_SCHEMA.names)
