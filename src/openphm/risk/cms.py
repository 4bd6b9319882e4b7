"""The Cambridge Multimorbidity Score (Payne et al., CMAJ 2020), general-outcome weights, 20 conditions.

The score is the sum of the weights of the conditions a person has at the as_of date. Which record stands for
each condition is data (``content/scores/cms/criteria.csv``): a condition is present when any of its
alternatives holds, and an alternative holds when all of its criteria do. A criterion tests one shipped
definition of the register:

- ``active``: on the register and active at as_of (coded, not resolved since, within any lookback);
- ``ever``: coded at any time up to as_of (with ``negate``: never coded);
- ``coded_within``: last coded in the ``days`` to as_of; ``first_within``: first coded in the ``days`` to as_of
  (cancer: first diagnosis in the last five years);
- ``issues``: at least ``min_issues`` prescriptions (distinct issue days) of a medicine definition in the
  ``days`` to as_of, or ever when ``days`` is empty, from ``gp_medication`` (constipation: four laxative issues
  in 12 months; schizophrenia/bipolar: lithium ever);
- ``best_of_last_two_below``: a measure (``egfr``) whose latest two readings up to as_of are both below
  ``below``, i.e. the better of the two is (chronic kidney disease: eGFR < 60), from the ``measure`` table.

This is the one implementation of the CMS in openphm: other stages read ``risk.cms``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache

import narwhals as nw
import pyarrow as pa

from openphm.content import content_path, csv_rows
from openphm.engine import distinct
from openphm.pipeline import RunContext
from openphm.registers.definitions import definitions
from openphm.registers.events import codelist_frame, events_by_system, match
from openphm.vocabulary import PERSON_AS_OF

REGISTER_TESTS = ("active", "ever", "coded_within", "first_within")
ISSUES = "issues"
BEST_OF_TWO = "best_of_last_two_below"
MEASURES = ("egfr",)
"""Measures a ``best_of_last_two_below`` criterion may read: ``measure.<id>`` and ``measure.<id>_previous``."""


@dataclass(frozen=True)
class Criterion:
    condition: str
    alternative: int
    definition: str
    test: str
    days: int | None
    min_issues: int | None
    negate: bool
    below: float | None


@dataclass(frozen=True)
class CmsSpec:
    weights: dict[str, float]
    criteria: tuple[Criterion, ...]


@cache
def spec() -> CmsSpec:
    """The shipped CMS: condition weights and criteria."""
    folder = content_path("scores", "cms")
    weights = {r["condition"]: float(r["weight"]) for r in csv_rows(folder.joinpath("conditions.csv"))}
    criteria = tuple(
        Criterion(
            r["condition"],
            int(r["alternative"]),
            r["definition"],
            r["test"],
            int(r["days"]) if r["days"] else None,
            int(r["min_issues"]) if r["min_issues"] else None,
            r["negate"].strip().lower() == "true",
            float(r["below"]) if r["below"] else None,
        )
        for r in csv_rows(folder.joinpath("criteria.csv"))
    )
    unknown = {c.test for c in criteria} - {*REGISTER_TESTS, ISSUES, BEST_OF_TWO}
    misread = [c for c in criteria if (c.test == BEST_OF_TWO) != (c.below is not None and c.definition in MEASURES)]
    if unknown or misread or {c.condition for c in criteria} != set(weights):
        raise ValueError("content/scores/cms: criteria.csv does not match conditions.csv or uses an unknown test")
    return CmsSpec(weights, criteria)


def _criteria_frame(cms: CmsSpec, as_of: tuple[date, ...], context: RunContext) -> nw.LazyFrame:
    """One row per criterion and as_of, with the window start ``since`` (null when the test has no window)."""
    rows = [(i, c, d) for i, c in enumerate(cms.criteria) for d in as_of]
    return context.engine.frame(
        pa.table(
            {
                "criterion": pa.array([i for i, _, _ in rows], pa.int64()),
                "condition": pa.array([c.condition for _, c, _ in rows], pa.string()),
                "alternative": pa.array([c.alternative for _, c, _ in rows], pa.int64()),
                "definition": pa.array([c.definition for _, c, _ in rows], pa.string()),
                "test": pa.array([c.test for _, c, _ in rows], pa.string()),
                "as_of": pa.array([d for _, _, d in rows], pa.date32()),
                "since": pa.array([d - timedelta(days=c.days) if c.days else None for _, c, d in rows], pa.date32()),
                "min_issues": pa.array([c.min_issues for _, c, _ in rows], pa.int64()),
                "negate": pa.array([c.negate for _, c, _ in rows], pa.bool_()),
            }
        )
    )


def _issue_days(medication: nw.LazyFrame, names: set[str], context: RunContext) -> nw.LazyFrame | None:
    """(person_id, date, definition): distinct days on which a medicine of each named definition was issued."""
    chosen = [d for d in definitions(context, ("medicine",)) if d.id in names]
    lists = [(d.id, False, c) for d in chosen for c in d.codelists.values()]
    events = events_by_system({"gp_medication": medication}, {c.system.name for _, _, c in lists})
    if not lists or not events:
        return None
    lengths: dict[str, set[int]] = {}
    for _, _, codelist in lists:
        if codelist.system.prefix:
            lengths.setdefault(codelist.system.name, set()).update(codelist.prefix_lengths())
    matched = match(events, codelist_frame(context.engine, lists), {s: sorted(v) for s, v in lengths.items()})
    return None if matched is None else matched.select("person_id", "date", "definition").pipe(distinct)


def cms(tables: Mapping[str, nw.LazyFrame | None], context: RunContext, cms: CmsSpec | None = None) -> nw.LazyFrame:
    """(person_id, as_of, cms, cms_conditions) for everyone with at least one CMS condition at an as_of date."""
    cms = cms or spec()
    criteria = _criteria_frame(cms, context.as_of, context)
    keep = ["person_id", "as_of", "condition", "alternative", "criterion", "negate"]
    met = []
    register = tables.get("register")
    if register is not None:
        test = nw.col("test")
        holds = (
            (test == "ever")
            | ((test == "active") & nw.col("active"))
            | ((test == "coded_within") & (nw.col("last_date") > nw.col("since")))
            | ((test == "first_within") & (nw.col("first_date") > nw.col("since")))
        )
        met.append(
            register.select("person_id", "as_of", "definition", "first_date", "last_date", "active")
            .join(criteria.filter(test.is_in(REGISTER_TESTS)), on=["definition", "as_of"], how="inner")
            .filter(holds)
            .select(keep)
        )
    medication = tables.get("gp_medication")
    days = None
    if medication is not None:
        days = _issue_days(medication, {c.definition for c in cms.criteria if c.test == ISSUES}, context)
    if days is not None:
        met.append(
            days.join(criteria.filter(nw.col("test") == ISSUES), on="definition", how="inner")
            .filter(
                (nw.col("since").is_null() | (nw.col("date") > nw.col("since"))) & (nw.col("date") <= nw.col("as_of"))
            )
            .group_by(*keep, "min_issues")
            .agg(nw.col("date").count().alias("issues"))
            .filter(nw.col("issues") >= nw.col("min_issues"))
            .select(keep)
        )
    measure = tables.get("measure")
    for i, c in enumerate(cms.criteria):
        if c.test != BEST_OF_TWO or measure is None:
            continue
        names = set(measure.collect_schema().names())
        if not {c.definition, f"{c.definition}_previous"} <= names:
            continue
        both_below = (nw.col(c.definition) < c.below) & (nw.col(f"{c.definition}_previous") < c.below)
        met.append(
            measure.filter(both_below.fill_null(False)).select(
                "person_id",
                "as_of",
                nw.lit(c.condition).alias("condition"),
                nw.lit(c.alternative, nw.Int64).alias("alternative"),
                nw.lit(i, nw.Int64).alias("criterion"),
                nw.lit(c.negate).alias("negate"),
            )
        )
    required: dict[tuple[str, int], int] = {}
    for c in cms.criteria:
        required[(c.condition, c.alternative)] = required.get((c.condition, c.alternative), 0) + (not c.negate)
    needs = context.engine.frame(
        pa.table(
            {
                "condition": pa.array([k[0] for k in required], pa.string()),
                "alternative": pa.array([k[1] for k in required], pa.int64()),
                "required": pa.array(list(required.values()), pa.int64()),
            }
        )
    )
    weights = context.engine.frame(
        pa.table(
            {"condition": pa.array(list(cms.weights), pa.string()), "weight": pa.array(list(cms.weights.values()))}
        )
    )
    if not met:
        return criteria.head(0).select(
            nw.lit("").alias("person_id"),
            "as_of",
            nw.lit(0.0).alias("cms"),
            nw.lit(0, nw.Int64).alias("cms_conditions"),
        )
    one = nw.lit(1, nw.Int64)
    none = nw.lit(0, nw.Int64)
    present = (
        nw.concat(met, how="vertical")
        .pipe(distinct)
        .with_columns(
            nw.when(nw.col("negate")).then(none).otherwise(one).alias("positive"),
            nw.when(nw.col("negate")).then(one).otherwise(none).alias("negative"),
        )
        .group_by("person_id", "as_of", "condition", "alternative")
        .agg(nw.col("positive").sum(), nw.col("negative").sum())
        .join(needs, on=["condition", "alternative"], how="inner")
        .filter((nw.col("positive") == nw.col("required")) & (nw.col("negative") == 0))
        .select("person_id", "as_of", "condition")
        .pipe(distinct)
    )
    return (
        present.join(weights, on="condition", how="inner")
        .group_by(*PERSON_AS_OF)
        .agg(
            nw.col("weight").sum().round(2).alias("cms"),
            nw.col("condition").count().cast(nw.Int64).alias("cms_conditions"),
        )
    )
