"""Segment transitions between consecutive snapshots, per geography area, with entry and exit states.

The forecast needs, for each area, where the people of each segment are a year later - in another segment,
dead, or gone - and who arrives. A person who moves between areas of a level is counted as `left` in the old
area and `joined` in the new one, so that each area's transitions add up to its own populations at both dates.
"""

from __future__ import annotations

from datetime import date

import narwhals as nw
import pyarrow as pa

from openphm.analytics.aggregates import AREA, CODE_COLUMNS, LEVELS, NATIONAL_CODE, _named
from openphm.engine import Engine
from openphm.vocabulary import PERSON_AS_OF

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


def transition_cube(
    engine: Engine, population: nw.LazyFrame, segment: nw.LazyFrame, steps: nw.LazyFrame
) -> nw.LazyFrame:
    """People per level, area, pair of dates, 5-year age band (at from; at to for joiners) and from/to state.

    People are paired across dates once, with their areas at every level on both dates, and reduced to counts
    of identical rows (most people stay in their practice and segment), materialised; each level is then read
    from those counts instead of pairing people again per level.
    """
    segments = segment.select("person_id", "as_of", nw.col("segment").cast(nw.String))
    codes = list(CODE_COLUMNS.values())
    located = population.select("person_id", "as_of", "age_band", "alive", "in_population", *codes).join(
        segments, on=list(PERSON_AS_OF), how="left"
    )
    start = located.filter(nw.col("in_population")).select(
        "person_id",
        nw.col("as_of").alias("from_as_of"),
        "age_band",
        nw.col("segment").fill_null("Unknown").alias("from_segment"),
        nw.lit(True).alias("was_here"),
        *(nw.col(c).alias(f"from_{c}") for c in codes),
    )
    end = located.select(
        "person_id",
        nw.col("as_of").alias("to_as_of"),
        nw.col("age_band").alias("to_age_band"),
        "alive",
        nw.col("in_population").alias("to_in_population"),
        nw.col("segment").fill_null("Unknown").alias("to_segment"),
        *(nw.col(c).alias(f"to_{c}") for c in codes),
    )
    from_codes, to_codes = [f"from_{c}" for c in codes], [f"to_{c}" for c in codes]
    stayed = engine.persist(
        start.join(steps, on="from_as_of", how="inner")
        .join(end, on=["person_id", "to_as_of"], how="left")
        .group_by(
            "from_as_of",
            "to_as_of",
            "age_band",
            "from_segment",
            "to_segment",
            "alive",
            "to_in_population",
            *from_codes,
            *to_codes,
        )
        .agg(nw.len().cast(nw.Int64).alias("people"))
    )
    arrived = engine.persist(
        end.filter(nw.col("to_in_population"))
        .join(steps, on="to_as_of", how="inner")
        .join(
            start.select("person_id", "from_as_of", "was_here", *from_codes), on=["person_id", "from_as_of"], how="left"
        )
        .group_by("from_as_of", "to_as_of", "to_age_band", "to_segment", "was_here", *from_codes, *to_codes)
        .agg(nw.len().cast(nw.Int64).alias("people"))
    )
    frames = [_level(stayed, arrived, level) for level in LEVELS]
    return nw.concat(frames, how="vertical")


def _level(stayed: nw.LazyFrame, arrived: nw.LazyFrame, level: str) -> nw.LazyFrame:
    """The transitions of the areas of one level: leavers and stayers by from-area, joiners by to-area."""
    national = level == "national"
    from_area = nw.lit(NATIONAL_CODE) if national else nw.col(f"from_{CODE_COLUMNS[level]}")
    to_area = nw.lit(NATIONAL_CODE) if national else nw.col(f"to_{CODE_COLUMNS[level]}")
    stays_here = nw.col("to_in_population").fill_null(False) & (to_area == from_area).fill_null(False)
    leavers = (stayed if national else stayed.filter(~from_area.is_null())).select(
        from_area.alias("area_code"),
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
        "people",
    )
    came_from = nw.when(nw.col("was_here")).then(from_area) if national else from_area
    moved = came_from.is_null() | (came_from != to_area)
    arrivals = arrived.filter(moved if national else ~to_area.is_null() & moved).select(
        to_area.alias("area_code"),
        "from_as_of",
        "to_as_of",
        nw.col("to_age_band").alias("age_band"),
        nw.lit(JOINED).alias("from_segment"),
        "to_segment",
        "people",
    )
    return (
        nw.concat([leavers, arrivals], how="vertical")
        .group_by("area_code", "from_as_of", "to_as_of", "age_band", "from_segment", "to_segment")
        .agg(nw.col("people").sum().cast(nw.Int64))
        .select(
            nw.lit(level).alias("level"),
            nw.col("area_code").cast(nw.String),
            "from_as_of",
            "to_as_of",
            "age_band",
            "from_segment",
            "to_segment",
            "people",
        )
    )


def transition_aggregates(cube: nw.LazyFrame, names: nw.LazyFrame) -> nw.LazyFrame:
    """`agg_transition`: the cube summed over age bands, with area names."""
    frame = cube.group_by("level", "area_code", "from_as_of", "to_as_of", "from_segment", "to_segment").agg(
        nw.col("people").sum().cast(nw.Int64)
    )
    return _named(frame, names).select(*AREA, *TRANSITION_SCHEMA.names[3:])
