"""The Markov projection against closed forms: matrix powers, the stationary distribution, ageing."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from openphm.analytics import forecast
from openphm.analytics.settings import load_settings
from tests.support import analytics

BASE = date(2025, 3, 31)
HEALTHY_ILL = np.array([[0.9, 0.1], [0.3, 0.7]])


def test_two_state_projection_is_the_matrix_power() -> None:
    """Healthy <-> ill with fixed yearly rates and nobody entering or leaving: x_n = x_0 P^n."""
    start = np.array([[1000.0, 0.0]])  # one age group
    transition = np.concatenate([HEALTHY_ILL, np.zeros((2, 2))], axis=1)[None]  # + died, left: never
    out = forecast.project(start, transition, np.zeros((1, 2)), np.array([0.0]), years=5)
    for n in range(6):
        assert np.allclose(out[n, 0], start[0] @ np.linalg.matrix_power(HEALTHY_ILL, n))
    # Closed form of a two-state chain: ill share = 0.25 (1 - 0.6^n), the stationary share being 0.1 / 0.4.
    assert np.allclose(out[:, 0, 1] / 1000, [0.25 * (1 - 0.6**n) for n in range(6)])


def test_exits_entries_and_ageing() -> None:
    """One segment, two age groups (0-19, 20+): a twentieth of the young age each year; 10% die; 50 join."""
    start = np.array([[100.0], [100.0]])
    transition = np.array([[[0.9, 0.1, 0.0]], [[0.9, 0.1, 0.0]]])
    joiners = np.array([[50.0], [0.0]])
    out = forecast.project(start, transition, joiners, np.array([1 / 20, 0.0]), years=1)
    assert np.allclose(out[1, :, 0], [90 * 19 / 20 + 50, 90 + 90 / 20])


def _counts(rows: list[tuple[str, str, float]]) -> pa.Table:
    return pa.table(
        {
            "level": ["national"] * len(rows),
            "area_code": ["E92000001"] * len(rows),
            "age_group": pa.array([0] * len(rows), pa.int64()),
            "from_segment": [r[0] for r in rows],
            "to_segment": [r[1] for r in rows],
            "people": pa.array([r[2] for r in rows], pa.float64()),
        }
    )


def test_forecast_table_uses_the_observed_transition_rates() -> None:
    """Transitions counted between two snapshots give P = [[0.9, 0.1], [0.3, 0.7]]; the national projection of
    1,000 healthy people is x_0 P^n, and its interval (Dirichlet draws) contains it."""
    settings = load_settings().model_copy(
        update={"forecast_age_groups": (0,), "forecast_levels": ("national",), "forecast_draws": 400}
    )
    start = pa.table(
        {
            "level": ["national", "national"],
            "area_code": ["E92000001", "E92000001"],
            "age_group": pa.array([0, 0], pa.int64()),
            "segment": ["healthy", "long_term_conditions"],
            "people": [1000.0, 0.0],
        }
    )
    counts = _counts(
        [
            ("healthy", "healthy", 900),
            ("healthy", "long_term_conditions", 100),
            ("long_term_conditions", "healthy", 30),
            ("long_term_conditions", "long_term_conditions", 70),
        ]
    )
    rows = forecast.forecast_table(start, counts, BASE, 1, settings, with_activity=False).to_pylist()
    ill = {r["year"]: r for r in rows if r["segment"] == "long_term_conditions" and r["measure"] == "people"}
    for n in range(6):
        expected = (np.array([1000.0, 0.0]) @ np.linalg.matrix_power(HEALTHY_ILL, n))[1]
        assert ill[n]["value"] == pytest.approx(expected)
        assert ill[n]["lower"] <= ill[n]["value"] + 1e-9 and ill[n]["value"] <= ill[n]["upper"] + 1e-9
    assert ill[5]["as_of"] == date(2030, 3, 31) and ill[5]["method"] == "markov-dirichlet"
    assert ill[5]["upper"] > ill[5]["lower"]
    everyone = [r for r in rows if r["segment"] == "all" and r["measure"] == "people"]
    assert all(r["value"] == pytest.approx(1000.0) for r in everyone)  # nobody dies, leaves or joins


def test_small_areas_shrink_towards_the_whole() -> None:
    """An area with few transitions of its own is pulled towards the whole store's rates by the prior."""
    settings = load_settings().model_copy(
        update={"forecast_age_groups": (0,), "forecast_levels": ("national", "icb"), "forecast_prior_people": 50}
    )
    start = pa.table(
        {
            "level": ["national", "icb"],
            "area_code": ["E92000001", "Q1"],
            "age_group": pa.array([0, 0], pa.int64()),
            "segment": ["healthy", "healthy"],
            "people": [1000.0, 10.0],
        }
    )
    counts = _counts([("healthy", "healthy", 900), ("healthy", "died", 100)])
    counts = pa.concat_tables(
        [
            counts,
            pa.table(
                {
                    "level": ["icb"],
                    "area_code": ["Q1"],
                    "age_group": pa.array([0], pa.int64()),
                    "from_segment": ["healthy"],
                    "to_segment": ["healthy"],
                    "people": [10.0],
                }
            ),
        ]
    )
    rows = forecast.forecast_table(start, counts, BASE, 1, settings, with_activity=False).to_pylist()
    year1 = next(r for r in rows if r["area_code"] == "Q1" and r["year"] == 1 and r["segment"] == "healthy")
    # Posterior mean survival = (10 + 50 x 0.9) / (10 + 50) = 55/60.
    assert year1["value"] == pytest.approx(10 * 55 / 60)


