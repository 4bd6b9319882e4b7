"""The measures stage: each person's latest clinical measurements as at each as_of date.

Readings come from primary care events whose SNOMED CT code is on a measure's list and that carry a value.
Values outside the measure's plausible range (in its manifest, e.g. BMI 10-80) are dropped and counted in
the run log. Several readings on one day count as one, their mean. Smoking status comes from status codes
(never, ex, current and, where recorded, the amount smoked) mapped to the QRISK3 categories 0-4.

The CKD stage is the KDIGO 2012 GFR category that has persisted: CKD is kidney damage or a decreased GFR "for
more than 3 months" (KDIGO 2012 Clinical Practice Guideline for the Evaluation and Management of CKD, Kidney
Int Suppl 2013;3(1), chapter 1), so a single low reading (an acute kidney injury, a dehydrated day) does not
set a stage. See :func:`_persistent_ckd_stage`.
"""

from __future__ import annotations

from collections.abc import Mapping

import narwhals as nw
import pyarrow as pa

from openphm.codes import Definition
from openphm.pipeline import RunContext, required, stage
from openphm.pipeline.dates import days_between
from openphm.registers.definitions import definitions
from openphm.tables import MEASURE
from openphm.vocabulary import PERSON_AS_OF

MEASURES = {
    "bmi": "bmi",
    "systolic_bp": "sbp",
    "diastolic_bp": "dbp",
    "cholesterol_hdl_ratio": "cholesterol_ratio",
    "total_cholesterol": "total_cholesterol",
    "hdl_cholesterol": "hdl_cholesterol",
    "egfr": "egfr",
    "hba1c": "hba1c",
}
"""Measure definition id -> column prefix in the ``measure`` table."""
WITH_PREVIOUS = ("sbp", "dbp", "egfr")
"""Measures reported with the reading before the latest (the CMS reads the better of the last two eGFRs)."""
SMOKING = {
    "smoking_never": 0,
    "smoking_ex": 1,
    "smoking_current": 2,
    "smoking_current_light": 2,
    "smoking_current_moderate": 3,
    "smoking_current_heavy": 4,
}
"""Status definition -> QRISK3 smoke_cat. A current smoker whose amount is not recorded counts as light (2)."""
CKD_THRESHOLDS = (90.0, 60.0, 30.0, 15.0)
"""KDIGO GFR category floors (mL/min/1.73m2): G1 >= 90, G2 60-89, G3 30-59, G4 15-29, G5 < 15."""
PERSISTENCE_DAYS = 90
"""KDIGO's "more than 3 months": two readings below a floor at least 90 days apart, none at or above it between."""


def _frame(context: RunContext, columns: dict[str, pa.Array]) -> nw.LazyFrame:
    return context.engine.frame(pa.table(columns))


def _codes(
    context: RunContext, chosen: list[Definition], key: str, values: Mapping[str, object], value_type: pa.DataType
) -> nw.LazyFrame:
    pairs = [(code, values[d.id]) for d in chosen if d.id in values for code in d.codelists["snomed"].codes]
    return _frame(
        context,
        {"snomed_code": pa.array([p[0] for p in pairs], pa.string()), key: pa.array([p[1] for p in pairs], value_type)},
    )


def _in_force(chained: nw.LazyFrame, dates: nw.LazyFrame) -> nw.LazyFrame:
    """Each reading repeated for the as_of dates at which it is the latest: on or after it, before the next one.

    ``chained`` carries ``next_date``, the date of the same person's (and measure's) next reading, or null.
    Each as_of keeps exactly one reading per person and measure, so the cross join yields only output rows.
    """
    return (
        chained.join(dates, how="cross")
        .filter(
            (nw.col("date") <= nw.col("as_of"))
            & (nw.col("next_date").is_null() | (nw.col("next_date") > nw.col("as_of")))
        )
        .drop("next_date")
    )


def _latest(readings: nw.LazyFrame, dates: nw.LazyFrame) -> nw.LazyFrame:
    """Per person, measure and as_of: the latest value, its date, the one before, and the SD of the last five.

    ``readings`` hold one value a day per person and measure, not yet repeated per as_of. Each reading is
    chained to its neighbours once (the next reading's date, the previous reading, the SD of it and the four
    before it), by window functions over the person's readings in date order; a reading that is the latest
    at an as_of has, at that as_of, exactly that previous reading and those five. Ranking the readings again
    for every as_of, and finding the latest by a group-by and a join, made this the slowest stage of the run
    (docs/performance.md). Only blood pressure and eGFR report the previous reading, only systolic blood
    pressure the SD: the other measures' columns are computed and not selected.
    """
    keys = ["person_id", "measure"]
    chained = readings.with_columns(
        nw.col("date").shift(-1).over(*keys, order_by="date").alias("next_date"),
        nw.col("value").shift(1).over(*keys, order_by="date").alias("previous"),
        nw.col("date").shift(1).over(*keys, order_by="date").alias("previous_date"),
        nw.col("value").rolling_std(5, min_samples=2).over(*keys, order_by="date").alias("sd5"),
    )
    return _in_force(chained, dates).select(*keys, "as_of", "value", "date", "previous", "previous_date", "sd5")


