"""Inequalities: directly age-sex standardised rates by deprivation and ethnic group, and SII/RII across deciles.

The engine reduces people to one row per area, group and measure holding the sums the standardisation needs
(the weighted stratum rates and their variance terms); the statistics - exact Poisson limits, Dobson intervals,
the weighted regression of the slope index and its simulation intervals - are computed in NumPy/SciPy on those
few rows. Methods are described in docs/analytics.md.
"""

from __future__ import annotations

from typing import Any

import narwhals as nw
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from scipy import stats

from openphm.analytics.aggregates import CODE_COLUMNS, COST_SQUARED, located
from openphm.analytics.settings import Settings, esp2013
from openphm.engine import Engine, distinct
from openphm.vocabulary import PERSON_AS_OF

Z95 = float(stats.norm.ppf(0.975))
STANDARD_SEXES = ("F", "M")
"""The standard population (ESP 2013) is applied to each sex; people of sex U or unknown carry no weight."""
PER = {"people": 100, "events": 1000, "cost": 1}
SEED = 20131
"""Fixed seed of the simulation intervals: the tables are reproducible run to run and engine to engine."""

GROUP_TYPES = ("all", "imd_quintile", "imd_decile", "ethnic_group", "core20")
STRATUM = ("level", "area_code", "as_of", "group_type", "group", "age_band", "sex")
GROUP = ("level", "area_code", "as_of", "group_type", "group")

INEQUALITY_SCHEMA = pa.schema(
    [
        ("level", pa.string()),
        ("area_code", pa.string()),
        ("area_name", pa.string()),
        ("as_of", pa.date32()),
        ("measure", pa.string()),
        ("measure_kind", pa.string()),
        ("per", pa.int64()),
        ("group_type", pa.string()),
        ("group", pa.string()),
        ("people", pa.int64()),
        ("events", pa.float64()),
        ("crude_rate", pa.float64()),
        ("dsr", pa.float64()),
        ("dsr_lower", pa.float64()),
        ("dsr_upper", pa.float64()),
        ("reliable", pa.bool_()),
        ("ci_method", pa.string()),
    ]
)
INDEX_SCHEMA = pa.schema(
    [
        ("level", pa.string()),
        ("area_code", pa.string()),
        ("area_name", pa.string()),
        ("as_of", pa.date32()),
        ("measure", pa.string()),
        ("measure_kind", pa.string()),
        ("per", pa.int64()),
        ("deciles", pa.int64()),
        ("sii", pa.float64()),
        ("sii_lower", pa.float64()),
        ("sii_upper", pa.float64()),
        ("rii", pa.float64()),
        ("rii_lower", pa.float64()),
        ("rii_upper", pa.float64()),
    ]
)


# -- the engine part: strata sums -------------------------------------------------------------------------------


def _group(group_type: str) -> nw.Expr:
    decile = nw.col("imd_decile")
    return {
        "all": nw.lit("all"),
        "imd_quintile": nw.col("imd_quintile").cast(nw.String),
        "imd_decile": decile.cast(nw.String),
        "ethnic_group": nw.col("ethnic_group").cast(nw.String),
        "core20": nw.when(decile <= 2).then(nw.lit("Core20")).when(decile >= 3).then(nw.lit("Rest")),
    }[group_type]


def _expand(
    engine: Engine, frame: nw.LazyFrame, levels: tuple[str, ...], sums: list[str], extra: tuple[str, ...] = ()
) -> nw.LazyFrame:
    """Sums of ``frame`` per stratum (and ``extra`` keys) at every level and group type.

    Groups are formed first, at the finest area the levels need, and then rolled up to each level: repeating
    the finer rows once per level and group type instead would make the engine sort many times the rows.
    ``frame`` is read once per group type and the groups once per level, so both are materialised.
    """
    codes = _codes(levels)
    frame = engine.persist(frame)
    grouped = nw.concat(
        [
            frame.with_columns(nw.lit(t).alias("group_type"), _group(t).alias("group"))
            .filter(~nw.col("group").is_null())
            .group_by("as_of", *codes, "age_band", "sex", "group_type", "group", *extra)
            .agg(*(nw.col(c).sum() for c in sums))
            for t in GROUP_TYPES
        ],
        how="vertical",
    )
    grouped = engine.persist(grouped)
    return located(grouped, levels).group_by(*STRATUM, *extra).agg(*(nw.col(c).sum() for c in sums))


