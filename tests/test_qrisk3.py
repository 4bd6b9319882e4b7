"""QRISK3-2017 against the official outputs: every published test vector, ClinRisk's batch sample, the batch
calculator's errors and substitution flags, the CLI, and the same scores on every engine."""

from __future__ import annotations

import csv
import math
import subprocess
from pathlib import Path

import narwhals as nw
import polars as pl
import pyarrow as pa
import pytest

from openphm.engine import building
from openphm.risk.qrisk3 import FLAGS, INPUTS, disclaimer, model, qrisk3_errors, qrisk3_score, score_csv
from tests.support.cli import phm
from tests.support.sources import ENGINES, store_path

DATA = Path(__file__).parent / "data" / "qrisk3"
VECTORS = list(csv.DictReader((DATA / "qrisk3_test_vectors.csv").open(encoding="utf-8", newline="")))
NUMERIC = [c for c in INPUTS if c != "sex"] + ["surv"]
BATCH_ETHNICITY = {0: None, **{k: v for k, v in enumerate([1, 1, 1, 1, 9, 9, 9, 9, 2, 3, 4, 5, 6, 7, 9, 8, 9, 1]) if k}}
"""ClinRisk's batch 'ethnicity' (0 not recorded, 1 British ... 17 not stated) -> ethrisk, as its engine maps it."""


def _number(text: str) -> float | None:
    return float(text) if text.strip() else None


def _official_row(case: dict[str, str]) -> dict[str, object]:
    """A vector's inputs as the engine that produced its expected score saw them.

    ClinRisk's batch engine looks the Townsend score up from the postcode when there is one (it had no
    Townsend table, so 0: here left empty, which substitutes 0) and codes smoke_cat 5 as 'not known'.
    """
    row: dict[str, object] = {"sex": case["sex"], **{c: _number(case[c]) for c in NUMERIC}}
    if "postcode=NG" in case["expected_origin"]:
        row["town"] = None
    if row["smoke_cat"] == 5:
        row["smoke_cat"] = None
    return row


def _score(rows: list[dict[str, object]]) -> pl.DataFrame:
    schema = {"sex": pl.String, **dict.fromkeys(NUMERIC, pl.Float64)}
    frame = pl.DataFrame(rows, schema=schema)
    return nw.to_native(qrisk3_score(nw.from_native(frame.lazy())).collect())


@pytest.fixture(scope="module")
def scored() -> dict[str, dict[str, object]]:
    frame = _score([_official_row(c) for c in VECTORS])
    return {c["case_id"]: row for c, row in zip(VECTORS, frame.to_dicts(), strict=True)}


@pytest.mark.parametrize("case", VECTORS, ids=[c["case_id"] for c in VECTORS])
def test_official_vector(case: dict[str, str], scored: dict[str, dict[str, object]]) -> None:
    score = scored[case["case_id"]]["qrisk3"]
    assert isinstance(score, float)
    expected, precision = float(case["expected_score"]), case["expected_precision"]
    if precision == "6dp":
        assert abs(score - expected) <= 1e-4
    elif precision in ("1dp", "2dp"):
        digits = int(precision[0])
        assert round(score, digits) == pytest.approx(expected, abs=1e-9)
    else:  # the JavaScript port's loose tests (~0.5); one of them is known to be off: see the C value below
        assert abs(score - expected) <= 0.5
    if case["c_source_recomputed_unrounded"]:  # the official C code evaluated to 6 dp
        assert abs(score - float(case["c_source_recomputed_unrounded"])) <= 1e-4


def test_what_the_published_vectors_leave_out() -> None:
    """The published vectors never use ethrisk 6, 7 or 9 nor smoke_cat 3 or 4: the next test covers them."""
    assert len(VECTORS) == 127
    assert {c["sex"] for c in VECTORS} == {"female", "male"}
    assert {c["smoke_cat"] for c in VECTORS} == {"0", "1", "2", "5"}
    assert {c["ethrisk"] for c in VECTORS} == {"0", "1", "2", "3", "4", "5", "8"}


