"""`phm score`: Charlson, Elixhauser or HFRS over a long-format ICD-10 file, one row per id."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from openphm.cli.common import app, console, reporting
from openphm.risk.scoring import SCORES, score_file


@app.command()
def score(
    index: Annotated[str, typer.Argument(help=f"The index: {', '.join(SCORES)}.")],
    source: Annotated[Path, typer.Argument(help="Long-format ICD-10 CSV: id,code and optionally age.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the scores (CSV).")] = Path("scores.csv"),
    weights: Annotated[
        str | None,
        typer.Option(
            "--weights",
            "-w",
            help="charlson: quan (Quan 2011, default) or charlson (1987, with age points when the file has age); "
            "elixhauser: van_walraven (default) or swiss.",
        ),
    ] = None,
) -> None:
    """Score diagnoses per id: one row per id with a 0/1 column per comorbidity and the score (HFRS: and band)."""
    with reporting() as report:
        report(f"scoring {source.name}")
        n = score_file(index, source, out, weights)
    console.print(f"{n:,} ids scored with {index}; written to {out}")
