"""Segments on a synthetic England: every need tier occurs, one segment per person, flows add up."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from openphm.ingest import ingest
from openphm.pipeline import run
from openphm.stages import by_name
from openphm.synth import generate
from tests.support.segments import assert_flows_add_up
from tests.support.sources import KEY, read_table, store_path

STAGES = ("population", "register", "measures", "risk", "activity", "segment", "segment_transition")


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("synth")
    made = generate(tmp / "source", people=2000, seed=7)
    store = store_path(tmp, "duckdb")
    ingest(tmp / "source", store, key=KEY, extract_date=made.extract_date)
    run(store, stages=[s for name, s in by_name().items() if name in STAGES])
    return store


def test_need_tiers_cover_1_to_11_and_every_segment_occurs(synthetic: Path) -> None:
    segments = read_table(synthetic, "segment")
    assert set(segments["need_tier"]) == set(range(1, 12))
    assert set(segments["segment"]) == {
        "healthy",
        "maternal_and_infant",
        "acutely_ill",
        "long_term_conditions",
        "disability",
        "incurable_cancer",
        "organ_failure",
        "frailty_and_dementia",
    }
    flags = [c for c in segments.columns if segments.schema[c] == pl.Boolean]
    assert segments.select(pl.col(flags).null_count()).sum_horizontal().item() == 0  # every input was there


def test_one_segment_per_person_and_flows_add_up(synthetic: Path) -> None:
    segments = read_table(synthetic, "segment")
    population = read_table(synthetic, "population")
    assert segments.select("person_id", "as_of").is_unique().all()
    assert segments.height == population.filter("in_population").height
    flows = read_table(synthetic, "segment_transition")
    assert_flows_add_up(flows, population, sorted(set(population["as_of"])))
    assert {"died", "left"} <= set(flows["to_segment"]) and "joined" in set(flows["from_segment"])
