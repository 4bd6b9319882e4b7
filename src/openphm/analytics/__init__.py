"""Analytics over the pipeline's tables; every count that leaves the store passes through :mod:`openphm.disclosure`."""

from openphm.tables import AGGREGATES

AGG_TABLES = tuple(t.name for t in AGGREGATES)
"""The aggregate tables the analytics stage writes, and all that exports and the report may publish."""
