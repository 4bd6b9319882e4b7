"""Features and outcome of the emergency-admission model, as at each as_of date.

A model is a list of *terms*: each is one column of a stage table turned into a number by a simple rule
(identity, log1p, a hinge of a linear spline, a category indicator, a missing indicator, a flag). Every
rule is written twice, once as a narwhals expression (scoring runs inside the engine, for everyone) and once
in NumPy (fitting runs on a bounded sample in memory), and a test holds the two to 1e-9. The columns come
from the stage tables unchanged, so the same raw frame serves training, validation and scoring.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from typing import Any, Literal, get_args

import narwhals as nw
import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa
from pydantic import Field, model_validator

from openphm.content import content_path
from openphm.content.validation import ContentError, ContentModel, read_yaml, validated
from openphm.engine import Engine, count, distinct
from openphm.pipeline import required
from openphm.spells import spells
from openphm.vocabulary import EMERGENCY_ADMISSION_METHODS, PERSON_AS_OF

OUTCOME_DAYS = 365
"""The outcome window: an emergency admission dated in (as_of, as_of + 365 days]."""
TermKind = Literal["identity", "log1p", "hinge", "category", "missing", "flag"]
KINDS: tuple[str, ...] = get_args(TermKind)


@dataclass(frozen=True)
class Term:
    """One term of the linear predictor: ``column`` of table ``source`` transformed by ``kind``."""

    name: str
    source: str
    column: str
    kind: str
    param: float | None = None
    """The knot of a hinge."""
    value: str | None = None
    """The level of a category."""

    def expr(self) -> nw.Expr:
        """The term as an engine expression over the raw feature frame (Float64, never null)."""
        col = nw.col(self.column)
        if self.kind == "identity":
            return col.cast(nw.Float64).fill_null(0.0)
        if self.kind == "log1p":
            return (col.cast(nw.Float64).fill_null(0.0) + 1.0).log()
        if self.kind == "hinge":
            assert self.param is not None
            x = col.cast(nw.Float64)
            return nw.when(x > self.param).then(x - self.param).otherwise(0.0).fill_null(0.0)
        if self.kind == "category":
            return nw.when(col == self.value).then(1.0).otherwise(0.0).fill_null(0.0)
        if self.kind == "missing":
            return nw.when(col.is_null()).then(1.0).otherwise(0.0)
        if self.kind == "flag":
            return nw.when(col).then(1.0).otherwise(0.0).fill_null(0.0)
        raise ValueError(f"unknown term kind {self.kind!r}")

    def values(self, raw: pl.DataFrame) -> npt.NDArray[np.float64]:
        """The term computed in NumPy from a collected raw feature frame (the same rule as :meth:`expr`)."""
        series = raw.get_column(self.column)
        if self.kind in ("identity", "log1p", "hinge"):
            x = series.cast(pl.Float64).fill_null(0.0).to_numpy()
            if self.kind == "identity":
                return x
            if self.kind == "log1p":
                return np.log(x + 1.0)
            assert self.param is not None
            return np.where(x > self.param, x - self.param, 0.0)
        if self.kind == "category":
            return (series == self.value).fill_null(False).cast(pl.Float64).to_numpy()
        if self.kind == "missing":
            return series.is_null().cast(pl.Float64).to_numpy()
        if self.kind == "flag":
            return series.cast(pl.Boolean).fill_null(False).cast(pl.Float64).to_numpy()
        raise ValueError(f"unknown term kind {self.kind!r}")

    def as_row(self) -> dict[str, Any]:
        return {
            "term": self.name,
            "source": self.source,
            "column": self.column,
            "kind": self.kind,
            "param": self.param,
            "value": self.value,
        }


@dataclass(frozen=True)
class Spec:
    """The feature specification (``content/model/features.yaml``): terms and fitting settings."""

    version: str
    terms: tuple[Term, ...]
    regularisation_c: float
    sample_cap: int

    def available(self, sources: Iterable[str]) -> Spec:
        """The spec restricted to terms whose source table is present."""
        present = set(sources)
        return Spec(
            self.version, tuple(t for t in self.terms if t.source in present), self.regularisation_c, self.sample_cap
        )


class FeatureItem(ContentModel):
    """One or more columns of a source table, each turned into terms of one kind."""

    kind: TermKind
    column: str | None = None
    columns: tuple[str, ...] = ()
    knots: tuple[float, ...] = Field((), description="hinge: a term max(0, x - k) for each knot k.")
    levels: tuple[str | int, ...] = Field((), description="category: a 0/1 term for each level but the reference.")

    @model_validator(mode="after")
    def _one_way_to_name_columns(self) -> FeatureItem:
        if (self.column is None) == (not self.columns):
            raise ValueError("give either 'column' or 'columns'")
        if self.kind == "hinge" and not self.knots:
            raise ValueError("a hinge needs knots")
        if self.kind == "category" and not self.levels:
            raise ValueError("a category needs levels")
        return self


class FeaturesFile(ContentModel):
    """``content/model/features.yaml``: the emergency-admission model's terms and fitting settings."""

    version: str | int | float
    regularisation_c: float = Field(gt=0)
    sample_cap: int = Field(ge=1)
    sources: dict[Literal["population", "register", "activity", "risk"], tuple[FeatureItem, ...]]


