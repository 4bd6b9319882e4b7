"""qrisk3_inputs on crafted people, through ingest and a run of the stages it reads, on every engine."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import narwhals as nw
import polars as pl
import pytest

from openphm.engine import open_store
from openphm.ingest import ingest
from openphm.ingest.pseudonymise import KeyedHash
from openphm.options import RunOptions
from openphm.pipeline import RunContext, run
from openphm.risk.qrisk3 import FLAGS, qrisk3_score
from openphm.risk.qrisk3_inputs import OUTPUT, qrisk3_inputs
from openphm.stages import by_name
from tests.support.registers import gp
from tests.support.sources import ALICE, BOB, CAROL, DAVE, ENGINES, EXTRACT, KEY, person, store_path

Rows = dict[str, list[dict[str, object]]]
EVE = "9990000050"
AS_OF = date(2024, 3, 31)
READ = ("population", "register", "measure", "gp_medication", "gp_event", "apc_episode", "apc_diagnosis")
BMI, SBP, RATIO, EGFR, SMOKER = "60621009", "271649006", "166842003", "1011481000000105", "77176002"
AF, HYPERTENSION, CHD, T1, T2 = "120041000119109", "10562009", "10273003", "1142044000", "1196922005"
MIGRAINE, IMPOTENCE, FAMILY_HISTORY = "124001000119104", "397803000", "134439009"
ANTIHYPERTENSIVE, STEROID, ANTIPSYCHOTIC, STATIN = (
    "100311000001106",
    "10409611000001103",
    "10664611000001100",
    "10294811000001100",
)


def reading(nhs: str, when: str, code: str, value: object) -> dict[str, object]:
    return {**gp(nhs, when, code), "value": value}


def issue(nhs: str, when: str, dmd: str) -> dict[str, object]:
    return {"nhs_number": nhs, "issue_date": when, "dmd_code": dmd, "bnf_code": None}


TABLES: Rows = {
    "person": [
        person(ALICE, date_of_birth="1960-06-01", sex="F", ethnicity="H"),
        person(BOB, date_of_birth="1970-01-01", sex="M", ethnicity="Z"),
        person(CAROL, date_of_birth="1960-01-01", sex="F", ethnicity="N"),
        person(DAVE, date_of_birth="2003-01-01", sex="M", ethnicity="A"),
        person(EVE, date_of_birth="1970-01-01", sex="U", ethnicity="A"),
    ],
    "gp_event": [
        gp(ALICE, "2020-01-01", AF),
        gp(ALICE, "2019-01-01", HYPERTENSION),
        gp(ALICE, "2018-01-01", T2),
        gp(ALICE, "2015-01-01", MIGRAINE),
        gp(ALICE, "2010-01-01", FAMILY_HISTORY),
        gp(ALICE, "2023-06-01", SMOKER),
        reading(ALICE, "2023-01-01", BMI, 31.2),
        reading(ALICE, "2022-01-01", SBP, 150),
        reading(ALICE, "2023-01-01", SBP, 140),
        reading(ALICE, "2023-01-01", RATIO, 4.5),
        gp(BOB, "2015-01-01", IMPOTENCE),
        gp(BOB, "2016-01-01", T2),
        gp(BOB, "2020-01-01", T1),  # coded after type 2: type 1 wins
        reading(BOB, "2023-01-15", EGFR, 48.0),
        reading(BOB, "2023-06-01", EGFR, 42.0),  # CKD stage 3 from eGFR alone: below 60 for 137 days
        gp(CAROL, "2012-01-01", CHD),  # existing CVD: not eligible
        gp(CAROL, "2013-01-01", IMPOTENCE),  # a woman's code does not reach b_impotence2
        gp(EVE, "2020-01-01", AF),
    ],
    "gp_medication": [
        issue(ALICE, "2024-01-10", ANTIHYPERTENSIVE),
        issue(ALICE, "2023-11-01", STEROID),
        issue(ALICE, "2024-02-01", STEROID),  # two issues in six months: regular
        issue(ALICE, "2024-03-01", ANTIPSYCHOTIC),  # one issue only: not regular
        issue(ALICE, "2023-05-01", STATIN),
        issue(BOB, "2024-03-01", ANTIHYPERTENSIVE),  # treatment without a hypertension code: not b_treatedhyp
        issue(BOB, "2023-09-30", STEROID),  # one day before the 183-day window
        issue(BOB, "2024-03-31", STEROID),
    ],
}


def _inputs(
    source: Callable[[Rows], Path], tmp_path: Path, engine: str, options: RunOptions | None = None
) -> pl.DataFrame:
    store = store_path(tmp_path, engine)
    ingest(source(TABLES), store, key=KEY, engine=engine, extract_date=EXTRACT)
    stages = [s for name, s in by_name().items() if name in ("population", "register", "measures")]
    run(store, engine=engine, as_of=(AS_OF,), stages=stages)
    eng = open_store(store, engine)
    try:
        context = RunContext((AS_OF,), "planning", "test", eng, options or RunOptions())
        tables = {t: eng.table(t) if eng.has_table(t) else None for t in READ}
        scored = qrisk3_score(qrisk3_inputs(tables, context))
        frame = nw.to_native(scored.collect(backend="polars"))
    finally:
        eng.close()
    names = dict(
        zip(KeyedHash(KEY)([ALICE, BOB, CAROL, DAVE, EVE]), ["alice", "bob", "carol", "dave", "eve"], strict=True)
    )
    return frame.with_columns(pl.col("person_id").replace_strict(names)).sort("person_id")


def _row(frame: pl.DataFrame, who: str) -> dict[str, object]:
    rows = frame.filter(person_id=who).to_dicts()
    assert len(rows) == 1
    return rows[0]


@pytest.mark.parametrize("engine", ENGINES)
def test_inputs_from_registers_measures_and_medicines(
    source: Callable[[Rows], Path], tmp_path: Path, engine: str
) -> None:
    frame = _inputs(source, tmp_path, engine)
    assert list(frame.columns[: len(OUTPUT)]) == list(OUTPUT)
    alice = _row(frame, "alice")
    assert alice["sex"] == "female" and alice["age"] == 63 and alice["ethrisk"] == 2
    assert alice["b_AF"] == 1 and alice["b_treatedhyp"] == 1 and alice["b_type2"] == 1 and alice["b_type1"] == 0
    assert alice["b_corticosteroids"] == 1 and alice["b_atypicalantipsy"] == 0
    assert alice["b_migraine"] == 1 and alice["fh_cvd"] == 1 and alice["b_impotence2"] == 0
    assert alice["b_renal"] == 0 and alice["b_ra"] == 0 and alice["b_semi"] == 0 and alice["b_sle"] == 0
    assert alice["bmi"] == pytest.approx(31.2) and alice["sbp"] == pytest.approx(140.0)
    assert alice["rati"] == pytest.approx(4.5) and alice["sbps5"] == pytest.approx(7.0710678)
    assert alice["smoke_cat"] == 2 and alice["town"] is None
    assert alice["qrisk3_on_statin"] and alice["qrisk3_eligible"]
    assert alice["qrisk3_town_imputed"] and not alice["qrisk3_bmi_imputed"] and not alice["qrisk3_ethrisk_imputed"]
    assert alice["qrisk3"] is not None and 0 < alice["qrisk3"] < 100

    bob = _row(frame, "bob")
    assert bob["sex"] == "male" and bob["ethrisk"] is None and bob["qrisk3_ethrisk_imputed"]
    assert bob["b_impotence2"] == 1 and bob["b_renal"] == 1
    assert bob["b_type1"] == 1 and bob["b_type2"] == 0
    assert bob["b_treatedhyp"] == 0 and bob["b_corticosteroids"] == 0
    assert bob["bmi"] is None and all(bob[f] for f in FLAGS) and bob["qrisk3_imputed"]
    assert bob["qrisk3_eligible"] and bob["qrisk3"] is not None

    carol = _row(frame, "carol")
    assert carol["b_impotence2"] == 0 and not carol["qrisk3_eligible"]
    assert carol["qrisk3"] is None and carol["qrisk3_imputed"] is None
    dave, eve = _row(frame, "dave"), _row(frame, "eve")
    assert dave["age"] == 21 and not dave["qrisk3_eligible"] and dave["qrisk3"] is None
    assert eve["sex"] is None and eve["b_AF"] == 1 and not eve["qrisk3_eligible"] and eve["qrisk3"] is None


def test_score_of_derived_inputs_equals_the_batch_score(source: Callable[[Rows], Path], tmp_path: Path) -> None:
    """The pipeline and the calculator agree: Alice's derived inputs typed into a one-row frame score the same."""
    frame = _inputs(source, tmp_path, "duckdb")
    alice = _row(frame, "alice")
    row = {k: alice[k] for k in OUTPUT if k not in ("person_id", "as_of", "qrisk3_on_statin", "qrisk3_eligible")}
    again = nw.to_native(qrisk3_score(nw.from_native(pl.DataFrame([row]).lazy())).collect())
    assert again["qrisk3"][0] == pytest.approx(alice["qrisk3"], abs=1e-9)


