"""``phm quality``: the data-quality table of a store, failures first, and what changed since the last extract."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.table import Table

from openphm import api
from openphm.cli.common import Engine, Store, app, console, reporting

_STYLE = {"fail": "red", "warn": "yellow", "pass": "green"}


def _rate(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.2f}%"


def _where(level: str, key: str) -> str:
    return "all" if level == "all" else f"{level} {key}"


def _print_rows(view: api.QualityView, everything: bool, limit: int) -> None:
    rows = view.rows if everything else view.rows.filter(pl.col("status") != "pass")
    counts = dict(view.rows.group_by("status").len().iter_rows())
    console.print(
        f"Data quality of extract {view.extract_date}: {counts.get('fail', 0):,} failed, "
        f"{counts.get('warn', 0):,} warned, {counts.get('pass', 0):,} passed "
        f"({view.rows['check_id'].n_unique()} checks; counts of records, not people)."
    )
    if rows.is_empty():
        return
    table = Table(title="Failures first" if not everything else "Every row, failures first")
    for column in ("status", "check", "where", "records", "of", "rate", "fails above"):
        table.add_column(column, justify="right" if column in ("records", "of", "rate", "fails above") else "left")
    for row in rows.head(limit).iter_rows(named=True):
        table.add_row(
            f"[{_STYLE[row['status']]}]{row['status']}[/]",
            row["check_id"],
            _where(row["level"], row["level_key"]),
            f"{row['numerator']:,}",
            f"{row['denominator']:,}",
            _rate(row["rate"]),
            _rate(row["threshold"]),
        )
    console.print(table)
    if rows.height > limit:
        console.print(f"... and {rows.height - limit:,} more rows (--limit to show more).")
    console.print("What each check means: docs/data-quality.md, or the description column of the table.")


def _print_changes(view: api.QualityView, limit: int) -> None:
    if view.compared_with is None:
        console.print("No earlier extract to compare with (the next ingest of this store will show changes).")
        return
    if view.changes.is_empty():
        console.print(f"No status changed since {view.compared_with}.")
        return
    table = Table(title=f"Changed since {view.compared_with}")
    for column in ("change", "check", "where", "before", "now", "rate before", "rate now"):
        table.add_column(column, justify="right" if column.startswith("rate") else "left")
    for row in view.changes.head(limit).iter_rows(named=True):
        table.add_row(
            row["change"],
            row["check_id"],
            _where(row["level"], row["level_key"]),
            row["status_before"] or "-",
            row["status"] or "-",
            _rate(row["rate_before"]),
            _rate(row["rate"]),
        )
    console.print(table)
    if view.changes.height > limit:
        console.print(f"... and {view.changes.height - limit:,} more changes (--limit to show more).")


@app.command()
def quality(
    store: Store,
    engine: Engine = "duckdb",
    compare: Annotated[
        Path | None,
        typer.Option(help="Compare with another store's data quality instead of this store's previous extract."),
    ] = None,
    all_rows: Annotated[bool, typer.Option("--all", help="Show passing rows too.")] = False,
    limit: Annotated[int, typer.Option(min=1, help="Most rows shown per table.")] = 200,
) -> None:
    """Show the data-quality checks of a store, failures first, and what changed since the previous extract."""
    with reporting():
        view = api.quality(store, engine, compare)
    _print_rows(view, all_rows, limit)
    _print_changes(view, limit)
