"""The emergency-admission model: the card's figures, the terms, training determinism and in-engine scoring.

A small population is simulated here (not by the synthetic-England generator) with a known mechanism: a
latent frailty raises the yearly rate of emergency admissions, so past admissions predict future ones.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import date
from pathlib import Path

import narwhals as nw
import numpy as np
import polars as pl
import pytest

from openphm.engine import open_store
from openphm.risk.model import card
from openphm.risk.model.features import Term, complete_years, design, load_spec, raw_features, sample
from openphm.risk.model.train import Model, ModelError, Training, choose_years, load, train
from tests.support.model import AS_OF, build_store
from tests.support.sources import ENGINES, EXTRACT, store_path


def trained(store: Path, engine: str, seed: int = 1, cap: int | None = None) -> Training:
    eng = open_store(store, engine)
    try:
        tables = {name: eng.table(name) for name in ("population", "register", "activity", "apc_episode")}
        spec = load_spec() if cap is None else replace(load_spec(), sample_cap=cap)
        return train(tables, eng, AS_OF, EXTRACT, seed=seed, condition_ids=["asthma"], spec=spec)
    finally:
        eng.close()


@pytest.fixture(scope="module")
def duckdb_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_store(tmp_path_factory.mktemp("model-duckdb"), "duckdb")


# -- the card's figures ----------------------------------------------------------------------------------


def test_auroc_of_a_perfect_and_a_constant_predictor() -> None:
    y = np.array([False, False, True, False, True, True])
    assert card.auroc(y, y.astype(float)) == 1.0
    assert card.auroc(y, np.full(y.size, 0.3)) == 0.5
    assert card.auroc(y, 1.0 - y.astype(float)) == 0.0
    assert math.isnan(card.auroc(np.zeros(4, dtype=bool), np.arange(4.0)))


def test_calibration_of_a_calibrated_and_an_overconfident_model() -> None:
    rng = np.random.default_rng(3)
    logit = rng.normal(-2.5, 1.2, 400_000)
    p = 1 / (1 + np.exp(-logit))
    y = rng.random(p.size) < p
    slope, in_the_large = card.calibration(y, p)
    assert slope == pytest.approx(1.0, abs=0.02)
    assert in_the_large == pytest.approx(0.0, abs=0.02)
    # Predictions twice as extreme on the logit scale: slope 1/2. Risks halved: log-odds under-predicted.
    slope, _ = card.calibration(y, 1 / (1 + np.exp(-2 * logit)))
    assert slope == pytest.approx(0.5, abs=0.02)
    _, in_the_large = card.calibration(y, p / 2)
    assert in_the_large > 0.6


def test_top5_capture_counts_the_admitted_among_the_highest_scores() -> None:
    p = np.linspace(0, 1, 100)  # the top 5% are the last five rows
    y = np.zeros(100, dtype=bool)
    y[[99, 98, 10, 20]] = True
    top = card.top_flags(p)
    assert top.sum() == 5 and top[95:].all()
    assert card.capture(y, top) == 0.5
    assert card.top_flags(np.zeros(41)).sum() == 3  # 5% of 41 rounds up; ties go to the earlier rows
    assert card.top_flags(np.zeros(41))[:3].all()


def test_calibration_plot_is_svg_with_one_point_per_decile() -> None:
    rng = np.random.default_rng(1)
    p = rng.random(1000) * 0.3
    points = card.deciles(rng.random(1000) < p, p)
    assert [d["decile"] for d in points] == list(range(1, 11))
    assert points[0]["predicted"] < points[-1]["predicted"]
    root = ET.fromstring(card.calibration_svg(points, "test <year>"))
    circles = [e for e in root.iter() if e.tag.endswith("circle")]
    assert len(circles) == 10
    assert "test <year>" in "".join(root.itertext())


# -- terms: the engine expression and NumPy agree --------------------------------------------------------


@pytest.mark.parametrize("engine", ["duckdb", "polars"])
def test_each_term_is_the_same_in_the_engine_and_in_numpy(tmp_path: Path, engine: str) -> None:
    import pyarrow as pa

    from openphm.engine import building

    raw = pa.table(
        {
            "age": pa.array([0, 17, 64, 90, None], pa.int64()),
            "sex": pa.array(["F", "M", "U", None, "M"]),
            "count": pa.array([0, 3, None, 250, 1], pa.int64()),
            "flag": pa.array([True, False, None, True, False]),
            "score": pa.array([0.25, None, 3.5, 0.0, 12.1]),
        }
    )
    terms = [
        Term("age", "population", "age", "identity"),
        Term("age_over_60", "population", "age", "hinge", param=60.0),
        Term("sex_M", "population", "sex", "category", value="M"),
        Term("sex_missing", "population", "sex", "missing"),
        Term("log1p_count", "activity", "count", "log1p"),
        Term("flag", "register", "flag", "flag"),
        Term("score", "risk", "score", "identity"),
    ]
    with building(store_path(tmp_path, engine), engine, start_from_existing=False) as eng:
        in_engine = eng.frame(raw).select(*[t.expr().alias(t.name) for t in terms]).collect(backend="polars")
    numpy = design(terms, pl.from_arrow(raw))
    np.testing.assert_allclose(in_engine.to_numpy(), numpy, rtol=1e-12)
    assert numpy[:, 1].tolist() == [0, 0, 4, 30, 0] and numpy[:, 5].tolist() == [1, 0, 0, 1, 0]


def test_the_spec_expands_into_named_terms() -> None:
    spec = load_spec()
    names = [t.name for t in spec.terms]
    assert len(names) == len(set(names))
    assert {"age", "age_over_80", "sex_M", "imd_quintile_1", "imd_quintile_missing", "heart_failure"} <= set(names)
    assert {"log1p_emergency_admissions", "log1p_ae_attendances_24m", "any_contact_24m", "efi"} <= set(names)
    assert "ethnic_group" not in {t.column for t in spec.terms}  # reported by, never a predictor


# -- years, sampling, training ---------------------------------------------------------------------------


def test_only_as_of_dates_with_a_complete_outcome_year_train_or_test() -> None:
    assert complete_years(AS_OF, EXTRACT) == [date(2022, 3, 31), date(2023, 3, 31), date(2024, 3, 31)]
    assert choose_years(AS_OF, EXTRACT, need_test=True) == (date(2023, 3, 31), date(2024, 3, 31))
    assert choose_years(AS_OF[2:], EXTRACT, need_test=False) == (date(2024, 3, 31), None)
    with pytest.raises(ModelError, match="two as_of dates"):
        choose_years(AS_OF[2:], EXTRACT, need_test=True)
    with pytest.raises(ModelError, match="found 0"):
        choose_years(AS_OF[3:], EXTRACT, need_test=False)


def test_training_is_deterministic_by_seed(duckdb_store: Path) -> None:
    first, again = trained(duckdb_store, "duckdb", seed=5), trained(duckdb_store, "duckdb", seed=5)
    assert first.model.coefficients == again.model.coefficients
    assert first.model.version == again.model.version
    assert card.evaluate(first) == card.evaluate(again)
    # With a sample smaller than the population, the seed chooses who is in it.
    small = [trained(duckdb_store, "duckdb", seed=s, cap=300) for s in (1, 1, 2)]
    assert small[0].train["person_id"].to_list() == small[1].train["person_id"].to_list()
    assert small[0].model.coefficients == small[1].model.coefficients
    assert small[0].train["person_id"].to_list() != small[2].train["person_id"].to_list()
    assert small[0].model.coefficients != small[2].model.coefficients
    assert all(150 <= t.train.height <= 300 for t in small)


def test_sample_keeps_everyone_under_the_cap(duckdb_store: Path) -> None:
    eng = open_store(duckdb_store, "duckdb")
    try:
        population = eng.table("population")
        assert sample(population, eng, 10**6, seed=1) is population
    finally:
        eng.close()


def test_the_model_learns_the_simulated_mechanism(duckdb_store: Path) -> None:
    training = trained(duckdb_store, "duckdb")
    figures = card.evaluate(training)
    assert figures["test_as_of"] == "2024-03-31" and figures["train_as_of"] == "2023-03-31"
    assert figures["test"]["auroc"] > 0.7
    assert 0.6 < figures["test"]["calibration_slope"] < 1.4
    coefficients = dict(zip([t.name for t in training.model.terms], training.model.coefficients, strict=True))
    assert coefficients["log1p_emergency_admissions_24m"] > 0
    assert figures["groups"]["sex"][0]["group"] == "F"
    counts = [figures["test"]["n"], figures["test"]["admitted"], *(g["n"] for g in figures["groups"]["sex"])]
    assert all(c is None or c % 5 == 0 for c in counts)  # published counts are rounded to 5


def test_model_file_round_trip_and_tampering(duckdb_store: Path, tmp_path: Path) -> None:
    model = trained(duckdb_store, "duckdb").model
    path = model.save(tmp_path)
    loaded = load(path)
    assert loaded.version == model.version and loaded.coefficients == model.coefficients
    assert Model.from_rows(model.to_table().to_pylist()).version == model.version
    path.write_text(path.read_text().replace('"intercept": -', '"intercept": -1'))
    with pytest.raises(ModelError, match="do not match"):
        load(path)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ModelError, match="not a readable"):
        load(tmp_path / "bad.json")


# -- scoring in the engine equals scikit-learn -----------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_scoring_in_the_engine_equals_predict_proba(tmp_path: Path, engine: str, duckdb_store: Path) -> None:
    store = duckdb_store if engine == "duckdb" else build_store(tmp_path, engine)
    training = trained(store, engine)
    eng = open_store(store, engine)
    try:
        tables = {name: eng.table(name) for name in ("population", "register", "activity")}
        raw = raw_features(tables, eng, [date(2025, 3, 31)], training.fitted_terms, ["asthma"])
        scored = raw.with_columns(training.model.probability().alias("p")).collect(backend="polars")
    finally:
        eng.close()
    frame = nw.to_native(scored).sort("person_id")
    expected = training.pipeline.predict_proba(design(training.fitted_terms, frame))[:, 1]
    assert frame.height > 500
    np.testing.assert_allclose(frame["p"].to_numpy(), expected, rtol=1e-9, atol=1e-12)
    if engine != "duckdb":  # every engine fits the same model from the same data
        reference = trained(duckdb_store, "duckdb")
        assert training.model.version == reference.model.version
