"""What every ``phm`` command shares: the Typer app, the consoles, option types and error reporting."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from openphm.errors import OpenPHMError

app = typer.Typer(
    name="phm",
    help="openphm: population health management for England's health and care systems.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
key_app = typer.Typer(help="Manage the pseudonymisation key.", no_args_is_help=True)
app.add_typer(key_app, name="key")
console = Console()
errors = Console(stderr=True)

Engine = Annotated[str, typer.Option("--engine", "-e", help="Compute engine: duckdb (default), polars or spark.")]
Store = Annotated[
    Path, typer.Option("--store", "-s", help="The store: a .duckdb file (duckdb) or a folder (polars, spark).")
]

QualitySettingsFile = Annotated[
    Path | None,
    typer.Option(
        help="A data-quality settings file of your own (same layout as the shipped settings.yaml) instead of "
        "the shipped checks and thresholds."
    ),
]


def parse_date(text: str) -> date:
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise typer.BadParameter(f"'{text}' is not a date in YYYY-MM-DD form") from None


@contextmanager
def reporting() -> Iterator[Callable[[str], None]]:
    """A Rich progress display for a long command; turns OpenPHMError into one line and exit code 2."""
    try:
        with Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=errors, transient=True
        ) as progress:
            task = progress.add_task("starting", total=None)
            yield lambda message: progress.update(task, description=message)
    except OpenPHMError as exc:
        errors.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