def _cancer_deaths_before_the_base(tables: dict[str, pa.Table]) -> dict[str, pa.Table]:
    """The hand-made store with everyone who dies before the base date in `incurable_cancer` at the first date:
    a segment that only ever appears as a starting state (nobody in it at the base date, nobody moving in)."""
    rows = tables["segment"].to_pylist()
    for row in rows:
        if row["as_of"] == analytics.AS_OF[0] and int(str(row["person_id"])[1:]) % 23 == 0:
            row["segment"] = "incurable_cancer"
    return {**tables, "segment": pa.Table.from_pylist(rows, schema=tables["segment"].schema)}


@pytest.mark.parametrize("engine", ["duckdb", "polars"])
def test_a_segment_emptied_before_the_base_date_is_projected_from_zero(tmp_path: Path, engine: str) -> None:
    """Regression (found by the generative engine test): a segment seen only as a from-state used to raise a
    KeyError. It is now a state like any other: zero people at the base date and in every year (nobody joins it),
    and the other segments' projection is unchanged by its presence."""
    out = analytics.run_stage(tmp_path, engine, edit=_cancer_deaths_before_the_base)
    moves = out["agg_transition"].filter(pl.col("level") == "national", pl.col("from_segment") == "incurable_cancer")
    assert moves["to_segment"].to_list() == ["died"] and moves["people"].to_list() == [10]  # p023, p046, ..., p230
    people = out["agg_forecast"].filter(pl.col("level") == "national", pl.col("measure") == "people")
    assert set(people["segment"]) == {*analytics.SEGMENTS, "incurable_cancer", "all"}
    cancer = people.filter(pl.col("segment") == "incurable_cancer").sort("year")
    assert cancer["year"].to_list() == list(range(6))
    assert cancer["value"].to_list() == [0.0] * 6 and cancer["upper"].to_list() == [0.0] * 6
    observed = out["agg_population"].filter(
        pl.col("level") == "national", pl.col("as_of") == analytics.AS_OF[1], pl.col("breakdown") == "total"
    )["people"]
    base = people.filter(pl.col("segment") == "all", pl.col("year") == 0)["value"]
    assert base.to_list() == [float(observed.item())]
