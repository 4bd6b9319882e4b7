"""Standardised rates, their Dobson intervals and the slope index of inequality, against hand-worked examples."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import narwhals as nw
import numpy as np
import pyarrow as pa
import pytest

from openphm.analytics import inequalities
from openphm.analytics.aggregates import COSTS, COUNTS
from openphm.analytics.settings import esp2013, load_settings
from openphm.engine import building
from tests.support.sources import store_path

AS_OF = date(2025, 3, 31)


def test_esp2013_weights_are_the_published_standard() -> None:
    weights = esp2013()
    assert sum(weights.values()) == 100_000
    assert len(weights) == 20
    assert weights["00-04"] == 5000 and weights["45-49"] == 7000 and weights["90-94"] == 800 and weights["95+"] == 200


def test_exact_poisson_limits_match_the_published_table() -> None:
    """Garwood limits as tabulated to two decimals: O = 30 -> 20.24-42.83; O = 10 -> 4.80-18.39; O = 0 -> 0-3.69."""
    lower, upper = inequalities.poisson_limits([30, 10, 0])
    assert np.allclose(lower, [20.24, 4.80, 0.0], atol=0.006)
    assert np.allclose(upper, [42.83, 18.39, 3.69], atol=0.006)


def _cube(rows: list[tuple[int, str, int, int]]) -> pa.Table:
    """A micro cube (the stage's intermediate) from (imd_quintile, age_band, people, emergency admissions), all F."""
    n = len(rows)
    columns: dict[str, pa.Array] = {
        "as_of": pa.array([AS_OF] * n, pa.date32()),
        "region_code": pa.array(["R1"] * n),
        "icb_code": pa.array(["I1"] * n),
        "sub_icb_code": pa.array(["S1"] * n),
        "pcn_code": pa.array(["P1"] * n),
        "practice_code": pa.array(["G1"] * n),
        "segment": pa.array([None] * n, pa.string()),
        "need_tier": pa.array([None] * n, pa.int64()),
        "age_band": pa.array([r[1] for r in rows]),
        "sex": pa.array(["F"] * n),
        "imd_quintile": pa.array([r[0] for r in rows], pa.int64()),
        "ethnic_group": pa.array(["White"] * n),
        "imd_decile": pa.array([2 * r[0] for r in rows], pa.int64()),
        "people": pa.array([r[2] for r in rows], pa.int64()),
    }
    for c in COUNTS:
        columns[c] = pa.array([r[3] if c == "emergency_admissions" else 0 for r in rows], pa.int64())
    for c in COSTS:
        columns[c] = pa.array([0.0] * n)
    columns["cost_total_squared"] = pa.array([0.0] * n)
    return pa.table(columns)


@pytest.mark.parametrize("engine", ["duckdb", "polars"])
def test_directly_standardised_rate_and_dobson_interval_by_hand(tmp_path: Path, engine: str) -> None:
    """Two IMD quintiles, two age bands, women only; ESP 2013 applied to each sex (total weight 200,000).

    Quintile 1: 00-04: 100 people, 20 admissions (rate 0.2); 05-09: 200 people, 10 admissions (0.05).
    Quintile 5: 00-04: 300 people, 15 admissions (0.05); 05-09: 100 people, 15 admissions (0.15).
    Weights: 00-04 = 5000, 05-09 = 5500; every other stratum has nobody and contributes 0.

    DSR(Q1) per 1,000 = 1000 x (5000 x 0.2 + 5500 x 0.05) / 200000 = 1000 x 1275 / 200000 = 6.375
    DSR(Q5) per 1,000 = 1000 x (5000 x 0.05 + 5500 x 0.15) / 200000 = 1000 x 1075 / 200000 = 5.375
    All (both quintiles): 00-04: 35/400; 05-09: 25/300 -> 1000 x (437.5 + 458.333) / 200000 = 4.47917

    Dobson for Q1: var(DSR) = 1000^2 x (5000^2 x 20 / 100^2 + 5500^2 x 10 / 200^2) / 200000^2
                            = 1e6 x (50000 + 7562.5) / 4e10 = 1.4390625
    O = 30, exact Poisson limits 20.2409 and 42.8269; sqrt(var / O) = sqrt(0.04796875) = 0.219018
    lower = 6.375 - 0.219018 x 9.7591 = 4.23758; upper = 6.375 + 0.219018 x 12.8269 = 9.18431
    Crude rate Q1 = 1000 x 30 / 300 = 100.
    """
    settings = load_settings().model_copy(update={"inequality_levels": ("national",)})
    cube = _cube([(1, "00-04", 100, 20), (1, "05-09", 200, 10), (5, "00-04", 300, 15), (5, "05-09", 100, 15)])
    with building(store_path(tmp_path, engine), engine, start_from_existing=False) as eng:
        sums = inequalities.strata(eng, eng.frame(cube), eng.frame(cube), None, eng.frame(cube), settings, False, True)
        assert sums is not None
        table = nw.to_native(sums.collect(backend="pyarrow"))
    rates = inequalities.standardised_rates(table, settings).to_pylist()
    admissions = {(r["group_type"], r["group"]): r for r in rates if r["measure"] == "emergency_admissions"}
    q1, q5, everyone = admissions[("imd_quintile", "1")], admissions[("imd_quintile", "5")], admissions[("all", "all")]
    assert q1["dsr"] == pytest.approx(6.375) and q5["dsr"] == pytest.approx(5.375)
    assert everyone["dsr"] == pytest.approx(1000 * (5000 * 35 / 400 + 5500 * 25 / 300) / 200000)
    assert q1["dsr_lower"] == pytest.approx(4.23758, abs=1e-4)
    assert q1["dsr_upper"] == pytest.approx(9.18431, abs=1e-4)
    assert q1["crude_rate"] == pytest.approx(100.0) and q1["people"] == 300 and q1["events"] == 30
    assert q1["per"] == 1000 and q1["ci_method"] == "dobson" and q1["reliable"]
    assert admissions[("core20", "Core20")]["dsr"] == pytest.approx(6.375)  # decile 2 = quintile 1
    assert admissions[("core20", "Rest")]["dsr"] == pytest.approx(5.375)


def test_slope_and_relative_index_by_hand() -> None:
    """Three groups, most deprived first, population shares 0.2, 0.3, 0.5 and rates 30, 25, 10.

    Midpoints of the cumulative shares: 0.1, 0.35, 0.75. Weighted by the shares:
    mean x = 0.02 + 0.105 + 0.375 = 0.5; mean y = 6 + 7.5 + 5 = 18.5;
    Sxy = 0.2(-0.4)(11.5) + 0.3(-0.15)(6.5) + 0.5(0.25)(-8.5) = -0.92 - 0.2925 - 1.0625 = -2.275;
    Sxx = 0.2(0.16) + 0.3(0.0225) + 0.5(0.0625) = 0.07; slope = -32.5; intercept = 18.5 + 32.5 x 0.5 = 34.75.
    Fitted: most deprived end (x = 0) 34.75, least deprived end (x = 1) 2.25.
    SII = 34.75 - 2.25 = 32.5; RII = 34.75 / 2.25 = 15.444.
    """
    rates = np.array([30.0, 25.0, 10.0])
    people = np.array([200.0, 300.0, 500.0])
    sii, sii_low, sii_high, rii, rii_low, rii_high = inequalities.slope_index(rates, people, np.zeros(3))
    assert sii == pytest.approx(32.5) and rii == pytest.approx(34.75 / 2.25)
    assert sii_low == pytest.approx(32.5) and sii_high == pytest.approx(32.5)  # no uncertainty, no width
    sii, sii_low, sii_high, rii, rii_low, rii_high = inequalities.slope_index(rates, people, np.full(3, 2.0))
    assert sii_low < sii < sii_high and rii_low < rii < rii_high


def test_equal_rates_have_no_gradient() -> None:
    sii, *_, rii, _, _ = inequalities.slope_index(np.full(10, 7.0), np.arange(1.0, 11.0), np.full(10, 0.5))
    assert sii == pytest.approx(0.0, abs=1e-9) and rii == pytest.approx(1.0)


def test_indices_order_deciles_numerically_and_need_enough_deciles() -> None:
    """Deciles '1'..'10' are ordered as numbers (10 last), and too few deciles give no index."""
    settings = load_settings().model_copy(update={"sii_min_deciles": 5, "sii_simulations": 200})
    rows = []
    for decile in range(1, 11):
        rows.append(_rate_row("m", decile, rate=float(11 - decile)))  # falls from most to least deprived
    rows += [_rate_row("few", d, rate=1.0) for d in (1, 2, 3)]
    schema = pa.schema([f for f in inequalities.INEQUALITY_SCHEMA if f.name != "area_name"])
    out = {
        r["measure"]: r
        for r in inequalities.inequality_indices(pa.Table.from_pylist(rows, schema=schema), settings).to_pylist()
    }
    # Equal populations: midpoints 0.05 .. 0.95, rates 10 .. 1: exact line y = 10.5 - 10 x -> SII 10, RII 10.5/0.5.
    assert out["m"]["sii"] == pytest.approx(10.0) and out["m"]["rii"] == pytest.approx(21.0)
    assert out["m"]["deciles"] == 10
    assert out["few"]["sii"] is None and out["few"]["deciles"] == 3


def _rate_row(measure: str, decile: int, rate: float) -> dict[str, object]:
    return {
        "level": "national",
        "area_code": "E92000001",
        "as_of": AS_OF,
        "measure": measure,
        "measure_kind": "events",
        "per": 1000,
        "group_type": "imd_decile",
        "group": str(decile),
        "people": 100,
        "events": rate / 10,
        "crude_rate": rate,
        "dsr": rate,
        "dsr_lower": rate - 1,
        "dsr_upper": rate + 1,
        "reliable": True,
        "ci_method": "dobson",
    }
