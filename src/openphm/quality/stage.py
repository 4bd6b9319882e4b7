"""The ``data_quality`` stage: ``phm run`` refreshes the table with the run's settings and definitions."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path

import narwhals as nw

from openphm.contract.schema import TABLES
from openphm.pipeline import RunContext, stage
from openphm.quality.assess import assess
from openphm.quality.checks import Inputs
from openphm.quality.schema import TABLE
from openphm.quality.settings import load_settings

SOURCE_TABLES = tuple(name for name in TABLES if name not in ("person", "opt_out", "lsoa", "practice"))


def extract_date(run_log: nw.LazyFrame) -> date:
    """The extract date the ingest recorded (the checks' calendar ends there)."""
    rows = run_log.filter(nw.col("metric") == "extract_date").select("recorded_at", "detail").collect().rows()
    return date.fromisoformat(max(rows)[1]) if rows else date.today()


@stage(
    TABLE,
    inputs=("person", "quarantine", "run_log"),
    optional_inputs=SOURCE_TABLES,
    outputs=(TABLE,),
)
def data_quality(tables: Mapping[str, nw.LazyFrame | None], context: RunContext) -> Mapping[str, nw.LazyFrame]:
    """Conformance, completeness, plausibility and coverage checks of the source tables, from the settings."""
    chosen = context.params.get("quality_settings")
    settings = load_settings(Path(str(chosen)) if chosen else None)
    codelists = context.params.get("codelists")
    run_log = tables["run_log"]
    assert run_log is not None
    inputs = Inputs(tables, context.engine, extract_date(run_log), Path(str(codelists)) if codelists else None)
    return {TABLE: assess(inputs, settings)}