def test_official_c_code_on_random_inputs() -> None:
    """600 random valid rows (every ethnicity, smoking level and condition, ages 25-84, both sexes) scored by
    ClinRisk's QRISK3-2017 C code compiled unchanged (tests/data/qrisk3/SOURCE.md)."""
    cases = pl.read_csv(DATA / "c_source_random_cases.csv")
    assert cases.height == 600 and set(cases["ethrisk"]) == set(range(1, 10))
    assert set(cases["smoke_cat"]) == set(range(5))
    frame = cases.with_columns(pl.col(c).cast(pl.Float64) for c in NUMERIC)
    out = nw.to_native(qrisk3_score(nw.from_native(frame.lazy())).collect())
    difference = (out["qrisk3"] - out["c_score"]).abs()
    assert out["qrisk3"].null_count() == 0 and difference.max() <= 1e-6


def _batch_rows(path: Path) -> list[list[str]]:
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip() and line[0] != "#"]
    return [line.split(",") for line in lines]


def test_clinrisk_batch_sample(tmp_path: Path) -> None:
    """ClinRisk's own batch processor output: every accepted row's score to 1e-4, its substitutions flagged,
    and the rows it rejected rejected here too."""
    header, *inputs = _batch_rows(DATA / "clinrisk_batch_sample_input.csv")
    out_header, *outputs = _batch_rows(DATA / "clinrisk_batch_sample_output.csv")
    assert len(inputs) == len(outputs) == 12
    converted = []
    for fields in inputs:
        if len(fields) != len(header):  # ClinRisk: inputs:incorrect_no_of_parameters
            continue
        r = dict(zip(header, fields, strict=True))
        diabetes = int(r["diabetes_cat"])
        smoke = int(r["smoke_cat"])
        converted.append(
            {
                "row_id": r["row_id"],
                "sex": "female" if r["sex"] == "0" else "male",
                "age": r["age"],
                **{c: r[c] for c in header if c.startswith("b_") and c != "b_cvd"},
                "b_type1": str(int(diabetes == 1)),
                "b_type2": str(int(diabetes == 2)),
                "bmi": r["bmi(nullable)"],
                "ethrisk": str(BATCH_ETHNICITY[int(r["ethnicity"])] or ""),
                "fh_cvd": r["fh_cvd"],
                "rati": r["rati(nullable)"],
                "sbp": r["sbp(nullable)"],
                "sbps5": r["sbps5(nullable)"],
                "smoke_cat": "" if smoke == 5 else str(smoke),  # 5 = not known in the batch format
                "town": "" if r["postcode(nullable)"] else r["town(nullable)"],  # postcode lookup, no table: 0
            }
        )
    source = tmp_path / "batch.csv"
    pl.DataFrame(converted).write_csv(source)
    result = score_csv(source, tmp_path / "scored.csv")
    ours = pl.read_csv(tmp_path / "scored.csv", infer_schema=False).to_dicts()
    theirs = [dict(zip(out_header, f, strict=False)) for f in outputs if len(f) == len(out_header)]
    assert len(ours) == len(theirs) == 11 and result.rows == 11
    statuses = {"bmi": "bmiStatus", "rati": "ratioStatus", "sbp": "sbpStatus", "sbps5": "sbps5Status"}
    for mine, official in zip(ours, theirs, strict=True):
        if official["inputValidity"] != "inputs:valid":
            assert mine["qrisk3"] is None and mine["error"], official["inputValidity"]
            continue
        assert mine["error"] is None
        assert abs(float(mine["qrisk3"]) - float(official["patientScore"])) <= 1e-4
        imputed = set((mine["qrisk3_imputed"] or "").split(";"))
        for name, status in statuses.items():
            assert (name in imputed) == official[status].endswith("_MISSING"), (mine["row_id"], name)
        assert ("smoke_cat" in imputed) == (official["smoke_catStatus"] == "SMOKE_CAT_MISSING")
        assert "ethrisk" in imputed  # ClinRisk: ETHNICITY_MISSING -> British on every row of the sample
    assert result.scored == 9 and result.errors == 2


