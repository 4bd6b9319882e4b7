"""The disclosure-controlled tables the report draws from, for every area at once.

The aggregates come from the analytics layer's publishing function, the one place where disclosure control
is applied to the ``agg_*`` tables. Cohort attrition is a store-wide table of the cohorts stage, outside the
aggregates; its counts are protected here, each on its own, with the same rule.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from openphm.analytics import AGG_TABLES
from openphm.analytics.published import published_tables
from openphm.disclosure import Policy, protect
from openphm.engine import Engine

AGGREGATES = AGG_TABLES
"""The analytics tables the report reads; any may be absent from a store."""


def protect_each(values: pl.Series, policy: Policy) -> pl.Series:
    """Counts protected one by one (for counts that are not cells of one table, such as attrition steps)."""
    out = [None if v is None or np.isnan(c := protect([[int(v)]], policy).total) else c for v in values.to_list()]
    return pl.Series(values.name, out, dtype=pl.Float64)


def _attrition(eng: Engine, policy: Policy) -> pl.DataFrame | None:
    if not eng.has_table("cohort_attrition"):
        return None
    frame = eng.table("cohort_attrition").collect(backend="polars").to_native()
    return frame.with_columns(protect_each(frame["people"], policy))


def published(eng: Engine, store: Path, engine: str, policy: Policy) -> dict[str, pl.DataFrame]:
    """Every published aggregate of ``store`` at every level and area, plus protected cohort attrition."""
    tables: dict[str, pl.DataFrame] = {
        name: pl.DataFrame(pl.from_arrow(table))
        for name, table in published_tables(store, engine, policy.name).items()
        if name in AGGREGATES
    }
    attrition = _attrition(eng, policy)
    if attrition is not None:
        tables["cohort_attrition"] = attrition
    return tables
