"""Transitions between segments: with deaths, departures, births and new registrations, flows add up."""

from __future__ import annotations

from importlib.resources import as_file
from pathlib import Path

import pytest

from openphm.content import content_path
from openphm.ingest import ingest
from openphm.pipeline import run
from openphm.stages import STAGES, by_name
from tests.support.segments import AS_OF, Crafted, assert_flows_add_up, build
from tests.support.sources import EXTRACT, KEY, read_table, store_path

PEOPLE = {
    "stays_healthy": Crafted(),
    "dies": Crafted(person={"date_of_death": "2023-10-01"}),
    "leaves": Crafted(person={"registration_end": "2024-01-01"}),
    "born": Crafted(born="2023-09-01"),
    "registers_late": Crafted(person={"registration_start": "2024-06-01"}),
    "gets_asthma": Crafted(coded={"asthma": "2023-06-01"}),
}


def test_transitions_with_deaths_departures_and_births(tmp_path: Path) -> None:
    store = store_path(tmp_path, "duckdb")
    build(tmp_path / "source", store, "duckdb", PEOPLE)  # registered from birth unless ``person`` says otherwise
    flows = read_table(store, "segment_transition")
    assert_flows_add_up(flows, read_table(store, "population"), list(AS_OF))
    counts = {(r["from_as_of"], r["from_segment"], r["to_segment"]): r["people"] for r in flows.to_dicts()}
    first, second = AS_OF[0], AS_OF[1]
    assert counts[(first, "healthy", "died")] == 1
    assert counts[(first, "healthy", "left")] == 1
    assert counts[(first, "healthy", "long_term_conditions")] == 1
    assert counts[(first, "joined", "maternal_and_infant")] == 1  # born, an infant at the next year end
    assert counts[(second, "maternal_and_infant", "healthy")] == 1  # one year old: no longer an infant
    assert counts[(second, "joined", "healthy")] == 1  # registered in June 2024
    assert (second, "healthy", "died") not in counts  # the dead are counted once, in the year they died
    assert flows.columns == ["from_as_of", "to_as_of", "from_segment", "to_segment", "people"]


def test_one_as_of_has_no_transitions(tmp_path: Path) -> None:
    store = store_path(tmp_path, "duckdb")
    build(tmp_path / "source", store, "duckdb", {"a": Crafted()})
    stages = [s for n, s in by_name().items() if n in ("population", "segment_transition")]
    # Re-running only the transitions over the stored segments with a single date gives an empty table.
    run(store, as_of=(AS_OF[-1],), stages=stages)
    assert read_table(store, "segment_transition").height == 0


@pytest.mark.parametrize("engine", ["duckdb"])
def test_flows_add_up_on_the_demo_fixture(tmp_path: Path, engine: str) -> None:
    store = store_path(tmp_path, engine)
    with as_file(content_path("fixtures", "demo")) as fixture:
        ingest(Path(fixture), store, key=KEY, engine=engine, extract_date=EXTRACT)
    result = run(store, stages=STAGES, engine=engine)
    flows = read_table(store, "segment_transition", engine)
    assert_flows_add_up(flows, read_table(store, "population", engine), list(result.as_of))
    assert {"died", "joined"} <= set(flows["to_segment"]) | set(flows["from_segment"])
