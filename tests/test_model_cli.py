"""`phm risk train`: the happy path writes a model file, its card and the store table; errors are one line."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import pytest

from openphm.ingest import ingest
from openphm.pipeline import run
from openphm.stages import by_name
from tests.support.cli import one_line_error, phm
from tests.support.model import build_store
from tests.support.sources import ALICE, EXTRACT, KEY, person, read_table, write_source


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_store(tmp_path_factory.mktemp("cli"), "duckdb")


def test_train_writes_model_card_and_store_table(built: Path, tmp_path: Path) -> None:
    store = tmp_path / "store.duckdb"
    shutil.copy2(built, store)
    result = phm("risk", "train", "--store", str(store), "--seed", "3")
    assert result.returncode == 0, result.stderr
    assert "AUROC" in result.stdout and "calibration slope" in result.stdout
    folder = tmp_path / "store.duckdb.models"
    (model_file,) = [p for p in folder.glob("admission-model-lr-*.json") if ".card." not in p.name]
    version = json.loads(model_file.read_text())["model_version"]
    card = json.loads((folder / f"admission-model-{version}.card.json").read_text())
    assert card["test_as_of"] == "2024-03-31" and card["settings"]["seed"] == 3
    assert {"imd_quintile", "ethnic_group", "sex"} == set(card["groups"])
    assert (folder / f"admission-model-{version}.calibration.svg").read_text().startswith("<svg")
    markdown = (folder / f"admission-model-{version}.card.md").read_text()
    assert f"{card['test']['auroc']:.3f}" in markdown
    assert read_table(store, "admission_model")["model_version"].unique().to_list() == [version]
    log = read_table(store, "run_log").filter(command="risk train")
    assert log.filter(metric="auroc")["value"].to_list() == [card["test"]["auroc"]]


def test_train_into_a_chosen_folder_on_polars(tmp_path: Path) -> None:
    store = build_store(tmp_path, "polars", people=300)
    result = phm("risk", "train", "--store", str(store), "--engine", "polars", "--out", str(tmp_path / "m"))
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "m").glob("*.card.md"))) == 1


def test_store_without_activity_is_refused_in_one_line(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    ingest(write_source(tmp_path / "src", {"person": [person(ALICE)]}), store, key=KEY, extract_date=EXTRACT)
    run(store, stages=[by_name()["population"]])
    line = one_line_error(phm("risk", "train", "--store", str(store)))
    assert "'activity'" in line and "phm run" in line


def test_one_complete_year_is_not_enough_to_validate(built: Path, tmp_path: Path) -> None:
    store = tmp_path / "store.duckdb"
    shutil.copy2(built, store)
    stages = [s for n, s in by_name().items() if n in ("population", "register", "activity")]
    run(store, as_of=(date(2024, 3, 31), date(2025, 3, 31)), stages=stages)
    line = one_line_error(phm("risk", "train", "--store", str(store)))
    assert "two as_of dates" in line and "found 1" in line


def test_missing_store_is_one_line(tmp_path: Path) -> None:
    line = one_line_error(phm("risk", "train", "--store", str(tmp_path / "none.duckdb")))
    assert "no store" in line
