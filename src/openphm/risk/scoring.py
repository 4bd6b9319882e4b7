"""Score a long-format ICD-10 file (``id,code[,age]``) with Charlson, Elixhauser or HFRS, as comorbidipy does.

This is the file-in, file-out face of the indices, for analysts with a diagnosis extract and no store. It
runs on Polars (the file is read lazily); the pipeline's `risk` stage runs the same functions on any engine.
"""

from __future__ import annotations

from pathlib import Path

import narwhals as nw
import polars as pl
import pyarrow as pa

from openphm.errors import InputError
from openphm.outputs.safe import neutralise_table
from openphm.risk import comorbidity
from openphm.risk.hfrs import category_points, hfrs

SCORES = ("charlson", "elixhauser", "hfrs")
"""Indices :func:`score_file` computes."""


def _frame(table: pa.Table) -> nw.LazyFrame:
    return nw.from_native(pl.DataFrame(table).lazy())


def _read(source: Path) -> tuple[pl.LazyFrame, bool]:
    """The file's id, code (and age, when present) columns; whether it has ages."""
    try:
        codes = pl.scan_csv(source, schema_overrides={"id": pl.String, "code": pl.String, "age": pl.Float64})
        columns = codes.collect_schema().names()
    except (OSError, pl.exceptions.PolarsError):
        raise InputError(f"{source}: cannot be read as CSV") from None
    missing = [c for c in ("id", "code") if c not in columns]
    if missing:
        raise InputError(f"{source}: missing column {', '.join(missing)}")
    return codes, "age" in columns


def score_file(index: str, source: Path, out: Path, weights: str | None = None) -> int:
    """Score ``source`` with ``index`` and write one row per id, sorted by id, as CSV to ``out``.

    Charlson and Elixhauser write one 0/1 column per comorbidity (after the hierarchy) and ``score``; with an
    ``age`` column and Charlson's original weights also ``age_points`` and ``age_adjusted_score``. HFRS writes
    ``score`` and ``band``. ``weights``: Charlson ``quan`` (default) or ``charlson``; Elixhauser
    ``van_walraven`` (default) or ``swiss``. Returns the number of ids scored.
    """
    if index not in SCORES:
        raise InputError(f"unknown score '{index}': available: {', '.join(SCORES)}")
    if index == "hfrs" and weights is not None:
        raise InputError("hfrs has one set of points; --weights applies to charlson and elixhauser")
    chosen = comorbidity.load(index) if index != "hfrs" else None
    if chosen is not None:
        chosen.weighting(weights)  # refuse an unknown weighting before reading the file
    codes, has_age = _read(source)
    lazy = nw.from_native(codes)
    if chosen is None:
        scored = hfrs(lazy.select("id", "code"), _frame(category_points()))
        scored = scored.rename({"hfrs": "score", "hfrs_band": "band"})
    else:
        ages = lazy.select("id", "age") if has_age else None
        scored = comorbidity.score(lazy.select("id", "code"), chosen, _frame, weights, ages=ages)
    try:
        result = scored.sort("id").collect("polars").to_native()
    except (pl.exceptions.PolarsError, nw.exceptions.NarwhalsError):
        raise InputError(f"{source}: cannot be read as CSV (is age a number?)") from None
    # ids that look like formulas are text in a spreadsheet
    pl.DataFrame(neutralise_table(result.to_arrow())).write_csv(out)
    return result.height
