"""`phm report`: the offline HTML report of a store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from openphm.cli.common import Engine, Store, app, console, reporting


@app.command("report")
def report(
    store: Store,
    out: Annotated[Path, typer.Option("--out", "-o", help="The HTML file to write.")] = Path("report.html"),
    engine: Engine = "duckdb",
    policy: Annotated[
        str,
        typer.Option(
            help="Disclosure control: nhs (1-7 redacted, rounded to 5; default), ons10 (under 10 redacted), "
            "or none (exact counts; direct-care stores only)."
        ),
    ] = "nhs",
    purpose: Annotated[
        str | None,
        typer.Option(
            help="What the report is for (default planning; direct-care with --policy none): refused when the "
            "store's ingest purpose did not apply the opt-outs it needs."
        ),
    ] = None,
    allow_purpose_mismatch: Annotated[
        bool,
        typer.Option(
            "--allow-purpose-mismatch",
            help="Report for a purpose the store's opt-outs do not cover; stated in the report and logged.",
        ),
    ] = False,
) -> None:
    """Write one self-contained HTML report (charts, geography picker, methods) that works offline."""
    from openphm.report import write_report

    with reporting() as progress:
        result = write_report(
            store,
            out,
            engine=engine,
            policy=policy,
            progress=progress,
            purpose=purpose,
            allow_purpose_mismatch=allow_purpose_mismatch,
        )
    console.print(
        f"Report written: {result.path} ({result.bytes / 1_000_000:.1f} MB, {result.areas:,} areas, "
        f"{result.charts} charts, {result.seconds:.1f} s)"
    )