def test_townsend_from_a_supplied_table(source: Callable[[Rows], Path], tmp_path: Path) -> None:
    """With a Townsend score per LSOA, town is filled and no longer flagged; an LSOA not listed stays empty."""
    table = tmp_path / "townsend.csv"
    table.write_text("lsoa_code,townsend\nE01000001,3.25\n", encoding="utf-8")
    frame = _inputs(source, tmp_path, "duckdb", RunOptions(townsend=table))
    alice = _row(frame, "alice")
    assert alice["town"] == pytest.approx(3.25) and not alice["qrisk3_town_imputed"]
    without = _inputs(source, tmp_path / "again", "duckdb")
    assert _row(without, "alice")["qrisk3"] != pytest.approx(alice["qrisk3"])


def test_a_store_with_people_only(source: Callable[[Rows], Path], tmp_path: Path) -> None:
    """No events, medicines or measurements at all: everyone aged 25-84 is scored on substitutes, all flagged."""
    store = store_path(tmp_path, "duckdb")
    ingest(source({"person": TABLES["person"]}), store, key=KEY, engine="duckdb", extract_date=EXTRACT)
    stages = [s for name, s in by_name().items() if name in ("population", "register", "measures")]
    run(store, engine="duckdb", as_of=(AS_OF,), stages=stages)
    eng = open_store(store, "duckdb")
    try:
        context = RunContext((AS_OF,), "planning", "test", eng)
        tables = {t: eng.table(t) if eng.has_table(t) else None for t in READ}
        frame = nw.to_native(qrisk3_score(qrisk3_inputs(tables, context)).collect(backend="polars"))
    finally:
        eng.close()
    assert frame.height == 5 and frame["qrisk3_eligible"].sum() == 3  # Dave is 21, Eve's sex is unknown
    scored = frame.filter(pl.col("qrisk3_eligible"))
    assert scored["qrisk3"].null_count() == 0 and scored["qrisk3_imputed"].all()
    assert (scored.select([c for c in scored.columns if c.startswith("b_")]).sum_horizontal() == 0).all()
