"""Elixhauser (Quan 2005 ICD-10 map) against comorbidipy 0.8.0 on 2,800 patients and the R package 'comorbidity'.

With van Walraven and with Swiss weights the two agree on every flag and every score of every patient.
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
REFERENCES = {
    "van_walraven": "comorbidipy080_elixhauser_quan_map__van_walraven_weights.csv",
    "swiss": "comorbidipy080_elixhauser_quan_map__swiss_weights.csv",
}


@pytest.fixture(params=["polars", "duckdb"])
def frame(request: pytest.FixtureRequest) -> Frame:
    if request.param == "polars":
        return lambda table: nw.from_native(pl.from_arrow(table).lazy())  # type: ignore[arg-type]
    connection = duckdb.connect()
    return lambda table: nw.from_native(connection.from_arrow(table))


@pytest.mark.parametrize("weights", list(REFERENCES))
def test_agrees_with_comorbidipy_on_every_patient(frame: Frame, weights: str) -> None:
    codes = pl.read_csv(DATA / "input_icd10_long.csv", schema_overrides={"code": pl.String}).select("id", "code")
    ours = score(frame(codes.to_arrow()), load("elixhauser"), frame, weights).collect("polars").to_native()
    reference = pl.read_csv(DATA / REFERENCES[weights])
    joined = ours.join(reference, on="id", suffix="_ref")
    assert joined.height == ours.height == reference.height == 2800
    for comorbidity in load("elixhauser").comorbidities:
        assert (joined[comorbidity] == joined[f"{comorbidity}_ref"]).all(), comorbidity
    assert (joined["score"] == joined["comorbidity_score"]).sum() == 2800
    assert joined["score"].min() < 0 < joined["score"].max()  # negative weights are exercised


def test_shipped_map_and_weights_are_those_of_r_comorbidity() -> None:
    with (DATA / "R_comorbidity_maps_ellessenne.csv").open(encoding="utf-8") as handle:
        r_map = {
            (r["comorbidity"], r["code_prefix"]) for r in csv.DictReader(handle) if r["map"] == "elixhauser_icd10_quan"
        }
    with (DATA / "R_comorbidity_weights_ellessenne.csv").open(encoding="utf-8") as handle:
        names = {"vw": "van_walraven", "swiss": "swiss"}
        r_weights = {
            (names[r["weighting"]], r["comorbidity"]): float(r["weight"])
            for r in csv.DictReader(handle)
            if r["map"] == "elixhauser_icd10_quan"
        }
    elixhauser = load("elixhauser")
    assert set(elixhauser.codes) == r_map and len(elixhauser.comorbidities) == 31
    assert {(w, c): v for w, table in elixhauser.weights.items() for c, v in table.items()} == r_weights


def test_hierarchy(frame: Frame) -> None:
    rows = [("h", "I10"), ("h", "I11.0"), ("d", "E11.9"), ("d", "E11.2"), ("t", "C50.9"), ("t", "C79.5")]
    codes = frame(pa.table({"id": [r[0] for r in rows], "code": [r[1] for r in rows]}))
    result = score(codes, load("elixhauser"), frame).collect("polars").to_native()
    by_id = {r["id"]: r for r in result.iter_rows(named=True)}
    assert (by_id["h"]["hypunc"], by_id["h"]["hypc"]) == (0, 1)
    assert (by_id["d"]["diabunc"], by_id["d"]["diabc"]) == (0, 1)
    assert (by_id["t"]["solidtum"], by_id["t"]["metacanc"], by_id["t"]["score"]) == (0, 1, 12)
    # I11.0 is hypertensive heart disease with heart failure: also congestive heart failure (7) in Quan's map
    assert (by_id["h"]["chf"], by_id["h"]["score"]) == (1, 7)


def test_score_command_swiss_weights(tmp_path: Path) -> None:
    source, out = tmp_path / "codes.csv", tmp_path / "out.csv"
    source.write_text("id,code\nx,I50.0\nx,F32.1\ny,E66\n", encoding="utf-8")
    for weights, expected in (("swiss", [10, -6]), ("van_walraven", [4, -4])):
        result = CliRunner().invoke(app, ["score", "elixhauser", str(source), "-o", str(out), "-w", weights])
        assert result.exit_code == 0, result.output
        written = pl.read_csv(out)
        assert written.columns == ["id", *load("elixhauser").comorbidities, "score"]
        assert written["score"].to_list() == expected, weights
