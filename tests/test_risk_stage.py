"""The risk stage: one row per population row, hospital lookbacks, and the same table on every engine."""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import as_file
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from openphm.content import content_path
from openphm.ingest import ingest
from openphm.pipeline import run
from openphm.stages import by_name
from tests.support.risk import Rows, nhs, risk_table
from tests.support.sources import ENGINES, EXTRACT, KEY, person, read_table, store_path

COLUMNS = [
    "hfrs",
    "hfrs_band",
    "efi",
    "efi_deficits",
    "efi_category",
    "polypharmacy",
    "efi_eligible",
    "charlson",
    "elixhauser",
    "cms",
    "cms_conditions",
    "qrisk3_eligible",
    "qrisk3",
]


def _admission(
    who: str, episode: str, when: str, codes: list[str]
) -> tuple[dict[str, object], list[dict[str, object]]]:
    row = {
        "nhs_number": who,
        "episode_id": episode,
        "admission_date": when,
        "discharge_date": when,
        "admission_method": "21",
    }
    return row, [{"episode_id": episode, "position": i + 1, "icd10_code": c} for i, c in enumerate(codes)]


def test_hospital_lookbacks(source: Callable[[Rows], Path], tmp_path: Path) -> None:
    # as_of 2024-03-31: HFRS counts admissions after 2022-04-01 (730 days), Charlson/Elixhauser after 2019-04-01.
    names = {nhs(200 + i): name for i, name in enumerate(["recent", "edge", "older", "oldest", "none"])}
    who = {v: k for k, v in names.items()}
    admissions = [
        _admission(who["recent"], "E1", "2024-03-31", ["F00.1", "W19X"]),  # on as_of: counts
        _admission(who["recent"], "E2", "2023-01-10", ["F00.9", "I50.0"]),  # F00 again: counted once
        _admission(who["edge"], "E3", "2022-04-01", ["F00.1"]),  # exactly 730 days before: out of HFRS
        _admission(who["edge"], "E4", "2022-04-02", ["W19"]),  # 729 days: in
        _admission(who["older"], "E5", "2020-01-01", ["I50.0", "C78.0"]),  # in the five years only
        _admission(who["oldest"], "E6", "2019-04-01", ["I50.0"]),  # exactly 1,826 days: out
        _admission(who["recent"], "E7", "2024-04-01", ["G81.0"]),  # after as_of
    ]
    tables: Rows = {
        "person": [person(p) for p in names],
        "apc_episode": [a for a, _ in admissions],
        "apc_diagnosis": [d for _, ds in admissions for d in ds],
    }
    result = risk_table(source, tmp_path, tables, names)
    assert (result["recent"]["hfrs"], result["recent"]["hfrs_band"]) == (10.3, "intermediate")
    assert (result["edge"]["hfrs"], result["edge"]["hfrs_band"]) == (3.2, "low")
    assert result["older"]["hfrs"] == 0.0 and result["none"]["hfrs"] == 0.0
    assert (result["recent"]["charlson"], result["recent"]["elixhauser"]) == (4, 7)  # dementia 2, CHF 2; CHF 7
    assert (result["older"]["charlson"], result["older"]["elixhauser"]) == (8, 19)  # CHF 2 + metastatic 6; 7 + 12
    assert (result["oldest"]["charlson"], result["none"]["charlson"]) == (0, 0)
    assert result["none"]["cms"] == 0.0 and result["none"]["efi_category"] == "fit"


def _demo(engine: str, tmp_path: Path) -> pl.DataFrame:
    store = store_path(tmp_path, engine)
    with as_file(content_path("fixtures", "demo")) as fixture:
        ingest(Path(fixture), store, key=KEY, engine=engine, extract_date=EXTRACT)
    stages = [s for name, s in by_name().items() if name in ("population", "register", "measures", "risk")]
    run(store, engine=engine, stages=stages)
    risk = read_table(store, "risk", engine)
    population = read_table(store, "population", engine)
    assert risk.height == population.height and risk.select("person_id", "as_of").is_duplicated().sum() == 0
    assert [c for c in COLUMNS if c not in risk.columns] == []
    return risk.sort("person_id", "as_of")


@pytest.fixture(scope="module")
def duckdb_risk(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    return _demo("duckdb", tmp_path_factory.mktemp("duckdb"))


def test_demo_has_every_score(duckdb_risk: pl.DataFrame) -> None:
    assert duckdb_risk["charlson"].max() > 0 and duckdb_risk["elixhauser"].max() > 0  # type: ignore[operator]
    assert duckdb_risk["cms"].max() > 0 and duckdb_risk["efi_deficits"].max() > 1  # type: ignore[operator]
    assert duckdb_risk["hfrs"].max() > 0  # type: ignore[operator]
    eligible = duckdb_risk.filter(pl.col("qrisk3_eligible"))
    assert eligible.height > 0 and eligible["qrisk3"].null_count() == 0
    assert duckdb_risk.filter(~pl.col("qrisk3_eligible"))["qrisk3"].is_null().all()


@pytest.mark.parametrize("engine", [e for e in ENGINES if e != "duckdb"])
def test_the_same_table_on_every_engine(
    engine: str, duckdb_risk: pl.DataFrame, tmp_path_factory: pytest.TempPathFactory
) -> None:
    other = _demo(engine, tmp_path_factory.mktemp(engine))
    assert other.schema == duckdb_risk.schema
    assert_frame_equal(other, duckdb_risk, check_exact=False, rel_tol=1e-9, abs_tol=1e-12)


def test_scores_without_their_source_tables_are_null(source: Callable[[Rows], Path], tmp_path: Path) -> None:
    who = nhs(300)
    row = risk_table(source, tmp_path, {"person": [person(who)]}, {who: "alone"})["alone"]
    assert (row["hfrs"], row["hfrs_band"], row["charlson"], row["elixhauser"]) == (None, None, None, None)
    assert row["polypharmacy"] is None
    # the register exists (empty: nothing coded), so the eFI and CMS are known to be 0
    assert (row["efi_deficits"], row["efi_category"], row["cms"]) == (0, "fit", 0.0)