@stage(
    "measures",
    inputs=("population",),
    optional_inputs=("gp_event",),
    outputs=(MEASURE,),
    facts=("measure_dropped",),
    per_person=True,
    per_snapshot=True,
)
def measures(tables: Mapping[str, nw.LazyFrame | None], context: RunContext) -> Mapping[str, nw.LazyFrame]:
    """Latest BMI, blood pressure (with SD and previous reading), cholesterol ratio, eGFR and CKD stage,
    HbA1c and smoking category per person and as_of."""
    population = required(tables, "population")
    base = population.select(*PERSON_AS_OF)
    events = tables.get("gp_event")
    chosen = [d for d in definitions(context, ("measure", "status")) if "snomed" in d.codelists]
    measure_defs = [d for d in chosen if d.id in MEASURES]
    dates = _frame(context, {"as_of": pa.array(context.as_of, pa.date32())})

    dropped = _frame(
        context,
        {"item": pa.array([], pa.string()), "metric": pa.array([], pa.string()), "value": pa.array([], pa.float64())},
    )
    result = base
    if events is not None and measure_defs:
        codes = _codes(context, measure_defs, "measure", MEASURES, pa.string())
        limits = _frame(
            context,
            {
                "measure": pa.array([MEASURES[d.id] for d in measure_defs], pa.string()),
                "low": pa.array([d.plausible[0] if d.plausible else None for d in measure_defs], pa.float64()),
                "high": pa.array([d.plausible[1] if d.plausible else None for d in measure_defs], pa.float64()),
            },
        )
        readings = context.engine.persist(  # read twice: for the dropped counts and the kept values
            events.filter(~nw.col("value").is_null())
            .join(codes, on="snomed_code", how="inner")
            .join(limits, on="measure", how="left")
            .with_columns(
                (
                    (~nw.col("low").is_null() & (nw.col("value") < nw.col("low")))
                    | (~nw.col("high").is_null() & (nw.col("value") > nw.col("high")))
                ).alias("implausible")
            )
        )
        dropped = (
            readings.group_by("measure")
            .agg(nw.col("implausible").cast(nw.Float64).sum().alias("value"))
            .select(nw.col("measure").alias("item"), nw.lit("implausible_dropped").alias("metric"), "value")
        )
        daily = context.engine.persist(  # one value a day; read for the latest values and for the CKD stage
            readings.filter(~nw.col("implausible"))
            .group_by("person_id", "measure", "event_date")
            .agg(nw.col("value").mean())
            .rename({"event_date": "date"})
        )
        # Materialised: every measure's column below is read from it, and an engine would otherwise redo the
        # windows once per measure.
        latest = context.engine.persist(_latest(_with_derived_ratio(daily, limits), dates))
        for d in measure_defs:
            prefix = MEASURES[d.id]
            picked = [nw.col("value").alias(prefix), nw.col("date").alias(f"{prefix}_date")]
            if prefix in WITH_PREVIOUS:
                picked += [
                    nw.col("previous").alias(f"{prefix}_previous"),
                    nw.col("previous_date").alias(f"{prefix}_previous_date"),
                ]
            if prefix == "sbp":
                picked.append(nw.col("sd5").alias("sbp_sd5"))
            one = latest.filter(nw.col("measure") == prefix).select("person_id", "as_of", *picked)
            result = result.join(one, on=list(PERSON_AS_OF), how="left")
        if any(d.id == "egfr" for d in measure_defs):
            egfr = (  # every reading up to each as_of
                daily.filter(nw.col("measure") == "egfr")
                .join(dates, how="cross")
                .filter(nw.col("date") <= nw.col("as_of"))
                .select("person_id", "as_of", "date", "value")
            )
            result = result.join(_persistent_ckd_stage(egfr), on=list(PERSON_AS_OF), how="left")

    smoking = [d for d in chosen if d.id in SMOKING]
    if events is not None and smoking:
        result = result.join(
            _smoking(events, _codes(context, smoking, "category", SMOKING, pa.int64()), dates),
            on=list(PERSON_AS_OF),
            how="left",
        )
    return {"measure": MEASURE.conform(result), "measure_dropped": dropped}