INVALID = [
    ({"sex": "X"}, "sex must be female or male"),
    ({"sex": ""}, "sex must be female or male"),
    ({"age": "24"}, "age must be 25-84"),
    ({"age": "85"}, "age must be 25-84"),
    ({"age": ""}, "age is missing"),
    ({"age": "50.5"}, "age must be a whole number"),
    ({"age": "fifty"}, "age not a number"),
    ({"b_AF": "2"}, "b_AF must be 0 or 1"),
    ({"fh_cvd": ""}, "fh_cvd must be 0 or 1"),
    ({"b_type1": "1", "b_type2": "1"}, "b_type1 and b_type2 cannot both be 1"),
    ({"bmi": "abc"}, "bmi not a number"),
    ({"bmi": "-3"}, "bmi must be positive"),
    ({"rati": "0"}, "rati must be positive"),
    ({"sbp": "0"}, "sbp must be positive"),
    ({"sbps5": "-1"}, "sbps5 must not be negative"),
    ({"ethrisk": "10"}, "ethrisk must be 1-9"),
    ({"smoke_cat": "5"}, "smoke_cat must be 0-4"),
    ({"surv": "5"}, "surv must be 10"),
]
VALID = {
    "sex": "male", "age": "50", **{b: "0" for b in INPUTS if b.startswith("b_")}, "fh_cvd": "0", "bmi": "27",
    "ethrisk": "1", "rati": "4", "sbp": "130", "sbps5": "5", "smoke_cat": "0", "town": "0", "surv": "10",
}  # fmt: skip


def _batch(tmp_path: Path, rows: list[dict[str, str]]) -> list[dict[str, object]]:
    source = tmp_path / "in.csv"
    pl.DataFrame([{"id": str(i), **r, "note": f"row {i}"} for i, r in enumerate(rows)]).write_csv(source)
    score_csv(source, tmp_path / "out.csv")
    return pl.read_csv(tmp_path / "out.csv", infer_schema=False).to_dicts()


def test_invalid_rows_get_their_reason_and_are_kept(tmp_path: Path) -> None:
    out = _batch(tmp_path, [VALID] + [{**VALID, **change} for change, _ in INVALID])
    assert len(out) == len(INVALID) + 1
    assert out[0]["error"] is None and out[0]["qrisk3"] is not None
    for row, (change, message) in zip(out[1:], INVALID, strict=True):
        assert row["qrisk3"] is None, change
        assert message in row["error"].split("; "), (change, row["error"])
        assert row["note"] == f"row {row['id']}" and all(row[k] == v for k, v in change.items() if v)


def test_several_problems_are_all_named(tmp_path: Path) -> None:
    out = _batch(tmp_path, [{**VALID, "sex": "U", "b_AF": "3", "smoke_cat": "9"}])
    assert out[0]["error"] == "sex must be female or male; b_AF must be 0 or 1; smoke_cat must be 0-4"


def test_missing_values_are_substituted_as_clinrisk_and_flagged(tmp_path: Path) -> None:
    m = model()
    blank = {**VALID, **dict.fromkeys(("bmi", "rati", "sbp", "sbps5", "town", "smoke_cat", "ethrisk"), "")}
    filled = {**VALID, **{k: str(v) for k, v in m.substitutes.items()}}
    clipped = {**VALID, "bmi": "55", "sbp": "250", "rati": "0.5", "town": "-9"}
    at_limits = {**VALID, "bmi": "40", "sbp": "210", "rati": "1", "town": "-8"}
    out = _batch(tmp_path, [blank, filled, clipped, at_limits])
    assert float(out[0]["qrisk3"]) == pytest.approx(float(out[1]["qrisk3"]), abs=1e-12)
    assert out[0]["qrisk3_imputed"] == "bmi;rati;sbp;sbps5;town;smoke_cat;ethrisk" and out[1]["qrisk3_imputed"] is None
    assert float(out[2]["qrisk3"]) == pytest.approx(float(out[3]["qrisk3"]), abs=1e-12)
    assert out[2]["qrisk3_imputed"] == "bmi;rati;sbp;town" and out[3]["qrisk3_imputed"] is None
    assert m.substitutes["bmi"] == 26.8 and m.substitutes["rati"] == 3.5 and m.substitutes["sbp"] == 123.1


def test_score_flags_and_eligibility_columns() -> None:
    rows = [{k: (None if k in ("bmi", "town") else v) for k, v in VALID.items()} for _ in range(2)]
    frame = pl.DataFrame(rows).with_columns(pl.col(c).cast(pl.Float64) for c in NUMERIC)
    frame = frame.with_columns(qrisk3_eligible=pl.Series([True, False]))
    out = nw.to_native(qrisk3_score(nw.from_native(frame.lazy())).collect())
    first, second = out.to_dicts()
    assert first["qrisk3_bmi_imputed"] and first["qrisk3_town_imputed"] and first["qrisk3_imputed"]
    assert not first["qrisk3_sbp_imputed"] and first["qrisk3"] > 0
    assert second["qrisk3"] is None and all(second[f] is None for f in FLAGS)
    assert set(INPUTS) <= set(out.columns) and out["bmi"].is_null().all()  # the inputs are kept as given


