"""Date arithmetic that narwhals does not offer the same way on every engine.

Date differences (``date - date``) give a duration on Polars, and are missing on DuckDB and Spark in narwhals'
lazy API. Stages that need a number of days (bed days, weeks of care in a window) use :func:`day_number`,
built from year, month and day with integer arithmetic only, so every engine computes it identically.
"""

from __future__ import annotations

import narwhals as nw


def day_number(column: str | nw.Expr) -> nw.Expr:
    """Days since 1970-01-01 of a date column (the proleptic Gregorian day count of H. Hinnant's algorithm)."""
    date = nw.col(column) if isinstance(column, str) else column
    month = date.dt.month().cast(nw.Int64)
    year = date.dt.year().cast(nw.Int64) - nw.when(month <= 2).then(1).otherwise(0)
    era = year // 400
    year_of_era = year - era * 400
    shifted_month = month + nw.when(month > 2).then(-3).otherwise(9)
    day_of_year = (153 * shifted_month + 2) // 5 + date.dt.day().cast(nw.Int64) - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def days_between(start: str | nw.Expr, end: str | nw.Expr) -> nw.Expr:
    """Whole days from ``start`` to ``end`` (negative when end is earlier; null when either is null)."""
    return day_number(end) - day_number(start)
