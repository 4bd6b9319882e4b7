"""The pipeline's stages, listed once: :data:`STAGES` is what ``phm run`` and :func:`openphm.api.run` run.

A new stage is a function decorated by :func:`openphm.pipeline.stage` and one entry here; the runner itself
does not change. The runner orders stages by the tables they declare, not by the order of this tuple, and
imports nothing from here (the application hands it the stages), so there is no import cycle and no registry
for a reloaded module to collide with.
"""

from __future__ import annotations

from openphm.activity.stage import activity
from openphm.analytics.stage import analytics
from openphm.cohorts.stage import cohort
from openphm.pipeline import Stage
from openphm.population.stage import population
from openphm.quality.stage import data_quality
from openphm.registers.measures import measures
from openphm.registers.register import register
from openphm.risk.model.stage import admission_risk, admission_risk_model, admission_risk_score
from openphm.risk.stage import risk
from openphm.segments.stage import segment, segment_transition

STAGES: tuple[Stage, ...] = (
    population,
    data_quality,
    register,
    measures,
    activity,
    risk,
    segment,
    segment_transition,
    admission_risk_model,
    admission_risk_score,
    admission_risk,
    cohort,
    analytics,
)


def by_name() -> dict[str, Stage]:
    """Every stage of :data:`STAGES` by its name (to run a few of them, in a test or a notebook)."""
    return {s.name: s for s in STAGES}
