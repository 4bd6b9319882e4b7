"""`phm import`: turn extracts in other shapes into a source folder of the input contract."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from openphm.cli.common import app, console, reporting
from openphm.importers.reconcile import ImportResult

import_app = typer.Typer(
    help="Convert HES/SUS+, FHIR R4 and OMOP CDM extracts into a source folder that phm ingest accepts.",
    no_args_is_help=True,
)
app.add_typer(import_app, name="import")


@import_app.command("hes")
def import_hes(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write (one CSV per contract table).")],
    apc: Annotated[
        Path | None, typer.Option(help="HES admitted patient care extract (CSV, one row per episode).")
    ] = None,
    ae: Annotated[Path | None, typer.Option(help="HES A&E extract (CSV, to 2019-20).")] = None,
    op: Annotated[Path | None, typer.Option(help="HES outpatient extract (CSV).")] = None,
    ecds: Annotated[Path | None, typer.Option(help="Emergency Care Data Set extract (CSV, SNOMED CT coded).")] = None,
) -> None:
    """Import HES APC, A&E, outpatient and ECDS extracts, cleaning placeholders and reconciling every row."""
    from openphm.importers.hes import import_hes as run

    with reporting() as progress:
        result = run(out, apc=apc, ae=ae, op=op, ecds=ecds, progress=progress)
    print_reconciliation("HES", result)


@import_app.command("fhir")
def import_fhir(
    paths: Annotated[
        list[Path],
        typer.Argument(metavar="PATH", help="FHIR R4 files or folders: Bundles (.json) and bulk-export .ndjson[.gz]."),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write (one CSV per contract table).")],
) -> None:
    """Import FHIR R4 Bundles and bulk-export NDJSON, mapping codes and units and reconciling every resource."""
    from openphm.importers.fhir import import_fhir as run

    with reporting() as progress:
        result = run(paths, out, progress=progress)
    print_reconciliation("FHIR", result)


@import_app.command("omop")
def import_omop(
    folder: Annotated[Path, typer.Argument(help="OMOP CDM 5.3/5.4 folder of CSV files (file names in any case).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write (one CSV per contract table).")],
    outpatient_visits: Annotated[
        bool,
        typer.Option(
            "--outpatient-visits",
            help="Take outpatient visits (9202) as outpatient appointments: only for a CDM built from hospital "
            "outpatient data, since many CDMs put every GP contact in 9202.",
        ),
    ] = False,
) -> None:
    """Import an OMOP CDM folder, taking codes from their source vocabularies and reconciling every row."""
    from openphm.importers.omop import import_omop as run

    with reporting() as progress:
        result = run(folder, out, outpatient_visits=outpatient_visits, progress=progress)
    print_reconciliation("OMOP", result)


def print_reconciliation(kind: str, result: ImportResult) -> None:
    """The reconciliation table every importer prints, then its throughput and the next command."""
    table = Table(title=f"{kind} import reconciliation (also in {result.out / 'import_reconciliation.csv'})")
    for column in ("stage", "file or table", "reason", "code system", "code"):
        table.add_column(column)
    table.add_column("count", justify="right")
    for stage, where, reason, system, code, count in result.reconciliation.rows:
        table.add_row(stage, where, reason, system, code, f"{count:,}")
    console.print(table)
    console.print(
        f"{result.rows_read:,} rows read in {result.seconds:.1f} s "
        f"({result.rows_read / max(result.seconds, 1e-9):,.0f} rows a second). Next: phm ingest {result.out}"
    )
