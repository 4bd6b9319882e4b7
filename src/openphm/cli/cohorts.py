"""`phm cohort` commands: list the cohort definitions, and run them on a store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from openphm.cli.common import Engine, Store, app, console, reporting

cohort_app = typer.Typer(help="Cohorts for proactive care: definitions as data, members and attrition.")
app.add_typer(cohort_app, name="cohort")

Definitions = Annotated[
    Path | None,
    typer.Option("--definitions", help="A folder of your own cohort YAML files, used instead of the shipped ones."),
]


@cohort_app.command("list")
def list_cohorts(definitions: Definitions = None) -> None:
    """List the cohort definitions: name, title, rules in the order applied, and sources."""
    from openphm.cohorts.definitions import load_cohorts

    with reporting():
        cohorts = load_cohorts(definitions)
    table = Table(title="Cohort definitions")
    for column in ("name", "title", "rules", "source"):
        table.add_column(column, overflow="fold")
    for cohort in cohorts.values():
        rules = [f"{'exclude' if r.exclude else 'include'} {r.name} ({r.type})" for r in cohort.rules]
        table.add_row(cohort.name, cohort.title, "\n".join(rules), "\n".join(cohort.sources))
    console.print(table)


@cohort_app.command("run")
def run_cohorts(
    store: Store,
    name: Annotated[str | None, typer.Argument(help="The cohort to run (see phm cohort list).")] = None,
    all_cohorts: Annotated[bool, typer.Option("--all", help="Run every cohort definition.")] = False,
    engine: Engine = "duckdb",
    definitions: Definitions = None,
    codelists: Annotated[
        Path | None, typer.Option(help="The folder of condition definitions the store was run with, if not shipped.")
    ] = None,
    latest: Annotated[
        bool, typer.Option("--latest", help="Only the latest as_of date (default: every as_of).")
    ] = False,
) -> None:
    """Evaluate cohorts on a store that has been run, and write cohort_member and cohort_attrition."""
    from openphm.cohorts.definitions import CohortError
    from openphm.cohorts.store import run_on_store

    with reporting() as progress:
        if (name is None) == (not all_cohorts):
            raise CohortError("give one cohort name, or --all")
        outcomes = run_on_store(
            store,
            engine=engine,
            names=[name] if name else [],
            definitions=definitions,
            codelists=codelists,
            latest_only=latest,
            progress=progress,
        )
    from openphm.disclosure import published_counts

    shown = published_counts([o.members for o in outcomes if o.members is not None])  # None: unavailable
    console.print("Counts of people: 1-7 redacted, others rounded to the nearest 5 (NHS rule).")
    for o in outcomes:
        if o.unavailable:
            console.print(f"{o.name}: not available ({o.unavailable})", highlight=False)
        else:
            n = shown.pop(0)
            count = "redacted" if n is None else f"{n:,}"
            console.print(f"{o.name}: {count} people at {o.as_of}", highlight=False)
