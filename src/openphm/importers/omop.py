"""OMOP CDM 5.3 and 5.4 CSV folders to the input contract.

OMOP's own concept ids are US-standardised (SNOMED for conditions, RxNorm for drugs, LOINC for labs), so the
importer reads each clinical row's *source* code instead and gates it on the source vocabulary named by the
CONCEPT table, never on the code's shape: an ICD10CM ``K92.2`` looks exactly like WHO ICD-10 and an RxNorm id
passes a "digits" dm+d check. SNOMED CT rows become ``gp_event``, ICD-10 and OPCS-4 rows on an inpatient
visit become hospital diagnoses and procedures, dm+d drugs become ``gp_medication``, and LOINC measurements
come across only through the shipped map ``data/loinc_measures.csv`` with their units converted. Everything
else is counted in the reconciliation by reason, vocabulary and code, never silently dropped.

Every column is read as text (exports write ids as ``123.0``, which are cast back to integer strings) and the
reconciliation holds counts and codes only, never a person's identifier. Polars' lazy API is used directly:
this runs once, upstream of the store, on files rather than on the store's engine.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from openphm.errors import InputError
from openphm.importers.measures import measure_rows
from openphm.importers.reconcile import ImportResult, Reconciliation

REQUIRED = {
    "person": ("person_id", "gender_concept_id", "year_of_birth"),
    "observation_period": ("person_id", "observation_period_start_date", "observation_period_end_date"),
    "death": ("person_id", "death_date"),
    "visit_occurrence": ("visit_occurrence_id", "person_id", "visit_concept_id", "visit_start_date"),
    "condition_occurrence": ("person_id", "condition_start_date", "condition_source_value"),
    "procedure_occurrence": ("person_id", "procedure_date", "procedure_source_value"),
    "measurement": ("person_id", "measurement_date", "measurement_source_value"),
    "observation": ("person_id", "observation_date", "observation_source_value"),
    "drug_exposure": ("person_id", "drug_exposure_start_date", "drug_source_value"),
    "concept": ("concept_id", "vocabulary_id", "concept_code"),
}
"""The tables read and the columns without which each cannot be imported (CDM 5.3 and 5.4 share these)."""

USED_COLUMNS = (
    r"person_id|visit_occurrence_id|{table}_id|\w+_concept_id|\w+_date|\w+_datetime|\w+_source_value"
    r"|value_as_number|\w+_of_birth|location_id|care_site_id"
)
"""The columns the importer maps; the rest (provider, quantity, sig, free text ...) are never parsed. CONCEPT, which
holds millions of rows in a full vocabulary, is read for its three required columns only."""

SUFFIXES = {".csv": ",", ".tsv": "\t", ".txt": ""}
"""File endings taken as a table; a ``.txt`` (and any file whose header has tabs but no commas) is sniffed."""

MALE, FEMALE = "8507", "8532"
INPATIENT, OUTPATIENT, EMERGENCY, EMERGENCY_INPATIENT = "9201", "9202", "9203", "262"
EMERGENCY_METHOD = "21"
"""An ER-and-inpatient visit (262) is an admission through the emergency department: HES admission method 21."""
UNKNOWN_METHOD = "99"
"""An inpatient visit (9201) says only "not through the ED", which cannot tell an emergency (21-2D) from a planned
(11-13) admission: 99, the NHS Data Dictionary's "not known", counts it as an admission of neither kind."""

PRIMARY_DIAGNOSIS = ("32901", "32902", "32903", "44786627")
"""Condition status (5.4: primary admission / primary / primary discharge diagnosis) or type (5.3: primary
condition) concepts that put a diagnosis first in its episode."""

ICD10 = ("ICD10",)
"""OMOP vocabulary ids of WHO/UK ICD-10. ICD10CM (the US clinical modification) is deliberately absent."""

SNOMED_ID = r"^[0-9]{6,18}$"
DMD_ID = r"^[0-9]{6,18}$"