def _expand(source: str, item: FeatureItem) -> list[Term]:
    kind = item.kind
    columns = item.columns or (item.column,)
    terms: list[Term] = []
    for column in columns:
        assert column is not None  # the model requires column or columns
        if kind == "hinge":
            terms += [Term(f"{column}_over_{k:g}", source, column, kind, param=float(k)) for k in item.knots]
        elif kind == "category":
            terms += [Term(f"{column}_{v}", source, column, kind, value=str(v)) for v in item.levels]
        elif kind == "missing":
            terms.append(Term(f"{column}_missing", source, column, kind))
        elif kind == "log1p":
            terms.append(Term(f"log1p_{column}", source, column, kind))
        else:
            terms.append(Term(column, source, column, kind))
    return terms


@cache
def load_spec() -> Spec:
    """The shipped feature specification."""
    source = "model/features.yaml"
    file = content_path("model", "features.yaml")
    data = validated(FeaturesFile, read_yaml(file, source, ContentError), source, ContentError)
    terms = [t for source, items in data.sources.items() for item in items for t in _expand(source, item)]
    return Spec(str(data.version), tuple(terms), data.regularisation_c, data.sample_cap)


def _as_of_frame(engine: Engine, dates: Sequence[date]) -> nw.LazyFrame:
    return engine.frame(pa.table({"as_of": pa.array(sorted(dates), pa.date32())}))


def raw_features(
    tables: Mapping[str, nw.LazyFrame | None],
    engine: Engine,
    dates: Sequence[date],
    terms: Sequence[Term],
    condition_ids: Sequence[str],
) -> nw.LazyFrame:
    """One row per person in the population (alive and registered) at each of ``dates``.

    Columns: person_id, as_of, the reporting columns (sex, imd_quintile as text, ethnic_group) and every raw
    column the terms read. A person absent from an optional table gets nulls, which the terms read as 0.
    """
    population = required(tables, "population")
    frame = population.join(_as_of_frame(engine, dates), on="as_of", how="inner").filter(nw.col("in_population"))
    frame = frame.select(
        "person_id",
        "as_of",
        nw.col("age").cast(nw.Int64),
        nw.col("sex").cast(nw.String),
        nw.col("imd_quintile").cast(nw.Int64).cast(nw.String).alias("imd_quintile"),
        nw.col("ethnic_group").cast(nw.String),
    )
    flags = sorted({t.column for t in terms if t.source == "register" and t.column != "condition_count"})
    register = tables.get("register")
    if register is not None and (flags or any(t.column == "condition_count" for t in terms)):
        active = register.filter(nw.col("active"))
        per_person = (
            active.with_columns(
                *[(nw.col("definition") == d).alias(d) for d in flags],
                (nw.col("definition").is_in(list(condition_ids)) if condition_ids else nw.lit(False))
                .cast(nw.Int64)
                .alias("condition_count"),
            )
            .group_by(*PERSON_AS_OF)
            .agg(*[nw.col(d).max() for d in flags], nw.col("condition_count").sum())
        )
        frame = frame.join(per_person, on=list(PERSON_AS_OF), how="left")
    for source in ("activity", "risk"):
        table = tables.get(source)
        columns = sorted({t.column for t in terms if t.source == source})
        if table is not None and columns:
            frame = frame.join(table.select("person_id", "as_of", *columns), on=list(PERSON_AS_OF), how="left")
    return frame


