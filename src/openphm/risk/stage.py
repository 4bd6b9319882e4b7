"""The risk stage (table `risk`): frailty, comorbidity, multimorbidity and QRISK3 per person and as_of.

One row per population row. Every score is computed from records dated on or before the as_of date:

- ``hfrs``, ``hfrs_band``: Hospital Frailty Risk Score over the diagnoses (any position) of admissions in the
  730 days to as_of (Gilbert 2018's two-year lookback). Developed in people aged 75+ and used from 65 in
  practice; computed for everyone here, so the consumer chooses the age rule.
- ``efi``, ``efi_deficits``, ``efi_category``, ``polypharmacy``, ``efi_eligible``: see :mod:`openphm.risk.efi`.
- ``charlson``, ``elixhauser``: see :mod:`openphm.risk.comorbidity`, over admissions' diagnoses in the
  1,826 days (five years) to as_of.
- ``cms``, ``cms_conditions``: see :mod:`openphm.risk.cms`.
- QRISK3's inputs, substitution flags, ``qrisk3_eligible`` and ``qrisk3``: see :mod:`openphm.risk.qrisk3`.

Windows are (as_of - days, as_of]: a record on the as_of date counts, one exactly ``days`` before does not.
A score whose source table was not supplied is null (not available), never a silent zero: the hospital
scores without ``apc_episode`` and ``apc_diagnosis``, polypharmacy without ``gp_medication``, the eFI and
CMS without a ``register``. With the table present, a person with no record scores 0 (low, fit).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

import narwhals as nw
import pyarrow as pa

from openphm.engine import distinct
from openphm.pipeline import RunContext, required, stage
from openphm.risk import comorbidity
from openphm.risk import efi as frailty
from openphm.risk.cms import cms
from openphm.risk.hfrs import category_points, hfrs
from openphm.risk.qrisk3 import qrisk3_inputs, qrisk3_score
from openphm.tables import RISK
from openphm.vocabulary import PERSON_AS_OF

HFRS_DAYS = 730
"""Gilbert 2018: diagnoses from admissions in the previous two years."""

COMORBIDITY_DAYS = 1826
"""Charlson and Elixhauser: admissions in the five years to as_of (a common lookback in English hospital data)."""
COMORBIDITY_WEIGHTS = {"charlson": "quan", "elixhauser": "van_walraven"}

KEY = list(PERSON_AS_OF)


def window(context: RunContext, days: int) -> nw.LazyFrame:
    """(as_of, since) for every as_of date: a date counts when since < date <= as_of."""
    return context.engine.frame(
        pa.table(
            {
                "as_of": pa.array(context.as_of, pa.date32()),
                "since": pa.array([d - timedelta(days=days) for d in context.as_of], pa.date32()),
            }
        )
    )


def hospital_codes(tables: Mapping[str, nw.LazyFrame | None], context: RunContext, days: int) -> nw.LazyFrame | None:
    """(person_id, as_of, code): normalised ICD-10 codes (any position) of admissions in the window to each as_of."""
    episodes, diagnoses = tables.get("apc_episode"), tables.get("apc_diagnosis")
    if episodes is None or diagnoses is None:
        return None
    return (
        diagnoses.filter(~nw.col("icd10_code").is_null())
        .join(episodes.select("episode_id", "person_id", "admission_date"), on="episode_id", how="inner")
        .join(window(context, days), how="cross")
        .filter((nw.col("admission_date") > nw.col("since")) & (nw.col("admission_date") <= nw.col("as_of")))
        .select("person_id", "as_of", nw.col("icd10_code").alias("code"))  # canonical since ingest
        .pipe(distinct)
    )


def _keyed(codes: nw.LazyFrame, context: RunContext) -> tuple[nw.LazyFrame, nw.LazyFrame]:
    """Codes with one string key per (person_id, as_of), for scorers keyed on one id; and the key's meaning."""
    dates = context.engine.frame(
        pa.table({"as_of": pa.array(context.as_of, pa.date32()), "n": pa.array(range(len(context.as_of)), pa.int64())})
    )
    keyed = codes.join(dates, on="as_of", how="inner").with_columns(
        nw.concat_str([nw.col("person_id"), nw.lit("|"), nw.col("n").cast(nw.String)]).alias("key")
    )
    return keyed.select("key", "code"), keyed.select("key", "person_id", "as_of").pipe(distinct)


