"""Stages and the generic runner that wires them by their declared tables.

Nothing here imports a stage package: the application's stages are listed in :mod:`openphm.stages` and
handed to :func:`run`.
"""

from openphm.pipeline.runner import RunResult, order_stages, run
from openphm.pipeline.stage import RunContext, Stage, required, stage
from openphm.pipeline.years import DataYears, data_years

__all__ = [
    "DataYears",
    "RunContext",
    "RunResult",
    "Stage",
    "data_years",
    "order_stages",
    "required",
    "run",
    "stage",
]