@dataclass(frozen=True)
class _Events:
    """One OMOP clinical-event table: its column prefix, date column and whether it carries a value."""

    table: str
    prefix: str
    date: str
    valued: bool


EVENTS = (
    _Events("condition_occurrence", "condition", "condition_start_date", False),
    _Events("procedure_occurrence", "procedure", "procedure_date", False),
    _Events("measurement", "measurement", "measurement_date", True),
    _Events("observation", "observation", "observation_date", True),
    _Events("drug_exposure", "drug", "drug_exposure_start_date", False),
)


def _find(folder: Path) -> dict[str, Path]:
    """The folder's table files by lower-case table name (``PERSON.csv`` and ``person.csv`` alike)."""
    if not folder.is_dir():
        raise InputError(f"OMOP folder {folder.name} is not a folder")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        table = path.stem.lower()
        if path.suffix.lower() not in SUFFIXES or table not in REQUIRED:
            continue
        if table in found:
            raise InputError(f"OMOP folder {folder.name} has two files for table {table}: {found[table].name}")
        found[table] = path
    if "person" not in found:
        raise InputError(f"OMOP folder {folder.name} has no person file (person.csv or PERSON.csv)")
    return found


def _separator(path: Path) -> str:
    """Comma, or tab where the file says so by its ending or by a header with tabs and no commas."""
    given = SUFFIXES[path.suffix.lower()]
    if given:
        return given
    with path.open("rb") as handle:
        header = handle.readline()
    return "\t" if b"\t" in header and b"," not in header else ","


def _read(path: Path, table: str) -> pl.DataFrame:
    """Every column as text, names lower-cased; one clear error for a file that cannot be read."""
    separator = _separator(path)
    try:
        header = pl.read_csv(path, n_rows=1, infer_schema=False, separator=separator, encoding="utf8-lossy").columns
    except (pl.exceptions.PolarsError, OSError, UnicodeError):
        raise InputError(f"OMOP {table} file {path.name} is not a readable CSV file") from None
    columns = [c.strip().lower() for c in header]
    missing = [c for c in REQUIRED[table] if c not in columns]
    if missing:
        raise InputError(f"OMOP {table} file {path.name} lacks the required column {missing[0]}")
    pattern = "|".join(REQUIRED[table]) if table == "concept" else USED_COLUMNS.format(table=table)
    try:
        return (
            pl.scan_csv(path, infer_schema=False, separator=separator, encoding="utf8-lossy")
            .rename(dict(zip(header, columns, strict=True)))
            .select([c for c in columns if re.fullmatch(pattern, c)])
            .collect()
        )
    except pl.exceptions.PolarsError:
        raise InputError(
            f"OMOP {table} file {path.name} is not a readable CSV file (a row has the wrong shape)"
        ) from None


def _text(name: str, columns: list[str]) -> pl.Expr:
    """A trimmed text column, blank as null; a column the file lacks is all null."""
    if name not in columns:
        return pl.lit(None, pl.String)
    value = pl.col(name).str.strip_chars()
    return pl.when(value == "").then(None).otherwise(value)


def _id(name: str, columns: list[str]) -> pl.Expr:
    """An id or code as an integer string: CSV exports of numeric columns write ``123.0`` for 123."""
    return _text(name, columns).str.replace(r"^(-?[0-9]+)\.0*$", "${1}")


def _visit(name: str, columns: list[str]) -> pl.Expr:
    """A visit reference, with 0 (the CDM's "no visit") as null."""
    value = _id(name, columns)
    return pl.when(value == "0").then(None).otherwise(value)


def _date(name: str, columns: list[str]) -> pl.Expr:
    """A date as YYYY-MM-DD: the date column, else the datetime column, cut to the day. Anything else is left
    as it is for ``phm ingest`` to quarantine."""
    stamp = name.removesuffix("_date") + "_datetime"
    return pl.coalesce(_text(name, columns), _text(stamp, columns)).str.replace(r"^(\d{4}-\d{2}-\d{2})[ T].*$", "${1}")


