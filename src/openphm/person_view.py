"""One person's record across the store, for the integrated person view (``openphm.app.person``).

Everything the store holds about one pseudonym, over every data year: a timeline of contacts by setting (GP, A&E,
admissions, outpatients, community, mental health, social care, waiting lists - whichever event tables the store
has), registers with their first dates, measure trends, risk scores with their inputs, segment and need tier history
with the facts that explain the latest (:mod:`openphm.segments.explain`), and cohort memberships, each with its
plain-English words. Charts are specs of the project's one chart layer (:mod:`openphm.charts`).

Nothing here knows an NHS number: the caller decides whether one is shown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any

import narwhals as nw
import polars as pl

from openphm import charts
from openphm.codes import load_definitions
from openphm.engine import Engine
from openphm.explanations import ExplanationsFile, load_explanations
from openphm.risk.model.features import raw_features
from openphm.risk.model.stage import APPLIED_TABLE, FEATURE_TABLES, read_applied
from openphm.segments.explain import ExplainError, _explain
from openphm.segments.rules import load_rules

SETTINGS = (
    ("gp_event", "event_date", "GP record", "snomed_code"),
    ("ae_attendance", "arrival_date", "A&E", "acuity"),
    ("apc_episode", "admission_date", "Admission", "admission_method"),
    ("op_appointment", "appointment_date", "Outpatients", "treatment_function_code"),
    ("community_contact", "contact_date", "Community", "service_type"),
    ("mh_contact", "contact_date", "Mental health", "service_type"),
    ("social_care_service", "start_date", "Social care", "service_type"),
    ("waiting_list", "referral_date", "Waiting list", "treatment_function_code"),
)
"""(table, date column, setting, detail column): the event tables a timeline reads when the store has them."""
MEASURES = (
    ("sbp", "Systolic blood pressure (mmHg)"),
    ("hba1c", "HbA1c (mmol/mol)"),
    ("cholesterol_ratio", "Cholesterol ratio (total/HDL)"),
    ("bmi", "BMI (kg/m2)"),
    ("egfr", "eGFR (mL/min/1.73m2)"),
)
RISK_INPUTS = ("sbp", "bmi", "rati", "smoke_cat", "b_type1", "b_type2", "b_AF", "b_treatedhyp", "b_renal", "fh_cvd")
"""The QRISK3 inputs shown beside the score (the risk table's own columns)."""
RECENT = 40
DRIVERS = 5
"""How many of the admission risk's largest contributions, each way, the view names."""
FEATURE_WORDS = {
    "age": "Age",
    "sex": "Sex",
    "imd_quintile": "Deprivation (IMD quintile, 1 most deprived)",
    "condition_count": "Number of long-term conditions",
    "gp_contacts": "GP contact days in the last 12 months",
    "ae_attendances": "A&E attendances in the last 12 months",
    "emergency_admissions": "Emergency admissions in the last 12 months",
    "elective_admissions": "Planned admissions in the last 12 months",
    "other_admissions": "Other admissions in the last 12 months",
    "emergency_bed_days": "Emergency bed days in the last 12 months",
    "outpatient_attendances": "Outpatient attendances in the last 12 months",
    "community_contacts": "Community contacts in the last 12 months",
    "mh_contacts": "Mental health contacts in the last 12 months",
    "social_care_weeks": "Weeks of social care in the last 12 months",
    "ae_attendances_24m": "A&E attendances in the last 24 months",
    "emergency_admissions_24m": "Emergency admissions in the last 24 months",
    "mh_contacts_24m": "Mental health contacts in the last 24 months",
    "open_waiting_lists": "Open waiting lists",
    "any_contact_24m": "Any contact in the last 24 months",
    "hfrs": "Hospital Frailty Risk Score",
    "efi": "Electronic Frailty Index",
    "cms": "Cambridge Multimorbidity Score",
}
"""Plain words for the admission model's source columns (a register flag is named by its definition instead)."""


@dataclass(frozen=True)
class Chart:
    """A chart of the person view, in the shape :mod:`openphm.charts` builders take (``ChartLike``)."""

    kind: str
    title: str
    description: str
    x_label: str
    y_label: str
    value_format: str = "count"
    horizontal: bool = False


def record(eng: Engine, person_id: str, explanations: ExplanationsFile | None = None) -> dict[str, Any] | None:
    """Everything the view shows about ``person_id``, or None when the store has no such person."""
    words = explanations or load_explanations()
    population = _rows(eng, "population", person_id, ("as_of", "age", "sex", "practice_code"))
    if not population:
        return None
    latest = max(r["as_of"] for r in population)
    return {
        "as_of": latest,
        "practice_code": next(r["practice_code"] for r in population if r["as_of"] == latest),
        "timeline": _timeline(eng, person_id),
        "registers": [
            {"definition": r["definition"], "first_date": r["first_date"], "last_date": r["last_date"]}
            for r in sorted(_rows(eng, "register", person_id, None), key=lambda r: r["first_date"] or date.min)
            if r["as_of"] == latest and r["active"]
        ],
        "measures": _measures(eng, person_id),
        "risk": _risk(eng, person_id, latest),
        "segments": _segments(eng, person_id, words),
        "why": _why(eng, person_id),
        "cohorts": [
            {
                "cohort": r["cohort"],
                "as_of": r["as_of"],
                "reasons": r["reasons"],
                "explained": words.cohorts[r["cohort"]].text() if r["cohort"] in words.cohorts else None,
            }
            for r in sorted(_rows(eng, "cohort_member", person_id, None), key=lambda r: (r["as_of"], r["cohort"]))
        ],
    }


def _rows(eng: Engine, table: str, person_id: str, columns: tuple[str, ...] | None) -> list[dict[str, Any]]:
    if not eng.has_table(table):
        return []
    frame = eng.table(table).filter(nw.col("person_id") == nw.lit(person_id))
    if columns is not None:
        frame = frame.select(*columns)
    native: pl.DataFrame = nw.to_native(frame.collect(backend="polars"))
    return native.to_dicts()


def _timeline(eng: Engine, person_id: str) -> dict[str, Any]:
    """Contacts per year by setting (a stacked chart) and the most recent events."""
    events: list[dict[str, Any]] = []
    for table, when, setting, detail in SETTINGS:
        if not eng.has_table(table):
            continue
        names = set(eng.table(table).collect_schema().names())
        wanted = (when, detail) if detail in names else (when,)
        for row in _rows(eng, table, person_id, wanted):
            if row[when] is not None:
                events.append({"date": row[when], "setting": setting, "detail": row.get(detail)})
    events.sort(key=lambda e: e["date"], reverse=True)
    years = sorted({e["date"].year for e in events})
    settings = [s for _, _, s, _ in SETTINGS if any(e["setting"] == s for e in events)]
    data = {
        "categories": [str(y) for y in years],
        "series": [
            {"name": s, "values": [sum(e["setting"] == s and e["date"].year == y for e in events) for y in years]}
            for s in settings
        ],
    }
    chart = Chart(
        "stacked", "Contacts by year and setting", "Contacts per year by setting.", "Year", "Contacts", "count"
    )
    return {"recent": events[:RECENT], "total": len(events), **_chart(chart, data)}


def _chart(chart: Chart, data: dict[str, Any]) -> dict[str, Any]:
    if not data["categories"] or not charts.has_values(chart, data):
        return {"spec": None, "table": None, "title": chart.title}
    return {"spec": charts.spec(chart, data), "table": charts.table(chart, data), "title": chart.title}


def _measures(eng: Engine, person_id: str) -> list[dict[str, Any]]:
    """One line chart per measure over the data years (the latest value at each as_of)."""
    rows = sorted(_rows(eng, "measure", person_id, None), key=lambda r: r["as_of"])
    out = []
    for column, label in MEASURES:
        values = [r.get(column) for r in rows]
        if not any(v is not None for v in values):
            continue
        data = {"categories": [str(r["as_of"]) for r in rows], "series": [{"name": label, "values": values}]}
        out.append(_chart(Chart("line", label, f"{label} at each as_of date.", "As of", label, "rate"), data))
    return out


def _risk(eng: Engine, person_id: str, as_of: date) -> dict[str, Any]:
    """The latest scores and what they read: QRISK3 with its inputs, eFI with its deficit count, HFRS, CMS and the
    admission risk with its centile and model."""
    risk = next((r for r in _rows(eng, "risk", person_id, None) if r["as_of"] == as_of), {})
    admission = next((r for r in _rows(eng, "admission_risk", person_id, None) if r["as_of"] == as_of), {})
    return {
        "qrisk3": risk.get("qrisk3"),
        "qrisk3_inputs": {k: risk.get(k) for k in RISK_INPUTS if k in risk},
        "efi": risk.get("efi"),
        "efi_category": risk.get("efi_category"),
        "efi_deficits": risk.get("efi_deficits"),
        "hfrs": risk.get("hfrs"),
        "hfrs_band": risk.get("hfrs_band"),
        "cms": risk.get("cms"),
        "cms_conditions": risk.get("cms_conditions"),
        "admission_risk": admission.get("admission_risk"),
        "risk_centile": admission.get("risk_centile"),
        "model_version": admission.get("model_version"),
        "drivers": _drivers(eng, person_id, as_of) if admission.get("admission_risk") is not None else None,
    }


def _drivers(eng: Engine, person_id: str, as_of: date) -> dict[str, Any] | None:
    """What drives the person's emergency admission risk: each feature's share of the linear predictor.

    The stage writes no per-person contributions, so they are computed here from what the score was computed
    from: the model the run applied (``admission_risk_model``, its coefficients) and the person's own feature row,
    built by the same :func:`openphm.risk.model.features.raw_features` over the same stage tables, filtered to
    this person first. A feature's contribution is the sum of coefficient x term over its terms (age and its
    spline hinges are one feature, the IMD levels and the unknown indicator another), on the log-odds scale, so
    ``intercept + sum(contributions)`` is the linear predictor and its logistic is the stored score (the test holds
    them equal). The reference is a person whose every term is 0 - aged 0, female, least deprived fifth, nothing
    recorded - which is the one baseline a linear model defines without population averages; ``exp`` of a
    contribution is the factor by which that feature multiplies the odds against it."""
    if not eng.has_table(APPLIED_TABLE):
        return None
    model = read_applied(eng.table(APPLIED_TABLE))
    if model is None:
        return None
    mine = nw.col("person_id") == nw.lit(person_id)
    tables = {t: eng.table(t).filter(mine) for t in ("population", *FEATURE_TABLES) if eng.has_table(t)}
    conditions = [d.id for d in load_definitions().values() if d.kind == "condition"]
    raw = raw_features(tables, eng, [as_of], model.terms, conditions).collect(backend="polars").to_native()
    if raw.height != 1:
        return None
    names = {d.id: d.name for d in load_definitions().values()}
    features: dict[tuple[str, str], dict[str, Any]] = {}
    for term, coefficient in zip(model.terms, model.coefficients, strict=True):
        value = raw.get_column(term.column)[0]
        part = coefficient * float(term.values(raw)[0])
        entry = features.setdefault(
            (term.source, term.column),
            {"feature": _feature_words(term.source, term.column, names), "value": _shown(value), "contribution": 0.0},
        )
        entry["contribution"] += part
    for entry in features.values():
        entry["factor"] = math.exp(entry["contribution"])
    ranked = sorted(features.values(), key=lambda f: f["contribution"], reverse=True)
    return {
        "intercept": model.intercept,
        "model_version": model.version,
        "all": ranked,
        "raising": [f for f in ranked if f["contribution"] > 0][:DRIVERS],
        "lowering": [f for f in reversed(ranked) if f["contribution"] < 0][:DRIVERS],
    }


def _feature_words(source: str, column: str, names: dict[str, str]) -> str:
    if source == "register" and column != "condition_count":
        return f"{names.get(column, column)} (on the register)"
    return FEATURE_WORDS.get(column, column.replace("_", " "))


def _shown(value: object) -> str:
    """A raw feature value as the page prints it."""
    if value is None:
        return "not recorded"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return str(value)


def _segments(eng: Engine, person_id: str, words: ExplanationsFile) -> list[dict[str, Any]]:
    history = []
    for row in sorted(_rows(eng, "segment", person_id, None), key=lambda r: r["as_of"]):
        flags = [k for k, v in row.items() if isinstance(v, bool) and v]
        segment, tier = row["segment"], row["need_tier"]
        history.append(
            {
                "as_of": row["as_of"],
                "segment": segment,
                "segment_title": words.segments[segment].title if segment in words.segments else segment,
                "segment_explained": words.segments[segment].text() if segment in words.segments else None,
                "need_tier": tier,
                "need_tier_title": words.need_tiers[tier].title if tier in words.need_tiers else None,
                "need_tier_explained": words.need_tiers[tier].text() if tier in words.need_tiers else None,
                "flags": flags,
                "acg_png": row.get("acg_png"),
            }
        )
    return history


def _why(eng: Engine, person_id: str) -> list[dict[str, Any]]:
    """The facts behind the latest segment and need tier (the package's rules and code lists)."""
    try:
        explained = _explain(eng, person_id, None, load_rules(), None)
    except ExplainError:
        return []
    return [
        {
            "supports": f.supports,
            "condition": f.condition,
            "code": f.code,
            "term": f.term,
            "date": f.date,
            "setting": f.setting,
            "value": f.value,
        }
        for f in explained.facts
    ]
