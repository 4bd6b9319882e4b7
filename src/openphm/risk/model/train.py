"""Fitting the emergency-admission model: L2-regularised logistic regression on a bounded sample.

Why logistic regression and not gradient boosting: its score is a linear predictor passed through the
logistic function, which is ONE engine expression built from the stored coefficients, so scoring runs
inside DuckDB, Polars or Spark for the whole population, identically on each; maximum likelihood makes it
calibrated in the large by construction; and its coefficients can be read and published in the model card.
Prior activity, age and frailty carry most of the signal in English models of this outcome, and they enter
as simple monotone transforms that a linear model captures well.

Terms are standardised for the fit (so that one L2 penalty treats them alike) and the standardisation is
folded back into the coefficients, so a stored model is only ``intercept + sum(coefficient * term)``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from functools import reduce
from pathlib import Path
from typing import Any

import narwhals as nw
import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from openphm import __version__
from openphm.engine import Engine
from openphm.errors import OpenPHMError
from openphm.pipeline import required
from openphm.risk.model.features import (
    KINDS,
    Spec,
    Term,
    collect_sorted,
    complete_years,
    design,
    load_spec,
    raw_features,
    sample,
    with_outcome,
)

KIND = "logistic_regression_l2"
TABLE_SCHEMA = pa.schema(
    [
        ("model_version", pa.string()),
        ("term", pa.string()),
        ("source", pa.string()),
        ("column", pa.string()),
        ("kind", pa.string()),
        ("param", pa.float64()),
        ("value", pa.string()),
        ("coefficient", pa.float64()),
    ]
)
"""The ``admission_model`` store table: one row per term, and one row ``term = 'intercept'``."""
INTERCEPT = "intercept"


class ModelError(OpenPHMError):
    """A model cannot be trained or read: too few as_of dates, no outcomes, a damaged model file."""


@dataclass(frozen=True)
class Model:
    """A fitted model: the linear predictor's terms and coefficients, and what it was fitted on."""

    terms: tuple[Term, ...]
    coefficients: tuple[float, ...]
    intercept: float
    info: Mapping[str, Any] = field(default_factory=dict)
    """Provenance for the model file: as_of dates, sizes, seed, library versions (never data values)."""

    def __post_init__(self) -> None:
        # One canonical order of terms (by name), whichever way the model was made or read back.
        order = sorted(range(len(self.terms)), key=lambda i: self.terms[i].name)
        object.__setattr__(self, "terms", tuple(self.terms[i] for i in order))
        object.__setattr__(self, "coefficients", tuple(float(self.coefficients[i]) for i in order))

    @property
    def version(self) -> str:
        """A content hash of terms and coefficients: the same model has the same version everywhere."""
        text = json.dumps(
            [[t.as_row() for t in self.terms], [repr(c) for c in self.coefficients], repr(self.intercept)],
            sort_keys=True,
        )
        return "lr-" + hashlib.sha256(text.encode()).hexdigest()[:12]

    def linear_predictor(self) -> nw.Expr:
        """``intercept + sum(coefficient * term)`` as one engine expression over the raw feature frame."""
        parts = [nw.lit(c) * t.expr() for t, c in zip(self.terms, self.coefficients, strict=True)]
        return reduce(lambda a, b: a + b, parts, nw.lit(self.intercept))

    def probability(self) -> nw.Expr:
        return 1.0 / (1.0 + (-self.linear_predictor()).exp())

    def predict(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Probabilities for a design matrix whose columns are :attr:`terms` in order."""
        lp = self.intercept + x @ np.asarray(self.coefficients, dtype=np.float64)
        return 1.0 / (1.0 + np.exp(-lp))

    # -- the store table -------------------------------------------------------------------------------
    def to_table(self) -> pa.Table:
        rows = [{**t.as_row(), "coefficient": c} for t, c in zip(self.terms, self.coefficients, strict=True)]
        rows.append(
            {"term": INTERCEPT, "source": None, "column": None, "kind": INTERCEPT, "param": None, "value": None}
            | {"coefficient": self.intercept}
        )
        return pa.Table.from_pylist([{"model_version": self.version, **r} for r in rows], schema=TABLE_SCHEMA)

    @classmethod
    def from_rows(cls, rows: Sequence[Mapping[str, Any]], info: Mapping[str, Any] | None = None) -> Model:
        """A model from its table rows (the store table, or the ``terms`` of a model file)."""
        intercepts = [r["coefficient"] for r in rows if r["term"] == INTERCEPT]
        if len(intercepts) != 1:
            raise ModelError("the admission model has no single intercept row; retrain with 'phm risk train'")
        terms, coefficients = [], []
        for r in rows:
            if r["term"] == INTERCEPT:
                continue
            if r.get("kind") not in KINDS:
                raise ModelError(f"the admission model has a term of unknown kind '{r.get('kind')}'")
            param = r.get("param")
            terms.append(
                Term(
                    r["term"],
                    r["source"],
                    r["column"],
                    r["kind"],
                    None if param is None else float(param),
                    r.get("value"),
                )
            )
            coefficients.append(float(r["coefficient"]))
        return cls(tuple(terms), tuple(coefficients), float(intercepts[0]), dict(info or {}))

    # -- the model file --------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "model_version": self.version,
            "kind": KIND,
            **self.info,
            "intercept": self.intercept,
            "terms": [{**t.as_row(), "coefficient": c} for t, c in zip(self.terms, self.coefficients, strict=True)],
        }

    def save(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"admission-model-{self.version}.json"
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        return path


def load(path: Path) -> Model:
    """Read a model file written by :meth:`Model.save`."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        rows = [*data["terms"], {"term": INTERCEPT, "coefficient": data["intercept"]}]
        info = {k: v for k, v in data.items() if k not in ("terms", "intercept", "model_version", "kind")}
        model = Model.from_rows(rows, info)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{path}: not a readable admission model file ({type(exc).__name__})") from None
    if data.get("model_version") != model.version:
        raise ModelError(f"{path}: its coefficients do not match its model_version (edited by hand?)")
    return model


def fit(
    terms: Sequence[Term], x: npt.NDArray[np.float64], y: npt.NDArray[np.bool_], spec: Spec
) -> tuple[Model, Pipeline]:
    """Fit on a design matrix; returns the model (standardisation folded in) and the scikit-learn pipeline.

    Newton's method with a Cholesky solve converges to the unique optimum to tight tolerance, so the same
    arrays always give the same coefficients, and arrays that differ in the last bit give coefficients that
    differ only there.
    """
    if x.shape[0] == 0 or np.unique(y).size < 2:
        raise ModelError("the training year has no emergency admissions, or no one without one: cannot fit")
    pipeline = make_pipeline(
        StandardScaler(),
        LogisticRegression(C=spec.regularisation_c, solver="newton-cholesky", tol=1e-10, max_iter=200),
    )
    pipeline.fit(x, y.astype(np.int64))
    scaler: StandardScaler = pipeline[0]
    regression: LogisticRegression = pipeline[1]
    scale = np.asarray(scaler.scale_, dtype=np.float64)
    mean = np.asarray(scaler.mean_, dtype=np.float64)
    standardised = regression.coef_[0]
    coefficients = standardised / scale
    intercept = float(regression.intercept_[0] - np.sum(standardised * mean / scale))
    info = {
        "sklearn_version": sklearn.__version__,
        "openphm_version": __version__,
        "feature_spec_version": spec.version,
        "regularisation_c": spec.regularisation_c,
        "solver": "newton-cholesky",
    }
    model = Model(tuple(terms), tuple(float(c) for c in coefficients), intercept, info)
    return model, pipeline


def with_training(model: Model, **info: Any) -> Model:
    """The model with more provenance recorded (as_of dates, sizes, seed, time of training)."""
    return replace(model, info={**model.info, **info})


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Training:
    """A fitted model and the data it was fitted and tested on (the test sample feeds the model card)."""

    model: Model
    pipeline: Pipeline
    fitted_terms: tuple[Term, ...]
    """The terms in the column order of ``pipeline`` (the model keeps them sorted by name)."""
    train_as_of: date
    test_as_of: date | None
    train: pl.DataFrame
    test: pl.DataFrame | None


def choose_years(as_of: Sequence[date], data_end: date, *, need_test: bool) -> tuple[date, date | None]:
    """(train as_of, test as_of): the two latest as_of dates whose outcome year is complete.

    The latest as_of usually has no complete outcome year: it is the one scored, not trained on. Without a
    second complete year a model may still be fitted (``need_test=False``) but not validated.
    """
    complete = complete_years(as_of, data_end)
    if len(complete) >= 2:
        return complete[-2], complete[-1]
    if need_test or not complete:
        raise ModelError(
            f"training needs {'two as_of dates' if need_test else 'an as_of date'} whose following 12 months "
            f"are in the data (up to {data_end.isoformat()}); found {len(complete)}: run with earlier --as-of dates"
        )
    return complete[-1], None


def train(
    tables: Mapping[str, nw.LazyFrame | None],
    engine: Engine,
    as_of: Sequence[date],
    data_end: date,
    *,
    seed: int,
    condition_ids: Sequence[str],
    spec: Spec | None = None,
    validate: bool = True,
) -> Training:
    """Fit on the earlier complete year and collect the later one as the temporal test sample.

    ``validate=False`` (the in-run fit of the admission_risk_model stage) fits on the same year but collects no
    test sample, and fits on the only complete year when there is just one.

    Only the terms whose source table is present are used; at most ``spec.sample_cap`` people per year are
    collected into memory, chosen deterministically by ``seed`` (:func:`features.sample`). The sample is
    drawn from the population before any feature is built, so a ten-million-person store builds features
    for the sampled people only.
    """
    if tables.get("apc_episode") is None:
        raise ModelError("the store has no apc_episode table: there is no outcome to learn from")
    spec = (spec or load_spec()).available(name for name, table in tables.items() if table is not None)
    train_as_of, test_as_of = choose_years(as_of, data_end, need_test=validate)
    population = required(tables, "population")

    def collected(day: date) -> pl.DataFrame:
        at_day = population.filter(nw.col("in_population") & (nw.col("as_of") == day)).select("person_id")
        people = sample(at_day, engine, spec.sample_cap, seed)
        chosen = {name: _of_people(table, people) for name, table in tables.items()}
        raw = raw_features(chosen, engine, [day], spec.terms, condition_ids)
        apc = required(chosen, "apc_episode")
        return collect_sorted(with_outcome(raw, apc, engine, [day]))

    train_rows = collected(train_as_of)
    model, pipeline = fit(spec.terms, design(spec.terms, train_rows), train_rows["admitted"].to_numpy(), spec)
    test_rows = collected(test_as_of) if test_as_of and validate else None
    model = with_training(
        model,
        seed=seed,
        sample_cap=spec.sample_cap,
        train_as_of=train_as_of.isoformat(),
        test_as_of=test_as_of.isoformat() if test_rows is not None and test_as_of else None,
        data_end=data_end.isoformat(),
        train_rows=train_rows.height,
        test_rows=None if test_rows is None else test_rows.height,
        inputs=sorted({t.source for t in spec.terms} | {"apc_episode"}),
    )
    tested = test_as_of if test_rows is not None else None
    return Training(model, pipeline, spec.terms, train_as_of, tested, train_rows, test_rows)


def _of_people(table: nw.LazyFrame | None, people: nw.LazyFrame) -> nw.LazyFrame | None:
    """The table's rows for the sampled people; a table without person_id is used whole."""
    if table is None or "person_id" not in table.collect_schema().names():
        return table
    return table.join(people, on="person_id", how="semi")
