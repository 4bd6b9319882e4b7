"""The pipeline's stages: importing this module registers every one of them with the runner.

A new stage is a new subpackage with a function decorated by :func:`openphm.pipeline.stage`, and one
import line here; the runner itself does not change.
"""

import openphm.population
import openphm.registers.measures
import openphm.registers.register  # noqa: F401
