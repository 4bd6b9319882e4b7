"""Five-year projections of segment sizes, activity and cost: a Markov model with ageing and entry.

For each area, people are in a state (broad age group, segment). Each year the state's people move between
segments, die or leave with the probabilities observed between consecutive snapshots; the survivors of an age
group age into the next at rate 1/width; and the area gains the yearly average of the people who joined it, by
age group and segment. Probabilities are the posterior mean of a Dirichlet whose prior is the whole store's
probabilities worth ``forecast_prior_people`` people (small areas shrink towards the whole; the national level is
its own maximum-likelihood estimate). Intervals come from drawing the transition probabilities from that
Dirichlet posterior and the yearly entries from a Gamma posterior: parameter uncertainty, not the chance
variation of individual moves. Activity and cost are projected with each area's own use per head by age group
and segment at the base date (the whole store's where the area had nobody in a cell), at constant prices.
"""

from __future__ import annotations

from datetime import date
from itertools import pairwise

import narwhals as nw
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from openphm.analytics.aggregates import LEVELS, in_level
from openphm.analytics.settings import Settings, esp2013
from openphm.analytics.transitions import DIED, JOINED, LEFT
from openphm.engine import Engine

SEED = 20250331
MEASURES = (
    "emergency_admissions",
    "ae_attendances",
    "elective_admissions",
    "outpatient_attendances",
    "gp_contacts",
    "cost_total",
)
EXITS = (DIED, LEFT)
METHOD = "markov-dirichlet"
FORECAST_SCHEMA = pa.schema(
    [
        ("level", pa.string()),
        ("area_code", pa.string()),
        ("area_name", pa.string()),
        ("base_as_of", pa.date32()),
        ("year", pa.int64()),
        ("as_of", pa.date32()),
        ("segment", pa.string()),
        ("measure", pa.string()),
        ("value", pa.float64()),
        ("lower", pa.float64()),
        ("upper", pa.float64()),
        ("method", pa.string()),
    ]
)
EMPTY = FORECAST_SCHEMA.empty_table().drop(["area_name"])


def project(
    start: npt.NDArray[np.float64],
    transition: npt.NDArray[np.float64],
    joiners: npt.NDArray[np.float64],
    ageing: npt.NDArray[np.float64],
    years: int,
) -> npt.NDArray[np.float64]:
    """People by (age group, segment) for years 0..``years``.

    ``start``: (..., G, S); ``transition``: (..., G, S, S + exits), rows summing to 1; ``joiners``: (..., G, S)
    per year; ``ageing``: (G,) share of an age group that moves to the next each year (0 for the last).
    Leading dimensions (draws) broadcast. Returns (years + 1, ..., G, S).
    """
    segments = start.shape[-1]
    out = [start]
    people = start
    for _ in range(years):
        moved = np.einsum("...gs,...gst->...gt", people, transition)[..., :segments]
        staying = moved * (1 - ageing)[:, None]
        arriving = np.zeros_like(moved)
        arriving[..., 1:, :] = (moved * ageing[:, None])[..., :-1, :]
        people = staying + arriving + joiners
        out.append(people)
    return np.stack(out)


def age_groups(engine: Engine, settings: Settings) -> nw.LazyFrame:
    """(age_band, age_group): the index of the broad group of each 5-year band."""
    bounds = settings.forecast_age_groups
    bands = list(esp2013())
    index = [sum(1 for b in bounds if b <= 5 * i) - 1 for i in range(len(bands))]
    return engine.frame(pa.table({"age_band": pa.array(bands, pa.string()), "age_group": pa.array(index, pa.int64())}))


def _ageing(settings: Settings) -> npt.NDArray[np.float64]:
    bounds = settings.forecast_age_groups
    return np.array([1.0 / (b - a) for a, b in pairwise(bounds)] + [0.0])


def inputs(
    engine: Engine,
    cube: nw.LazyFrame,
    moves: nw.LazyFrame,
    base: date,
    settings: Settings,
    with_activity: bool,
) -> tuple[pa.Table, pa.Table]:
    """The collected (small) inputs: people and use at the base date, and transition counts, per area."""
    groups = age_groups(engine, settings)
    levels = [level for level in LEVELS if level in settings.forecast_levels]
    sums = [nw.col(m).sum().cast(nw.Float64) for m in MEASURES] if with_activity else []
    at_base = cube.filter(nw.col("as_of") == nw.lit(base))
    start = nw.concat(
        [
            in_level(at_base, level)
            .join(groups, on="age_band", how="inner")
            .group_by("area_code", "age_group", "segment")
            .agg(nw.col("people").sum().cast(nw.Float64), *sums)
            .with_columns(nw.lit(level).alias("level"))
            .select("level", "area_code", "age_group", "segment", "people", *(m for m in MEASURES if with_activity))
            for level in levels
        ],
        how="vertical",
    )
    counts = (
        moves.filter(nw.col("level").is_in(levels))
        .join(groups, on="age_band", how="inner")
        .group_by("level", "area_code", "age_group", "from_segment", "to_segment")
        .agg(nw.col("people").sum().cast(nw.Float64))
    )
    return _arrow(start), _arrow(counts)


def _arrow(frame: nw.LazyFrame) -> pa.Table:
    table = nw.to_native(frame.collect(backend="pyarrow"))
    return table.sort_by([(name, "ascending") for name in table.column_names])


