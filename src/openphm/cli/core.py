"""The core commands: ingest, run, demo, tables, key, version."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from openphm import __version__, api
from openphm.cli.common import (
    Engine,
    QualitySettingsFile,
    Store,
    app,
    console,
    errors,
    key_app,
    parse_date,
    reporting,
)
from openphm.ingest.load import CLEARED_MAX_AGE_DAYS, IngestResult
from openphm.ingest.policy import LABELS
from openphm.ingest.pseudonymise import shared_key_file
from openphm.options import PEOPLE_PER_SLICE, CohortAsOf
from openphm.pipeline.refresh import Refresh


def _print_reconciliation(result: IngestResult) -> None:
    table = Table(title=f"Ingest reconciliation (purpose: {result.purpose}, opt-out policy {result.policy_version})")
    # Only the sources that applied, so that the common table stays narrow enough for a terminal.
    shown = set(result.people_removed) | {s for o in result.outcomes for s, _ in o.removed}
    sources = [s for s in LABELS if s in shown]
    for column in ("table", "input rows", "loaded", "quarantined", *[LABELS[s] for s in sources], "balanced"):
        table.add_column(column, justify="left" if column == "table" else "right")
    for o in result.outcomes:
        removed = dict(o.removed)
        table.add_row(
            o.table,
            f"{o.input_rows:,}",
            f"{o.loaded:,}",
            f"{o.quarantined:,}",
            *[f"{removed.get(s, 0):,}" for s in sources],
            "yes" if o.balanced else "NO",
        )
    console.print(table)
    if result.people_removed:
        console.print("People removed: " + ", ".join(f"{LABELS[s]} {n:,}" for s, n in result.people_removed.items()))
    if result.cleared_checked_on:
        console.print(f"National data opt-out check of {result.cleared_checked_on.isoformat()}")
    if result.ignored_files:
        console.print(f"Ignored (not contract tables): {', '.join(result.ignored_files)}")


@app.command()
def ingest(
    source: Annotated[Path, typer.Argument(help="Folder with one CSV or Parquet file per contract table.")],
    store: Store,
    key_file: Annotated[
        Path | None,
        typer.Option(help="File holding the secret pseudonymisation key (else the OPENPHM_KEY environment variable)."),
    ] = None,
    purpose: Annotated[
        str,
        typer.Option(
            help="Fixed for the store's life: planning, research, risk-stratification or direct-care. Which "
            "opt-outs apply follows from it (docs/governance.md)."
        ),
    ] = "planning",
    engine: Engine = "duckdb",
    extract_date: Annotated[
        str | None,
        typer.Option(
            help="Dates after this are quarantined (default: the date in the source folder's extract_date.txt, "
            "as 'phm synth' writes it, else today)."
        ),
    ] = None,
    policy: Annotated[
        Path | None,
        typer.Option(help="Your own purposes policy (same layout as the shipped purposes.yaml), versioned."),
    ] = None,
    cleared_max_age_days: Annotated[
        int,
        typer.Option(min=0, help="Outputs warn when the national check (opt_out_cleared) is older than this."),
    ] = CLEARED_MAX_AGE_DAYS,
    quality_settings: QualitySettingsFile = None,
    allow_shared_key_file: Annotated[
        bool,
        typer.Option(
            "--allow-shared-key-file",
            help="Use a key file that other users may read (refused otherwise). Warned and recorded in run_log.",
        ),
    ] = False,
) -> None:
    """Validate, pseudonymise and load a source folder into a new store (replaced only on success)."""
    with reporting() as progress:
        key = api.load_key(key_file, allow_shared=allow_shared_key_file)
        shared = key_file is not None and shared_key_file(key_file)
        if shared:
            errors.print(
                f"[yellow]warning:[/yellow] {key_file}: other users may read the key file (allowed; recorded in "
                "run_log)",
                highlight=False,
                soft_wrap=True,
            )
        result = api.ingest(
            source,
            store,
            key=key,
            purpose=purpose,
            engine=engine,
            extract_date=parse_date(extract_date) if extract_date else None,
            progress=progress,
            policy=policy,
            cleared_max_age_days=cleared_max_age_days,
            quality_settings=quality_settings,
            shared_key_file=shared,
        )
    _print_reconciliation(result)
    console.print("Data quality: see 'phm quality --store ...' (failures first).")
    console.print(f"Store written: {result.store}")


@app.command("run")
def run_pipeline(
    store: Store,
    as_of: Annotated[
        list[str] | None,
        typer.Option(
            "--as-of", help="Snapshot date (repeatable); default: the end of each financial year in the data."
        ),
    ] = None,
    engine: Engine = "duckdb",
    codelists: Annotated[
        Path | None,
        typer.Option(
            help="A folder of your own condition definitions "
            "(same layout as the package's), used instead of the shipped ones."
        ),
    ] = None,
    unit_costs: Annotated[
        Path | None,
        typer.Option(help="A CSV of your own unit costs (setting,kind,cost_gbp) instead of the national defaults."),
    ] = None,
    segment_rules: Annotated[
        Path | None,
        typer.Option(help="A segmentation rules file of your own (same layout as the shipped rules.yaml)."),
    ] = None,
    cohorts: Annotated[
        Path | None,
        typer.Option(help="A folder of your own cohort definitions (YAML), used instead of the shipped ones."),
    ] = None,
    townsend: Annotated[
        Path | None,
        typer.Option(
            help="A CSV of Townsend deprivation scores by LSOA (lsoa_code,townsend) for QRISK3, "
            "when the store has no townsend table."
        ),
    ] = None,
    admission_model: Annotated[
        Path | None,
        typer.Option(
            help="A published admission risk model file, applied instead of the model in the store "
            "or one fitted in the run."
        ),
    ] = None,
    cohort_as_of: Annotated[
        CohortAsOf, typer.Option(help="Cohorts at every as_of date, or at the latest only.")
    ] = "all",
    people_per_slice: Annotated[
        int,
        typer.Option(
            min=1,
            help="Per-person stages run on slices of at most about this many people (less memory on large "
            "populations, same tables).",
        ),
    ] = PEOPLE_PER_SLICE,
    quality_settings: QualitySettingsFile = None,
    refresh: Annotated[
        Refresh | None,
        typer.Option(
            help="'latest': recompute the latest snapshot only and keep the earlier snapshots' rows of the "
            "previous run (on this store, or carried by the ingest); refused if they were made otherwise.",
        ),
    ] = None,
) -> None:
    """Run every pipeline stage on a store and publish the new tables."""
    with reporting() as progress:
        result = api.run(
            store,
            engine=engine,
            as_of=tuple(parse_date(d) for d in as_of or ()),
            codelists=codelists,
            unit_costs=unit_costs,
            segment_rules=segment_rules,
            cohorts=cohorts,
            townsend=townsend,
            admission_model=admission_model,
            cohort_as_of=cohort_as_of,
            people_per_slice=people_per_slice,
            quality_settings=quality_settings,
            progress=progress,
            refresh=refresh,
        )
    table = Table(title=f"Pipeline run {result.run_id} (purpose: {result.purpose})")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    table.add_column("rows written", justify="right")
    for s in result.stages:
        table.add_row(s.name, f"{s.seconds:.2f}", ", ".join(f"{t}: {n:,}" for t, n in s.rows.items()))
    console.print(table)
    console.print("As of: " + ", ".join(d.isoformat() for d in result.as_of))
    if result.refreshed is not None:
        console.print(f"Refreshed {result.refreshed.isoformat()} only; the earlier snapshots were kept.")
    for year in result.left_out:
        console.print(f"Year ending {year.year_end.isoformat()} left out: {year.reason}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the demo's source data, store and report.")] = Path(
        "openphm-demo"
    ),
    people: Annotated[int, typer.Option(min=100, help="Size of the synthetic population.")] = api.DEMO_PEOPLE,
    engine: Engine = "duckdb",
) -> None:
    """The whole job on a synthetic England: generate, ingest, run every stage and write the report."""
    console.print(
        "Using a throwaway pseudonymisation key held only in memory: "
        "this demo's pseudonyms cannot be linked to any other run."
    )
    with reporting() as progress:
        result = api.demo(out, people=people, engine=engine, progress=progress)
    _print_reconciliation(result.ingest)
    _print_summary(api.summary(result.store, engine))
    console.print(f"Store: {result.store.resolve()}")
    console.print(f"Report: {result.report.path.resolve()}")
    import importlib.util

    if importlib.util.find_spec("fastapi") is None:
        console.print("To browse it in the web application: pip install 'openphm[app]', then phm demo again")
        return
    from openphm.cli.serve import demo_account

    with reporting():
        command = demo_account(result.store.resolve(), out.resolve(), engine)
    console.print(f"Serve it: {command}")


def _count(n: int | None) -> str:
    return "redacted" if n is None else f"{n:,}"


def _print_summary(figures: api.Summary) -> None:
    console.print("Counts of people: 1-7 redacted, others rounded to the nearest 5 (NHS rule).")
    table = Table(title="Population (registered and alive)")
    table.add_column("as of")
    table.add_column("people", justify="right")
    for as_of, n in figures.population:
        table.add_row(str(as_of), _count(n))
    console.print(table)
    if figures.registers:
        table = Table(title=f"Largest active registers at {figures.population[-1][0]}")
        table.add_column("definition")
        table.add_column("people", justify="right")
        for name, n in figures.registers:
            table.add_row(name, _count(n))
        console.print(table)
    table = Table(title="Quarantine by reason")
    for column in ("table", "reason", "rows"):
        table.add_column(column, justify="right" if column == "rows" else "left")
    for name, reason, n in figures.quarantine:
        table.add_row(name, reason, f"{n:,}")
    console.print(table)


@app.command()
def tables(store: Store, engine: Engine = "duckdb") -> None:
    """List the tables of a store with their row counts."""
    with reporting():
        counts = api.table_counts(store, engine)
    for name, n in counts.items():
        typer.echo(f"{name}\t{n}")  # plain tab-separated text, for scripts


@key_app.command("new")
def key_new(path: Annotated[Path, typer.Argument(help="Where to write the key (must not exist).")]) -> None:
    """Write a new random 256-bit key, readable by its owner only. Keep it out of the store and backups."""
    if path.exists():
        errors.print(f"[red]error:[/red] {path} exists; refusing to overwrite a key")
        raise typer.Exit(2)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(api.new_key() + b"\n")
    console.print(f"Key written to {path} (mode 600).")


@app.command()
def version() -> None:
    """Print the openphm version."""
    console.print(__version__)
