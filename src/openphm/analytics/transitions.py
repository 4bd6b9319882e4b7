"""Segment transitions between consecutive snapshots, per geography area, with entry and exit states.

The forecast needs, for each area, where the people of each segment are a year later - in another segment,
dead, or gone - and who arrives. A person who moves between areas of a level is counted as `left` in the old
area and `joined` in the new one, so that each area's transitions add up to its own populations at both dates.
"""

from __future__ import annotations

from datetime import date

import narwhals as nw
import pyarrow as pa

from openphm.analytics.aggregates import AREA, CODE_COLUMNS, LEVELS, _named, area_code, in_level
from openphm.engine import Engine

JOINED, DIED, LEFT = "joined", "died", "left"

TRANSITION_SCHEMA = pa.schema(
    [
        ("level", pa.string()),
        ("area_code", pa.string()),
        ("area_name", pa.string()),
        ("from_as_of", pa.date32()),
        ("to_as_of", pa.date32()),
        ("from_segment", pa.string()),
        ("to_segment", pa.string()),
        ("people", pa.int64()),
    ]
)


def pairs(engine: Engine, dates: tuple[date, ...]) -> nw.LazyFrame | None:
    """(from_as_of, to_as_of) for consecutive snapshot dates; None with fewer than two."""
    ordered = sorted(dates)
    if len(ordered) < 2:
        return None
    return engine.frame(
        pa.table(
            {
                "from_as_of": pa.array(ordered[:-1], pa.date32()),
                "to_as_of": pa.array(ordered[1:], pa.date32()),
            }
        )
    )


def transition_cube(population: nw.LazyFrame, segment: nw.LazyFrame, steps: nw.LazyFrame) -> nw.LazyFrame:
    """People per level, area, pair of dates, 5-year age band (at from; at to for joiners) and from/to state."""
    segments = segment.select("person_id", "as_of", nw.col("segment").cast(nw.String))
    located = population.select(
        "person_id", "as_of", "age_band", "alive", "in_population", *CODE_COLUMNS.values()
    ).join(segments, on=["person_id", "as_of"], how="left")
    before = located.filter(nw.col("in_population")).with_columns(nw.col("segment").fill_null("Unknown"))
    frames = []
    for level in LEVELS:
        start = in_level(before, level).select(
            "person_id",
            nw.col("as_of").alias("from_as_of"),
            "age_band",
            nw.col("area_code").alias("from_area"),
            nw.col("segment").alias("from_segment"),
        )
        end = located.with_columns(area_code(level).cast(nw.String).alias("to_area")).select(
            "person_id",
            nw.col("as_of").alias("to_as_of"),
            nw.col("age_band").alias("to_age_band"),
            "alive",
            nw.col("in_population").alias("to_in_population"),
            "to_area",
            nw.col("segment").fill_null("Unknown").alias("to_segment"),
        )
        stays_here = nw.col("to_in_population").fill_null(False) & (nw.col("to_area") == nw.col("from_area")).fill_null(
            False
        )
        leavers = (
            start.join(steps, on="from_as_of", how="inner")
            .join(end, on=["person_id", "to_as_of"], how="left")
            .select(
                nw.col("from_area").alias("area_code"),
                "from_as_of",
                "to_as_of",
                "age_band",
                "from_segment",
                nw.when(stays_here)
                .then(nw.col("to_segment"))
                .when(~nw.col("alive").fill_null(True))
                .then(nw.lit(DIED))
                .otherwise(nw.lit(LEFT))
                .alias("to_segment"),
            )
        )
        arrivals = (
            end.filter(nw.col("to_in_population") & ~nw.col("to_area").is_null())
            .join(steps, on="to_as_of", how="inner")
            .join(start.select("person_id", "from_as_of", "from_area"), on=["person_id", "from_as_of"], how="left")
            .filter(nw.col("from_area").is_null() | (nw.col("from_area") != nw.col("to_area")))
            .select(
                nw.col("to_area").alias("area_code"),
                "from_as_of",
                "to_as_of",
                nw.col("to_age_band").alias("age_band"),
                nw.lit(JOINED).alias("from_segment"),
                "to_segment",
            )
        )
        frames.append(
            nw.concat([leavers, arrivals], how="vertical")
            .group_by("area_code", "from_as_of", "to_as_of", "age_band", "from_segment", "to_segment")
            .agg(nw.len().cast(nw.Int64).alias("people"))
            .with_columns(nw.lit(level).alias("level"))
        )
    return nw.concat(
        [
            f.select("level", "area_code", "from_as_of", "to_as_of", "age_band", "from_segment", "to_segment", "people")
            for f in frames
        ],
        how="vertical",
    )


def transition_aggregates(cube: nw.LazyFrame, names: nw.LazyFrame) -> nw.LazyFrame:
    """`agg_transition`: the cube summed over age bands, with area names."""
    frame = cube.group_by("level", "area_code", "from_as_of", "to_as_of", "from_segment", "to_segment").agg(
        nw.col("people").sum().cast(nw.Int64)
    )
    return _named(frame, names).select(*AREA, *TRANSITION_SCHEMA.names[3:])
