"""Generative engine agreement, in the spirit of OpenSAFELY ehrQL's: DuckDB and Polars give identical tables.

Hypothesis draws a synthetic population (seed, size, error rate, start date, years of data), ingests it and
runs every stage on both engines, and every table must be identical. A failing example shrinks towards a
small population, few years and no planted errors, and Hypothesis prints it with ``@reproduce_failure`` so it
can be replayed. The normal run tries a couple of examples (each is a full ingest and run twice, about half a
minute on two cores); ``pytest -m generative_many`` tries many more.
"""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openphm.ingest import ingest
from openphm.pipeline import run
from openphm.stages import STAGES
from openphm.synth import generate
from tests.support.engines import assert_same_tables, store_tables
from tests.support.sources import KEY, store_path

populations = st.fixed_dictionaries(
    {
        "seed": st.integers(min_value=0, max_value=2**31 - 1),
        "people": st.integers(min_value=100, max_value=400),
        "error_rate": st.sampled_from([0.0, 0.005, 0.02]),
        "start": st.dates(min_value=date(2019, 4, 1), max_value=date(2022, 4, 1)),
        "years": st.integers(min_value=1, max_value=3),
    }
)


def _agree(population: dict[str, object]) -> None:
    with tempfile.TemporaryDirectory(prefix="openphm-generative-") as folder:
        tmp = Path(folder)
        generate(tmp / "source", fmt="csv", **population)
        tables = {}
        for engine in ("duckdb", "polars"):
            store = store_path(tmp, engine)
            ingest(tmp / "source", store, key=KEY, engine=engine)  # the extract date synth wrote
            run(store, stages=STAGES, engine=engine)
            tables[engine] = store_tables(store, engine)
        assert_same_tables(tables["duckdb"], tables["polars"])


_SETTINGS = {"deadline": None, "derandomize": True, "suppress_health_check": [HealthCheck.too_slow]}


@settings(max_examples=2, **_SETTINGS)
@given(populations)
def test_duckdb_and_polars_agree_on_drawn_populations(population: dict[str, object]) -> None:
    _agree(population)


@pytest.mark.generative_many
@settings(max_examples=40, **_SETTINGS)
@given(populations)
def test_duckdb_and_polars_agree_on_many_drawn_populations(population: dict[str, object]) -> None:
    _agree(population)