def _codes(levels: tuple[str, ...]) -> list[str]:
    """The area code columns of ``levels`` (national has none)."""
    return [CODE_COLUMNS[level] for level in levels if level != "national"]


def weights(engine: Engine) -> nw.LazyFrame:
    """(age_band, sex, weight): ESP 2013 for each standard sex."""
    bands = esp2013()
    rows = [(band, sex, w) for sex in STANDARD_SEXES for band, w in bands.items()]
    return engine.frame(
        pa.table(
            {
                "age_band": pa.array([r[0] for r in rows], pa.string()),
                "sex": pa.array([r[1] for r in rows], pa.string()),
                "weight": pa.array([r[2] for r in rows], pa.float64()),
            }
        )
    )


def strata(
    engine: Engine,
    cube: nw.LazyFrame,
    persons: nw.LazyFrame,
    register: nw.LazyFrame | None,
    conditions: nw.LazyFrame,
    settings: Settings,
    with_segment: bool,
    with_activity: bool,
) -> nw.LazyFrame | None:
    """Per level, area, as_of, group and measure: people, events and the sums of the standardisation.

    ``rate_sum`` = sum over standard strata of weight x stratum rate; ``var_sum`` = its variance numerator
    (Poisson for people and events, the sample variance for cost). Strata with nobody contribute zero.
    """
    levels = settings.inequality_levels
    # Only the dimensions the rates need, and areas no finer than the levels: the need tier, the practice and
    # the other activity sums would multiply the rows for nothing.
    keys = ["as_of", *_codes(levels), "age_band", "sex", "imd_decile", "imd_quintile", "ethnic_group"]
    sums = ["people", *(["emergency_admissions", "cost_total", COST_SQUARED] if with_activity else [])]
    slim = cube.group_by(*keys, *(["segment"] if with_segment else [])).agg(*(nw.col(c).sum() for c in sums))
    denominators = engine.persist(
        _expand(engine, slim, levels, sums).with_columns(
            nw.col("people").cast(nw.Int64).alias("n"),
            *(nw.col(c).cast(nw.Float64) for c in sums[1:]),
        )
    )
    numerators = []
    if with_segment:
        numerators.append(
            _expand(engine, slim, levels, ["people"], ("segment",)).select(
                *STRATUM,
                nw.concat_str([nw.lit("segment:"), nw.col("segment")]).alias("measure"),
                nw.lit("people").alias("measure_kind"),
                nw.col("people").cast(nw.Float64).alias("events"),
                nw.lit(0.0).alias("events_squared"),
            )
        )
    if register is not None:
        on_register = (
            register.filter(nw.col("active"))
            .select("person_id", "as_of", "definition")
            .join(conditions, on="definition", how="inner")
            .join(persons.select("person_id", *keys), on=list(PERSON_AS_OF), how="inner")
            .group_by(*keys, "definition")
            .agg(nw.len().cast(nw.Float64).alias("events"))
        )
        numerators.append(
            _expand(engine, on_register, levels, ["events"], ("definition",)).select(
                *STRATUM,
                nw.concat_str([nw.lit("register:"), nw.col("definition")]).alias("measure"),
                nw.lit("people").alias("measure_kind"),
                "events",
                nw.lit(0.0).alias("events_squared"),
            )
        )
    if with_activity:
        numerators.append(
            denominators.select(
                *STRATUM,
                nw.lit("emergency_admissions").alias("measure"),
                nw.lit("events").alias("measure_kind"),
                nw.col("emergency_admissions").alias("events"),
                nw.lit(0.0).alias("events_squared"),
            )
        )
        numerators.append(
            denominators.select(
                *STRATUM,
                nw.lit("cost_total").alias("measure"),
                nw.lit("cost").alias("measure_kind"),
                nw.col("cost_total").alias("events"),
                nw.col("cost_total_squared").alias("events_squared"),
            )
        )
    if not numerators:
        return None
    numerator = engine.persist(nw.concat(numerators, how="vertical"))
    n, events, w = nw.col("n").cast(nw.Float64), nw.col("events"), nw.col("weight").fill_null(0.0)
    sample_variance = (
        nw.when(n > 1).then((nw.col("events_squared") - events * events / n) / (n - 1)).otherwise(nw.lit(0.0))
    )
    terms = (
        numerator.join(denominators.select(*STRATUM, "n"), on=list(STRATUM), how="inner")
        .join(weights(engine), on=["age_band", "sex"], how="left")
        .with_columns(
            (w * events / n).alias("rate_term"),
            nw.when(nw.col("measure_kind") == "cost")
            .then(w * w * sample_variance / n)
            .otherwise(w * w * events / (n * n))
            .alias("var_term"),
        )
        .group_by(*GROUP, "measure", "measure_kind")
        .agg(
            nw.col("events").sum().alias("events"),
            nw.col("rate_term").sum().alias("rate_sum"),
            nw.col("var_term").sum().alias("var_sum"),
        )
    )
    groups = denominators.group_by(*GROUP).agg(nw.col("n").sum().cast(nw.Int64).alias("people"))
    measures = numerator.select("level", "area_code", "as_of", "measure", "measure_kind").pipe(distinct)
    return (
        groups.join(measures, on=["level", "area_code", "as_of"], how="inner")
        .join(terms, on=[*GROUP, "measure", "measure_kind"], how="left")
        .with_columns(nw.col(c).fill_null(0.0) for c in ("events", "rate_sum", "var_sum"))
        .select(*GROUP, "measure", "measure_kind", "people", "events", "rate_sum", "var_sum")
    )


