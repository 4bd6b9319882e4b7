"""The pipeline's stages: importing this module registers every one of them with the runner.

A new stage is a new subpackage with a function decorated by :func:`openphm.pipeline.stage`, and one
import line here; the runner itself does not change. The runner orders stages by the tables they declare,
not by the order of these lines.
"""

import openphm.activity.stage
import openphm.analytics.stage
import openphm.cohorts.stage
import openphm.population
import openphm.quality.stage
import openphm.registers.measures
import openphm.registers.register
import openphm.risk.model.stage
import openphm.risk.stage
import openphm.segments.stage  # noqa: F401