def measurement_map() -> pl.DataFrame:
    """The shipped LOINC -> SNOMED CT measure map shared with the FHIR importer (``data/loinc_measures.csv``),
    as a linear conversion ``value * multiply + add`` keyed by LOINC code and lower-cased unit: OMOP's
    ``unit_source_value`` is free text, so case is not significant here (UCUM's is, in FHIR)."""
    rows = [row for row in measure_rows() if row["snomed_code"]]
    factor = [float(r["multiply"]) / float(r["divide"]) for r in rows]
    return pl.DataFrame(
        {
            "loinc": [r["loinc"] for r in rows],
            "unit_key": [r["unit"].strip().lower() for r in rows],
            "mapped_code": [r["snomed_code"] for r in rows],
            "multiply": factor,
            "add": [-float(r["subtract"]) * f for r, f in zip(rows, factor, strict=True)],
            "mapped_unit": [r["unit_out"] or None for r in rows],
        },
        schema_overrides={"mapped_unit": pl.String},
    ).unique(["loinc", "unit_key"], keep="first", maintain_order=True)


@dataclass
class _Context:
    """What every table's import needs: the people and visits read, the concepts, and the reconciliation."""

    people: pl.Series
    visits: pl.Series
    admissions: pl.Series
    concepts: pl.DataFrame | None
    recon: Reconciliation


def _orphans(frame: pl.DataFrame, where: str, ctx: _Context) -> pl.DataFrame:
    """Rows whose person is not in the person file, counted and dropped (ingest would quarantine them)."""
    known = frame["person_id"].is_in(ctx.people.implode())
    ctx.recon.add("dropped", where, "orphan: person_id not in the person file", frame.height - int(known.sum()))
    return frame.filter(known)


def _import_people(path: Path, recon: Reconciliation) -> pl.DataFrame:
    """Person id, birth date and sex; US race/ethnicity and location/care site are counted, never mapped, because
    they have no NHS equivalent and guessing one would bias every inequality measure."""
    where = path.name
    raw = _read(path, "person")
    columns = raw.columns
    recon.add("read", where, "rows read", raw.height)
    year = _id("year_of_birth", columns)
    month = _id("month_of_birth", columns).fill_null("1").str.zfill(2)
    day = _id("day_of_birth", columns).fill_null("1").str.zfill(2)
    stamp = _text("birth_datetime", columns).str.extract(r"^(\d{4}-\d{2}-\d{2})")
    gender = _id("gender_concept_id", columns)
    people = raw.select(
        _id("person_id", columns).alias("person_id"),
        pl.coalesce(stamp, pl.concat_str(year.str.zfill(4), pl.lit("-"), month, pl.lit("-"), day)).alias(
            "date_of_birth"
        ),
        pl.when(gender == MALE)
        .then(pl.lit("M"))
        .when(gender == FEMALE)
        .then(pl.lit("F"))
        .otherwise(pl.lit("U"))
        .alias("sex"),
        gender.alias("_gender"),
        stamp.is_null().alias("_from_parts"),
        (
            (_id("month_of_birth", columns).is_null() | _id("day_of_birth", columns).is_null())
            & stamp.is_null()
            & year.is_not_null()
        ).alias("_year_only"),
        _id("race_concept_id", columns).alias("_race"),
        _id("ethnicity_concept_id", columns).alias("_ethnicity"),
        _id("location_id", columns).alias("_location"),
        _id("care_site_id", columns).alias("_care_site"),
    )
    missing = people["person_id"].is_null()
    recon.add("dropped", where, "person_id missing", int(missing.sum()))
    people = people.filter(~missing)
    recon.add(
        "note", where, "person_id repeated (ingest keeps the first)", people.height - people["person_id"].n_unique()
    )
    unknown_sex = people.filter(pl.col("sex") == "U").group_by(pl.col("_gender").fill_null("").alias("code")).len("n")
    recon.add_codes("cleaned", "person", "gender concept not 8507/8532: sex U", "OMOP gender concept", unknown_sex)
    recon.add("note", "person", "birth date from year/month/day (no birth_datetime)", int(people["_from_parts"].sum()))
    recon.add("cleaned", "person", "month or day of birth missing: set to 1", int(people["_year_only"].sum()))
    for column, label in (("_race", "race"), ("_ethnicity", "ethnicity")):
        codes = people.filter(pl.col(column).is_not_null() & (pl.col(column) != "0"))
        recon.add_codes(
            "unmapped",
            "person",
            f"US {label} concept (OMB category, no NHS ethnic category map): not carried",
            f"OMOP {label} concept",
            codes.group_by(pl.col(column).alias("code")).len("n"),
        )
    for column, label in (("_location", "location_id"), ("_care_site", "care_site_id")):
        count = people.filter(pl.col(column).is_not_null() & (pl.col(column) != "0")).height
        recon.add("unmapped", "person", f"{label} set: no LSOA or practice code in OMOP, not carried", count)
    return people.select("person_id", "date_of_birth", "sex")


