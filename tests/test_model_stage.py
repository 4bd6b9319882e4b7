"""The admission_risk stage: which model it applies, what it writes, and the outcome definition."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import narwhals as nw
import polars as pl
import pytest

from openphm.codes import load_definitions
from openphm.engine import open_store
from openphm.errors import StoreError
from openphm.ingest import ingest
from openphm.ingest.pseudonymise import KeyedHash
from openphm.options import RunOptions
from openphm.pipeline import run
from openphm.risk.model.features import with_outcome
from openphm.risk.model.publish import train_store
from openphm.risk.model.train import train
from openphm.stages import by_name
from tests.support.model import ADMISSION_RISK, AS_OF, STAGES, build_store
from tests.support.sources import ALICE, BOB, CAROL, DAVE, EXTRACT, KEY, person, read_table, store_path

Rows = dict[str, list[dict[str, object]]]
CONDITIONS = [d.id for d in load_definitions().values() if d.kind == "condition"]


def _stages(*names: str) -> list:
    return [s for name, s in by_name().items() if name in (names or STAGES)]


def _model_table(store: Path, engine: str) -> pl.DataFrame:
    return read_table(store, "admission_risk_model", engine)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_store(tmp_path_factory.mktemp("stage"), "duckdb")


def test_without_a_model_the_stage_trains_one_as_phm_risk_train_would(built: Path) -> None:
    scores = read_table(built, "admission_risk")
    population = read_table(built, "population").filter(pl.col("in_population"))
    assert scores.height == population.height
    assert scores.columns == ["person_id", "as_of", "admission_risk", "risk_centile", "top5", "model_version"]
    applied = _model_table(built, "duckdb")
    assert applied["model_source"].unique().to_list() == ["trained in this run on as_of 2023-03-31"]
    eng = open_store(built, "duckdb")
    try:
        tables = {n: eng.table(n) for n in ("population", "register", "activity", "apc_episode")}
        expected = train(tables, eng, AS_OF, EXTRACT, seed=1, condition_ids=CONDITIONS, validate=False).model
    finally:
        eng.close()
    assert scores["model_version"].unique().to_list() == [expected.version]
    assert applied["model_version"].unique().to_list() == [expected.version]


def test_centiles_and_top5_follow_the_risk(built: Path) -> None:
    scores = read_table(built, "admission_risk")
    for _, year in scores.group_by("as_of"):
        ordered = year.sort("admission_risk")
        assert ordered["risk_centile"].is_sorted()
        assert ordered["risk_centile"].min() >= 1 and ordered["risk_centile"].max() == 100
        assert (year["top5"] == (year["risk_centile"] > 95)).all()
        assert 0.05 <= year["top5"].mean() < 0.08  # ties at the boundary all go in
        assert year.filter("top5")["admission_risk"].min() >= year.filter(~pl.col("top5"))["admission_risk"].max()


def test_a_trained_model_in_the_store_or_a_file_is_applied(built: Path, tmp_path: Path) -> None:
    store = tmp_path / "copy.duckdb"
    shutil.copy2(built, store)
    published = train_store(store, out=tmp_path / "models", seed=1)
    run(store, as_of=AS_OF, stages=_stages(*ADMISSION_RISK))
    applied = _model_table(store, "duckdb")
    assert applied["model_source"].unique().to_list() == ["store table admission_model"]
    assert read_table(store, "admission_risk")["model_version"].unique().to_list() == [published.model_version]
    assert read_table(store, "admission_model")["model_version"].unique().to_list() == [published.model_version]
    run(store, as_of=AS_OF, stages=_stages(*ADMISSION_RISK), options=RunOptions(admission_model=published.files.model))
    assert _model_table(store, "duckdb")["model_source"].unique().to_list() == [f"file {published.files.model.name}"]


def test_a_model_needing_an_absent_table_is_refused(built: Path, tmp_path: Path) -> None:
    store = tmp_path / "store.duckdb"
    ingest(_source(tmp_path, {"person": [person(ALICE)]}), store, key=KEY, extract_date=EXTRACT)
    trained_store = tmp_path / "trained.duckdb"
    shutil.copy2(built, trained_store)
    published = train_store(trained_store, out=tmp_path / "models")
    with pytest.raises(StoreError, match="uses table 'activity'"):
        run(
            store,
            as_of=AS_OF,
            stages=_stages("population", *ADMISSION_RISK),
            options=RunOptions(admission_model=published.files.model),
        )


def test_no_complete_outcome_year_leaves_risks_null_and_says_why(tmp_path: Path) -> None:
    store = store_path(tmp_path, "polars")
    ingest(
        _source(tmp_path, {"person": [person(ALICE), person(BOB)]}),
        store,
        key=KEY,
        engine="polars",
        extract_date=EXTRACT,
    )
    run(store, engine="polars", as_of=(date(2025, 3, 31),), stages=_stages())
    scores = read_table(store, "admission_risk", "polars")
    assert scores.height == 2 and scores["admission_risk"].is_null().all() and scores["model_version"].is_null().all()
    (source,) = _model_table(store, "polars")["model_source"].to_list()
    assert source.startswith("none: ") and "apc_episode" in source


def _source(tmp_path: Path, tables: Rows) -> Path:
    from tests.support.sources import write_source

    return write_source(tmp_path / f"source-{len(list(tmp_path.iterdir()))}", tables)


def _episode(nhs: str, episode: str, day: str, method: str = "21") -> dict[str, object]:
    return {
        "nhs_number": nhs,
        "episode_id": episode,
        "admission_date": day,
        "discharge_date": day,
        "admission_method": method,
    }


@pytest.mark.parametrize("engine", ["duckdb", "polars"])
def test_outcome_is_an_emergency_admission_in_the_365_days_after_as_of(tmp_path: Path, engine: str) -> None:
    as_of = date(2023, 3, 31)  # the window is 2023-04-01 .. 2024-03-30 (2024 has 29 February)
    tables: Rows = {
        "person": [person(ALICE), person(BOB), person(CAROL), person(DAVE, date_of_death="2023-06-01")],
        "apc_episode": [
            _episode(ALICE, "A1", "2023-03-31"),  # on as_of: before the window
            _episode(ALICE, "A2", "2024-03-31"),  # day 366: after it
            _episode(BOB, "B1", "2024-03-30", "28"),  # day 365, emergency
            _episode(CAROL, "C1", "2023-05-01", "11"),  # elective: not the outcome
            _episode(CAROL, "C2", "2023-05-02", "31"),  # maternity: not the outcome
        ],
    }
    store = store_path(tmp_path, engine)
    ingest(_source(tmp_path, tables), store, key=KEY, engine=engine, extract_date=EXTRACT)
    run(store, engine=engine, as_of=(as_of,), stages=_stages("population"))
    eng = open_store(store, engine)
    try:
        population = eng.table("population").filter(nw.col("in_population")).select("person_id", "as_of")
        outcome = with_outcome(population, eng.table("apc_episode"), eng, [as_of]).collect(backend="polars")
    finally:
        eng.close()
    names = dict(zip(KeyedHash(KEY)([ALICE, BOB, CAROL, DAVE]), ["alice", "bob", "carol", "dave"], strict=True))
    admitted = {names[p]: a for p, a in nw.to_native(outcome).select("person_id", "admitted").rows()}
    assert admitted == {"alice": False, "bob": True, "carol": False, "dave": False}  # died without admission: no


def test_the_stages_choose_the_model_once_score_in_slices_and_rank_everyone() -> None:
    stages = by_name()
    model, score, rank = (stages[name] for name in ADMISSION_RISK)
    assert model.inputs == ("population",) and not model.per_person
    assert {"register", "activity", "risk", "apc_episode", "admission_model"} <= set(model.optional_inputs)
    assert model.outputs == ("admission_risk_model",)
    assert score.per_person and "admission_risk_model" in score.inputs and score.outputs == ("admission_risk_score",)
    assert rank.inputs == ("admission_risk_score",) and rank.outputs == ("admission_risk",) and not rank.per_person
