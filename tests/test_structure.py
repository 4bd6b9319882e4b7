"""The pipeline's structure: declared output tables checked by the runner, an explicit stage list, typed options."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import subprocess
import sys
from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path

import narwhals as nw
import polars as pl
import pytest
import typer

from openphm import api
from openphm.cli import app
from openphm.errors import PipelineError
from openphm.ingest import ingest
from openphm.options import RunOptions
from openphm.pipeline import RunContext, Stage, run
from openphm.pipeline.schema import Column, Table, columns
from openphm.stages import STAGES, by_name
from openphm.tables import DECLARED, SEGMENT
from tests.support.sources import ALICE, BOB, EXTRACT, KEY, person, read_table, store_path

Rows = dict[str, list[dict[str, object]]]

ADULTS = Table(
    "adults",
    "person x as_of",
    columns(
        ("person_id", nw.String, "the person"),
        ("as_of", nw.Date, "the date"),
        ("age", nw.Int64, "age at as_of"),
    ),
)


def _adults(change: Callable[[nw.LazyFrame], nw.LazyFrame]) -> Stage:
    def compute(tables: Mapping[str, nw.LazyFrame | None], context: RunContext) -> Mapping[str, nw.LazyFrame]:
        population = tables["population"]
        assert population is not None
        return {"adults": change(population.filter(nw.col("age") >= 18).select(*ADULTS.names))}

    return Stage("adults", ("population",), (ADULTS,), compute)


@pytest.mark.parametrize("engine", ["duckdb", "polars"])
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop("age"), "stage adults: table 'adults' has no column 'age' (declared integer)"),
        (lambda f: f.with_columns(nw.col("age").cast(nw.Float64)), "column 'age' is Float64, declared integer"),
        (lambda f: f.with_columns(nw.lit(1).alias("shoe_size")), "column 'shoe_size' is not declared"),
    ],
    ids=["missing", "retyped", "undeclared"],
)
def test_a_table_that_differs_from_its_declaration_fails_the_stage_naming_the_column(
    source: Callable[[Rows], Path],
    tmp_path: Path,
    engine: str,
    change: Callable[[nw.LazyFrame], nw.LazyFrame],
    message: str,
) -> None:
    store = store_path(tmp_path, engine)
    ingest(source({"person": [person(ALICE), person(BOB)]}), store, key=KEY, engine=engine, extract_date=EXTRACT)
    with pytest.raises(PipelineError) as raised:
        run(store, stages=[by_name()["population"], _adults(change)], engine=engine, as_of=(date(2024, 3, 31),))
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)
    assert "adults" not in read_table(store, "run_log", engine)["item"].to_list()  # the store was not published


def test_a_table_as_declared_is_written(source: Callable[[Rows], Path], tmp_path: Path) -> None:
    store = store_path(tmp_path, "duckdb")
    ingest(source({"person": [person(ALICE), person(BOB)]}), store, key=KEY, extract_date=EXTRACT)
    run(store, stages=[by_name()["population"], _adults(lambda f: f)], as_of=(date(2024, 3, 31),))
    assert read_table(store, "adults").columns == list(ADULTS.names)


def test_columns_named_by_content_are_checked_by_the_type_of_their_family() -> None:
    flags = Table(
        "flags", "person", columns(("person_id", nw.String, "the person")), more=Column("<x>", nw.Boolean, "x")
    )
    assert flags.mismatch(nw.from_native(pl.LazyFrame({"person_id": ["a"], "asthma": [True]})).collect_schema()) is None
    schema = nw.from_native(pl.LazyFrame({"person_id": ["a"], "asthma": [1]})).collect_schema()
    assert flags.mismatch(schema) == "column 'asthma' is Int64, declared true/false (<x>)"
    assert SEGMENT.more is not None and SEGMENT.more.dtype == nw.Boolean


def test_a_column_declared_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="'age' is declared twice"):
        Table("t", "row", columns(("age", nw.Int64, "a"), ("age", nw.Int64, "b")))


def test_every_stage_table_is_declared_once_and_every_declaration_is_written_by_a_stage() -> None:
    written = [t for s in STAGES for t in s.tables]
    assert sorted(t.name for t in written) == sorted(DECLARED)
    assert all(DECLARED[t.name] is t for t in written)
    assert all(c.meaning for t in written for c in t.columns)


def test_the_stage_list_is_explicit_and_survives_a_reload() -> None:
    import openphm.population.stage
    import openphm.stages

    before = [s.name for s in openphm.stages.STAGES]
    importlib.reload(openphm.population.stage)  # a notebook re-running a cell: no "registered twice"
    reloaded = importlib.reload(openphm.stages)
    assert [s.name for s in reloaded.STAGES] == before
    assert len(set(before)) == len(before) == 13
    assert reloaded.by_name()["population"] is openphm.population.stage.population


def test_the_runner_imports_no_stage_package() -> None:
    code = (
        "import sys, openphm.pipeline\n"
        "stages = ('activity', 'analytics', 'cohorts', 'population', 'registers', 'risk', 'segments', 'stages')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[1:2] and m.split('.')[1] in stages))"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "[]"


def test_every_run_option_has_a_keyword_of_api_run_and_a_flag_of_phm_run() -> None:
    fields = {f.name: f.default for f in dataclasses.fields(RunOptions)}
    keywords = inspect.signature(api.run).parameters
    assert {name: keywords[name].default for name in fields} == fields
    command = next(c for c in typer.main.get_command(app).commands.values() if c.name == "run")  # type: ignore[attr-defined]  # a Typer app with commands is a click Group
    flags = {p.name: p.default for p in command.params}
    assert {name: flags[name] for name in fields} == fields


def test_options_are_checked_when_made() -> None:
    with pytest.raises(ValueError, match="people_per_slice"):
        RunOptions(people_per_slice=0)
    with pytest.raises(ValueError, match="cohort_as_of"):
        RunOptions(cohort_as_of="first")  # type: ignore[arg-type]  # a wrong value on purpose
    with pytest.raises(dataclasses.FrozenInstanceError):
        RunOptions().codelists = Path("x")  # type: ignore[misc]  # frozen on purpose
