"""Charlson (Quan 2005 ICD-10 map) against comorbidipy 0.8.0 on 2,800 patients and the R package 'comorbidity'.

comorbidipy gives AIDS/HIV a Quan 2011 weight of 2; Quan 2011 (and R 'comorbidity', and openphm) give 4. So
with Quan weights the two agree on every patient except those with AIDS/HIV, who score exactly 2 more here;
with Charlson's original weights (and age points) they agree on every patient (tests/data/comorbidity).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import duckdb
import narwhals as nw
import polars as pl
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from openphm.cli import app
from openphm.risk.comorbidity import load, score

DATA = Path(__file__).parent / "data" / "comorbidity"
Frame = Callable[[pa.Table], nw.LazyFrame]
R_NAMES = {"mi": "ami", "cpd": "copd"}


@pytest.fixture(params=["polars", "duckdb"])
def frame(request: pytest.FixtureRequest) -> Frame:
    if request.param == "polars":
        return lambda table: nw.from_native(pl.from_arrow(table).lazy())  # type: ignore[arg-type]
    connection = duckdb.connect()
    return lambda table: nw.from_native(connection.from_arrow(table))


def _input() -> pa.Table:
    return pl.read_csv(DATA / "input_icd10_long.csv", schema_overrides={"code": pl.String}).to_arrow()


def _ours(frame: Frame, weights: str, ages: bool = False) -> pl.DataFrame:
    codes = frame(_input())
    scored = score(codes.select("id", "code"), load("charlson"), frame, weights, ages=codes if ages else None)
    return scored.collect("polars").to_native()


def test_quan_weights_agree_with_comorbidipy_except_aids_weight(frame: Frame) -> None:
    ours = _ours(frame, "quan")
    reference = pl.read_csv(DATA / "comorbidipy080_charlson_quan_map__quan_weights.csv")
    joined = ours.join(reference, on="id", suffix="_ref")
    assert joined.height == ours.height == reference.height == 2800
    for comorbidity in load("charlson").comorbidities:  # every flag of every patient, after the hierarchy
        assert (joined[comorbidity] == joined[f"{comorbidity}_ref"]).all(), comorbidity
    same = joined.filter(pl.col("score") == pl.col("comorbidity_score"))
    differ = joined.filter(pl.col("score") != pl.col("comorbidity_score"))
    assert (same.height, differ.height) == (2665, 135)
    assert (differ["aids"] == 1).all() and (differ["score"] - differ["comorbidity_score"] == 2).all()
    assert (same["aids"] == 0).all()


def test_original_weights_with_age_points_agree_with_comorbidipy_on_every_patient(frame: Frame) -> None:
    ours = _ours(frame, "charlson", ages=True)
    reference = pl.read_csv(DATA / "comorbidipy080_charlson_quan_map__charlson_weights_age.csv")
    joined = ours.join(reference, on="id", suffix="_ref")
    assert joined.height == 2800
    assert (joined["score"] == joined["comorbidity_score"]).sum() == 2800
    assert (joined["age_adjusted_score"] == joined["age_adj_comorbidity_score"]).sum() == 2800
    assert set(joined["age_points"].unique()) == {0, 1, 2, 3, 4}


def test_shipped_map_and_weights_are_those_of_r_comorbidity() -> None:
    with (DATA / "R_comorbidity_maps_ellessenne.csv").open(encoding="utf-8") as handle:
        r_map = {
            (R_NAMES.get(r["comorbidity"], r["comorbidity"]), r["code_prefix"])
            for r in csv.DictReader(handle)
            if r["map"] == "charlson_icd10_quan"
        }
    with (DATA / "R_comorbidity_weights_ellessenne.csv").open(encoding="utf-8") as handle:
        r_weights = {
            (r["weighting"], R_NAMES.get(r["comorbidity"], r["comorbidity"])): float(r["weight"])
            for r in csv.DictReader(handle)
            if r["map"] == "charlson_icd10_quan"
        }
    charlson = load("charlson")
    assert set(charlson.codes) == r_map and len(r_map) == 289
    ours = {(w, c): v for w, table in charlson.weights.items() for c, v in table.items()}
    assert ours == r_weights
    assert charlson.weights["quan"]["aids"] == 4  # Quan 2011; comorbidipy 0.8.0 uses 2


def test_hierarchy_and_code_forms(frame: Frame) -> None:
    rows = [
        ("diabetes", "E10.9"),  # uncomplicated ...
        ("diabetes", "e102"),  # ... and with complications: only the complicated form scores
        ("liver", "K70.3"),  # mild liver disease ...
        ("liver", "I85.0"),  # ... and moderate/severe (oesophageal varices)
        ("cancer", "C18.7"),
        ("cancer", "C78.0"),  # metastatic solid tumour supersedes any malignancy
        ("nothing", "Z00.0"),
        ("nothing", None),
    ]
    codes = frame(pa.table({"id": [r[0] for r in rows], "code": [r[1] for r in rows]}))
    result = score(codes, load("charlson"), frame, "quan").collect("polars").to_native()
    by_id = {r["id"]: r for r in result.iter_rows(named=True)}
    assert (by_id["diabetes"]["diab"], by_id["diabetes"]["diabwc"], by_id["diabetes"]["score"]) == (0, 1, 1)
    assert (by_id["liver"]["mld"], by_id["liver"]["msld"], by_id["liver"]["score"]) == (0, 1, 4)
    assert (by_id["cancer"]["canc"], by_id["cancer"]["metacanc"], by_id["cancer"]["score"]) == (0, 1, 6)
    assert by_id["nothing"]["score"] == 0 and len(by_id) == 4


def test_score_command_writes_flags_score_and_age_points(tmp_path: Path) -> None:
    source, out = tmp_path / "codes.csv", tmp_path / "out.csv"
    source.write_text("id,code,age\na,I21.0,82\na,C78,82\nb,J44,55\nc,Z00,30\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["score", "charlson", str(source), "-o", str(out), "--weights", "charlson"])
    assert result.exit_code == 0, result.output
    written = pl.read_csv(out)
    assert written.columns == ["id", *load("charlson").comorbidities, "score", "age_points", "age_adjusted_score"]
    assert written.select("id", "score", "age_points", "age_adjusted_score").rows() == [
        ("a", 7, 4, 11),
        ("b", 1, 1, 2),
        ("c", 0, 0, 0),
    ]
    result = CliRunner().invoke(app, ["score", "charlson", str(source), "-o", str(out)])  # quan: no age points
    assert result.exit_code == 0 and pl.read_csv(out).columns[-1] == "score"
    assert pl.read_csv(out)["score"].to_list() == [6, 1, 0]


def test_score_command_refuses_bad_input_with_one_line(tmp_path: Path) -> None:
    good, out = tmp_path / "codes.csv", tmp_path / "out.csv"
    good.write_text("id,code\na,I21\n", encoding="utf-8")
    (tmp_path / "bad.csv").write_text("patient,icd\n1,I21\n", encoding="utf-8")
    (tmp_path / "ages.csv").write_text("id,code,age\n1,I21,old\n", encoding="utf-8")
    cases = {
        "missing column": ["charlson", str(tmp_path / "bad.csv")],
        "cannot be read": ["charlson", str(tmp_path / "missing.csv")],
        "unknown score": ["charlston", str(good)],
        "unknown weights": ["charlson", str(good), "--weights", "van_walraven"],
        "--weights applies": ["hfrs", str(good), "--weights", "quan"],
        "is age a number": ["charlson", str(tmp_path / "ages.csv"), "--weights", "charlson"],
    }
    for message, args in cases.items():
        result = CliRunner().invoke(app, ["score", *args, "-o", str(out)])
        assert result.exit_code == 2, (message, result.output)
        assert message in result.output and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1
