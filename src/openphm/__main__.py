"""``python -m openphm`` is the ``phm`` command."""

from openphm.cli import app

app(prog_name="phm")
