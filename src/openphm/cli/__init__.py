"""The ``phm`` command: a thin layer that parses options, calls the API and prints with Rich.

One module per area registers its commands on the shared app; importing them here builds the command.
"""

from openphm.cli import analytics, cohorts, core, model, qrisk3, report, risk, segments, synth  # noqa: F401 - registers commands
from openphm.cli.common import app

__all__ = ["app"]
