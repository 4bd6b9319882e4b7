"""`phm export`: the aggregate tables as files, through disclosure control."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from openphm.cli.common import Engine, Store, app, console, errors, reporting


@app.command("export")
def export(
    store: Store,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the files into (created if needed).")],
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="csv (one file per table), parquet, or xlsx (one workbook).")
    ] = "csv",
    level: Annotated[
        str | None, typer.Option(help="Only this geography level: national, region, icb, sub_icb, pcn or practice.")
    ] = None,
    code: Annotated[str | None, typer.Option(help="Only this area and the areas within it (an area code).")] = None,
    policy: Annotated[
        str,
        typer.Option(
            help="Disclosure control: nhs (1-7 redacted, rounded to 5; default), ons10 (under 10 redacted, "
            "rounded to 5) or none (exact counts: needs --purpose direct-care or --allow-unsuppressed)."
        ),
    ] = "nhs",
    purpose: Annotated[
        str | None,
        typer.Option(
            help="What the export is for (default planning): refused when the store's ingest purpose did not "
            "apply the opt-outs it needs. Recorded in the log."
        ),
    ] = None,
    allow_unsuppressed: Annotated[
        bool,
        typer.Option(
            "--allow-unsuppressed", help="Allow --policy none without direct care. Recorded in the export logs."
        ),
    ] = False,
    allow_purpose_mismatch: Annotated[
        bool,
        typer.Option(
            "--allow-purpose-mismatch",
            help="Export for a purpose the store's opt-outs do not cover (e.g. planning from a direct-care "
            "store). Recorded in the export logs.",
        ),
    ] = False,
    engine: Engine = "duckdb",
) -> None:
    """Export the aggregate tables (agg_*) as CSV, Parquet or Excel, with disclosure control applied."""
    from openphm.analytics.export import export as write

    with reporting() as progress:
        progress("protecting and writing the aggregate tables")
        result = write(
            store,
            out,
            fmt,
            engine=engine,
            policy=policy,
            level=level,
            code=code,
            purpose=purpose,
            allow_unsuppressed=allow_unsuppressed,
            allow_purpose_mismatch=allow_purpose_mismatch,
        )
    if result.purpose_override:
        errors.print(f"[yellow]warning:[/yellow] exported for {result.purpose} under an explicit override (logged)")
    for warning in result.warnings:
        errors.print(f"[yellow]warning:[/yellow] {warning}")
    if result.override:
        errors.print("[yellow]warning:[/yellow] exact counts exported under an explicit override (logged)")
    for name, rows in result.rows.items():
        console.print(f"{name}: {rows:,} rows")
    console.print(f"Written ({result.policy}, for {result.purpose}): " + ", ".join(str(p) for p in result.files))
    if result.governance is not None:
        console.print(result.governance.statement())
