"""One test per bad-input rule of the contract: plant the bad row, assert its quarantine reason and counts.

Each case starts from two good people (Alice, Bob), adds one table's rows with exactly one broken row, and
checks that (a) the broken row - and only it - is quarantined with the expected reason and column, and
(b) the table reconciles: input rows = loaded + quarantined + opted out.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from openphm.ingest import ingest
from tests.support.ingest_cases import CASES, Rows, episode, event, good_people
from tests.support.sources import ALICE, CAROL, EXTRACT, KEY, person, read_table, store_path


@pytest.mark.parametrize("engine", ["duckdb", "polars"])
@pytest.mark.parametrize(
    ("tables", "table", "row", "column", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_rule_quarantines_the_bad_row(
    source: Callable[[Rows], Path],
    tmp_path: Path,
    engine: str,
    tables: Rows,
    table: str,
    row: int,
    column: str,
    reason: str,
) -> None:
    store = store_path(tmp_path, engine)
    result = ingest(source(tables), store, key=KEY, engine=engine, extract_date=EXTRACT)

    quarantine = read_table(store, "quarantine", engine).filter(table=table)
    assert quarantine.select("table", "row", "column", "reason").rows() == [(table, row, column, reason)]
    assert "message" in quarantine.columns and quarantine["message"][0]

    outcome = next(o for o in result.outcomes if o.table == table)
    rows_in = len(tables[table])
    assert (outcome.input_rows, outcome.quarantined, outcome.opted_out) == (rows_in, 1, 0)
    assert outcome.loaded == rows_in - 1
    assert all(o.balanced for o in result.outcomes)
    log = read_table(store, "run_log", engine).filter(step="reconcile", item=table)
    assert dict(zip(log["metric"], log["value"], strict=True)) == {
        "input_rows": rows_in,
        "loaded": rows_in - 1,
        "quarantined": 1,
        "opted_out": 0,
    }


def test_a_row_breaking_several_rules_is_one_quarantined_row_with_every_reason(
    source: Callable[[Rows], Path], tmp_path: Path
) -> None:
    store = store_path(tmp_path, "duckdb")
    result = ingest(
        source({"person": good_people(person(CAROL, sex="X", date_of_birth="1950-13-01"))}),
        store,
        key=KEY,
        extract_date=EXTRACT,
    )
    quarantine = read_table(store, "quarantine")
    assert sorted(quarantine["reason"]) == ["invalid_code", "invalid_date"]
    assert next(o for o in result.outcomes if o.table == "person").quarantined == 1


def test_person_id_that_is_an_nhs_number_is_refused(source: Callable[[Rows], Path], tmp_path: Path) -> None:
    rows = [{k if k != "nhs_number" else "person_id": v for k, v in person(p).items()} for p in ("pseud-1", ALICE)]
    store = store_path(tmp_path, "duckdb")
    ingest(source({"person": rows}), store, key=KEY, extract_date=EXTRACT)
    assert read_table(store, "quarantine").select("row", "reason").rows() == [(2, "person_id_is_nhs_number")]
    assert read_table(store, "person")["person_id"].to_list() == ["pseud-1"]


def test_values_are_stored_with_contract_types(source: Callable[[Rows], Path], tmp_path: Path) -> None:
    import polars as pl

    store = store_path(tmp_path, "duckdb")
    ingest(
        source({"person": good_people(), "gp_event": [event(value="27.5", unit="kg/m2")]}),
        store,
        key=KEY,
        extract_date=EXTRACT,
    )
    events = read_table(store, "gp_event")
    assert events.schema["event_date"] == pl.Date and events.schema["value"] == pl.Float64
    people = read_table(store, "person")
    # Birth dates are kept to the month; deprivation comes from the shipped IMD 2019 table (E01000001: decile 9).
    assert set(people["date_of_birth"].dt.day()) == {1}
    assert set(people["imd_decile"]) == {9} and set(people["imd_quintile"]) == {5}


@pytest.mark.parametrize("engine", ["duckdb", "polars"])
def test_every_later_repeat_of_a_key_is_quarantined_and_the_first_kept(
    source: Callable[[Rows], Path], tmp_path: Path, engine: str
) -> None:
    """Three rows of E1 and two of E2, apart in the file: the first of each loads, the others are repeats."""
    rows = [
        episode("E2", cost=1),
        episode("E1", cost=2),
        episode("E3", cost=3),
        episode("E1", cost=4),
        episode("E2", cost=5),
        episode("E1", cost=6),
    ]
    store = store_path(tmp_path, engine)
    result = ingest(
        source({"person": good_people(), "apc_episode": rows}), store, key=KEY, engine=engine, extract_date=EXTRACT
    )
    quarantine = read_table(store, "quarantine", engine).filter(table="apc_episode")
    assert sorted(quarantine.select("row", "reason").rows()) == [
        (4, "duplicate_key"),
        (5, "duplicate_key"),
        (6, "duplicate_key"),
    ]
    loaded = read_table(store, "apc_episode", engine).sort("episode_id")
    assert list(zip(loaded["episode_id"], loaded["cost"], strict=True)) == [("E1", 2.0), ("E2", 1.0), ("E3", 3.0)]
    assert next(o for o in result.outcomes if o.table == "apc_episode").quarantined == 3
