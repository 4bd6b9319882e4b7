"""`phm cohort list` and `phm cohort run`: tables written, sizes and 'not available' said in one line each."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl

from tests.support.cli import one_line_error, phm
from tests.support.cohorts import NHS, WHO, Rows, bp_events, people, pipeline
from tests.support.sources import read_table


def test_list_shows_every_shipped_cohort() -> None:
    result = phm("cohort", "list")
    assert result.returncode == 0, result.stderr
    for words in ("severe_frailty", "qrisk3_no_statin", "efi_severe", "Clegg", "NICE"):
        assert words in result.stdout


def test_list_refuses_a_malformed_definition_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text(
        "name: mine\ntitle: t\ninclude:\n"
        "  - {name: busy, type: activity, column: ae_attendances, op: '=>', value: 5}\n",
        encoding="utf-8",
    )
    line = one_line_error(phm("cohort", "list", "--definitions", str(tmp_path)))
    assert "mine.yaml: rule 'busy': field 'op': '=>' is not one of '=='" in line


def test_run_one_cohort_then_all(source: Callable[[Rows], Path], tmp_path: Path) -> None:
    tables: Rows = {"person": people("a", "b", "c", "d", "e", "f"), "gp_event": bp_events()}
    store = pipeline(source, tmp_path, tables)
    before = read_table(store, "cohort_member")
    assert set(before["cohort"]) == {"raised_bp_no_hypertension"}

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "women.yaml").write_text(
        "name: women\ntitle: Women\ninclude:\n  - {name: female, type: demographic, column: sex, op: '==', value: F}\n",
        encoding="utf-8",
    )
    result = phm("cohort", "run", "women", "--store", str(store), "--definitions", str(mine))
    assert result.returncode == 0, result.stderr
    assert "women: redacted people at 2024-03-31" in result.stdout  # 6 people: never printed as 6
    after = read_table(store, "cohort_member")
    assert after.filter(pl.col("cohort") == "women").height == 6  # added
    assert after.filter(pl.col("cohort") != "women").sort(after.columns).equals(before.sort(before.columns))  # kept

    result = phm("cohort", "run", "--all", "--store", str(store))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "raised_bp_no_hypertension: redacted people at 2024-03-31" in lines
    assert "severe_frailty: not available (table risk absent)" in lines
    assert "frequent_uec_users: not available (table activity absent)" in lines
    members = read_table(store, "cohort_member").filter(pl.col("cohort") == "raised_bp_no_hypertension")
    assert {WHO[p] for p in members["person_id"]} == {"a", "c"}
    log = read_table(store, "run_log").filter(pl.col("command") == "cohort")
    assert ("severe_frailty", "not_available") in log.select("item", "metric").rows()
    assert all(NHS["a"] not in str(v) for v in log.rows())


def test_run_refuses_unknown_names_and_stores_without_a_run(source: Callable[[Rows], Path], tmp_path: Path) -> None:
    store = pipeline(source, tmp_path, {"person": people("a")})
    assert "no cohort named 'nope'" in one_line_error(phm("cohort", "run", "nope", "--store", str(store)))
    assert "give one cohort name, or --all" in one_line_error(phm("cohort", "run", "--store", str(store)))
    missing = tmp_path / "none.duckdb"
    assert "phm ingest" in one_line_error(phm("cohort", "run", "--all", "--store", str(missing)))
