"""``link_report.html``: what a linkage analyst needs to judge a linkage, in one offline page.

It shows the threshold and the distribution of match weights around it, the model's parameters, a
clerical-review sample of pairs near the threshold (names, dates of birth and postcodes side by side: the
page is identifiable and stays with the controller), and linkage rates by age band, sex and deprivation,
because missed links fall hardest on deprived groups and minorities and every measure downstream then
undercounts them. Plain HTML with inline CSS and an inline SVG chart: no script, nothing fetched (the page's
Content-Security-Policy forbids it), so it opens on a machine without a network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl
from jinja2 import Environment, PackageLoader, select_autoescape

from openphm.link.clean import ID, IMD, Source
from openphm.link.linker import LinkResult, threshold_weight

AGE_BANDS = ((0, "0-17"), (18, "18-39"), (40, "40-64"), (65, "65-79"), (80, "80+"))
SENSITIVITY = (0.5, 0.8, 0.9, 0.95, 0.99)
SHOWN = ("given_name", "family_name", "date_of_birth", "sex", "postcode")


@dataclass(frozen=True)
class Bar:
    low: int
    count: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Histogram:
    bars: tuple[Bar, ...]
    threshold_x: float
    width: int = 720
    height: int = 220


def render(result: LinkResult, today: date | None = None) -> str:
    """The whole page as one string."""
    env = Environment(
        loader=PackageLoader("openphm.link", "templates"),
        autoescape=select_autoescape(["html", "html.j2"], default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["count"] = lambda n: f"{n:,}"
    on = today or date.today()
    settings = result.settings
    methods = result.link_map["method"].value_counts()
    by_method = dict(zip(methods["method"].to_list(), methods["count"].to_list(), strict=True))
    return env.get_template("link_report.html.j2").render(
        result=result,
        settings=settings,
        threshold_weight=threshold_weight(settings.threshold),
        by_method=by_method,
        linked_pairs=int(result.pairs["linked"].sum()),
        kept_apart=result.pairs.filter(
            pl.col("nhs_conflict") & (pl.col("match_probability") >= settings.threshold) & ~pl.col("linked")
        ).height,
        sensitivity=[(t, int((result.pairs["match_probability"] >= t).sum())) for t in SENSITIVITY],
        histogram=histogram(result.pairs["match_weight"].to_list(), threshold_weight(settings.threshold)),
        levels=result.levels,
        columns=[(s.name, s) for s in (result.left, result.right)],
        column_names=("nhs_number", "given_name", "family_name", "date_of_birth", "sex", "postcode"),
        rates=linkage_rates(result, on),
        review=review_sample(result),
        shown=SHOWN,
        on=on,
    )


def histogram(weights: list[float], threshold: float, width: int = 720, height: int = 220) -> Histogram:
    """Pairs per one-bit bin of match weight, as SVG rectangles, with the threshold's position."""
    if not weights:
        return Histogram((), width / 2, width, height)
    low = math.floor(min(min(weights), threshold))
    high = math.ceil(max(max(weights), threshold)) + 1
    counts, edges = np.histogram(weights, bins=np.arange(low, high + 1))
    top = max(int(counts.max()), 1)
    step = width / len(counts)
    bars = tuple(
        Bar(int(edge), int(n), i * step, height - height * n / top, max(step - 1, 1), height * n / top)
        for i, (edge, n) in enumerate(zip(edges[:-1], counts, strict=True))
    )
    return Histogram(bars, (threshold - low) * step, width, height)


def _age_band(column: str, on: date) -> pl.Expr:
    born = pl.col(column).str.to_date("%Y-%m-%d", strict=False)
    age = pl.lit(on.year) - born.dt.year() - (pl.lit(on.month * 100 + on.day) < born.dt.month() * 100 + born.dt.day())
    band = pl.lit("unknown")
    for start, label in AGE_BANDS:
        band = pl.when(age >= start).then(pl.lit(label)).otherwise(band)
    return band


def linkage_rates(result: LinkResult, on: date) -> dict[str, list[dict[str, object]]]:
    """Records and the share linked to the other source, by group, for each source.

    Deprivation appears when the extract had an ``imd_quintile`` or an LSOA column; a group of the same
    people linked at a lower rate is a bias every measure downstream inherits.
    """
    out: dict[str, list[dict[str, object]]] = {}
    methods = result.link_map.select("source", ID, "method")
    for source in (result.left, result.right):
        frame = _with_groups(source, on).join(methods.filter(pl.col("source") == source.name), on=ID)
        linked = pl.col("method") != "unlinked"
        groups = ["age band", "sex"] + (["IMD quintile"] if frame[IMD].is_not_null().any() else [])
        rows: list[dict[str, object]] = []
        for group in groups:
            table = frame.group_by(group).agg(pl.len().alias("records"), linked.sum().alias("linked")).sort(group)
            rows += [
                {"group": group, "value": r[group], "records": r["records"], "linked": r["linked"]}
                for r in table.iter_rows(named=True)
            ]
        out[source.name] = rows
    return out


def _with_groups(source: Source, on: date) -> pl.DataFrame:
    return source.frame.select(
        ID,
        IMD,
        _age_band("date_of_birth", on).alias("age band"),
        pl.col("sex").fill_null("unknown"),
        pl.when(pl.col(IMD) == 1)
        .then(pl.lit("1 (most deprived)"))
        .when(pl.col(IMD) == 5)
        .then(pl.lit("5 (least deprived)"))
        .otherwise(pl.col(IMD).cast(pl.String).fill_null("unknown"))
        .alias("IMD quintile"),
    )


def review_sample(result: LinkResult) -> list[dict[str, object]]:
    """Up to ``review.pairs`` pairs drawn (seeded) from those whose weight lies within ``review.band`` bits of
    the threshold's, with both records' cleaned values, ordered by weight: the grey zone a reviewer checks."""
    review = result.settings.review
    centre = threshold_weight(result.settings.threshold)
    near = result.pairs.filter((pl.col("match_weight") - centre).abs() <= review.band)
    if near.height > review.pairs:
        near = near.sample(review.pairs, seed=result.settings.training.seed)
    values = [s.frame.select(ID, *SHOWN) for s in (result.left, result.right)]
    joined = near.join(values[0], left_on=f"{ID}_l", right_on=ID, how="left").join(
        values[1], left_on=f"{ID}_r", right_on=ID, how="left", suffix="_r"
    )
    return joined.sort("match_weight", descending=True).to_dicts()
