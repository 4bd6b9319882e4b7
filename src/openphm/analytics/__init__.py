"""Analytics over the pipeline's tables; every count that leaves the store passes through :mod:`disclosure`."""

AGG_TABLES = (
    "agg_population",
    "agg_register",
    "agg_cohort",
    "agg_transition",
    "agg_inequality",
    "agg_inequality_index",
    "agg_forecast",
)
"""The aggregate tables the analytics stage writes, and all that exports and the report may publish."""