# -- the statistics -----------------------------------------------------------------------------------------------


def poisson_limits(observed: npt.ArrayLike) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Exact 95% limits of a Poisson count (Garwood): chi-square quantiles / 2."""
    o = np.asarray(observed, dtype=np.float64)
    lower = np.where(o > 0, stats.chi2.ppf(0.025, 2 * o) / 2, 0.0)
    upper = stats.chi2.ppf(0.975, 2 * o + 2) / 2
    return lower, upper


def dobson(
    dsr: npt.ArrayLike, variance: npt.ArrayLike, observed: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Dobson et al. (1991) 95% interval of a DSR from the exact Poisson limits of its total count.

    DSR_L/U = DSR + sqrt(var(DSR) / O) x (O_L/U - O). Undefined for O = 0: the lower limit is then 0 and the
    upper limit null (NaN).
    """
    d, v, o = (np.asarray(a, dtype=np.float64) for a in (dsr, variance, observed))
    o_lower, o_upper = poisson_limits(o)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.sqrt(v / o)
    lower = np.where(o > 0, d + scale * (o_lower - o), 0.0)
    upper = np.where(o > 0, d + scale * (o_upper - o), np.nan)
    return lower, upper


def standard_total() -> float:
    """Total weight of the standard: the ESP 2013 once per standard sex."""
    return sum(esp2013().values()) * len(STANDARD_SEXES)


def standardised_rates(sums: pa.Table | None, settings: Settings) -> pa.Table:
    """`agg_inequality` (without area names) from the collected strata sums."""
    if sums is None or sums.num_rows == 0:
        return INEQUALITY_SCHEMA.empty_table().drop(["area_name"])
    kind = np.asarray(sums["measure_kind"].to_pylist(), dtype=object)
    per = np.array([PER[k] for k in kind], dtype=np.float64)
    people = sums["people"].to_numpy().astype(np.float64)
    events = sums["events"].to_numpy()
    total = standard_total()
    dsr = per * sums["rate_sum"].to_numpy() / total
    # A sum of squares minus the square of a sum can come out a hair below zero in floating point.
    variance = np.maximum(per * per * sums["var_sum"].to_numpy() / (total * total), 0.0)
    lower, upper = dobson(dsr, variance, events)
    is_cost = kind == "cost"
    half = Z95 * np.sqrt(variance)
    lower = np.where(is_cost, dsr - half, lower)
    upper = np.where(is_cost, dsr + half, upper)
    with np.errstate(divide="ignore", invalid="ignore"):
        crude = np.where(people > 0, per * events / people, np.nan)
    reliable = np.where(is_cost, people >= settings.dsr_min_events, events >= settings.dsr_min_events)
    return pa.table(
        {
            "level": sums["level"],
            "area_code": sums["area_code"],
            "as_of": sums["as_of"],
            "measure": sums["measure"],
            "measure_kind": sums["measure_kind"],
            "per": pa.array(per.astype(np.int64)),
            "group_type": sums["group_type"],
            "group": sums["group"],
            "people": sums["people"],
            "events": pa.array(events, pa.float64()),
            "crude_rate": _floats(crude),
            "dsr": _floats(dsr),
            "dsr_lower": _floats(lower),
            "dsr_upper": _floats(upper),
            "reliable": pa.array(reliable),
            "ci_method": pa.array(np.where(is_cost, "normal", "dobson").tolist(), pa.string()),
        }
    )