def _registration(path: Path | None, ctx: _Context) -> pl.DataFrame:
    """Observation periods as registration: the earliest start and the latest end of each person's periods."""
    if path is None:
        ctx.recon.add("note", "person", "no observation_period file: registration dates blank", 0)
        return pl.DataFrame(
            schema={"person_id": pl.String, "registration_start": pl.String, "registration_end": pl.String}
        )
    raw = _read(path, "observation_period")
    columns = raw.columns
    ctx.recon.add("read", path.name, "rows read", raw.height)
    periods = raw.select(
        _id("person_id", columns).alias("person_id"),
        _date("observation_period_start_date", columns).alias("start"),
        _date("observation_period_end_date", columns).alias("end"),
    )
    periods = _orphans(periods, path.name, ctx)
    spans = periods.group_by("person_id").agg(
        pl.col("start").min().alias("registration_start"), pl.col("end").max().alias("registration_end"), pl.len()
    )
    ctx.recon.add(
        "note",
        path.name,
        "people with more than one period (earliest start, latest end taken)",
        spans.filter(pl.col("len") > 1).height,
    )
    return spans.drop("len")


def _deaths(path: Path | None, ctx: _Context) -> pl.DataFrame:
    """One death date per person, the earliest: CDM 5.3 allowed several death rows, and ingest would
    quarantine a second person row rather than choose."""
    if path is None:
        return pl.DataFrame(schema={"person_id": pl.String, "date_of_death": pl.String})
    raw = _read(path, "death")
    columns = raw.columns
    ctx.recon.add("read", path.name, "rows read", raw.height)
    deaths = _orphans(
        raw.select(_id("person_id", columns).alias("person_id"), _date("death_date", columns).alias("date_of_death")),
        path.name,
        ctx,
    )
    first = deaths.group_by("person_id").agg(pl.col("date_of_death").min())
    ctx.recon.add(
        "dropped", path.name, "a later death row of the same person (the earliest kept)", deaths.height - first.height
    )
    return first