def _hfrs(tables: Mapping[str, nw.LazyFrame | None], context: RunContext) -> nw.LazyFrame | None:
    codes = hospital_codes(tables, context, HFRS_DAYS)
    if codes is None:
        return None
    keyed, keys = _keyed(codes, context)
    scored = hfrs(keyed, context.engine.frame(category_points()), id_column="key", normalised=True)
    return scored.join(keys, on="key", how="inner").select(*KEY, "hfrs", "hfrs_band")


def _comorbidity(tables: Mapping[str, nw.LazyFrame | None], context: RunContext) -> nw.LazyFrame | None:
    codes = hospital_codes(tables, context, COMORBIDITY_DAYS)
    if codes is None:
        return None
    # Both indices read the same codes: materialise them once rather than re-derive them per index.
    keyed, keys = (context.engine.persist(f) for f in _keyed(context.engine.persist(codes), context))
    frame = keys
    for name, weights in COMORBIDITY_WEIGHTS.items():
        scored = comorbidity.score(
            keyed, comorbidity.load(name), context.engine.frame, weights, id_column="key", normalised=True
        )
        frame = frame.join(scored.select("key", nw.col("score").alias(name)), on="key", how="left")
    return frame.select(*KEY, *COMORBIDITY_WEIGHTS)


@stage(
    "risk",
    inputs=("population",),
    optional_inputs=(
        "register",
        "measure",
        "gp_medication",
        "gp_event",
        "apc_episode",
        "apc_diagnosis",
        "townsend",
    ),
    outputs=(RISK,),
    per_person=True,
    per_snapshot=True,
)
def risk(tables: Mapping[str, nw.LazyFrame | None], context: RunContext) -> Mapping[str, nw.LazyFrame]:
    """One row per population row: HFRS, eFI, polypharmacy, Charlson, Elixhauser, CMS and QRISK3."""
    population = required(tables, "population")
    frame = population.select(*KEY)

    scored = _hfrs(tables, context)
    if scored is not None:
        frame = frame.join(scored, on=KEY, how="left")
        frame = frame.with_columns(nw.col("hfrs").fill_null(0.0), nw.col("hfrs_band").fill_null(nw.lit("low")))
    else:
        frame = frame.with_columns(nw.lit(None, nw.Float64).alias("hfrs"), nw.lit(None, nw.String).alias("hfrs_band"))

    spec = frailty.spec()
    medication = tables.get("gp_medication")
    issued = None
    if medication is not None:
        issued = frailty.medicines(medication, window(context, spec.polypharmacy_days), spec)
    frame = frame.join(
        frailty.efi(population, tables.get("register"), issued, context.engine.frame, spec), on=KEY, how="left"
    )
    indices = _comorbidity(tables, context)
    if indices is not None:
        frame = frame.join(indices, on=KEY, how="left")
        frame = frame.with_columns(*[nw.col(c).fill_null(0) for c in COMORBIDITY_WEIGHTS])
    else:
        frame = frame.with_columns(*[nw.lit(None, nw.Int64).alias(c) for c in COMORBIDITY_WEIGHTS])
    if tables.get("register") is not None or tables.get("gp_medication") is not None:
        frame = frame.join(cms(tables, context), on=KEY, how="left").with_columns(
            nw.col("cms").fill_null(0.0), nw.col("cms_conditions").fill_null(0)
        )
    else:
        frame = frame.with_columns(
            nw.lit(None, nw.Float64).alias("cms"), nw.lit(None, nw.Int64).alias("cms_conditions")
        )
    # age and sex are the population's (QRISK3 takes them as they are there): not repeated here
    qrisk = qrisk3_score(qrisk3_inputs(tables, context)).drop("age", "sex")
    frame = frame.join(qrisk, on=KEY, how="left")
    return {"risk": frame}
