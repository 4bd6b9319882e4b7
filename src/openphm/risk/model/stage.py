"""The admission_risk stages: choose the model, score everyone with it inside the engine, then rank.

Three stages, because the three steps see different amounts of the population: the model is chosen (or
fitted on a bounded sample) once; scoring depends only on each person's own rows, so on a large population
it runs in person slices (:mod:`openphm.pipeline.slices`); centiles rank the whole population at each as_of.

Which model: the file named by the run option ``admission_model``; else the ``admission_model`` store table
that ``phm risk train`` writes; else one trained here, from this run's own tables, exactly as
``phm risk train`` would with its default seed ("train first if none"). The model applied is written to
``admission_risk_model`` with its source, so every score can be traced to its coefficients.

Scoring is one expression (linear predictor and logistic function) over the stage tables, so the population
never leaves the engine; only an in-stage fit collects a bounded sample (see ``train.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

import narwhals as nw
import pyarrow as pa

from openphm.errors import StoreError
from openphm.pipeline import RunContext, required, stage
from openphm.registers.definitions import definitions
from openphm.risk.model.features import extract_date, raw_features
from openphm.risk.model.train import TABLE_SCHEMA, Model, ModelError, load, train
from openphm.tables import ADMISSION_RISK, ADMISSION_RISK_MODEL, ADMISSION_RISK_SCORE

MODEL_TABLE = "admission_model"
"""The current model's coefficients, written by ``phm risk train``."""
APPLIED_TABLE = "admission_risk_model"
"""The model this run applied, with its source (or, when none could be had, why)."""
SCORE_TABLE = "admission_risk_score"
"""Each person's risk before ranking: scored in person slices, ranked over the whole population after."""
DEFAULT_SEED = 1
TOP_CENTILE = 95
"""``top5`` marks risk centiles 96-100: the 5% highest risks of the population at that as_of."""
FEATURE_TABLES = ("register", "activity", "risk")


def condition_ids(context: RunContext) -> list[str]:
    """Definitions of kind condition: ``condition_count`` counts the active ones."""
    return [d.id for d in definitions(context, ("condition",))]


def data_end(tables: Mapping[str, nw.LazyFrame | None], context: RunContext) -> date:
    """The last day the data cover: the extract date of the latest ingest, else the latest as_of."""
    log = tables.get("run_log")
    return (extract_date(log) if log is not None else None) or max(context.as_of)


def _current(tables: Mapping[str, nw.LazyFrame | None], context: RunContext) -> tuple[Model | None, str]:
    """(model, source); the model is None when none was given and none could be fitted (source says why)."""
    path = context.options.admission_model
    if path:
        return load(path), f"file {path.name}"
    stored = tables.get(MODEL_TABLE)
    if stored is not None:
        rows = stored.collect(backend="polars").rows(named=True)
        if rows:
            return Model.from_rows(rows), f"store table {MODEL_TABLE}"
    try:
        training = train(
            tables,
            context.engine,
            context.as_of,
            data_end(tables, context),
            seed=DEFAULT_SEED,
            condition_ids=condition_ids(context),
            validate=False,
        )
    except ModelError as exc:
        return None, f"none: {exc}"
    return training.model, f"trained in this run on as_of {training.train_as_of.isoformat()}"


NO_MODEL = "none"
"""The ``kind`` of the single row ``admission_risk_model`` holds when no model could be had."""


def _applied(model: Model | None, source: str, context: RunContext) -> nw.LazyFrame:
    if model is None:
        table = pa.Table.from_pylist([{"term": NO_MODEL, "kind": NO_MODEL}], schema=TABLE_SCHEMA)
    else:
        table = model.to_table()
    table = table.append_column("model_source", pa.array([source] * table.num_rows, pa.string()))
    return context.engine.frame(table)


