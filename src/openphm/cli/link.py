"""`phm link`: find one person key for the records of two identifiable extracts, upstream of the store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from openphm.cli.common import app, console, reporting


@app.command("link")
def link(
    left: Annotated[Path, typer.Argument(help="The first extract (CSV: record_id, nhs_number, given_name, ...).")],
    right: Annotated[Path, typer.Argument(help="The second extract, with the same columns.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for link_map.csv and link_report.html.")],
    config: Annotated[
        Path | None,
        typer.Option(help="Linkage settings (YAML) over the shipped default.yaml: threshold, comparisons, rules."),
    ] = None,
    engine: Annotated[str, typer.Option("--engine", "-e", help="Where Splink runs: duckdb (default) or spark.")] = (
        "duckdb"
    ),
) -> None:
    """Link two extracts by NHS number, then probabilistically (Splink); needs pip install 'openphm[link]'.

    Runs on identifiable data on the controller's side: the report shows names for clerical review and
    stays there. Only link_map.csv (record ids and opaque person keys) goes on.
    """
    from openphm.link.linker import link as run
    from openphm.link.output import write
    from openphm.link.settings import load_settings

    with reporting() as progress:
        settings = load_settings(config)
        result = run(left, right, settings, engine=engine, progress=progress)
        progress("writing the map and the report")
        link_map, report = write(result, out)
    counts = result.link_map.group_by("source", "method").len()
    table = Table(title=f"Records by method (threshold {settings.threshold})")
    for column in ("source", "nhs_number", "probabilistic", "unlinked"):
        table.add_column(column, justify="left" if column == "source" else "right")
    for source in ("left", "right"):
        mine = counts.filter(counts["source"] == source)
        found = dict(zip(mine["method"].to_list(), mine["len"].to_list(), strict=True))
        table.add_row(source, *(f"{found.get(m, 0):,}" for m in ("nhs_number", "probabilistic", "unlinked")))
    console.print(table)
    console.print(
        f"{result.records:,} records linked in {result.seconds:.1f} s "
        f"({result.records / max(result.seconds, 1e-9):,.0f} records a second). Wrote {link_map} and {report} "
        "(identifiable: it stays with the controller)."
    )
