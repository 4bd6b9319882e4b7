"""Data years: the financial years whose activity makes a snapshot worth taking.

The span of activity dates is not enough: a handful of rows dated after the real data window (a typing error
in a source system, or a synthetic population ingested without its extract date) would add a whole snapshot
year in which everyone has almost no activity. So a year counts by its volume, judged against the busiest
year: leading and trailing years with less than ``PLAUSIBLE_SHARE`` of the busiest year's activity rows are
left out (and named in the run log). Years between two plausible years are kept whatever their volume: a gap
inside the window is a fact about the data, not a stray row. The rule is stated in docs/architecture.md.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date

import narwhals as nw

from openphm.engine import Engine

PLAUSIBLE_SHARE = 0.25
"""An edge year counts when it holds at least this share of the busiest year's activity rows. A year of real
data rarely falls below half the busiest (a partial first year of six months, a service that started late);
stray rows are a few per ten thousand."""

ACTIVITY_DATES = {
    "apc_episode": "admission_date",
    "ae_attendance": "arrival_date",
    "op_appointment": "appointment_date",
    "community_contact": "contact_date",
    "mh_contact": "contact_date",
}
"""Service activity defines the data years. Primary care records are left out on purpose: a GP extract
carries diagnoses from decades back, which would turn one extract into thirty snapshots."""


@dataclass(frozen=True)
class LeftOut:
    """A financial year with activity that is not a data year, and why."""

    year_end: date
    rows: int
    busiest: int

    @property
    def reason(self) -> str:
        return (
            f"{self.rows:,} activity rows, under {PLAUSIBLE_SHARE:.0%} of the busiest year's {self.busiest:,}: "
            "stray dates outside the data window"
        )


@dataclass(frozen=True)
class DataYears:
    """The snapshot dates (31 March of each data year) and the years left out."""

    as_of: tuple[date, ...]
    left_out: tuple[LeftOut, ...] = ()


def data_years(engine: Engine) -> DataYears:
    """The ends of the financial years (31 March) with plausible activity that are complete by the extract date.

    NHS data years run April to March, so four years of data give four year-end snapshots. Without a complete
    year, the one snapshot is at the last activity date (or the extract date, for a store without activity).
    """
    extract = _extract_date(engine)
    activity = activity_by_year(engine)
    volumes = {year: n for year, (n, _) in activity.items() if date(year, 3, 31) <= extract}
    if not volumes:
        last_day = max((latest for _, latest in activity.values()), default=extract)
        return DataYears((min(last_day, extract),))
    busiest = max(volumes.values())
    kept = [year for year, n in sorted(volumes.items()) if n >= PLAUSIBLE_SHARE * busiest]
    first, last = kept[0], kept[-1]
    left_out = tuple(
        LeftOut(date(year, 3, 31), n, busiest) for year, n in sorted(volumes.items()) if not first <= year <= last
    )
    return DataYears(tuple(date(year, 3, 31) for year in range(first, last + 1)), left_out)


def _extract_date(engine: Engine) -> date:
    """The extract date the store was ingested with (today for a store without one)."""
    rows = engine.table("run_log").filter(nw.col("metric") == "extract_date").select("detail").collect().rows()
    return date.fromisoformat(rows[-1][0]) if rows else date.today()


def activity_by_year(engine: Engine) -> dict[int, tuple[int, date]]:
    """Activity rows and the latest activity date, by the calendar year in which the financial year ends."""
    volumes: Counter[int] = Counter()
    latest: dict[int, date] = {}
    for table, column in ACTIVITY_DATES.items():
        if not engine.has_table(table):
            continue
        when = nw.col(column)
        year_end = (when.dt.year() + (when.dt.month() >= 4).cast(nw.Int32)).alias("year_end")
        counts = (
            engine.table(table)
            .filter(~when.is_null())
            .select(year_end, when)
            .group_by("year_end")
            .agg(nw.len().alias("rows"), when.max().alias("latest"))
            .collect()
            .rows()
        )
        for year, n, last in counts:
            volumes[int(year)] += int(n)
            latest[int(year)] = max(last, latest.get(int(year), last))
    return {year: (volumes[year], latest[year]) for year in volumes}