def forecast_table(
    start: pa.Table, counts: pa.Table, base: date, steps: int, settings: Settings, with_activity: bool
) -> pa.Table:
    """`agg_forecast` (without area names) for every area of the forecast levels."""
    # Every segment seen anywhere is a state: at the base date, moved into, or only moved out of (a segment
    # emptied before the base date, e.g. the few at the end of life in an earlier snapshot, still has a row of
    # transitions that informs the prior, and is projected from zero people).
    segments = sorted(
        {s for s in start["segment"].to_pylist() if s is not None}
        | {s for s in counts["to_segment"].to_pylist() if s not in EXITS}
        | {s for s in counts["from_segment"].to_pylist() if s != JOINED}
    )
    groups = len(settings.forecast_age_groups)
    index = {s: i for i, s in enumerate([*segments, *EXITS])}
    measures = MEASURES if with_activity else ()
    areas: dict[tuple[str, str], dict[str, npt.NDArray[np.float64]]] = {}

    def area(key: tuple[str, str]) -> dict[str, npt.NDArray[np.float64]]:
        return areas.setdefault(
            key,
            {
                "start": np.zeros((groups, len(segments))),
                "use": np.zeros((groups, len(segments), len(measures))),
                "moves": np.zeros((groups, len(segments), len(index))),
                "joined": np.zeros((groups, len(segments))),
            },
        )

    for row in start.to_pylist():
        cell = area((row["level"], row["area_code"]))
        s = index[row["segment"]]
        cell["start"][row["age_group"], s] += row["people"]
        for m, name in enumerate(measures):
            cell["use"][row["age_group"], s, m] += row[name] or 0.0
    for row in counts.to_pylist():
        cell = area((row["level"], row["area_code"]))
        if row["from_segment"] == JOINED:
            cell["joined"][row["age_group"], index[row["to_segment"]]] += row["people"]
        else:
            cell["moves"][row["age_group"], index[row["from_segment"]], index[row["to_segment"]]] += row["people"]

    whole = areas.get(("national", "E92000001"))
    if whole is None:
        return EMPTY
    prior = _probabilities(whole["moves"])
    with np.errstate(divide="ignore", invalid="ignore"):
        whole_use = np.where(whole["start"][..., None] > 0, whole["use"] / whole["start"][..., None], 0.0)
    rng = np.random.default_rng(SEED)
    ageing = _ageing(settings)
    rows: list[dict[str, object]] = []
    for key in sorted(areas):
        cell = areas[key]
        alpha = cell["moves"] + settings.forecast_prior_people * prior
        point = _probabilities(alpha)
        drawn = _probabilities(rng.standard_gamma(np.broadcast_to(alpha, (settings.forecast_draws, *alpha.shape))))
        joined = cell["joined"] / steps
        joined_drawn = rng.standard_gamma(np.broadcast_to(cell["joined"], (settings.forecast_draws, *joined.shape)))
        joined_drawn = joined_drawn / steps
        years = settings.forecast_years
        central = project(cell["start"], point, joined, ageing, years)
        spread = project(np.broadcast_to(cell["start"], drawn.shape[:-1]).copy(), drawn, joined_drawn, ageing, years)
        with np.errstate(divide="ignore", invalid="ignore"):
            use = np.where(cell["start"][..., None] > 0, cell["use"] / cell["start"][..., None], whole_use)
        rows += _rows(key, base, segments, measures, central, spread, use)
    return pa.Table.from_pylist(rows, schema=pa.schema([f for f in FORECAST_SCHEMA if f.name != "area_name"]))


def _probabilities(weights: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Rows normalised to 1; a state never observed stays where it is (an identity row)."""
    totals = weights.sum(axis=-1, keepdims=True)
    segments = weights.shape[-2]
    stay = np.zeros(weights.shape[-2:])
    stay[np.arange(segments), np.arange(segments)] = 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(totals > 0, weights / totals, stay)


def _rows(
    key: tuple[str, str],
    base: date,
    segments: list[str],
    measures: tuple[str, ...],
    central: npt.NDArray[np.float64],
    spread: npt.NDArray[np.float64],
    use: npt.NDArray[np.float64],
) -> list[dict[str, object]]:
    """Long rows: per year, segment (and all) and measure, the projection and its 95% interval."""
    level, code = key
    rows = []
    for year in range(central.shape[0]):
        # (G, S) and (draws, G, S) -> per segment, then 'all'; people and each measure.
        values = {"people": (central[year], spread[year])}
        for m, name in enumerate(measures):
            values[name] = (central[year] * use[..., m], spread[year] * use[None, ..., m])
        for measure, (point, draws) in values.items():
            by_segment = point.sum(axis=0)
            drawn = draws.sum(axis=1)
            for s, segment in enumerate([*segments, "all"]):
                value = by_segment.sum() if segment == "all" else by_segment[s]
                sample = drawn.sum(axis=1) if segment == "all" else drawn[:, s]
                low, high = (value, value) if year == 0 else np.percentile(sample, [2.5, 97.5])
                rows.append(
                    {
                        "level": level,
                        "area_code": code,
                        "base_as_of": base,
                        "year": year,
                        "as_of": _years_after(base, year),
                        "segment": segment,
                        "measure": measure,
                        "value": float(value),
                        "lower": float(low),
                        "upper": float(high),
                        "method": METHOD,
                    }
                )
    return rows


def _years_after(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)
