"""`phm synth`: write a realistic synthetic population as a source folder of the input contract."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from openphm.cli.common import app, console, reporting
from openphm.contract.reader import EXTRACT_DATE_FILE


@app.command()
def synth(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write (one file per contract table).")],
    people: Annotated[int, typer.Option("--people", "-n", help="How many people.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives byte-identical files.")] = 1,
    start: Annotated[str, typer.Option(help="First day of the data window (YYYY-MM-DD).")] = "2021-04-01",
    years: Annotated[int, typer.Option(help="Length of the data window in years.")] = 4,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
    error_rate: Annotated[
        float, typer.Option(help="Share of extra rows that break the input contract, to exercise the quarantine.")
    ] = 0.005,
) -> None:
    """Generate a synthetic England: people, conditions, readings, medicines and activity in every setting."""
    from openphm.synth import SynthError, generate

    with reporting() as progress:
        try:
            first = date.fromisoformat(start)
        except ValueError:
            raise SynthError(f"--start '{start}' is not a date in YYYY-MM-DD form") from None
        result = generate(
            out, people=people, seed=seed, start=first, years=years, fmt=fmt, error_rate=error_rate, progress=progress
        )
    table = Table(title=f"Synthetic population written to {result.out}")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, rows in result.rows.items():
        table.add_row(name, f"{rows:,}")
    console.print(table)
    planted = sum(sum(c.values()) for c in result.planted.values())
    console.print(
        f"{people:,} people in {result.seconds:.1f} s; {planted:,} rows break the contract on purpose. "
        f"Extract date {result.extract_date.isoformat()} written to {EXTRACT_DATE_FILE}: 'phm ingest' uses it."
    )
