"""`phm qrisk3`: the QRISK3-2017 batch calculator over a CSV of the official inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from openphm.cli.common import app, console, reporting


@app.command("qrisk3")
def qrisk3(
    source: Annotated[
        Path,
        typer.Argument(
            help="CSV with the official QRISK3 input columns (sex, age, b_AF ... town; surv optional). "
            "Other columns are kept."
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Where to write the scored rows (CSV); default SOURCE_qrisk3.csv."),
    ] = None,
) -> None:
    """Score every row with QRISK3-2017: the input rows plus qrisk3 (10-year risk, %), qrisk3_imputed and error.

    A row that cannot be scored keeps its place with the reason in 'error'. ClinRisk's disclaimer is printed
    here and written beside the output as OUT.disclaimer.txt: it must be kept with the scores.
    """
    from openphm.risk.qrisk3 import disclaimer, score_csv

    target = out or source.with_name(f"{source.stem}_qrisk3.csv")
    with reporting() as report:
        report(f"scoring {source.name}")
        result = score_csv(source, target)
    console.print(
        f"{result.rows:,} rows: {result.scored:,} scored, {result.errors:,} not scored (see 'error'); "
        f"written to {target}"
    )
    console.print(disclaimer(), highlight=False, markup=False)
    console.print(f"(disclaimer also written to {result.disclaimer_path})", highlight=False)
