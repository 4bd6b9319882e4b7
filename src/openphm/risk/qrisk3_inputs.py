"""The QRISK3 inputs of every population row, derived from the store, and who is eligible for a score.

Conditions come from the ``register`` (active at as_of), measurements from ``measure`` (the latest reading),
medicines from ``gp_medication`` (issues counted in a window, because QRISK3 asks about current and regular
treatment, which the register's 'ever issued' cannot say), family history from coded events. Which
definition feeds which input, the windows and the ethnicity mapping are package data
(``content/scores/qrisk3/inputs.yaml``) and are documented in docs/qrisk3.md.

Townsend deprivation is not IMD: it is left empty (the score substitutes 0 and flags it) unless a Townsend
score per LSOA is supplied, as a ``townsend`` table or as the run parameter ``townsend`` (a CSV path), both
with columns ``lsoa_code,townsend``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from functools import cache

import narwhals as nw
import pyarrow as pa
import pyarrow.csv as pacsv

from openphm.content import content_path
from openphm.content.validation import parse_yaml
from openphm.engine import distinct
from openphm.errors import InputError
from openphm.pipeline import RunContext
from openphm.registers.definitions import definitions
from openphm.registers.events import codelist_frame, events_by_system, match
from openphm.risk.qrisk3 import BINARY, FEMALE, MALE, model
from openphm.vocabulary import PERSON_AS_OF

KEYS = list(PERSON_AS_OF)
OUTPUT = (
    "person_id",
    "as_of",
    "sex",
    "age",
    *BINARY,
    "bmi",
    "ethrisk",
    "rati",
    "sbp",
    "sbps5",
    "smoke_cat",
    "town",
    "qrisk3_on_statin",
    "qrisk3_eligible",
)


MEASURES = (
    ("bmi", "bmi", nw.Float64),
    ("cholesterol_ratio", "rati", nw.Float64),
    ("sbp", "sbp", nw.Float64),
    ("sbp_sd5", "sbps5", nw.Float64),
    ("smoking_category", "smoke_cat", nw.Int64),
    ("ckd_stage", "_ckd_stage", nw.Int64),
)
"""Column of the ``measure`` table -> input (a column the table lacks, e.g. with no GP events, is empty)."""


@cache
def rules() -> dict:
    """openphm's derivation rules: ethnicity mapping, definitions per input, medicine windows."""
    return parse_yaml(content_path("scores", "qrisk3", "inputs.yaml").read_text(encoding="utf-8"))


def _flags(frame: nw.LazyFrame | None, wanted: Mapping[str, list[str]], context: RunContext) -> nw.LazyFrame | None:
    """(person_id, as_of, one 0/1 column per key of ``wanted``) from rows of (person_id, as_of, definition)."""
    if frame is None:
        return None
    pairs = [(name, d) for name, ids in wanted.items() for d in ids]
    lookup = context.engine.frame(
        pa.table({"input": [p[0] for p in pairs], "definition": [p[1] for p in pairs]}, schema=_STRINGS)
    )
    return _one_column_per_input(frame.join(lookup, on="definition", how="inner"), list(wanted))


def _one_column_per_input(frame: nw.LazyFrame, inputs: list[str]) -> nw.LazyFrame:
    """Rows of (person_id, as_of, input) -> one row per person and as_of with a 0/1 column per input."""
    return (
        frame.with_columns(*[(nw.col("input") == name).cast(nw.Int64).alias(name) for name in inputs])
        .group_by(*KEYS)
        .agg(*[nw.col(name).max() for name in inputs])
    )


_STRINGS = pa.schema([("input", pa.string()), ("definition", pa.string())])


