"""Charlson and Elixhauser comorbidity indices over ICD-10 codes: one mechanism, two maps.

An index is data (``content/scores/<index>``): ``map.csv`` (comorbidity, ICD-10 code prefix; Quan et al.
2005's coding algorithms), ``comorbidities.csv`` (one column of weights per weighting), ``hierarchy.csv``
(a comorbidity that scores nothing when a more severe form of it is present, e.g. diabetes without
complications under diabetes with complications) and, for Charlson, ``age_points.csv``.

A person has a comorbidity when any of their codes starts with one of its prefixes. Flags are reported after
the hierarchy (the superseded flag is 0), as comorbidipy and the R package 'comorbidity' report them; the
score is the sum of the weights of the flags.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import narwhals as nw
import pyarrow as pa

from openphm.codes.systems import ICD10
from openphm.content import content_path, csv_rows
from openphm.engine import distinct
from openphm.errors import InputError

Frame = Callable[[pa.Table], nw.LazyFrame]
INDICES = ("charlson", "elixhauser")


@dataclass(frozen=True)
class Index:
    """One comorbidity index as shipped: its comorbidities, code prefixes, weightings and rules."""

    name: str
    comorbidities: tuple[str, ...]
    codes: tuple[tuple[str, str], ...]
    """(comorbidity, normalised ICD-10 prefix)."""
    weights: dict[str, dict[str, float]]
    """weighting -> comorbidity -> weight; the first weighting in the file is the default."""
    hierarchy: tuple[tuple[str, str], ...]
    """(comorbidity, superseded_by)."""
    age_points: dict[str, tuple[tuple[int, int], ...]]
    """weighting -> ((from_age, points), ...) for weightings that add age points."""

    @property
    def default_weights(self) -> str:
        return next(iter(self.weights))

    def weighting(self, name: str | None) -> str:
        """The weighting ``name`` (default when None); InputError when this index has no such weighting."""
        chosen = name or self.default_weights
        if chosen not in self.weights:
            raise InputError(f"unknown weights '{chosen}' for {self.name}: available: {', '.join(self.weights)}")
        return chosen


def _rows(index: str, file: str) -> list[dict[str, str]]:
    path = content_path("scores", index, file)
    if not path.is_file():
        return []
    return csv_rows(path)


@cache
def load(index: str) -> Index:
    """The shipped index ``charlson`` or ``elixhauser``."""
    if index not in INDICES:
        raise InputError(f"unknown index '{index}': available: {', '.join(INDICES)}")
    listed = _rows(index, "comorbidities.csv")
    weightings = [c for c in listed[0] if c not in ("comorbidity", "name")]
    ages: dict[str, list[tuple[int, int]]] = {}
    for row in _rows(index, "age_points.csv"):
        ages.setdefault(row["weights"], []).append((int(row["from_age"]), int(row["points"])))
    return Index(
        index,
        tuple(r["comorbidity"] for r in listed),
        tuple(sorted({(r["comorbidity"], ICD10.normalise_code(r["code"])) for r in _rows(index, "map.csv")})),
        {w: {r["comorbidity"]: float(r[w]) for r in listed} for w in weightings},
        tuple((r["comorbidity"], r["superseded_by"]) for r in _rows(index, "hierarchy.csv")),
        {w: tuple(sorted(points)) for w, points in ages.items()},
    )


def _map_frame(index: Index, frame: Frame) -> nw.LazyFrame:
    return frame(
        pa.table(
            {
                "comorbidity": pa.array([c for c, _ in index.codes], pa.string()),
                "prefix": pa.array([p for _, p in index.codes], pa.string()),
                "length": pa.array([len(p) for _, p in index.codes], pa.int64()),
            }
        )
    )


def flags(
    codes: nw.LazyFrame, index: Index, frame: Frame, id_column: str = "id", *, normalised: bool = False
) -> nw.LazyFrame:
    """One row per id with at least one mapped code: one 0/1 column per comorbidity, before the hierarchy.

    ``normalised`` says the codes are already in ICD-10's canonical form (as the pipeline's are), which
    saves normalising millions of codes once per prefix length.
    """
    code = nw.col("code") if normalised else ICD10.normalise(nw.col("code"))
    normalised_codes = codes.filter(~nw.col("code").is_null()).select(nw.col(id_column), code.alias("code"))
    listed = _map_frame(index, frame)
    parts = [
        normalised_codes.filter(nw.col("code").str.len_chars() >= length)
        .select(nw.col(id_column), nw.col("code").str.slice(0, length).alias("prefix"))
        .join(listed.filter(nw.col("length") == length).select("prefix", "comorbidity"), on="prefix", how="inner")
        .select(id_column, "comorbidity")
        for length in sorted({len(p) for _, p in index.codes})
    ]
    matched = nw.concat(parts, how="vertical").pipe(distinct)
    indicators = [
        nw.when(nw.col("comorbidity") == c).then(nw.lit(1, nw.Int64)).otherwise(nw.lit(0, nw.Int64)).alias(c)
        for c in index.comorbidities
    ]
    return matched.with_columns(*indicators).group_by(id_column).agg(*[nw.col(c).max() for c in index.comorbidities])


def score(
    codes: nw.LazyFrame,
    index: Index,
    frame: Frame,
    weights: str | None = None,
    id_column: str = "id",
    ages: nw.LazyFrame | None = None,
    *,
    normalised: bool = False,
) -> nw.LazyFrame:
    """One row per id in ``codes``: the comorbidity flags (after the hierarchy) and ``score``.

    ``codes`` has ``id_column`` and ``code`` (ICD-10 in any common form: dots, fillers, lower case). With
    ``ages`` (``id_column``, ``age``) and a weighting that adds age points (Charlson's original weights),
    ``age_points`` and ``age_adjusted_score`` are added. Scores are integers when every weight is.
    """
    chosen = index.weighting(weights)
    found = flags(codes, index, frame, id_column, normalised=normalised)
    result = codes.select(id_column).pipe(distinct).join(found, on=id_column, how="left")
    result = result.with_columns(*[nw.col(c).fill_null(0) for c in index.comorbidities])
    superseded = {}
    for comorbidity, by in index.hierarchy:
        superseded[comorbidity] = nw.when(nw.col(by) == 1).then(nw.lit(0, nw.Int64)).otherwise(nw.col(comorbidity))
    result = result.with_columns(**superseded)
    table = index.weights[chosen]
    integral = all(w == int(w) for w in table.values())
    terms = [nw.col(c) * (int(table[c]) if integral else table[c]) for c in index.comorbidities]
    result = result.with_columns(nw.sum_horizontal(*terms).alias("score"))
    steps = index.age_points.get(chosen)
    if ages is not None and steps:
        points = nw.lit(0, nw.Int64)
        for from_age, value in steps:
            points = nw.when(nw.col("age") >= from_age).then(nw.lit(value, nw.Int64)).otherwise(points)
        per_id = ages.group_by(id_column).agg(nw.col("age").max())
        result = (
            result.join(per_id, on=id_column, how="left")
            .with_columns(nw.when(nw.col("age").is_null()).then(None).otherwise(points).alias("age_points"))
            .with_columns((nw.col("score") + nw.col("age_points")).alias("age_adjusted_score"))
            .drop("age")
        )
    return result