def _with_derived_ratio(daily: nw.LazyFrame, limits: nw.LazyFrame) -> nw.LazyFrame:
    """Daily readings plus a total/HDL cholesterol ratio on days that have both parts but no recorded ratio.

    Many practices record the two results and not the ratio QRISK3 needs; a derived ratio outside the
    ratio's plausible range is left out like a recorded one.
    """
    keys = ["person_id", "date"]
    total = daily.filter(nw.col("measure") == "total_cholesterol").select(*keys, nw.col("value").alias("total"))
    hdl = daily.filter(nw.col("measure") == "hdl_cholesterol").select(*keys, nw.col("value").alias("hdl"))
    recorded = daily.filter(nw.col("measure") == "cholesterol_ratio").select(*keys)
    derived = (
        total.join(hdl, on=keys, how="inner")
        .join(recorded, on=keys, how="anti")
        .with_columns(nw.lit("cholesterol_ratio").alias("measure"), (nw.col("total") / nw.col("hdl")).alias("value"))
        .join(limits, on="measure", how="inner")
        .filter((nw.col("value") >= nw.col("low")) & (nw.col("value") <= nw.col("high")))
        .select(daily.collect_schema().names())
    )
    return nw.concat([daily, derived], how="vertical")


def _persistent_ckd_stage(egfr: nw.LazyFrame) -> nw.LazyFrame:
    """(person_id, as_of, ckd_stage): the GFR category the person's readings have stayed in for >= 90 days.

    For each floor (90, 60, 30, 15) the readings up to as_of have been persistently below it when the run of
    readings below it that ends with the latest reading began at least 90 days before the latest reading: two
    readings below the floor at least 90 days apart and none at or above it in between (nor after). The stage
    is 1 plus the number of floors so crossed, so a single eGFR of 12 after years at 50 is stage 3, and stage 5
    needs two readings below 15 at least 90 days apart. Someone whose readings have not stayed below 90 for 90
    days is stage 1 (no lower category established). Everything is a group-by and a join: no ranking, no loop
    over people, the same on every engine.
    """
    keys = ["person_id", "as_of"]
    last_at_or_above = (
        egfr.with_columns(
            *[
                nw.when(nw.col("value") >= floor).then(nw.col("date")).alias(f"above_{i}")
                for i, floor in enumerate(CKD_THRESHOLDS)
            ]
        )
        .group_by(*keys)
        .agg(nw.col("date").max().alias("latest"), *[nw.col(f"above_{i}").max() for i in range(len(CKD_THRESHOLDS))])
    )
    run_starts = (
        egfr.join(last_at_or_above, on=keys, how="inner")
        .with_columns(
            *[
                nw.when(
                    (nw.col("value") < floor)
                    & (nw.col(f"above_{i}").is_null() | (nw.col("date") > nw.col(f"above_{i}")))
                )
                .then(nw.col("date"))
                .alias(f"since_{i}")
                for i, floor in enumerate(CKD_THRESHOLDS)
            ]
        )
        .group_by(*keys, "latest")
        .agg(*[nw.col(f"since_{i}").min() for i in range(len(CKD_THRESHOLDS))])
    )
    crossed = [
        (days_between(f"since_{i}", "latest") >= PERSISTENCE_DAYS).fill_null(False).cast(nw.Int64)
        for i in range(len(CKD_THRESHOLDS))
    ]
    stage_expr = nw.lit(1, nw.Int64)
    for below in crossed:
        stage_expr = stage_expr + below
    return run_starts.select(*keys, stage_expr.cast(nw.Int64).alias("ckd_stage"))


def _smoking(events: nw.LazyFrame, codes: nw.LazyFrame, dates: nw.LazyFrame) -> nw.LazyFrame:
    """Latest smoking status per person and as_of; on a day with two statuses, the heavier counts.

    Each day's status is chained to the person's next status date once, then kept for the as_of dates at which
    it is the latest (see :func:`_in_force`), instead of ranking every status again for every as_of.
    """
    daily = (
        events.join(codes, on="snomed_code", how="inner")
        .group_by("person_id", "event_date")
        .agg(nw.col("category").max())
        .rename({"event_date": "date"})
    )
    chained = daily.with_columns(nw.col("date").shift(-1).over("person_id", order_by="date").alias("next_date"))
    return _in_force(chained, dates).select(
        "person_id", "as_of", nw.col("category").alias("smoking_category"), nw.col("date").alias("smoking_date")
    )
