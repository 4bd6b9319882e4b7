"""Stages and the runner that wires them by their declared tables."""

from openphm.pipeline.runner import RunResult, order_stages, run
from openphm.pipeline.slices import PEOPLE_PER_SLICE
from openphm.pipeline.stage import RunContext, Stage, registered_stages, stage
from openphm.pipeline.years import DataYears, data_years

__all__ = [
    "PEOPLE_PER_SLICE",
    "DataYears",
    "RunContext",
    "RunResult",
    "Stage",
    "data_years",
    "order_stages",
    "registered_stages",
    "run",
    "stage",
]
