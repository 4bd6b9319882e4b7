"""Explaining a person: the facts that placed them, through the API and the `phm explain` command."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from openphm.segments import ExplainError, explain
from tests.support.cli import one_line_error, phm
from tests.support.segments import AS_OF, LAST, PEOPLE, build
from tests.support.sources import read_table, store_path

NAMES = (
    "ckd4_four_admissions",
    "high_frailty",
    "palliative_cancer",
    "metastatic_heart_failure",
    "nothing",
    "pregnant_asthma",
    "infant",
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    tmp = tmp_path_factory.mktemp("explain")
    path = store_path(tmp, "duckdb")
    ids = build(tmp / "source", path, "duckdb", {n: PEOPLE[n] for n in NAMES})
    return path, ids


def test_organ_failure_is_explained_by_code_measure_and_admissions(store: tuple[Path, dict[str, str]]) -> None:
    path, ids = store
    e = explain(path, ids["ckd4_four_admissions"])
    assert (e.as_of, e.segment, e.need_tier, e.need_band) == (LAST, "organ_failure", 9, "moderate")
    assert e.need_tier_name == "Dominant major chronic condition"
    assert set(e.flags) == {"end_stage_renal_failure", "chronic_kidney_disease"}
    ckd = next(f for f in e.facts if f.supports == "chronic_kidney_disease")
    assert (ckd.code, ckd.system, ckd.date, ckd.setting) == ("129151000119102", "snomed", date(2024, 5, 1), "gp")
    assert ckd.term == "Chronic kidney disease stage 4 due to hypertension"
    assert ckd.condition == "Chronic kidney disease (stage 3-5)"
    renal = {(f.condition, f.value) for f in e.facts if f.supports == "end_stage_renal_failure"}
    assert renal == {("measure.ckd_stage == 4", "4"), ("activity.emergency_admissions >= 4", "4")}
    assert any(f.supports == "need tier 9" and f.condition == "any organ_failure flag" for f in e.facts)
    assert e.not_available == ()


def test_explanations_agree_with_the_stored_segments(store: tuple[Path, dict[str, str]]) -> None:
    path, ids = store
    stored = read_table(path, "segment")
    for name in NAMES:
        for row in stored.filter(pl.col("person_id") == ids[name]).to_dicts():
            e = explain(path, ids[name], row["as_of"])
            assert (e.segment, e.need_tier, e.condition_count) == (
                row["segment"],
                row["need_tier"],
                row["condition_count"],
            )
            assert all(f.supports in e.flags or f.supports.startswith("need tier") for f in e.facts)
            assert {f.supports for f in e.facts} >= set(e.flags)  # every set flag has a reason


def test_rule_facts_carry_the_values_read(store: tuple[Path, dict[str, str]]) -> None:
    path, ids = store
    frail = explain(path, ids["high_frailty"])
    values = {f.condition: f.value for f in frail.facts if f.supports == "high_frailty"}
    assert values == {"population.age >= 65": "75", "risk.hfrs > 15": "15.1"}
    cancer = explain(path, ids["palliative_cancer"])
    reasons = {f.condition for f in cancer.facts if f.supports == "incurable_cancer"}
    assert reasons == {"Palliative care", "Cancer (diagnosed in the last five years)"}
    metastatic = explain(path, ids["metastatic_heart_failure"])
    assert {f.condition for f in metastatic.facts if f.supports == "incurable_cancer"} == {
        "Incurable (metastatic) cancer"
    }
    tier = {f.condition for f in metastatic.facts if f.supports == "need tier 9"}
    assert tier == {"any incurable_cancer flag", "Heart failure"}  # only the parts of the rule that held
    nobody = explain(path, ids["nothing"])
    assert (nobody.segment, nobody.need_tier, nobody.flags, nobody.facts) == ("healthy", 1, (), ())


def test_unknown_person_or_date_is_an_error(store: tuple[Path, dict[str, str]]) -> None:
    path, ids = store
    with pytest.raises(ExplainError, match="unknown person"):
        explain(path, "not-a-pseudonym")
    with pytest.raises(ExplainError, match="no segments as of 2020-01-01"):
        explain(path, ids["nothing"], date(2020, 1, 1))
    with pytest.raises(ExplainError, match="not in the population"):
        explain(path, ids["infant"], AS_OF[0])  # born later


def test_phm_explain_prints_the_why(store: tuple[Path, dict[str, str]]) -> None:
    path, ids = store
    args = ["explain", ids["ckd4_four_admissions"], "--store", str(path), "--as-of", LAST.isoformat()]
    env = {**os.environ, "COLUMNS": "200"}  # a wide terminal, so that no cell of the table wraps
    result = subprocess.run(
        [sys.executable, "-m", "openphm", *args], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Segment: organ_failure" in out
    assert "Need tier: 9 Dominant major chronic condition" in out
    assert "129151000119102" in out and "2024-05-01" in out


def test_phm_explain_unknown_person_is_one_line_exit_2(store: tuple[Path, dict[str, str]]) -> None:
    path, _ = store
    line = one_line_error(phm("explain", "not-a-pseudonym", "--store", str(path)))
    assert "unknown person" in line
    line = one_line_error(phm("explain", "x", "--store", str(path), "--as-of", "2020-02-29"))
    assert "unknown person" in line
    line = one_line_error(phm("explain", "x", "--store", str(path / "absent.duckdb")))
    assert "absent.duckdb" in line or "store" in line
