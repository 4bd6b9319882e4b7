"""The analytics stages: aggregates, inequalities and forecasts (tables `agg_*`)."""
