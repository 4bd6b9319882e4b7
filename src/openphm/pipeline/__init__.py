"""Stages and the generic runner that wires them by their declared tables.

Nothing here imports a stage package: the application's stages are listed in :mod:`openphm.stages` and
handed to :func:`run`.
"""

from openphm.pipeline.runner import RunResult, default_as_of, order_stages, run
from openphm.pipeline.stage import RunContext, Stage, required, stage

__all__ = [
    "RunContext",
    "RunResult",
    "Stage",
    "default_as_of",
    "order_stages",
    "required",
    "run",
    "stage",
]
