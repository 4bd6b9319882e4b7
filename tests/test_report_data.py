"""The chart builders on hand-made published rows: shares from rounded counts, redactions kept, small hidden."""

from __future__ import annotations

from datetime import date

import polars as pl

from openphm.disclosure import POLICIES
from openphm.report.data import (
    Context,
    cost_per_head,
    estimate,
    forecast_segments,
    prevalence,
    segments_by_imd,
    transitions,
)

LATEST = date(2025, 3, 31)
CTX = Context(
    latest=LATEST,
    policy=POLICIES["nhs"],
    names={"hypertension": "Hypertension", "asthma": "Asthma"},
    deficits_only=frozenset({"efi_falls"}),
)


def _population(rows: list[dict[str, object]]) -> pl.DataFrame:
    base = {"as_of": LATEST, "segment": None, "imd_quintile": None, "need_tier": None, "cost_total": None}
    return pl.DataFrame([base | r for r in rows])


def test_prevalence_is_computed_from_the_published_counts_and_skips_deficits_and_redactions() -> None:
    register = pl.DataFrame(
        {
            "as_of": [LATEST] * 4,
            "kind": ["condition"] * 4,
            "definition": ["hypertension", "asthma", "efi_falls", "copd"],
            "people": [15, None, 50, 10],
            "population": [105, 105, 105, 105],
        }
    )
    data = prevalence({"agg_register": register}, CTX)
    assert data is not None
    assert data["categories"] == ["Hypertension", "copd"]  # the deficit-only list and the redacted one are out
    assert data["series"][0]["values"] == [14.3, 9.5]  # 100 * 15 / 105, 100 * 10 / 105
    assert data["note"].startswith("Not shown: 1 more")


def test_shares_by_quintile_use_rounded_denominators_and_keep_redactions() -> None:
    rows = [{"breakdown": "imd_quintile", "imd_quintile": q, "people": 200} for q in range(1, 6)]
    rows += [
        {"breakdown": "segment+imd_quintile", "segment": "healthy", "imd_quintile": 1, "people": 150},
        {"breakdown": "segment+imd_quintile", "segment": "disability", "imd_quintile": 1, "people": None},
    ]
    data = segments_by_imd({"agg_population": _population(rows)}, CTX)
    assert data is not None
    series = {s["name"]: s for s in data["series"]}
    assert series["Healthy well"]["values"][0] == 75.0 and series["Healthy well"]["counts"][0] == 150
    assert series["Disability"]["values"][0] is None and series["Disability"]["counts"][0] is None
    assert series["Acutely ill"]["values"][0] == 0.0  # no row: nobody, not redacted


def test_cost_per_head_is_hidden_where_the_people_are() -> None:
    rows = [
        {"breakdown": "segment", "segment": "healthy", "people": 100, "cost_total": 25_000.0},
        {"breakdown": "segment", "segment": "organ_failure", "people": None, "cost_total": None},
        {"breakdown": "total", "people": 100, "cost_total": 25_000.0},
    ]
    data = cost_per_head({"agg_population": _population(rows)}, CTX)
    assert data is not None
    values = dict(zip(data["categories"], data["series"][0]["values"], strict=True))
    assert values == {"Healthy well": 250, "Organ failure": None}  # segments with nobody are not listed
    assert data["note"] == "Whole area: £250 per head."


def test_projections_read_like_published_counts() -> None:
    assert estimate(3.0, POLICIES["nhs"]) is None
    assert estimate(12.4, POLICIES["nhs"]) == 10
    assert estimate(0.4, POLICIES["nhs"]) == 0
    forecast = pl.DataFrame(
        {
            "segment": ["healthy", "healthy"],
            "measure": ["people", "people"],
            "year": [1, 2],
            "as_of": [date(2026, 3, 31), date(2027, 3, 31)],
            "value": [103.0, 5.0],
            "lower": [90.0, 1.0],
            "upper": [117.0, 9.0],
        }
    )
    observed = _population([{"breakdown": "segment", "segment": "healthy", "people": 100}])
    data = forecast_segments({"agg_forecast": forecast, "agg_population": observed}, CTX)
    assert data is not None and data["split"] == 1
    assert data["categories"] == ["Mar 2025", "Mar 2026", "Mar 2027"]
    healthy = data["series"][0]
    assert healthy["values"] == [100, 105, None] and healthy["lower"] == [100, 90, 0]


def test_transitions_keep_redacted_flows_for_the_table() -> None:
    rows = pl.DataFrame(
        {
            "from_as_of": [date(2024, 3, 31)] * 3,
            "to_as_of": [LATEST] * 3,
            "from_segment": ["healthy", "healthy", "joined"],
            "to_segment": ["healthy", "died", "long_term_conditions"],
            "people": [500, None, 0],
        }
    )
    data = transitions({"agg_transition": rows}, CTX)
    assert data is not None
    assert data["links"] == [
        {"source": "Healthy well", "target": "Healthy well", "value": 500},
        {"source": "Healthy well", "target": "died", "value": None},
    ]
    assert data["from_label"] == "2024-03-31"
