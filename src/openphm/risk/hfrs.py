"""The Hospital Frailty Risk Score (Gilbert et al., Lancet 2018), over long-format ICD-10 codes.

Each of 109 three-character ICD-10 categories carries points; a person scores the sum over the distinct
categories recorded for them, each counted once however many codes or admissions carry it (the published
method; some implementations count a category once per code). Bands: low < 5, intermediate 5-15, high > 15.
The points are package data (``content/scores/hfrs``), not code.
"""

from __future__ import annotations

import narwhals as nw
import pyarrow as pa

from openphm.codes.systems import ICD10
from openphm.content import content_path, csv_rows
from openphm.engine import distinct

INTERMEDIATE, HIGH = 5.0, 15.0


def category_points() -> pa.Table:
    """The published points per three-character ICD-10 category, as a table (``category``, ``points``)."""
    rows = csv_rows(content_path("scores", "hfrs", "hfrs.csv"))
    return pa.table(
        {
            "category": pa.array([r["category"] for r in rows], pa.string()),
            "points": pa.array([float(r["points"]) for r in rows], pa.float64()),
        }
    )


def hfrs(
    codes: nw.LazyFrame,
    points: nw.LazyFrame,
    id_column: str = "id",
    code_column: str = "code",
    *,
    normalised: bool = False,
) -> nw.LazyFrame:
    """One row per id in ``codes``: ``hfrs`` (points, to one decimal place) and ``hfrs_band``.

    ``points`` is :func:`category_points` as a frame of the same engine as ``codes``. Ids with no scoring
    code score 0 (low), so everyone given is in the output. ``normalised`` says the codes are already in
    canonical form (as in a store), which skips normalising them again.
    """
    code = nw.col(code_column) if normalised else ICD10.normalise(nw.col(code_column))
    categories = (
        codes.filter(~nw.col(code_column).is_null())
        .select(nw.col(id_column), code.str.slice(0, 3).alias("category"))
        .pipe(distinct)
    )
    scored = (
        categories.join(points, on="category", how="inner")
        .group_by(id_column)
        .agg(nw.col("points").sum().alias("hfrs"))
    )
    score = nw.col("hfrs").fill_null(0.0).round(1)
    band = (
        nw.when(nw.col("hfrs") > HIGH)
        .then(nw.lit("high"))
        .when(nw.col("hfrs") >= INTERMEDIATE)
        .then(nw.lit("intermediate"))
        .otherwise(nw.lit("low"))
    )
    return (
        codes.select(id_column)
        .pipe(distinct)
        .join(scored, on=id_column, how="left")
        .with_columns(score)
        .with_columns(band.alias("hfrs_band"))
    )