def test_errors_as_an_expression_for_any_engine() -> None:
    frame = pl.DataFrame([{**VALID, "age": "20"}, VALID]).with_columns(pl.col(c).cast(pl.Float64) for c in NUMERIC)
    out = nw.to_native(qrisk3_errors(nw.from_native(frame.lazy())).collect())
    assert out["error"].to_list() == ["age must be 25-84", None]


def test_coefficients_are_the_published_ones() -> None:
    m = model()
    assert len(m.equations["female"].coefficients) == 66 and len(m.equations["male"].coefficients) == 67
    assert m.equations["female"].survivor == {10: 0.988876402378082}
    assert m.equations["male"].survivor == {10: 0.977268040180206}
    assert m.equations["male"].coefficients["b_impotence2"] == float("0.2225185908670538300000000")
    assert "b_impotence2" not in m.equations["female"].coefficients


@pytest.mark.parametrize("engine", ENGINES)
def test_engine_parity(engine: str, tmp_path: Path, scored: dict[str, dict[str, object]]) -> None:
    rows = [_official_row(c) for c in VECTORS]
    table = pa.Table.from_pylist(rows, schema=pa.schema([("sex", pa.string()), *[(c, pa.float64()) for c in NUMERIC]]))
    with building(store_path(tmp_path, engine), engine, start_from_existing=False) as eng:
        frame = eng.frame(table.append_column("case_id", pa.array([c["case_id"] for c in VECTORS])))
        out = nw.to_native(qrisk3_score(frame).collect(backend="polars")).sort("case_id")
    reference = pl.DataFrame({"case_id": list(scored), "qrisk3": [r["qrisk3"] for r in scored.values()]}).sort(
        "case_id"
    )
    assert out["case_id"].to_list() == reference["case_id"].to_list()
    for mine, theirs in zip(out["qrisk3"], reference["qrisk3"], strict=True):
        assert math.isclose(mine, theirs, rel_tol=1e-9)
    assert out["qrisk3_imputed"].sum() == 9  # the nine batch rows


def test_cli_happy_path_prints_and_writes_the_disclaimer(tmp_path: Path) -> None:
    source = tmp_path / "people.csv"
    pl.DataFrame([VALID, {**VALID, "age": "90"}]).write_csv(source)
    result = phm("qrisk3", str(source), "-o", str(tmp_path / "scores.csv"))
    assert result.returncode == 0, result.stderr
    assert "2 rows: 1 scored, 1 not scored" in result.stdout
    assert "ClinRisk Ltd. stress" in " ".join(result.stdout.split())
    out = pl.read_csv(tmp_path / "scores.csv", infer_schema=False)
    assert out.columns == [*VALID, "qrisk3", "qrisk3_imputed", "error"]
    assert (tmp_path / "scores.disclaimer.txt").read_text(encoding="utf-8").strip() == disclaimer()


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2 and "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    return lines[0]


def test_cli_missing_column(tmp_path: Path) -> None:
    source = tmp_path / "people.csv"
    pl.DataFrame([{k: v for k, v in VALID.items() if k != "sbps5"}]).write_csv(source)
    assert "missing column sbps5" in _one_line(phm("qrisk3", str(source)))


def test_cli_unreadable_and_missing_file(tmp_path: Path) -> None:
    assert "no such file" in _one_line(phm("qrisk3", str(tmp_path / "absent.csv")))
    header = ",".join(VALID).encode()
    not_text = tmp_path / "not_text.csv"
    not_text.write_bytes(header + b"\nmale,50\xff\xfe,0\n")  # not UTF-8
    ragged = tmp_path / "ragged.csv"
    ragged.write_bytes(header + b"\n" + b",".join([b"1"] * (len(VALID) + 3)) + b"\n")
    for path in (not_text, ragged):
        assert _one_line(phm("qrisk3", str(path))).endswith(f"{path.name}: cannot be read as CSV")
