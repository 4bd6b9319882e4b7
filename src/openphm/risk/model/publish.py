"""Train on a store and publish: the model file and card in a folder, the coefficients in the store.

The coefficients go into the store as the ``admission_model`` table (atomic publish, as ``phm run`` does),
because a stage never learns where its store lives: the admission_risk_model stage reads that table as an input.
The file, card and plot go to ``<store>.models/`` (or a folder given), one set per model version.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import narwhals as nw

from openphm.codes import load_definitions
from openphm.engine import building, open_store
from openphm.errors import StoreError
from openphm.pipeline.runlog import RunLog, last_purpose
from openphm.risk.model import card
from openphm.risk.model.card import CardFiles
from openphm.risk.model.features import extract_date
from openphm.risk.model.stage import DEFAULT_SEED, FEATURE_TABLES, MODEL_TABLE
from openphm.risk.model.train import now, train, with_training

HINTS = {
    "population": "run 'phm run' first",
    "activity": "run 'phm run' first (the activity stage makes it)",
    "apc_episode": "ingest hospital admissions (apc_episode) to have an outcome",
}
"""Tables training needs. Without prior activity a model of admissions is weak, so training refuses."""


@dataclass(frozen=True)
class Published:
    model_version: str
    card: dict[str, Any]
    files: CardFiles


def default_folder(store: Path) -> Path:
    """``<store>.models`` beside the store."""
    return store.with_name(store.name + ".models")


def _data_end(log: nw.LazyFrame) -> date:
    end = extract_date(log)
    if end is None:
        raise StoreError("the store has no extract date in run_log; ingest it again with 'phm ingest'")
    return end


def train_store(
    store: Path,
    *,
    engine: str = "duckdb",
    seed: int = DEFAULT_SEED,
    out: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> Published:
    """Train on the store's stage tables, write the model file and card, and publish the coefficients."""
    step = progress or (lambda _message: None)
    eng = open_store(store, engine)
    try:
        present = set(eng.tables())
        for table, hint in HINTS.items():
            if table not in present:
                raise StoreError(f"{store}: has no '{table}' table, which training needs; {hint}")
        step("collecting the training and test years")
        tables = {name: eng.table(name) if name in present else None for name in (*HINTS, *FEATURE_TABLES)}
        dates = sorted(eng.table("population").select("as_of").unique().collect(backend="polars")["as_of"].to_list())
        conditions = [d.id for d in load_definitions().values() if d.kind == "condition"]
        training = train(tables, eng, dates, _data_end(eng.table("run_log")), seed=seed, condition_ids=conditions)
        purpose = last_purpose(eng) or "planning"
    finally:
        eng.close()
    training = replace(training, model=with_training(training.model, trained_at=now()))
    step("writing the model card")
    figures, files = card.write(training, out or default_folder(store))
    step("publishing the model to the store")
    log = RunLog("risk train", purpose, engine)
    log.add("risk train", "admission_model", "model_version", detail=training.model.version)
    for metric in ("auroc", "calibration_slope", "calibration_in_the_large", "top5_capture"):
        log.add("risk train", "admission_model", metric, figures["test"][metric])
    with building(store, engine, start_from_existing=True) as target:
        target.write(MODEL_TABLE, target.frame(training.model.to_table()))
        log.write(target)
    return Published(training.model.version, figures, files)
