"""Aggregates of the population by geography, segment and demography: the tables a dashboard reads instantly.

The person-level tables are reduced once to a "micro cube" (one row per as_of, practice and combination of every
dimension), which is far smaller than the population; every grouping set at every geography level is then a
group-by of that cube. Grouping sets rather than a full cross keep the practice level small, and each base set
comes with all its subsets so that every total of a published row is itself a published row (secondary
suppression relies on it). Counts here are exact: disclosure control is applied on the way out (`published`).
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import combinations

import narwhals as nw
import pyarrow as pa

from openphm.activity.stage import COST_COLUMNS, COUNT_COLUMNS, WEEKS_COLUMN
from openphm.engine import Engine, distinct

NATIONAL_CODE = "E92000001"
NATIONAL_NAME = "England"
LEVELS = ("national", "region", "icb", "sub_icb", "pcn", "practice")
"""Geography levels from the top; each below national is a code column of `population`."""
CODE_COLUMNS = {level: f"{level}_code" for level in LEVELS[1:]}
NAME_COLUMNS = {level: f"{level}_name" for level in LEVELS[1:]}

DIMENSIONS = ("segment", "need_tier", "age_band", "sex", "imd_quintile", "ethnic_group")
"""The dimension columns of `agg_population`, in the order used to name a breakdown."""
DIMENSION_TYPES = {
    "segment": nw.String(),
    "need_tier": nw.Int64(),
    "age_band": nw.String(),
    "sex": nw.String(),
    "imd_quintile": nw.Int64(),
    "ethnic_group": nw.String(),
}
SEGMENT_DIMENSIONS = ("segment", "need_tier")
"""Dimensions that come from the `segment` table: breakdowns using them are skipped when it is absent."""
BASE_SETS = (
    ("segment", "age_band", "sex"),
    ("segment", "imd_quintile"),
    ("need_tier", "imd_quintile"),
    ("segment", "ethnic_group"),
)
"""The grouping sets the report needs; each contributes all its subsets (see docs/analytics.md)."""

COUNTS = COUNT_COLUMNS
"""Activity counts of the `activity` table summed into the aggregates."""
WEEKS = WEEKS_COLUMN
"""Weeks of long-term social care support: fractional, so summed as a float like costs (not a count)."""
COSTS = COST_COLUMNS
FLAG_COUNTS = ("maternal",)
"""Subsegment flags counted per cell whatever the segment: NHS England's national segmentation carries maternal
health as a flag beside the segment, so the people a long-term condition places elsewhere are counted too."""
RATES = ("gp_contacts", "ae_attendances", "emergency_admissions", "elective_admissions", "outpatient_attendances")
"""Counts that also appear as a rate per 1,000 people."""
COST_SQUARED = "cost_total_squared"
"""Sum of squared per-person total cost: the variance of cost per head, for standardised cost intervals."""

AREA = ("level", "area_code", "area_name")
POPULATION_COLUMNS = (
    *AREA,
    "as_of",
    "breakdown",
    *DIMENSIONS,
    "people",
    *COUNTS,
    *FLAG_COUNTS,
    WEEKS,
    *COSTS,
    *(f"{c}_per_1000" for c in RATES),
    "cost_per_head",
)


def breakdowns(with_segment: bool) -> list[tuple[str, ...]]:
    """Every grouping set: the base sets and all their subsets, each in the canonical order of DIMENSIONS."""
    found: set[tuple[str, ...]] = set()
    for base in BASE_SETS:
        for size in range(len(base) + 1):
            found.update(tuple(sorted(subset, key=DIMENSIONS.index)) for subset in combinations(base, size))
    chosen = [b for b in found if with_segment or not set(b) & set(SEGMENT_DIMENSIONS)]
    return sorted(chosen, key=lambda b: (len(b), [DIMENSIONS.index(d) for d in b]))


def breakdown_name(dims: Iterable[str]) -> str:
    return "+".join(dims) or "total"


def area_code(level: str) -> nw.Expr:
    """The area code of a person at ``level`` (a constant at national level)."""
    return nw.lit(NATIONAL_CODE) if level == "national" else nw.col(CODE_COLUMNS[level])


def in_level(frame: nw.LazyFrame, level: str) -> nw.LazyFrame:
    """The rows of ``frame`` with a known area at ``level``, with its code as ``area_code``."""
    if level != "national":
        frame = frame.filter(~nw.col(CODE_COLUMNS[level]).is_null())
    return frame.with_columns(area_code(level).cast(nw.String).alias("area_code"))


def residents(population: nw.LazyFrame) -> nw.LazyFrame:
    """One row per person in the population at each as_of, with the demography and areas every count uses."""
    return population.filter(nw.col("in_population")).select(
        "person_id",
        "as_of",
        "age_band",
        nw.col("sex").fill_null("Unknown"),
        "ethnic_group",
        nw.col("imd_decile").cast(nw.Int64),
        nw.col("imd_quintile").cast(nw.Int64),
        *CODE_COLUMNS.values(),
    )


def people(residents: nw.LazyFrame, segment: nw.LazyFrame | None, activity: nw.LazyFrame | None) -> nw.LazyFrame:
    """The residents with segment, need tier, flags and activity where those tables are present (null where absent)."""
    frame = residents
    if segment is None:
        frame = frame.with_columns(
            nw.lit(None, dtype=nw.String()).alias("segment"),
            nw.lit(None, dtype=nw.Int64()).alias("need_tier"),
            *(nw.lit(None, dtype=nw.Int64()).alias(f) for f in FLAG_COUNTS),
        )
    else:
        present = set(segment.collect_schema().names())
        flags = [
            (nw.col(f).fill_null(False).cast(nw.Int64) if f in present else nw.lit(None, dtype=nw.Int64())).alias(f)
            for f in FLAG_COUNTS
        ]
        frame = frame.join(
            segment.select("person_id", "as_of", "segment", nw.col("need_tier").cast(nw.Int64), *flags),
            on=["person_id", "as_of"],
            how="left",
        ).with_columns(nw.col("segment").fill_null("Unknown"))
    if activity is not None:
        frame = frame.join(
            activity.select(
                "person_id",
                "as_of",
                *(nw.col(c).cast(nw.Int64) for c in COUNTS),
                nw.col(WEEKS).cast(nw.Float64),
                *(nw.col(c).cast(nw.Float64) for c in COSTS),
            ),
            on=["person_id", "as_of"],
            how="left",
        ).with_columns((nw.col("cost_total") * nw.col("cost_total")).alias(COST_SQUARED))
    return frame


MICRO_KEYS = ("as_of", *CODE_COLUMNS.values(), *DIMENSIONS, "imd_decile")


def micro_cube(frame: nw.LazyFrame, with_activity: bool) -> nw.LazyFrame:
    """People (with flag counts, and activity sums) per as_of, practice and combination of every dimension."""
    sums = [*FLAG_COUNTS, *([*COUNTS, WEEKS, *COSTS, COST_SQUARED] if with_activity else [])]
    return frame.group_by(*MICRO_KEYS).agg(nw.len().cast(nw.Int64).alias("people"), *(nw.col(c).sum() for c in sums))


def located(cube: nw.LazyFrame, levels: tuple[str, ...] = LEVELS) -> nw.LazyFrame:
    """The cube once per level, with ``level`` and ``area_code`` (rows of unknown area left out)."""
    return nw.concat(
        [in_level(cube, level).with_columns(nw.lit(level).alias("level")) for level in LEVELS if level in levels],
        how="vertical",
    )


def population_aggregates(
    engine: Engine, cube: nw.LazyFrame, names: nw.LazyFrame, with_segment: bool, with_activity: bool
) -> nw.LazyFrame:
    """`agg_population`: every breakdown at every level and area, in long form.

    Each breakdown is summed once per combination of areas (materialised: far fewer rows than the cube), and
    each level is a sum of that rather than of the cube.
    """
    values = ["people", *FLAG_COUNTS, *([*COUNTS, WEEKS, *COSTS] if with_activity else [])]
    codes = list(CODE_COLUMNS.values())
    areas = engine.persist(
        nw.concat(
            [
                cube.group_by("as_of", *codes, *dims)
                .agg(*(nw.col(c).sum() for c in values))
                .with_columns(
                    nw.lit(breakdown_name(dims)).alias("breakdown"),
                    *(nw.lit(None, dtype=DIMENSION_TYPES[d]).alias(d) for d in DIMENSIONS if d not in dims),
                )
                .select("as_of", *codes, "breakdown", *DIMENSIONS, *values)
                for dims in breakdowns(with_segment)
            ],
            how="vertical",
        )
    )
    sums = [nw.col(c).sum().cast(nw.Float64 if c in (WEEKS, *COSTS) else nw.Int64) for c in values]
    frames = [
        in_level(areas, level)
        .group_by("area_code", "as_of", "breakdown", *DIMENSIONS)
        .agg(*sums)
        .select(nw.lit(level).alias("level"), "area_code", "as_of", "breakdown", *DIMENSIONS, *values)
        for level in LEVELS
    ]
    frame = _measures(nw.concat(frames, how="vertical"), with_activity)
    if not with_segment:  # not available, never a sum of nothing
        frame = frame.with_columns(*(nw.lit(None, dtype=nw.Int64()).alias(f) for f in FLAG_COUNTS))
    return _named(frame, names).select(*POPULATION_COLUMNS)


def _measures(frame: nw.LazyFrame, with_activity: bool) -> nw.LazyFrame:
    """Rates per 1,000 and cost per head; without activity, its columns are null (never zeros)."""
    if with_activity:
        extra = [(1000.0 * nw.col(c) / nw.col("people")).alias(f"{c}_per_1000") for c in RATES]
        extra.append((nw.col("cost_total") / nw.col("people")).alias("cost_per_head"))
    else:
        extra = [nw.lit(None, dtype=nw.Int64()).alias(c) for c in COUNTS]
        extra += [nw.lit(None, dtype=nw.Float64()).alias(c) for c in (WEEKS, *COSTS)]
        extra += [nw.lit(None, dtype=nw.Float64()).alias(f"{c}_per_1000") for c in RATES]
        extra.append(nw.lit(None, dtype=nw.Float64()).alias("cost_per_head"))
    return frame.with_columns(*extra)


def area_names(engine: Engine, practice: nw.LazyFrame | None) -> nw.LazyFrame:
    """(level, area_code, area_name) for every area the `practice` table names, and England."""
    national = engine.frame(
        pa.table({"level": ["national"], "area_code": [NATIONAL_CODE], "area_name": [NATIONAL_NAME]})
    )
    if practice is None:
        return national
    frames = [national]
    for level in LEVELS[1:]:
        code, name = CODE_COLUMNS[level], NAME_COLUMNS[level]
        frames.append(
            practice.filter(~nw.col(code).is_null())
            .group_by(code)
            .agg(nw.col(name).cast(nw.String).min().alias("area_name"))
            .select(nw.lit(level).alias("level"), nw.col(code).cast(nw.String).alias("area_code"), "area_name")
        )
    return nw.concat(frames, how="vertical")


def _named(frame: nw.LazyFrame, names: nw.LazyFrame) -> nw.LazyFrame:
    return frame.join(names, on=["level", "area_code"], how="left")


REGISTER_SCHEMA = pa.schema(
    [
        ("level", pa.string()),
        ("area_code", pa.string()),
        ("area_name", pa.string()),
        ("as_of", pa.date32()),
        ("definition", pa.string()),
        ("kind", pa.string()),
        ("people", pa.int64()),
        ("population", pa.int64()),
        ("prevalence_pct", pa.float64()),
    ]
)


def register_aggregates(
    engine: Engine, persons: nw.LazyFrame, register: nw.LazyFrame, kinds: nw.LazyFrame, names: nw.LazyFrame
) -> nw.LazyFrame:
    """`agg_register`: people active on each register and the area's population, per level, area and as_of."""
    on_register = register.filter(nw.col("active")).select("person_id", "as_of", "definition")
    located = persons.select("person_id", "as_of", *CODE_COLUMNS.values())
    joined = on_register.join(located, on=["person_id", "as_of"], how="inner")
    counts = _by_level(engine, joined, ("definition",), "people")
    denominators = _by_level(engine, located, (), "population")
    frame = counts.join(denominators, on=["level", "area_code", "as_of"], how="inner")
    frame = frame.join(kinds, on="definition", how="left").with_columns(
        (100.0 * nw.col("people") / nw.col("population")).alias("prevalence_pct")
    )
    return _named(frame, names).select(*REGISTER_SCHEMA.names)