def _medicines(tables: Mapping[str, nw.LazyFrame | None], context: RunContext) -> nw.LazyFrame | None:
    """Per person and as_of, 1 for each medicine rule met: enough issues on distinct days in its window."""
    medication = tables.get("gp_medication")
    spec: dict[str, dict] = rules()["medicines"]
    chosen = {d.id: d for d in definitions(context, ("medicine",)) if d.id in {r["definition"] for r in spec.values()}}
    if medication is None or not chosen:
        return None
    lists = [(d.id, False, c) for d in chosen.values() for c in d.codelists.values()]
    prefix: dict[str, set[int]] = {}
    for _, _, codelist in lists:
        if codelist.system.prefix:
            prefix.setdefault(codelist.system.name, set()).update(codelist.prefix_lengths())
    events = events_by_system({"gp_medication": medication}, {c.system.name for _, _, c in lists})
    issued = match(events, codelist_frame(context.engine, lists), {s: sorted(v) for s, v in prefix.items()})
    if issued is None:
        return None
    rows = [
        (name, rule["definition"], as_of, as_of - timedelta(days=int(rule["window_days"]) - 1), int(rule["min_issues"]))
        for name, rule in spec.items()
        if rule["definition"] in chosen
        for as_of in context.as_of
    ]
    windows = context.engine.frame(
        pa.table(
            {
                "input": pa.array([r[0] for r in rows], pa.string()),
                "definition": pa.array([r[1] for r in rows], pa.string()),
                "as_of": pa.array([r[2] for r in rows], pa.date32()),
                "window_start": pa.array([r[3] for r in rows], pa.date32()),
                "min_issues": pa.array([r[4] for r in rows], pa.int64()),
            }
        )
    )
    counted = (
        issued.select("person_id", "definition", "date")
        .pipe(distinct)
        .join(windows, on="definition", how="inner")
        .filter((nw.col("date") >= nw.col("window_start")) & (nw.col("date") <= nw.col("as_of")))
        .group_by("person_id", "as_of", "input")
        .agg(nw.len().alias("issues"), nw.col("min_issues").max())
        .filter(nw.col("issues") >= nw.col("min_issues"))
    )
    return _one_column_per_input(counted, list(spec))


def _family_history(
    tables: Mapping[str, nw.LazyFrame | None], context: RunContext, population: nw.LazyFrame
) -> nw.LazyFrame | None:
    """1 for everyone with a family history code on or before as_of, from any setting."""
    wanted = rules()["family_history"]
    chosen = [d for d in definitions(context, ("status", "condition")) if d.id == wanted]
    if not chosen:
        return None
    lists = [(d.id, False, c) for d in chosen for c in d.codelists.values()]
    events = events_by_system(tables, {c.system.name for _, _, c in lists})
    prefix: dict[str, set[int]] = {}
    for _, _, codelist in lists:
        if codelist.system.prefix:
            prefix.setdefault(codelist.system.name, set()).update(codelist.prefix_lengths())
    coded = match(events, codelist_frame(context.engine, lists), {s: sorted(v) for s, v in prefix.items()})
    if coded is None:
        return None
    first = coded.group_by("person_id").agg(nw.col("date").min().alias("first_date"))
    return (
        population.select(*KEYS)
        .join(first, on="person_id", how="inner")
        .filter(nw.col("first_date") <= nw.col("as_of"))
        .select(*KEYS, nw.lit(1, nw.Int64).alias("fh_cvd"))
    )


def _townsend(tables: Mapping[str, nw.LazyFrame | None], context: RunContext) -> nw.LazyFrame | None:
    """(lsoa_code, townsend) from a ``townsend`` table or the CSV named by the run option ``townsend``."""
    table = tables.get("townsend")
    if table is not None:
        return table.select("lsoa_code", nw.col("townsend").cast(nw.Float64))
    path = context.options.townsend
    if not path:
        return None
    try:
        types = {"lsoa_code": pa.string(), "townsend": pa.float64()}
        data = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=types))
        return context.engine.frame(data.select(["lsoa_code", "townsend"]))
    except (OSError, KeyError, pa.ArrowInvalid):
        raise InputError(f"{path}: cannot be read as a Townsend table (columns lsoa_code,townsend)") from None


def _ethrisk(context: RunContext) -> nw.LazyFrame:
    mapping = rules()["ethrisk"]
    return context.engine.frame(
        pa.table(
            {
                "ethnicity": pa.array(list(mapping), pa.string()),
                "ethrisk": pa.array([int(v) for v in mapping.values()], pa.int64()),
            }
        )
    )


