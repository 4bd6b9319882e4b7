"""The runner: dependency order, declared tables, timing and row counts in run_log, default as_of dates."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import narwhals as nw
import pytest

from openphm.errors import PipelineError, StoreError
from openphm.ingest import ingest
from openphm.options import RunOptions
from openphm.pipeline import Stage, order_stages, run
from openphm.pipeline.schema import Table, columns
from openphm.stages import STAGES, by_name
from tests.support.sources import ALICE, BOB, EXTRACT, KEY, person, read_table, store_path

Rows = dict[str, list[dict[str, object]]]


def _noop(tables: object, context: object) -> dict[str, nw.LazyFrame]:
    return {}


def _stage(name: str, inputs: tuple[str, ...], outputs: tuple[str, ...]) -> Stage:
    return Stage(name, inputs, tuple(Table(t, "test row", ()) for t in outputs), _noop)


def _people(name: str) -> Table:
    """A declared table of (person_id, as_of), for the stages made up by these tests."""
    return Table(name, "person x as_of", columns(("person_id", nw.String, "person"), ("as_of", nw.Date, "date")))


def test_stages_run_after_the_stages_that_feed_them() -> None:
    stages = [
        _stage("c", ("b_out",), ("c_out",)),
        _stage("a", ("person",), ("a_out",)),
        _stage("b", ("a_out",), ("b_out",)),
    ]
    assert [s.name for s in order_stages(stages, {"person"})] == ["a", "b", "c"]


def test_two_stages_writing_one_table_is_an_error() -> None:
    with pytest.raises(PipelineError, match="written by both"):
        order_stages([_stage("a", (), ("t",)), _stage("b", (), ("t",))], set())


def test_cycle_is_an_error() -> None:
    with pytest.raises(PipelineError, match="cycle"):
        order_stages([_stage("a", ("y",), ("x",)), _stage("b", ("x",), ("y",))], set())


def test_missing_input_names_the_table() -> None:
    with pytest.raises(StoreError, match="'gp_event'"):
        order_stages([_stage("a", ("gp_event",), ("x",))], {"person"})


def _counting(tables: dict[str, nw.LazyFrame], context: object) -> dict[str, nw.LazyFrame]:
    return {"adults": tables["population"].filter(nw.col("age") >= 18).select("person_id", "as_of")}


def test_runner_writes_outputs_and_logs_time_and_rows(source: Callable[[Rows], Path], tmp_path: Path) -> None:
    store = store_path(tmp_path, "duckdb")
    people = [person(ALICE), person(BOB, date_of_birth="2015-01-01")]
    ingest(source({"person": people}), store, key=KEY, extract_date=EXTRACT)
    stages = [by_name()["population"], Stage("adults", ("population",), (_people("adults"),), _counting)]
    result = run(store, as_of=(date(2024, 3, 31),), stages=stages)

    assert [s.name for s in result.stages] == ["population", "adults"]
    assert read_table(store, "adults").height == 1
    log = read_table(store, "run_log").filter(command="run", step="stage")
    rows = {(r["item"], r["metric"]): r["value"] for r in log.iter_rows(named=True)}
    assert rows[("adults", "rows:adults")] == 1 and rows[("population", "rows:population")] == 2
    assert rows[("adults", "seconds")] >= 0
    assert read_table(store, "run_log").filter(command="run", metric="purpose")["detail"].to_list() == ["planning"]


def test_default_as_of_is_each_financial_year_end_of_the_activity(
    source: Callable[[Rows], Path], tmp_path: Path
) -> None:
    store = store_path(tmp_path, "duckdb")
    visits = [{"nhs_number": ALICE, "attendance_id": f"A{d}", "arrival_date": d} for d in ("2021-04-01", "2025-03-31")]
    history = [{"nhs_number": ALICE, "event_date": "1998-05-01", "snomed_code": "38341003"}]  # old GP history
    ingest(
        source({"person": [person(ALICE)], "ae_attendance": visits, "gp_event": history}),
        store,
        key=KEY,
        extract_date=EXTRACT,
    )
    result = run(store, stages=STAGES)
    assert result.as_of == tuple(date(y, 3, 31) for y in (2022, 2023, 2024, 2025))


def test_thin_years_at_either_end_are_left_out_and_named_in_the_run_log(
    source: Callable[[Rows], Path], tmp_path: Path
) -> None:
    """A visit a month from April 2021 to March 2025; one stray visit in 2019 and two in 2025-26."""
    store = store_path(tmp_path, "duckdb")
    days = [f"{y}-{m:02d}-15" for y in range(2021, 2026) for m in range(1, 13) if date(2021, 4, 1) <= date(y, m, 15)]
    days = [d for d in days if d < "2025-04-01"]
    days += ["2019-01-10", "2025-05-01", "2025-07-01"]  # a typing error before; stray rows after the window
    visits = [{"nhs_number": ALICE, "attendance_id": f"A{d}", "arrival_date": d} for d in days]
    ingest(source({"person": [person(ALICE)], "ae_attendance": visits}), store, key=KEY, extract_date=date(2026, 6, 30))

    result = run(store, stages=[by_name()["population"]])

    assert result.as_of == tuple(date(y, 3, 31) for y in (2022, 2023, 2024, 2025))
    assert [(y.year_end, y.rows) for y in result.left_out] == [(date(2019, 3, 31), 1), (date(2026, 3, 31), 2)]
    log = read_table(store, "run_log").filter(command="run", metric="year_left_out")
    named = dict(zip(log["item"], log["value"], strict=True))
    assert named == {"2019-03-31": 1, "2026-03-31": 2}
    assert all("under 25% of the busiest year's 12" in d for d in log["detail"])


def test_given_as_of_dates_leave_no_year_out(source: Callable[[Rows], Path], tmp_path: Path) -> None:
    store = store_path(tmp_path, "duckdb")
    visits = [{"nhs_number": ALICE, "attendance_id": "A1", "arrival_date": "2019-01-10"}]
    ingest(source({"person": [person(ALICE)], "ae_attendance": visits}), store, key=KEY, extract_date=EXTRACT)
    result = run(store, as_of=(date(2024, 3, 31),), stages=[by_name()["population"]])
    assert result.as_of == (date(2024, 3, 31),) and result.left_out == ()


@pytest.mark.parametrize(
    ("people", "per_slice", "slices"), [(10, 3, 4), (10, 10, 1), (10, 1, 10), (0, 5, 1), (1060, 1000, 2)]
)
def test_person_slices_split_the_population_into_disjoint_ranges(people: int, per_slice: int, slices: int) -> None:
    import polars as pl

    from openphm.pipeline.slices import person_slices

    ids = [f"p{i:05d}" for i in range(people)]
    population = nw.from_native(
        pl.LazyFrame({"person_id": ids + ids[:3], "as_of": [1] * people + [2] * min(3, people)})
    )
    parts = person_slices(population, per_slice)
    assert len(parts) == slices
    found = [
        part.of(population.filter(nw.col("as_of") == 1)).collect().get_column("person_id").to_list() for part in parts
    ]
    assert sorted(p for part in found for p in part) == ids  # every person in exactly one slice
    assert max(len(f) for f in found) <= per_slice


def test_a_table_without_people_is_used_whole_by_every_slice() -> None:
    import polars as pl

    from openphm.pipeline.slices import PersonSlice

    lookup = nw.from_native(pl.LazyFrame({"lsoa_code": ["E01", "E02"], "score": [1.0, 2.0]}))
    assert PersonSlice("a", "b").of(lookup).collect().shape == (2, 2)


def _facts(tables: dict[str, nw.LazyFrame], context: object) -> dict[str, nw.LazyFrame]:
    import pyarrow as pa

    people = tables["population"].select("person_id").collect().shape[0]
    facts = pa.table({"item": ["people", "absent_table"], "metric": ["n", "not_available"], "value": [people, 1.0]})
    return {"noted": tables["population"].select("person_id", "as_of"), "facts": context.engine.frame(facts)}  # type: ignore[attr-defined]


@pytest.mark.parametrize("same_facts", [False, True])
def test_a_sliced_stage_sums_its_counted_facts_and_keeps_one_copy_of_the_same_facts(
    source: Callable[[Rows], Path], tmp_path: Path, same_facts: bool
) -> None:
    store = store_path(tmp_path, "duckdb")
    people = [person(ALICE), person(BOB)]
    ingest(source({"person": people}), store, key=KEY, extract_date=EXTRACT)
    noted = Stage(
        "noted", ("population",), (_people("noted"),), _facts, facts=("facts",), per_person=True, same_facts=same_facts
    )
    run(
        store,
        as_of=(date(2024, 3, 31),),
        stages=[by_name()["population"], noted],
        options=RunOptions(people_per_slice=1),
    )
    log = read_table(store, "run_log").filter(command="run", step="stage")
    rows = {(r["item"], r["metric"]): r["value"] for r in log.iter_rows(named=True)}
    assert read_table(store, "noted").height == 2  # two slices of one person, appended
    assert rows[("noted:people", "n")] == (1 if same_facts else 2)
    assert rows[("noted:absent_table", "not_available")] == (1 if same_facts else 2)
