"""The Hospital Frailty Risk Score against comorbidipy 0.8.0's outputs on 2,800 patients, and by hand.

comorbidipy adds a category's points once per code; the published method (Gilbert 2018) counts each
distinct three-character category once. So the two must agree on every patient except those with two codes
of one scoring category, and there differ by exactly the points counted twice (tests/data/comorbidity).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import duckdb
import narwhals as nw
import polars as pl
import pyarrow as pa
import pytest

from openphm.risk.hfrs import category_points, hfrs

DATA = Path(__file__).parent / "data" / "comorbidity"
Frame = Callable[[pa.Table], nw.LazyFrame]


@pytest.fixture(params=["polars", "duckdb"])
def frame(request: pytest.FixtureRequest) -> Frame:
    if request.param == "polars":
        return lambda table: nw.from_native(pl.from_arrow(table).lazy())  # type: ignore[arg-type]
    connection = duckdb.connect()
    return lambda table: nw.from_native(connection.from_arrow(table))


def scores(frame: Frame, codes: pa.Table, points: pa.Table | None = None) -> dict[str, tuple[float, str]]:
    result = hfrs(frame(codes), frame(points if points is not None else category_points()))
    native = result.collect("polars").to_native()
    return {r["id"]: (r["hfrs"], r["hfrs_band"]) for r in native.iter_rows(named=True)}


def codes_table(rows: list[tuple[str, str]]) -> pa.Table:
    return pa.table({"id": [r[0] for r in rows], "code": [r[1] for r in rows]})


def test_agrees_with_comorbidipy_except_where_it_double_counts(frame: Frame) -> None:
    codes = pl.read_csv(DATA / "input_icd10_long.csv", schema_overrides={"code": pl.String})
    reference = pl.read_csv(DATA / "comorbidipy080_hfrs.csv")
    ours = scores(frame, codes.select("id", "code").to_arrow())
    points = dict(zip(*category_points().to_pydict().values(), strict=True))
    per_category: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for patient, code in codes.select("id", "code").iter_rows():
        if code[:3] in points:
            per_category[patient][code[:3]].add(code)
    agree = double_counted = 0
    for patient, expected, category in reference.iter_rows():
        twice = sum(points[c] * (len(v) - 1) for c, v in per_category[patient].items())
        score, band = ours[patient]
        assert score == pytest.approx(expected - twice, abs=1e-9), patient
        if twice:
            double_counted += 1
        else:
            agree += 1
            assert band == category.lower(), patient
    assert (agree, double_counted) == (2750, 50)  # as tests/data/comorbidity/SOURCE.md reports
    assert len(ours) == reference.height


def test_worked_example_and_code_forms(frame: Frame) -> None:
    # The NHP elicitation tool's worked example: dementia in Alzheimer's (F00, 7.1) + fall (W19, 3.2) = 10.3.
    result = scores(frame, codes_table([("a", "F00.1"), ("a", "f009"), ("a", "W19X"), ("b", "C50"), ("c", None)]))
    assert result["a"] == (10.3, "intermediate")
    assert result["b"] == (0.0, "low") and result["c"] == (0.0, "low")


def test_band_boundaries(frame: Frame) -> None:
    points = pa.table({"category": ["X01", "X02", "X03", "X04"], "points": [4.9, 5.0, 15.0, 15.1]})
    result = scores(frame, codes_table([("p1", "X01"), ("p2", "X02"), ("p3", "X03"), ("p4", "X04")]), points)
    assert [result[p][1] for p in ("p1", "p2", "p3", "p4")] == ["low", "intermediate", "intermediate", "high"]


def test_score_command_writes_one_row_per_id_and_refuses_bad_input(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from openphm.cli import app

    source, out = tmp_path / "codes.csv", tmp_path / "scores.csv"
    source.write_text("id,code,age\na,F00.1,80\na,W19,80\nb,C50,70\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["score", "hfrs", str(source), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert pl.read_csv(out).rows() == [("a", 10.3, "intermediate"), ("b", 0.0, "low")]
    (tmp_path / "bad.csv").write_text("patient,icd\n1,F00\n", encoding="utf-8")
    bad = (["hfrs", str(tmp_path / "bad.csv")], ["hfrs", str(tmp_path / "missing.csv")], ["unknown", str(source)])
    for args in bad:
        result = CliRunner().invoke(app, ["score", *args, "-o", str(out)])
        assert result.exit_code == 2 and "Traceback" not in result.output