def with_outcome(frame: nw.LazyFrame, apc_episode: nw.LazyFrame, engine: Engine, dates: Sequence[date]) -> nw.LazyFrame:
    """Add ``admitted``: any emergency admission dated in (as_of, as_of + 365 days].

    An admission is a hospital provider spell (:mod:`openphm.spells`), dated by its first episode and an
    emergency one when that episode's admission method is: a stay that began before as_of and changed
    consultant after it is not an outcome.

    People who die in the year without an emergency admission count as not admitted (the outcome is an
    admission, not survival); people who leave the practice list are followed in the hospital data anyway.
    """
    windows = engine.frame(
        pa.table(
            {
                "as_of": pa.array(sorted(dates), pa.date32()),
                "outcome_end": pa.array([d + timedelta(days=OUTCOME_DAYS) for d in sorted(dates)], pa.date32()),
            }
        )
    )
    admitted = (
        spells(apc_episode)
        .filter(nw.col("admission_method").is_in(EMERGENCY_ADMISSION_METHODS))
        .select("person_id", "admission_date")
        .join(windows, how="cross")
        .filter((nw.col("admission_date") > nw.col("as_of")) & (nw.col("admission_date") <= nw.col("outcome_end")))
        .select(*PERSON_AS_OF)
        .pipe(distinct)
        .with_columns(nw.lit(True).alias("admitted"))
    )
    return frame.join(admitted, on=list(PERSON_AS_OF), how="left").with_columns(nw.col("admitted").fill_null(False))


def extract_date(run_log: nw.LazyFrame) -> date | None:
    """The extract date of the store's latest ingest: the last day its data cover."""
    rows = (
        run_log.filter((nw.col("command") == "ingest") & (nw.col("metric") == "extract_date"))
        .select("recorded_at", "detail")
        .collect(backend="polars")
        .sort("recorded_at")
        .rows()
    )
    return date.fromisoformat(rows[-1][1]) if rows else None


def complete_years(dates: Iterable[date], data_end: date) -> list[date]:
    """The as_of dates whose whole outcome year lies within the data (ends on or before ``data_end``)."""
    return sorted(d for d in dates if d + timedelta(days=OUTCOME_DAYS) <= data_end)


SUFFIX = 4
"""Characters of the pseudonym that pick the sample: pseudonyms are HMAC digests, so these are uniform."""


def sample(frame: nw.LazyFrame, engine: Engine, cap: int, seed: int) -> nw.LazyFrame:
    """At most about ``cap`` rows of ``frame``, chosen by the last characters of person_id and ``seed``.

    No random numbers are drawn per person: the distinct suffixes are put in a seeded order and the first
    ones kept, so the sample is the same on every engine and every run with the same seed.
    """
    n = count(frame)
    if n <= cap:
        return frame
    suffix = nw.col("person_id").str.tail(SUFFIX)
    suffixes = sorted(frame.select(suffix.alias("suffix")).unique().collect(backend="polars")["suffix"].to_list())
    order = np.random.default_rng(seed).permutation(len(suffixes))
    keep = [suffixes[i] for i in order[: max(1, math.floor(len(suffixes) * cap / n))]]
    chosen = engine.frame(pa.table({"suffix": pa.array(sorted(keep), pa.string())}))
    return frame.with_columns(suffix.alias("suffix")).join(chosen, on="suffix", how="semi").drop("suffix")


def collect_sorted(frame: nw.LazyFrame) -> pl.DataFrame:
    """Collect into Polars in person order, so that every engine hands the fit identical arrays.

    Floats are rounded to 9 decimal places: engines may sum scores in different orders and differ in
    the last bit, which must not change a fitted coefficient.
    """
    data = nw.to_native(frame.collect(backend="polars")).sort(*PERSON_AS_OF)
    return data.with_columns(pl.col(pl.Float64, pl.Float32).round(9))


def design(terms: Sequence[Term], raw: pl.DataFrame) -> npt.NDArray[np.float64]:
    """The design matrix (rows x terms) of a collected raw frame."""
    if not terms:
        return np.zeros((raw.height, 0))
    return np.column_stack([t.values(raw) for t in terms])