def _import_visits(path: Path | None, outpatient: bool, ctx: _Context) -> dict[str, pl.DataFrame]:
    """Visits to admissions (9201, 262), A&E attendances (9203, 262) and, if asked, appointments (9202)."""
    empty = {
        "apc_episode": pl.DataFrame(
            schema=dict.fromkeys(
                ("person_id", "episode_id", "admission_date", "discharge_date", "admission_method"), pl.String
            )
        ),
        "ae_attendance": pl.DataFrame(schema=dict.fromkeys(("person_id", "attendance_id", "arrival_date"), pl.String)),
        "op_appointment": pl.DataFrame(
            schema=dict.fromkeys(("person_id", "appointment_id", "appointment_date", "attended"), pl.String)
        ),
    }
    if path is None:
        return empty
    where = path.name
    raw = _read(path, "visit_occurrence")
    columns = raw.columns
    ctx.recon.add("read", where, "rows read", raw.height)
    visits = raw.select(
        _id("person_id", columns).alias("person_id"),
        _visit("visit_occurrence_id", columns).alias("visit_id"),
        _id("visit_concept_id", columns).alias("concept"),
        _date("visit_start_date", columns).alias("start"),
        _date("visit_end_date", columns).alias("end"),
    )
    visits = _orphans(visits, where, ctx)
    ctx.visits = visits["visit_id"].drop_nulls()
    admitted = visits.filter(pl.col("concept").is_in([INPATIENT, EMERGENCY_INPATIENT]))
    ctx.admissions = admitted["visit_id"].drop_nulls()
    outpatients = visits.filter(pl.col("concept") == OUTPATIENT).height
    if outpatient:
        ctx.recon.add("note", where, "outpatient visits (9202) taken as attended appointments", outpatients)
    else:
        ctx.recon.add(
            "dropped",
            where,
            "outpatient visit (9202) not taken: in many CDMs every GP contact (use --outpatient-visits)",
            outpatients,
            "OMOP visit concept",
            OUTPATIENT,
        )
    known = [INPATIENT, EMERGENCY, EMERGENCY_INPATIENT, OUTPATIENT]
    other = visits.filter(~pl.col("concept").is_in(known) | pl.col("concept").is_null())
    ctx.recon.add_codes(
        "dropped",
        where,
        "visit concept not carried (not inpatient, emergency or outpatient)",
        "OMOP visit concept",
        other.group_by(pl.col("concept").fill_null("").alias("code")).len("n"),
    )
    ctx.recon.add(
        "note",
        where,
        "inpatient visits (9201) written as admission method 99 (not known): emergency or not cannot be told",
        admitted.filter(pl.col("concept") == INPATIENT).height,
    )
    episodes = admitted.select(
        "person_id",
        pl.col("visit_id").alias("episode_id"),
        pl.col("start").alias("admission_date"),
        pl.col("end").alias("discharge_date"),
        pl.when(pl.col("concept") == EMERGENCY_INPATIENT)
        .then(pl.lit(EMERGENCY_METHOD))
        .otherwise(pl.lit(UNKNOWN_METHOD))
        .alias("admission_method"),
    )
    attendances = visits.filter(pl.col("concept").is_in([EMERGENCY, EMERGENCY_INPATIENT])).select(
        "person_id", pl.col("visit_id").alias("attendance_id"), pl.col("start").alias("arrival_date")
    )
    appointments = empty["op_appointment"]
    if outpatient:
        appointments = visits.filter(pl.col("concept") == OUTPATIENT).select(
            "person_id",
            pl.col("visit_id").alias("appointment_id"),
            pl.col("start").alias("appointment_date"),
            pl.lit("true").alias("attended"),
        )
    return {"apc_episode": episodes, "ae_attendance": attendances, "op_appointment": appointments}


def _vocabulary(frame: pl.DataFrame, concepts: pl.DataFrame | None) -> pl.DataFrame:
    """The vocabulary and code of each row's source code: the source concept's, else the standard concept's
    when the source value is that concept's own code (a SNOMED CT source mapped to itself), else unknown."""
    if concepts is None:
        return frame.with_columns(pl.lit(None, pl.String).alias("vocabulary"), pl.col("source_value").alias("code"))
    source = concepts.rename({"concept_id": "source_concept", "vocabulary_id": "_v1", "concept_code": "_c1"})
    standard = concepts.rename({"concept_id": "standard_concept", "vocabulary_id": "_v2", "concept_code": "_c2"})
    joined = frame.join(source, on="source_concept", how="left").join(standard, on="standard_concept", how="left")
    same = pl.col("_c2") == pl.col("source_value")
    return joined.with_columns(
        pl.when(pl.col("_v1").is_not_null()).then(pl.col("_v1")).when(same).then(pl.col("_v2")).alias("vocabulary"),
        pl.when(pl.col("_v1").is_not_null()).then(pl.col("_c1")).otherwise(pl.col("source_value")).alias("code"),
    ).drop("_v1", "_c1", "_v2", "_c2")