def qrisk3_inputs(tables: Mapping[str, nw.LazyFrame | None], context: RunContext) -> nw.LazyFrame:
    """One row per population row (person_id, as_of) with the official QRISK3 inputs and ``qrisk3_eligible``.

    Reads ``population`` (required), ``register``, ``measure``, ``gp_medication``, coded event tables
    (``gp_event``, ``apc_episode``, ``apc_diagnosis``) for family history, and ``townsend``, each when present.
    Unknown measurements stay empty for :func:`openphm.risk.qrisk3.qrisk3_score` to substitute and flag.
    Eligible: in the population, aged 25-84, sex female or male, and no coronary heart disease,
    stroke/TIA or peripheral arterial disease coded by as_of.
    """
    population = tables["population"]
    if population is None:
        raise InputError("QRISK3 inputs: the population table is missing")
    spec = rules()
    low, high = model().age_range
    base = population.select(
        *KEYS,
        nw.when(nw.col("sex") == "F")
        .then(nw.lit(FEMALE))
        .when(nw.col("sex") == "M")
        .then(nw.lit(MALE))
        .otherwise(nw.lit(None, nw.String))
        .alias("sex"),
        nw.col("age").cast(nw.Int64),
        "ethnicity",
        "lsoa_code",
        "in_population",
    ).join(_ethrisk(context), on="ethnicity", how="left")

    register = tables.get("register")
    conditions: dict[str, list[str]] = spec["conditions"]
    active = None if register is None else register.filter(nw.col("active")).select(*KEYS, "definition")
    coded = None if register is None else register.select(*KEYS, "definition")
    parts = [
        _flags(active, conditions, context),
        _flags(coded, {"existing_cvd": spec["existing_cvd"]}, context),
        _diabetes(register),
        _medicines(tables, context),
        _family_history(tables, context, population),
    ]
    frame = base
    for part in parts:
        if part is not None:
            frame = frame.join(part, on=KEYS, how="left")
    names = frame.collect_schema().names()
    zero = nw.lit(0, nw.Int64)

    def flag(name: str) -> nw.Expr:
        return nw.col(name).fill_null(0).cast(nw.Int64) if name in names else zero

    measure = tables.get("measure")
    recorded = [] if measure is None else measure.collect_schema().names()
    measured = [
        nw.col(source).cast(dtype).alias(name) if source in recorded else nw.lit(None, dtype).alias(name)
        for source, name, dtype in MEASURES
    ]
    if measure is not None:
        frame = frame.join(measure.select(*KEYS, *measured), on=KEYS, how="left")
    else:
        frame = frame.with_columns(*measured)
    townsend = _townsend(tables, context)
    if townsend is not None:
        frame = frame.join(townsend, on="lsoa_code", how="left").rename({"townsend": "town"})
    else:
        frame = frame.with_columns(nw.lit(None, nw.Float64).alias("town"))

    male = nw.col("sex") == MALE
    renal = (flag("b_renal") == 1) | (nw.col("_ckd_stage") >= 3).fill_null(value=False)
    treated = (flag("hypertension") == 1) & (flag("antihypertensive") == 1)
    eligible = (
        nw.col("in_population").fill_null(value=False)
        & ~nw.col("sex").is_null()
        & (nw.col("age") >= low)
        & (nw.col("age") <= high)
        & (flag("existing_cvd") == 0)
    )
    return frame.with_columns(
        flag("b_AF").alias("b_AF"),
        flag("b_atypicalantipsy").alias("b_atypicalantipsy"),
        flag("b_corticosteroids").alias("b_corticosteroids"),
        nw.when(male).then(flag("b_impotence2")).otherwise(zero).alias("b_impotence2"),
        flag("b_migraine").alias("b_migraine"),
        flag("b_ra").alias("b_ra"),
        renal.cast(nw.Int64).alias("b_renal"),
        flag("b_semi").alias("b_semi"),
        flag("b_sle").alias("b_sle"),
        treated.cast(nw.Int64).alias("b_treatedhyp"),
        flag("b_type1").alias("b_type1"),
        flag("b_type2").alias("b_type2"),
        flag("fh_cvd").alias("fh_cvd"),
        (flag("statin") == 1).alias("qrisk3_on_statin"),
        eligible.fill_null(value=False).alias("qrisk3_eligible"),
    ).select(*OUTPUT)


def _diabetes(register: nw.LazyFrame | None) -> nw.LazyFrame | None:
    """b_type1 / b_type2, one at most: with both types active, the type coded last wins (type 1 on a tie)."""
    if register is None:
        return None
    spec = rules()["diabetes"]
    latest = (
        register.filter(nw.col("active") & nw.col("definition").is_in([spec["type_1"], spec["type_2"]]))
        .with_columns(
            nw.when(nw.col("definition") == spec["type_1"]).then(nw.col("last_date")).alias("t1"),
            nw.when(nw.col("definition") == spec["type_2"]).then(nw.col("last_date")).alias("t2"),
        )
        .group_by(*KEYS)
        .agg(nw.col("t1").max(), nw.col("t2").max())
    )
    type1 = ~nw.col("t1").is_null() & (nw.col("t2").is_null() | (nw.col("t1") >= nw.col("t2")))
    return latest.select(
        *KEYS,
        type1.cast(nw.Int64).alias("b_type1"),
        (~nw.col("t2").is_null() & ~type1).cast(nw.Int64).alias("b_type2"),
    )