def _by_level(engine: Engine, frame: nw.LazyFrame, keys: tuple[str, ...], alias: str) -> nw.LazyFrame:
    """Rows of ``frame`` counted per level, area, as_of and ``keys``.

    Counted once per combination of areas (materialised), then summed to each level: counting the person rows
    again per level would read and join them six times.
    """
    areas = engine.persist(
        frame.group_by("as_of", *CODE_COLUMNS.values(), *keys).agg(nw.len().cast(nw.Int64).alias(alias))
    )
    return nw.concat(
        [
            in_level(areas, level)
            .group_by("as_of", "area_code", *keys)
            .agg(nw.col(alias).sum().cast(nw.Int64))
            .select(nw.lit(level).alias("level"), "area_code", "as_of", *keys, alias)
            for level in LEVELS
        ],
        how="vertical",
    )


COHORT_SCHEMA = pa.schema(
    [
        ("level", pa.string()),
        ("area_code", pa.string()),
        ("area_name", pa.string()),
        ("as_of", pa.date32()),
        ("cohort", pa.string()),
        ("people", pa.int64()),
    ]
)


def cohort_aggregates(
    engine: Engine, persons: nw.LazyFrame, members: nw.LazyFrame, names: nw.LazyFrame
) -> nw.LazyFrame:
    """`agg_cohort`: distinct members of each cohort who are in the population, per level, area and as_of."""
    joined = (
        members.select("cohort", "person_id", "as_of")
        .pipe(distinct)
        .join(persons.select("person_id", "as_of", *CODE_COLUMNS.values()), on=["person_id", "as_of"], how="inner")
    )
    frame = _by_level(engine, joined, ("cohort",), "people")
    return _named(frame, names).select(*COHORT_SCHEMA.names)