def _first(cases: list[tuple[pl.Expr, str]], default: pl.Expr) -> pl.Expr:
    """The value of the first case whose condition holds, else the default (a when/then chain)."""
    result = default
    for condition, value in reversed(cases):
        result = pl.when(condition).then(pl.lit(value)).otherwise(result)
    return result


def _routes(spec: _Events, has_concepts: bool) -> tuple[pl.Expr, pl.Expr]:
    """Where each row goes (a contract table, ``loinc`` for the measure map, or null) and, if nowhere, why."""
    vocabulary, code, admitted = pl.col("vocabulary"), pl.col("code"), pl.col("admitted")
    unknown = vocabulary.is_null()
    targets: list[tuple[pl.Expr, str]] = []
    reasons: list[tuple[pl.Expr, str]] = [
        (
            unknown,
            "source vocabulary unknown (source concept not in the concept table): not carried"
            if has_concepts
            else "no concept table in the folder, so no source vocabulary: not carried",
        )
    ]
    if spec.prefix == "drug":
        targets.append(((vocabulary == "dm+d") & code.str.contains(DMD_ID), "gp_medication"))
        reasons.append((vocabulary == "dm+d", "not a dm+d concept id: not carried"))
        reasons.append((vocabulary == "RxNorm", "RxNorm (US drug vocabulary, no dm+d map): not carried"))
    else:
        targets.append(((vocabulary == "SNOMED") & code.str.contains(SNOMED_ID), "gp_event"))
        reasons.append((vocabulary == "SNOMED", "not a SNOMED CT id: not carried"))
    if spec.prefix == "condition":
        icd10 = vocabulary.is_in(ICD10)
        targets.append((icd10 & admitted, "apc_diagnosis"))
        reasons.append((icd10, "ICD-10 diagnosis not on an inpatient visit: no contract table"))
        reasons.append(
            (vocabulary == "ICD10CM", "ICD10CM is the US clinical modification, not WHO/UK ICD-10: not carried")
        )
    if spec.prefix == "procedure":
        opcs = vocabulary == "OPCS4"
        targets.append((opcs & admitted, "apc_procedure"))
        reasons.append((opcs, "OPCS-4 procedure not on an inpatient visit: no contract table"))
    if spec.valued:
        targets.append((vocabulary == "LOINC", "loinc"))
    target = pl.when(unknown).then(pl.lit(None, pl.String)).otherwise(_first(targets, pl.lit(None, pl.String)))
    reason = _first(reasons, pl.format("{} vocabulary not carried from {}", vocabulary, pl.lit(spec.table)))
    return target, reason


