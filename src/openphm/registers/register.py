"""The register stage: per person, definition and as_of, when the condition was coded and whether it is active.

Active as at an as_of date means: coded on or before it; the latest diagnosis code within the definition's
lookback, if it has one (e.g. cancer diagnosed in the last five years); and no resolved code after the latest
diagnosis code (the QOF rule: a diagnosis recorded after a 'resolved' code puts the person back on).
Medicines and procedures use the same rule, so 'statin issued in the last 12 months' is a register too.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

import narwhals as nw
import pyarrow as pa

from openphm.codes import REGISTER_KINDS
from openphm.codes.systems import SETTINGS
from openphm.pipeline import RunContext, required, stage
from openphm.registers.definitions import definitions
from openphm.registers.events import codelist_frame, events_by_system, match
from openphm.tables import REGISTER
from openphm.vocabulary import PERSON_AS_OF

SOURCES = ("gp_event", "gp_medication", "apc_episode", "apc_diagnosis", "apc_procedure", "ae_attendance")


def _windows(context: RunContext, lookbacks: dict[str, int | None]) -> nw.LazyFrame:
    """(definition, as_of, window_start): the earliest date a code may have to count as active."""
    rows = [
        (d, as_of, as_of - timedelta(days=days) if days else None)
        for d, days in lookbacks.items()
        for as_of in context.as_of
    ]
    return context.engine.frame(
        pa.table(
            {
                "definition": pa.array([r[0] for r in rows], pa.string()),
                "as_of": pa.array([r[1] for r in rows], pa.date32()),
                "window_start": pa.array([r[2] for r in rows], pa.date32()),
            }
        )
    )


@stage(
    "register",
    inputs=("population",),
    optional_inputs=SOURCES,
    outputs=(REGISTER,),
    per_person=True,
    per_snapshot=True,
)
def register(tables: Mapping[str, nw.LazyFrame | None], context: RunContext) -> Mapping[str, nw.LazyFrame]:
    """One row per person, definition and as_of for everyone coded by then, with dates, settings and status."""
    chosen = definitions(context, REGISTER_KINDS)
    lists = [(d.id, False, c) for d in chosen for c in d.codelists.values()]
    lists += [(d.id, True, c) for d in chosen for c in d.resolved.values()]
    systems = {c.system.name for _, _, c in lists}
    prefix_lengths: dict[str, set[int]] = {}
    for _, _, codelist in lists:
        if codelist.system.prefix:
            prefix_lengths.setdefault(codelist.system.name, set()).update(codelist.prefix_lengths())

    population = required(tables, "population")
    events = events_by_system(tables, systems)
    matched = match(events, codelist_frame(context.engine, lists), {s: sorted(v) for s, v in prefix_lengths.items()})
    if matched is None:  # no coded table at all: an empty register, said plainly by its row count
        return {"register": _empty(population)}
    coded = _as_at_each_date(matched, context)
    windows = _windows(context, {d.id: d.lookback_days for d in chosen})
    active = (nw.col("last_resolved_date").is_null() | (nw.col("last_date") > nw.col("last_resolved_date"))) & (
        nw.col("window_start").is_null() | (nw.col("last_date") >= nw.col("window_start"))
    )
    result = (
        coded.join(windows, on=["definition", "as_of"], how="inner")
        .join(population.select(*PERSON_AS_OF), on=list(PERSON_AS_OF), how="inner")
        .with_columns(active.alias("active"))
        .select(*REGISTER.names)
    )
    return {"register": result}


def _as_at_each_date(matched: nw.LazyFrame, context: RunContext) -> nw.LazyFrame:
    """Per person, definition and as_of: first and last diagnosis, last resolved code, settings - by then.

    Codes are first summarised per period between consecutive as_of dates (period i holds the dates after
    as_of i-1 up to as_of i), then each as_of takes the periods up to it. Summarising every code once per
    as_of instead (a cross join) repeated the whole coded record for every snapshot.
    """
    ends = sorted(context.as_of)
    period = nw.lit(0)
    for index in range(len(ends), 0, -1):
        period = nw.when(nw.col("date") <= nw.lit(ends[index - 1])).then(nw.lit(index)).otherwise(period)
    pairs = [(i, d) for i in range(1, len(ends) + 1) for d in ends[i - 1 :]]
    taken = context.engine.frame(
        pa.table(
            {
                "period": pa.array([i for i, _ in pairs], pa.int64()),
                "as_of": pa.array([d for _, d in pairs], pa.date32()),
            }
        )
    )
    flags = [f"from_{s}" for s in SETTINGS]
    summaries = [
        nw.col("diagnosed").min().alias("first_date"),
        nw.col("diagnosed").max().alias("last_date"),
        nw.col("resolved_on").max().alias("last_resolved_date"),
        *[nw.col(f).max() for f in flags],
    ]
    per_period = (
        matched.with_columns(
            period.alias("period"),
            nw.when(~nw.col("resolved")).then(nw.col("date")).alias("diagnosed"),
            nw.when(nw.col("resolved")).then(nw.col("date")).alias("resolved_on"),
            *[(~nw.col("resolved") & (nw.col("setting") == s)).alias(f"from_{s}") for s in SETTINGS],
        )
        .filter(nw.col("period") > 0)
        .group_by("person_id", "definition", "period")
        .agg(*summaries)
    )
    return (
        per_period.join(taken, on="period", how="inner")
        .group_by("person_id", "definition", "as_of")
        .agg(
            nw.col("first_date").min(),
            nw.col("last_date").max(),
            nw.col("last_resolved_date").max(),
            *[nw.col(f).max() for f in flags],
        )
        .filter(~nw.col("first_date").is_null())
    )


def _empty(population: nw.LazyFrame) -> nw.LazyFrame:
    return population.head(0).select(
        "person_id",
        "as_of",
        nw.lit("").alias("definition"),
        *[nw.col("as_of").alias(c) for c in ("first_date", "last_date", "last_resolved_date")],
        nw.lit(True).alias("active"),
        *[nw.lit(True).alias(f"from_{s}") for s in SETTINGS],
    )
