"""Stages and the runner that wires them by their declared tables."""

from openphm.pipeline.runner import RunResult, default_as_of, order_stages, run
from openphm.pipeline.slices import PEOPLE_PER_SLICE
from openphm.pipeline.stage import RunContext, Stage, registered_stages, stage

__all__ = [
    "PEOPLE_PER_SLICE",
    "RunContext",
    "RunResult",
    "Stage",
    "default_as_of",
    "order_stages",
    "registered_stages",
    "run",
    "stage",
]
