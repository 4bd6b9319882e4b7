"""`phm explain`: why a person is in their Bridges to Health segment and need tier."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from openphm.cli.common import Engine, Store, app, console, parse_date, reporting
from openphm.segments import Explanation, explain


@app.command("explain")
def explain_person(
    person_id: Annotated[str, typer.Argument(help="The person's pseudonym in the store (never an NHS number).")],
    store: Store,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Snapshot date (default: the latest at which the person has one).")
    ] = None,
    engine: Engine = "duckdb",
    segment_rules: Annotated[
        Path | None, typer.Option(help="The segmentation rules file the run used (default: the shipped rules).")
    ] = None,
    codelists: Annotated[
        Path | None, typer.Option(help="The folder of condition definitions the run used (default: the shipped ones).")
    ] = None,
) -> None:
    """Print a person's segment and need tier with the codes, dates, settings and values that placed them."""
    with reporting() as progress:
        progress("explaining")
        result = explain(
            store,
            person_id,
            parse_date(as_of) if as_of else None,
            engine,
            rules=segment_rules,
            codelists=codelists,
        )
    _print(result)


def _print(e: Explanation) -> None:
    console.print(f"[bold]{e.person_id}[/bold] as of {e.as_of}", highlight=False)
    console.print(f"Segment: [bold]{e.segment}[/bold]", highlight=False)
    console.print(f"Need tier: [bold]{e.need_tier}[/bold] {e.need_tier_name} ({e.need_band} need)", highlight=False)
    cms = "not available" if e.cms is None else f"{e.cms:.2f}"
    acg = "" if e.acg_png is None else f"; ACG Patient Need Group {e.acg_png}"
    console.print(f"Long-term conditions: {e.condition_count}; Cambridge Multimorbidity Score: {cms}{acg}")
    console.print("Subsegment flags: " + (", ".join(e.flags) if e.flags else "none"), highlight=False)
    table = Table(title="Why")
    for column in ("supports", "condition or rule", "code", "term", "date", "setting", "value"):
        table.add_column(column)
    for f in e.facts:
        code = f"{f.code} ({f.system})" if f.code else ""
        table.add_row(f.supports, f.condition, code, f.term or "", str(f.date or ""), f.setting or "", f.value or "")
    console.print(table)
    if e.not_available:
        console.print("Not available in this store (rules using them did not count): " + ", ".join(e.not_available))
