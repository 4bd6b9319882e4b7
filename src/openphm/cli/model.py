"""`phm risk train`: train the emergency-admission model on a store and write its model card."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from openphm.cli.common import Engine, Store, app, console, reporting

risk_app = typer.Typer(
    help="The emergency-admission risk model: train it and write its model card.", no_args_is_help=True
)
app.add_typer(risk_app, name="risk")


@risk_app.command("train")
def train(
    store: Store,
    engine: Engine = "duckdb",
    seed: Annotated[int, typer.Option("--seed", help="Chooses the training sample when the population is large.")] = 1,
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for the model file and card (default: <store>.models).")
    ] = None,
) -> None:
    """Train on the two latest as_of dates with a complete following year; publish the model to the store.

    Run phm run first: training reads its tables. The earlier year trains, the later one tests (temporal
    validation); the next phm run scores everyone with the new model.
    """
    from openphm.risk.model.publish import train_store

    with reporting() as progress:
        result = train_store(store, engine=engine, seed=seed, out=out, progress=progress)
    test = result.card["test"]

    def fmt(value: float | None, percent: bool = False) -> str:
        if value is None:
            return "-"
        return f"{100 * value:.1f}%" if percent else f"{value:.3f}"

    console.print(
        f"model {result.model_version}: trained on {result.card['train_as_of']}, tested on {result.card['test_as_of']}"
    )
    console.print(
        f"AUROC {fmt(test['auroc'])}, calibration slope {fmt(test['calibration_slope'])}, "
        f"calibration-in-the-large {fmt(test['calibration_in_the_large'])}, "
        f"top 5% capture {fmt(test['top5_capture'], True)}"
    )
    console.print(f"model card: {result.files.markdown}", soft_wrap=True)
    console.print("run 'phm run' to score the population with this model")