def read_applied(applied: nw.LazyFrame) -> Model | None:
    """The model an ``admission_risk_model`` table holds (None for the no-model row :func:`_applied` writes)."""
    rows = applied.collect(backend="polars").rows(named=True)
    return None if [r["kind"] for r in rows] == [NO_MODEL] else Model.from_rows(rows)


def _centiles(risks: nw.LazyFrame) -> nw.LazyFrame:
    """Per as_of and distinct risk: its centile, ceil(100 x people at or below it / everyone at that as_of).

    Counted over the distinct risks (a cumulative sum) rather than by ranking every person: a rank window
    over ten million rows per as_of ran DuckDB out of memory. A missing risk gets no centile.
    """
    counts = risks.group_by("as_of", "admission_risk").agg(nw.len().alias("people"))
    sizes = counts.group_by("as_of").agg(nw.col("people").sum().alias("size"))
    at_or_below = nw.col("people").cum_sum().over("as_of", order_by="admission_risk")
    return (
        counts.filter(~nw.col("admission_risk").is_null())
        .with_columns(at_or_below.alias("rank"))
        .join(sizes, on="as_of", how="inner")
        .select(
            "as_of",
            "admission_risk",
            ((nw.col("rank") * 100 + nw.col("size") - 1) // nw.col("size")).cast(nw.Int64).alias("risk_centile"),
        )
    )


@stage(
    "admission_risk_model",
    inputs=("population",),
    optional_inputs=(*FEATURE_TABLES, "apc_episode", MODEL_TABLE, "run_log"),
    outputs=(ADMISSION_RISK_MODEL,),
)
def admission_risk_model(tables: Mapping[str, nw.LazyFrame | None], context: RunContext) -> Mapping[str, nw.LazyFrame]:
    """The emergency-admission model this run applies: given, stored, or trained here."""
    model, source = _current(tables, context)
    if model is not None:
        present = {"population"} | {name for name in FEATURE_TABLES if tables.get(name) is not None}
        missing = sorted({t.source for t in model.terms} - present)
        if missing:
            raise StoreError(
                f"stage admission_risk_model: model {model.version} uses table '{missing[0]}', which this store lacks; "
                "run its stage or retrain with 'phm risk train'"
            )
    return {APPLIED_TABLE: _applied(model, source, context)}


@stage(
    "admission_risk_score",
    inputs=("population", APPLIED_TABLE),
    optional_inputs=FEATURE_TABLES,
    outputs=(ADMISSION_RISK_SCORE,),
    per_person=True,
    per_snapshot=True,
)
def admission_risk_score(tables: Mapping[str, nw.LazyFrame | None], context: RunContext) -> Mapping[str, nw.LazyFrame]:
    """Probability of an emergency admission in the next 12 months for everyone in the population."""
    applied = required(tables, APPLIED_TABLE)
    model = read_applied(applied)
    terms = model.terms if model is not None else ()
    raw = raw_features(tables, context.engine, context.as_of, terms, condition_ids(context))
    if model is None:
        probability, version = nw.lit(None, dtype=nw.Float64), nw.lit(None, dtype=nw.String)
    else:
        probability, version = model.probability(), nw.lit(model.version)
    return {
        SCORE_TABLE: raw.select(
            "person_id", "as_of", probability.alias("admission_risk"), version.alias("model_version")
        )
    }


@stage("admission_risk", inputs=(SCORE_TABLE,), outputs=(ADMISSION_RISK,), per_snapshot=True)
def admission_risk(tables: Mapping[str, nw.LazyFrame | None], context: RunContext) -> Mapping[str, nw.LazyFrame]:
    """Each person's risk with its centile within the population at that as_of, and the top 5% flag."""
    risks = required(tables, SCORE_TABLE)
    scored = (
        risks.join(_centiles(risks), on=["as_of", "admission_risk"], how="left")
        .with_columns((nw.col("risk_centile") > TOP_CENTILE).alias("top5"))
        .select(*ADMISSION_RISK.names)
    )
    return {"admission_risk": scored}
