"""The segment and transition tables are identical on duckdb, polars and spark, for the crafted people."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from tests.support.segments import PEOPLE, Crafted, build
from tests.support.sources import ENGINES, read_table, store_path

# The crafted people plus a death and a departure, so the transitions have every state.
PEOPLE_AND_FLOWS = {
    **PEOPLE,
    "dies": Crafted(person={"date_of_death": "2023-10-01"}),
    "leaves": Crafted(person={"registration_end": "2024-01-01"}),
}


def _tables(tmp: Path, engine: str) -> dict[str, pl.DataFrame]:
    store = store_path(tmp, engine)
    ids = build(tmp / "source", store, engine, PEOPLE_AND_FLOWS)
    names = {v: k for k, v in ids.items()}
    segment = read_table(store, "segment", engine).with_columns(pl.col("person_id").replace_strict(names))
    flows = read_table(store, "segment_transition", engine)
    return {
        "segment": segment.sort("person_id", "as_of"),
        "segment_transition": flows.sort("from_as_of", "from_segment", "to_segment"),
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pl.DataFrame]:
    return _tables(tmp_path_factory.mktemp("duckdb"), "duckdb")


@pytest.mark.parametrize("engine", [e for e in ENGINES if e != "duckdb"])
def test_segments_are_identical_on_every_engine(
    reference: dict[str, pl.DataFrame], tmp_path: Path, engine: str
) -> None:
    other = _tables(tmp_path, engine)
    for name, frame in reference.items():
        assert other[name].schema == frame.schema, name
        assert_frame_equal(other[name], frame, check_exact=False, rel_tol=1e-9)
    assert set(reference["segment_transition"]["to_segment"]) >= {"died", "left"}
    assert reference["segment"].height > 80