def _floats(values: npt.NDArray[np.float64]) -> pa.Array:
    """NaN becomes null: a missing statistic, not a number."""
    return pa.array(values, pa.float64(), mask=np.isnan(values))


def slope_index(
    rates: npt.NDArray[np.float64],
    people: npt.NDArray[np.float64],
    standard_errors: npt.NDArray[np.float64],
    simulations: int = 2000,
) -> tuple[float, float, float, float, float, float]:
    """SII and RII of rates ordered from the most to the least deprived group, with simulation intervals.

    Each group sits at the midpoint of its cumulative population share (0 = most deprived, 1 = least); the
    rates are regressed on those midpoints weighted by the population shares (PHE's method). SII = fitted rate
    at 0 minus fitted rate at 1 (positive: higher in the most deprived); RII = fitted at 0 / fitted at 1.
    The intervals are the 2.5th and 97.5th percentiles of the indices over rates drawn from normal
    distributions with each group's standard error (PHE's Monte Carlo approach).
    """
    share = people / people.sum()
    midpoint = np.cumsum(share) - share / 2
    draws = np.random.default_rng(SEED).standard_normal((simulations, len(rates)))
    simulated = rates[None, :] + draws * standard_errors[None, :]
    ends = _fitted_ends(np.vstack([rates[None, :], simulated]), midpoint, share)
    sii = ends[:, 0] - ends[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        rii = ends[:, 0] / ends[:, 1]
    sii_low, sii_high = np.percentile(sii[1:], [2.5, 97.5])
    finite = rii[1:][np.isfinite(rii[1:])]
    rii_low, rii_high = np.percentile(finite, [2.5, 97.5]) if finite.size else (np.nan, np.nan)
    return float(sii[0]), float(sii_low), float(sii_high), float(rii[0]), float(rii_low), float(rii_high)


def _fitted_ends(
    y: npt.NDArray[np.float64], x: npt.NDArray[np.float64], w: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Weighted least squares of each row of ``y`` on ``x``: fitted values at x = 0 and x = 1."""
    x_mean = (w * x).sum()
    y_mean = (y * w).sum(axis=1)
    slope = ((w * (x - x_mean))[None, :] * (y - y_mean[:, None])).sum(axis=1) / (w * (x - x_mean) ** 2).sum()
    intercept = y_mean - slope * x_mean
    return np.column_stack([intercept, intercept + slope])


def inequality_indices(rates: pa.Table, settings: Settings) -> pa.Table:
    """`agg_inequality_index` (without area names): SII and RII of each measure across IMD deciles."""
    deciles = rates.filter(pc.equal(rates["group_type"], "imd_decile")).to_pylist()
    series: dict[tuple[object, ...], list[dict[str, Any]]] = {}
    for row in deciles:
        key: tuple[object, ...] = (
            row["level"],
            row["area_code"],
            row["as_of"],
            row["measure"],
            row["measure_kind"],
            row["per"],
        )
        series.setdefault(key, []).append(row)
    out: dict[str, list[object]] = {name: [] for name in INDEX_SCHEMA.names if name != "area_name"}
    for key in sorted(series, key=lambda k: tuple(str(part) for part in k)):
        rows = sorted((r for r in series[key] if r["people"] > 0), key=lambda r: int(r["group"]))
        values: tuple[float, ...] = (np.nan,) * 6
        if len(rows) >= settings.sii_min_deciles:
            rate = np.array([r["dsr"] for r in rows], dtype=np.float64)
            low = np.array([np.nan if r["dsr_lower"] is None else r["dsr_lower"] for r in rows], dtype=np.float64)
            high = np.array([np.nan if r["dsr_upper"] is None else r["dsr_upper"] for r in rows], dtype=np.float64)
            se = np.nan_to_num((high - low) / (2 * Z95), nan=0.0)
            people = np.array([r["people"] for r in rows], dtype=np.float64)
            values = slope_index(rate, people, se, settings.sii_simulations)
        for name, value in zip(("level", "area_code", "as_of", "measure", "measure_kind", "per"), key, strict=True):
            out[name].append(value)
        out["deciles"].append(len(rows))
        for name, value in zip(("sii", "sii_lower", "sii_upper", "rii", "rii_lower", "rii_upper"), values, strict=True):
            out[name].append(None if not np.isfinite(value) else value)
    schema = pa.schema([f for f in INDEX_SCHEMA if f.name != "area_name"])
    return pa.table(out, schema=schema)
