"""The population stage: who is in the population at each as_of date, with their demographics.

Every later stage that counts people per as_of - registers, segments, aggregates - starts from this
table, so age, age band, ethnic group and deprivation are derived once and the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping

import narwhals as nw
import pyarrow as pa

from openphm.pipeline import RunContext, required, stage
from openphm.tables import POPULATION

MAX_AGE = 130
ETHNIC_GROUPS = {
    "White": ("A", "B", "C"),
    "Mixed": ("D", "E", "F", "G"),
    "Asian": ("H", "J", "K", "L"),
    "Black": ("M", "N", "P"),
    "Other": ("R", "S"),
}
"""NHS ethnic category (one letter) to the five groups of the 2021 Census; anything else is 'Not stated'."""


def age_band(age: int) -> str:
    """Five-year band of the European Standard Population 2013: '00-04' ... '90-94', '95+'."""
    start = min(age // 5 * 5, 95)
    return "95+" if start == 95 else f"{start:02d}-{start + 4:02d}"


def ethnic_group(column: str) -> nw.Expr:
    expr = nw.lit("Not stated")
    for group, codes in reversed(ETHNIC_GROUPS.items()):
        expr = nw.when(nw.col(column).is_in(codes)).then(nw.lit(group)).otherwise(expr)
    return expr


def age_at(born: str, as_of: str) -> nw.Expr:
    """Whole years completed between ``born`` and ``as_of``."""
    before_birthday = (nw.col(as_of).dt.month() < nw.col(born).dt.month()) | (
        (nw.col(as_of).dt.month() == nw.col(born).dt.month()) & (nw.col(as_of).dt.day() < nw.col(born).dt.day())
    )
    years = nw.col(as_of).dt.year() - nw.col(born).dt.year()
    return (years - nw.when(before_birthday).then(1).otherwise(0)).cast(nw.Int64)


@stage("population", inputs=("person",), outputs=(POPULATION,), per_snapshot=True)
def population(tables: Mapping[str, nw.LazyFrame | None], context: RunContext) -> Mapping[str, nw.LazyFrame]:
    """One row per person alive or not, born by each as_of date, with age, band, group and flags."""
    person = required(tables, "person")
    dates = context.engine.frame(pa.table({"as_of": pa.array(context.as_of, type=pa.date32())}))
    bands = context.engine.frame(
        pa.table(
            {
                "age": pa.array(range(MAX_AGE + 1), type=pa.int64()),
                "age_band": [age_band(a) for a in range(MAX_AGE + 1)],
            }
        )
    )
    as_of = nw.col("as_of")
    frame = (
        person.join(dates, how="cross")
        .filter(nw.col("date_of_birth") <= as_of)
        .with_columns(age_at("date_of_birth", "as_of").alias("age"))
        .join(bands, on="age", how="left")
        .with_columns(
            ethnic_group("ethnicity").alias("ethnic_group"),
            (nw.col("date_of_death").is_null() | (nw.col("date_of_death") > as_of)).alias("alive"),
            (
                (nw.col("registration_start").is_null() | (nw.col("registration_start") <= as_of))
                & (nw.col("registration_end").is_null() | (nw.col("registration_end") >= as_of))
            ).alias("registered"),
        )
        .with_columns((nw.col("alive") & nw.col("registered")).alias("in_population"))
    )
    return {"population": frame.select(*POPULATION.names)}
