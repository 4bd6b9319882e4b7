"""Apply the settings' checks and shape their counts into ``data_quality`` rows (rate, thresholds, status)."""

from __future__ import annotations

from datetime import date

import narwhals as nw

from openphm.quality.checks import CHECK_TYPES, Inputs
from openphm.quality.schema import SCHEMA
from openphm.quality.settings import CheckSpec, QualitySettings

_TYPES: dict[str, nw.dtypes.DType] = {
    "string": nw.String(),
    "int64": nw.Int64(),
    "double": nw.Float64(),
    "date32[day]": nw.Date(),
}


def _finish(counts: nw.LazyFrame, spec: CheckSpec, settings: QualitySettings, extract: date) -> nw.LazyFrame:
    """Rates and statuses; rows below the minimum denominator are left out except the ``all`` row."""
    rate = nw.col("numerator").cast(nw.Float64) / nw.col("denominator").cast(nw.Float64)
    failing = nw.when(nw.col("rate") > spec.fail).then(nw.lit("fail"))
    status = failing.when(nw.col("rate") > spec.warn).then(nw.lit("warn")).otherwise(nw.lit("pass"))
    constants = {
        "extract_date": nw.lit(extract, dtype=nw.Date),
        "check_id": nw.lit(spec.id),
        "category": nw.lit(spec.category),
        "check": nw.lit(spec.check),
        "table": nw.lit(spec.table),
        "column": nw.lit(spec.column or spec.param("date") or ""),
        "warn_threshold": nw.lit(spec.warn, dtype=nw.Float64),
        "threshold": nw.lit(spec.fail, dtype=nw.Float64),
        "description": nw.lit(spec.description),
    }
    judged = (nw.col("level") == "all") | (nw.col("denominator") >= settings.min_denominator)
    shaped = (
        counts.filter((nw.col("denominator") > 0) & judged)
        .with_columns(rate.alias("rate"), **constants)
        .with_columns(status.alias("status"))
    )
    return shaped.select(*[nw.col(f.name).cast(_TYPES[str(f.type)]) for f in SCHEMA])


def assess(inputs: Inputs, settings: QualitySettings) -> nw.LazyFrame:
    """Every check of ``settings`` on ``inputs``: the rows of ``data_quality`` (none for an absent table)."""
    parts = []
    for spec in settings.checks:
        counts = CHECK_TYPES[spec.check](spec, inputs)
        if counts is not None:
            # Each check's few rows are materialised on their own: one plan joining some forty checks took
            # DuckDB two to three times as long as the checks one by one.
            parts.append(inputs.engine.persist(_finish(counts, spec, settings, inputs.extract_date)))
    if not parts:
        return inputs.engine.frame(SCHEMA.empty_table())
    return nw.concat(parts, how="vertical")
