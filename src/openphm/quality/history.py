"""What changed between two extracts: the previous store's rows are kept, and compared row by row.

An ingest replaces the whole store, so before it builds the new one it reads the old store's
``data_quality`` (and the history the old store carried) and writes them as ``data_quality_history``
in the new store, leaving out rows of the extract date being loaded (a reload of the same extract replaces
them). ``phm quality`` then compares the current rows with the latest earlier extract's rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import narwhals as nw
import polars as pl
import pyarrow as pa

from openphm.engine import Engine, open_store
from openphm.errors import StoreError
from openphm.quality.schema import HISTORY, KEY, SCHEMA, STATUSES, TABLE


def _rows(eng: Engine, name: str) -> pa.Table | None:
    if not eng.has_table(name):
        return None
    table = eng.table(name).collect(backend="pyarrow").to_native()
    return table.select(SCHEMA.names).cast(SCHEMA)


def previous_rows(store: Path, engine: str) -> tuple[pa.Table | None, str | None]:
    """The data-quality rows of the store an ingest is about to replace, or why there are none.

    Returns (rows, None) or (None, a reason for the run log). The old store is only read; any failure to read
    it costs the history, never the ingest.
    """
    if not store.exists():
        return None, "no previous store"
    try:
        eng = open_store(store, engine)
    except Exception as exc:  # an unreadable old store must not stop a new ingest; the reason is logged
        return None, f"previous store unreadable ({type(exc).__name__})"
    try:
        parts = [t for t in (_rows(eng, HISTORY), _rows(eng, TABLE)) if t is not None]
    except Exception as exc:  # a table of an older layout: the history is lost, the ingest goes on
        return None, f"previous data-quality rows unreadable ({type(exc).__name__})"
    finally:
        eng.close()
    if not parts:
        return None, "the previous store has no data-quality rows"
    return pa.concat_tables(parts), None


def keep_history(eng: Engine, previous: pa.Table, extract_date: date) -> int:
    """Write ``data_quality_history``: the previous rows of other extract dates. Returns the rows kept."""
    frame = eng.frame(previous).filter(nw.col("extract_date") != nw.lit(extract_date, dtype=nw.Date))
    eng.write(HISTORY, frame)
    return int(eng.table(HISTORY).select(nw.len()).collect().item())


def read(store: Path, engine: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(current rows, history rows) of a store, as small Polars frames for printing and comparing."""
    eng = open_store(store, engine)
    try:
        empty = pl.DataFrame(SCHEMA.empty_table())
        current = _rows(eng, TABLE)
        history = _rows(eng, HISTORY)
    finally:
        eng.close()
    return (
        pl.DataFrame(current) if current is not None else empty,
        pl.DataFrame(history) if history is not None else empty,
    )


def latest_extract(rows: pl.DataFrame) -> pl.DataFrame:
    """The rows of the latest extract date among ``rows``."""
    if rows.is_empty():
        return rows
    return rows.filter(pl.col("extract_date") == pl.col("extract_date").max())


def ordered(rows: pl.DataFrame) -> pl.DataFrame:
    """Failures first, then warnings, then passes; within each by category, check, level and key."""
    rank = pl.col("status").replace_strict({s: i for i, s in enumerate(STATUSES)}, default=len(STATUSES))
    return rows.sort(rank, "category", "check_id", "level", "level_key")


CHANGES = ("worse", "better", "new", "gone")


def changes(current: pl.DataFrame, previous: pl.DataFrame) -> pl.DataFrame:
    """Rows whose status differs between two extracts, with both rates.

    ``change`` is ``worse`` (pass -> warn/fail, warn -> fail), ``better``, ``new`` (a failing or warning row
    with no row before: a new practice, a new month, a new check) or ``gone`` (a failing or warning row that
    has no row now). Rows that pass in both, or exist in one extract only and pass there, are not changes.
    """
    rank = {s: i for i, s in enumerate(STATUSES)}  # lower is worse
    keep = [*KEY, "category", "description", "status", "rate", "numerator", "denominator"]
    now = current.select(keep)
    before = previous.select(*KEY, "status", "rate").rename({"status": "status_before", "rate": "rate_before"})
    joined = now.join(before, on=list(KEY), how="full", coalesce=True)
    missing = previous.select(*KEY, "category", "description")
    joined = joined.join(missing, on=list(KEY), how="left", suffix="_before").with_columns(
        pl.coalesce("category", "category_before"), pl.coalesce("description", "description_before")
    )
    now_rank = pl.col("status").replace_strict(rank, default=None)
    before_rank = pl.col("status_before").replace_strict(rank, default=None)
    change = (
        pl.when(pl.col("status").is_null() & (pl.col("status_before") != "pass"))
        .then(pl.lit("gone"))
        .when(pl.col("status_before").is_null() & (pl.col("status") != "pass"))
        .then(pl.lit("new"))
        .when(now_rank < before_rank)
        .then(pl.lit("worse"))
        .when(now_rank > before_rank)
        .then(pl.lit("better"))
    )
    out = joined.with_columns(change.alias("change")).filter(pl.col("change").is_not_null())
    order = pl.col("change").replace_strict({c: i for i, c in enumerate(CHANGES)})
    return out.sort(order, "category", "check_id", "level", "level_key").select(
        "change",
        *KEY,
        "category",
        "description",
        "status_before",
        "status",
        "rate_before",
        "rate",
        "numerator",
        "denominator",
    )


@dataclass
class QualityView:
    """What ``phm quality`` shows: the current extract's rows, failures first, and what changed since before."""

    extract_date: date | None
    rows: pl.DataFrame
    compared_with: str | None
    """The earlier extract (``extract <date>``) or store the changes are relative to; None when there is none."""
    changes: pl.DataFrame


def quality_view(store: Path, engine: str = "duckdb", compare: Path | None = None) -> QualityView:
    """The store's data-quality rows; changes against its own history, or against another store's rows."""
    current, history = read(store, engine)
    if current.is_empty():
        raise StoreError(f"{store}: has no data_quality table; ingest it again with this version of openphm")
    current = latest_extract(current)
    extract = current["extract_date"][0]
    label: str | None
    if compare is not None:
        other, _ = read(compare, engine)
        previous, label = latest_extract(other), f"store {compare}"
    else:
        previous = latest_extract(history.filter(pl.col("extract_date") < extract))
        label = f"extract {previous['extract_date'][0]}" if not previous.is_empty() else None
    if previous.is_empty():
        return QualityView(extract, ordered(current), None, changes(current, current).clear())
    return QualityView(extract, ordered(current), label, changes(current, previous))
