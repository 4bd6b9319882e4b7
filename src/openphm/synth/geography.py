"""Where synthetic people live and which practice they are registered with.

Residence is a real English LSOA, drawn in proportion to its population (IoD2019 denominators, mid-2015),
so each person carries the real IMD 2019 decile of that LSOA. Practices are synthetic: each sits in a local
authority chosen in proportion to population (systematically along deprivation), and its patients live in
that authority's LSOAs. Practices are grouped in order of their local authority into PCNs, sub-ICBs, ICBs
and regions of realistic sizes.
Every code starts with ``SYN`` so that none can be mistaken for (or clash with) a real ODS code.
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyarrow as pa

from openphm.content import content_path


@dataclass(frozen=True)
class Lsoas:
    """Every English LSOA with its population by broad age group, IMD decile and local authority."""

    code: np.ndarray
    population: np.ndarray
    """People aged 0-15, 16-59 and 60+ (three columns)."""
    imd_decile: np.ndarray
    la: np.ndarray
    """Index of the local authority (0..n-1, in order of LA code)."""


@lru_cache(maxsize=1)
def lsoas() -> Lsoas:
    """The shipped LSOA tables (population mid-2015 and IMD 2019), joined by LSOA code."""
    with content_path("synth", "lsoa11_population_mid2015.csv.gz").open("rb") as raw:
        text = gzip.decompress(raw.read()).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))[1:]
    with content_path("reference", "lsoa_imd2019.csv.gz").open("rb") as raw:
        imd_text = gzip.decompress(raw.read()).decode("utf-8-sig")
    decile = {r["lsoa_code"]: int(r["imd_decile"]) for r in csv.DictReader(io.StringIO(imd_text))}
    rows = sorted((r for r in rows if r[0] in decile), key=lambda r: (r[2], r[0]))
    la_codes = sorted({r[2] for r in rows})
    la_index = {code: i for i, code in enumerate(la_codes)}

    def number(text: str) -> int:
        return int(text.replace(",", ""))

    return Lsoas(
        code=np.array([r[0] for r in rows]),
        population=np.array([[number(r[5]), number(r[6]), number(r[7])] for r in rows], dtype=np.float64),
        imd_decile=np.array([decile[r[0]] for r in rows], dtype=np.int8),
        la=np.array([la_index[r[2]] for r in rows], dtype=np.int32),
    )


@dataclass(frozen=True)
class Practices:
    """The synthetic practices and the ladder above them; ``first`` is each practice's first person."""

    table: pa.Table
    """The ``practice`` reference table of the input contract."""
    la: np.ndarray
    first: np.ndarray
    """Global index of each practice's first person; people are numbered practice by practice."""


def _groups(sizes: np.ndarray, target: float) -> np.ndarray:
    """Consecutive grouping of units whose sizes add up to about ``target`` per group (0, 1, 2, ...)."""
    cumulative = np.cumsum(sizes) - sizes / 2
    return np.floor(cumulative / target).astype(np.int64)


def _representative_las(count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` local authorities drawn in proportion to population, systematically along deprivation.

    Local authorities are ordered by their population-weighted mean IMD decile and drawn at evenly spaced
    points of the cumulative population (from a random start), so even a few practices have England's mix
    of deprived and affluent areas rather than a chance cluster of either.
    """
    ls = lsoas()
    weights = ls.population.sum(axis=1)
    people_in = np.bincount(ls.la, weights=weights)
    mean_decile = np.bincount(ls.la, weights=weights * ls.imd_decile) / people_in
    order = np.argsort(mean_decile, kind="stable")
    cumulative = np.cumsum(people_in[order])
    points = (rng.random() + np.arange(count)) / count * cumulative[-1]
    return order[np.minimum(np.searchsorted(cumulative, points), len(order) - 1)]


def practices(people: int, rng: np.random.Generator, params: dict) -> Practices:
    """Practices of realistic list sizes (gamma around the mean), located in population-weighted LAs."""
    count = max(1, round(people / params["mean_list_size"]))
    shape = params["list_size_shape"]
    raw = rng.gamma(shape, 1.0 / shape, count)
    sizes = np.floor(raw / raw.sum() * people).astype(np.int64)
    sizes[: people - sizes.sum()] += 1
    la = _representative_las(count, rng)
    order = np.argsort(la, kind="stable")
    la, sizes = la[order], sizes[order]
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    pcn = _groups(sizes.astype(float), params["pcn_size"])
    sub_icb = _groups(sizes.astype(float), params["sub_icb_size"])
    icb = _groups(sizes.astype(float), params["icb_size"])
    region = _groups(sizes.astype(float), params["region_size"])
    number = np.arange(1, count + 1)

    def codes(prefix: str, values: np.ndarray, width: int) -> list[str]:
        return [f"{prefix}{v + 1:0{width}d}" for v in values]

    def names(kind: str, values: np.ndarray) -> list[str]:
        return [f"Synthetic {kind} {v + 1} (not a real organisation)" for v in values]

    table = pa.table(
        {
            "practice_code": codes("SYN", number - 1, 5),
            "practice_name": names("practice", number - 1),
            "pcn_code": codes("SYNN", pcn, 4),
            "pcn_name": names("PCN", pcn),
            "sub_icb_code": codes("SYNS", sub_icb, 3),
            "sub_icb_name": names("sub-ICB", sub_icb),
            "icb_code": codes("SYNI", icb, 2),
            "icb_name": names("ICB", icb),
            "region_code": codes("SYNR", region, 1),
            "region_name": names("region", region),
        }
    )
    return Practices(table=table, la=la, first=first)


def residence(la: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An LSOA (index) for each person in local authority ``la``, in proportion to its population."""
    ls = lsoas()
    weights = ls.population.sum(axis=1)
    starts = np.searchsorted(ls.la, np.arange(ls.la.max() + 2))
    within = np.cumsum(weights)
    before = np.concatenate([[0.0], within])[starts[:-1]]
    total = within[starts[1:] - 1] - before
    target = before[la] + rng.random(len(la)) * total[la]
    return np.minimum(np.searchsorted(within, target, side="right"), len(weights) - 1)