def _import_events(path: Path, spec: _Events, ctx: _Context, measures: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """One clinical table's rows routed by source vocabulary, as frames by contract table; the rest counted."""
    where = path.name
    raw = _read(path, spec.table)
    columns = raw.columns
    ctx.recon.add("read", where, "rows read", raw.height)
    p = spec.prefix
    status = pl.coalesce(_id(f"{p}_status_concept_id", columns), _id(f"{p}_type_concept_id", columns))
    frame = raw.select(
        _id("person_id", columns).alias("person_id"),
        _id(f"{spec.table}_id", columns).cast(pl.Int64, strict=False).alias("row_key"),
        _visit("visit_occurrence_id", columns).alias("visit_id"),
        _date(spec.date, columns).alias("date"),
        _id(f"{p}_source_value", columns).alias("source_value"),
        _id(f"{p}_source_concept_id", columns).alias("source_concept"),
        _id(f"{p}_concept_id", columns).alias("standard_concept"),
        status.is_in(PRIMARY_DIAGNOSIS).fill_null(False).alias("primary"),
        (_text("value_as_number", columns) if spec.valued else pl.lit(None, pl.String))
        .cast(pl.Float64, strict=False)
        .alias("value"),
        (_text("unit_source_value", columns) if spec.valued else pl.lit(None, pl.String)).alias("unit"),
    )
    frame = _orphans(frame, where, ctx)
    lost_visit = frame["visit_id"].is_not_null() & ~frame["visit_id"].is_in(ctx.visits.implode())
    ctx.recon.add(
        "note",
        where,
        "visit_occurrence_id not in visit_occurrence (row kept where no visit is needed)",
        int(lost_visit.sum()),
    )
    frame = _vocabulary(
        frame.with_columns(pl.col("visit_id").is_in(ctx.admissions.implode()).alias("admitted")), ctx.concepts
    )
    target, reason = _routes(spec, ctx.concepts is not None)
    frame = frame.with_columns(target.alias("target"), reason.alias("reason"))
    frame = _measures(frame, measures, where, ctx.recon)
    unmapped = frame.filter(pl.col("target").is_null())
    for (why, vocabulary), group in unmapped.group_by(["reason", "vocabulary"], maintain_order=True):
        codes = group.group_by(pl.col("code").fill_null("").alias("code")).len("n")
        ctx.recon.add_codes("unmapped", where, str(why), str(vocabulary or ""), codes)
    return {str(t): part for (t,), part in frame.filter(pl.col("target").is_not_null()).group_by("target")}


def _measures(frame: pl.DataFrame, measures: pl.DataFrame, where: str, recon: Reconciliation) -> pl.DataFrame:
    """LOINC rows through the measure map: converted to the code list's unit, or unmapped with the reason."""
    loinc = frame.filter(pl.col("target") == "loinc")
    if loinc.is_empty():
        return frame
    known = pl.col("code").is_in(measures["loinc"].implode())
    matched = loinc.with_columns(
        pl.col("unit").str.strip_chars().str.to_lowercase().fill_null("").alias("unit_key")
    ).join(measures, left_on=["code", "unit_key"], right_on=["loinc", "unit_key"], how="left")
    without_value = pl.col("value").is_null()
    matched = matched.with_columns(
        pl.when(known & (pl.col("mapped_code").is_not_null() | without_value)).then(pl.lit("gp_event")).alias("target"),
        pl.when(~known)
        .then(pl.lit("LOINC code not in the measure map (loinc_measures.csv): not carried"))
        .otherwise(pl.lit("unit not known for this measure: not converted, not carried"))
        .alias("reason"),
        pl.when(known & pl.col("mapped_code").is_null() & ~without_value)
        .then(pl.format("{} [{}]", pl.col("code"), pl.col("unit").fill_null("")))
        .otherwise(pl.col("code"))
        .alias("code"),
    )
    unvalued = matched.filter(pl.col("target").is_not_null() & without_value)
    recon.add("note", where, "mapped LOINC measurements without a value (written without one)", unvalued.height)
    mapped_code = measures.group_by("loinc").agg(pl.col("mapped_code").first().alias("_any_code"))
    matched = matched.join(mapped_code, left_on="code", right_on="loinc", how="left").with_columns(
        pl.when(pl.col("target").is_not_null()).then(pl.col("_any_code")).otherwise(pl.col("code")).alias("code"),
        (pl.col("value") * pl.col("multiply") + pl.col("add")).round(2).alias("value"),
        pl.col("mapped_unit").alias("unit"),
    )
    converted = matched.filter(pl.col("target").is_not_null() & (pl.col("multiply") != 1) & ~without_value)
    for unit, n in converted.group_by("unit_key").len("n").sort("unit_key").iter_rows():
        recon.add("cleaned", where, "LOINC measurement value converted to the measure's unit", n, "unit", unit)
    rest = frame.filter(pl.col("target").ne_missing("loinc"))
    return pl.concat([rest, matched.select(frame.columns)], how="vertical_relaxed")


CONTRACT_COLUMNS = {
    "gp_event": ("person_id", "event_date", "snomed_code", "value", "unit"),
    "gp_medication": ("person_id", "issue_date", "dmd_code"),
    "apc_diagnosis": ("episode_id", "position", "icd10_code"),
    "apc_procedure": ("episode_id", "position", "opcs4_code"),
}


def _shape(table: str, parts: list[pl.DataFrame]) -> pl.DataFrame:
    """The routed rows of every OMOP table that feed one contract table, in its columns."""
    if not parts:
        return pl.DataFrame(schema=dict.fromkeys(CONTRACT_COLUMNS[table], pl.String))
    rows = pl.concat(parts, how="vertical_relaxed")
    if table == "gp_event":
        return rows.select(
            "person_id", pl.col("date").alias("event_date"), pl.col("code").alias("snomed_code"), "value", "unit"
        )
    if table == "gp_medication":
        return rows.select("person_id", pl.col("date").alias("issue_date"), pl.col("code").alias("dmd_code"))
    column = CONTRACT_COLUMNS[table][2]
    # Position 1 is the primary diagnosis where the CDM marks one, then the rows in the order of their ids.
    ordered = rows.sort(["visit_id", "primary", "row_key"], descending=[False, True, False], nulls_last=True)
    return ordered.select(
        pl.col("visit_id").alias("episode_id"),
        (pl.int_range(pl.len()).over("visit_id") + 1).alias("position"),
        pl.col("code").alias(column),
    )


def import_omop(
    folder: Path,
    out: Path,
    *,
    outpatient_visits: bool = False,
    progress: Callable[[str], None] = lambda _: None,
) -> ImportResult:
    """Write a source folder of the input contract from an OMOP CDM 5.3/5.4 folder of CSV files."""
    started = time.perf_counter()
    files = _find(folder)
    recon = Reconciliation()
    progress("person")
    people = _import_people(files["person"], recon)
    concepts = None
    if "concept" in files:
        raw = _read(files["concept"], "concept")
        columns = raw.columns
        recon.add("read", files["concept"].name, "rows read (vocabulary look-up)", raw.height)
        concepts = raw.select(
            _id("concept_id", columns).alias("concept_id"),
            _text("vocabulary_id", columns).alias("vocabulary_id"),
            _text("concept_code", columns).alias("concept_code"),
        ).unique("concept_id", keep="first")
    else:
        recon.add("note", folder.name, "no concept table: source vocabularies unknown, clinical rows not carried", 0)
    empty = pl.Series(dtype=pl.String)
    ctx = _Context(people["person_id"], empty, empty, concepts, recon)
    progress("visits")
    tables = _import_visits(files.get("visit_occurrence"), outpatient_visits, ctx)
    routed: dict[str, list[pl.DataFrame]] = {table: [] for table in CONTRACT_COLUMNS}
    measures = measurement_map()
    for spec in EVENTS:
        if spec.table in files:
            progress(spec.table)
            for table, part in _import_events(files[spec.table], spec, ctx, measures).items():
                routed[table].append(part)
    tables |= {table: _shape(table, parts) for table, parts in routed.items()}
    progress("people")
    person = (
        people.join(_registration(files.get("observation_period"), ctx), on="person_id", how="left")
        .join(_deaths(files.get("death"), ctx), on="person_id", how="left")
        .select("person_id", "date_of_birth", "sex", "registration_start", "registration_end", "date_of_death")
    )
    out.mkdir(parents=True, exist_ok=True)
    for table, frame in {"person": person, **tables}.items():
        frame.write_csv(out / f"{table}.csv")
        recon.add("written", table, "rows written", frame.height)
    seen = pl.concat([frame.select(pl.col("person_id")) for frame in tables.values() if "person_id" in frame.columns])
    recon.add(
        "note",
        "person",
        "people with no row in any other written table",
        person.height - int(person["person_id"].is_in(seen["person_id"].implode()).sum()),
    )
    recon.write(out / "import_reconciliation.csv")
    written = {where: n for stage, where, _, _, _, n in recon.rows if stage == "written"}
    read = sum(n for stage, *_, n in recon.rows if stage == "read")
    return ImportResult(out, recon, written, read, time.perf_counter() - started)
