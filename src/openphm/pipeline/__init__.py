"""Stages and the runner that wires them by their declared tables."""

from openphm.pipeline.runner import RunResult, default_as_of, order_stages, run
from openphm.pipeline.stage import RunContext, Stage, registered_stages, stage

__all__ = ["RunContext", "RunResult", "Stage", "default_as_of", "order_stages", "registered_stages", "run", "stage"]
