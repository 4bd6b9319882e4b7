"""The ``phm`` command: a thin layer that parses options, calls the API and prints with Rich.

One module per area registers its commands on the shared app; importing them here, in the order of the
pipeline, builds the command and orders its help.
"""

# isort: off
from openphm.cli import core, importers, link, quality, synth, segments, risk, qrisk3, model, cohorts  # noqa: F401
from openphm.cli import analytics, report, serve, direct_care  # noqa: F401
from openphm.cli.common import app

# isort: on

__all__ = ["app"]
