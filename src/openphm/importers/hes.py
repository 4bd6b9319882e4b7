"""HES (APC, A&E, outpatients) and ECDS extracts to the input contract.

HES is wide (one row per episode or attendance, with numbered diagnosis and procedure slots) and full of
placeholder codes that look like data (``-``, ``&``, ``X999``, ``V81999``, ``1800-01-01``). Every column is
read as text so 14-digit keys and codes with leading zeros survive, the slots are unpivoted, and the
placeholders listed in ``data/hes_placeholders.csv`` are turned into nulls *and counted*, so the
reconciliation shows what did not come across. Nothing here ever reports a person's identifier: the
reconciliation holds counts and codes only.

Polars' lazy API is used directly: this runs once, upstream of the store, on files rather than on the
store's engine, so the engine abstraction of the stages does not apply.
"""

from __future__ import annotations

import csv
import re
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import polars as pl

from openphm.errors import InputError
from openphm.importers.reconcile import ImportResult, Reconciliation

ETHNIC_CATEGORIES = frozenset("ABCDEFGHJKLMNPRSZ")
ICD10_FOUR = r"^[A-Z][0-9]{2}[0-9X]$"
OPCS4_FOUR = r"^[A-Z][0-9]{3}$"
SNOMED_ID = r"^[0-9]{6,18}$"
LSOA_2011 = r"^[EW]01[0-9]{6}$"
DISCHARGE_METHODS = ("1", "2", "3", "4", "5", "8", "9")
"""The contract's discharge methods (HES DISMETH); anything else is left blank and counted."""

USED_COLUMNS = (
    r"PSEUDO_HESID|EPIKEY|AEKEY|ATTENDKEY|ADMIDATE|DISDATE|ADMIMETH|EPISTAT|PROCODE3|SUSSPELLID|MYDOB|SEX|ETHNOS"
    r"|LSOA11|LSOA01|GPPRAC|DISMETH|ARRIVALDATE|ARRIVALAGE|APPTDATE|APPTAGE|ATTENDED|FIRSTATT|TRETSPEF"
    r"|DIAG2_\d{2}|DIAG_\d{2}|DIAG_4_\d{2}|OPERTN_\d{2}|OPERTN_4_\d{2}"
)
"""The HES columns the importer maps; the rest (about 150 of APC's 193) are never parsed."""

REQUIRED = {
    "apc": ("PSEUDO_HESID", "EPIKEY", "ADMIDATE", "ADMIMETH", "EPISTAT"),
    "ae": ("PSEUDO_HESID", "AEKEY", "ARRIVALDATE"),
    "op": ("PSEUDO_HESID", "ATTENDKEY", "APPTDATE", "ATTENDED"),
}
"""Columns without which a file cannot be imported; anything else missing is reported and left null."""

ECDS_ALIASES = {
    "person": ("TOKEN_PERSON_ID", "PSEUDO_HESID", "PERSON_ID"),
    "attendance": ("EC_IDENT", "ECDS_IDENT", "ATTENDANCE_ID", "AEKEY"),
    "arrival": ("ARRIVAL_DATE", "ARRIVALDATE", "EC_ARRIVAL_DATE"),
    "age": ("AGE_AT_ARRIVAL", "ARRIVALAGE", "EC_AGE_AT_ARRIVAL"),
    "diagnosis": ("EC_DIAGNOSIS_01", "DIAGNOSIS_01", "EC_DIAGNOSIS_SNOMED_CT_01"),
    "acuity": ("EC_ACUITY", "EC_ACUITY_SNOMED_CT", "ACUITY"),
    "sex": ("SEX", "STATED_GENDER", "GENDER"),
}
"""ECDS extracts name their columns differently by supplier (SUS+, HES ECDS, DARS); the first found wins."""


def _data_file(name: str) -> list[dict[str, str]]:
    text = resources.files("openphm.importers").joinpath("data", name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


def placeholders() -> dict[str, frozenset[str]]:
    """Placeholder values by kind of column, from the shipped data file, compared after trimming whitespace."""
    kinds: dict[str, set[str]] = {}
    for row in _data_file("hes_placeholders.csv"):
        value = row["value"].replace("\\t", "\t").strip()
        kinds.setdefault(row["columns"], set()).add(value)
    return {kind: frozenset(values) for kind, values in kinds.items()}


def _read(path: Path, kind: str, required: tuple[str, ...]) -> tuple[pl.LazyFrame, list[str]]:
    """Every column as text; one clear error for a file that is not a readable CSV or lacks a column."""
    if not path.is_file():
        raise InputError(f"{kind} file {path.name} does not exist")
    try:
        header = pl.read_csv(path, n_rows=1, infer_schema=False, encoding="utf8-lossy").columns
    except (pl.exceptions.PolarsError, OSError, UnicodeError):
        raise InputError(f"{kind} file {path.name} is not a readable CSV file") from None
    columns = [c.strip().upper() for c in header]
    missing = [c for c in required if c not in columns]
    if missing:
        raise InputError(f"{kind} file {path.name} lacks the required column {missing[0]}")
    frame = pl.scan_csv(path, infer_schema=False, encoding="utf8-lossy").rename(dict(zip(header, columns, strict=True)))
    if kind == "ECDS":
        return frame, columns
    # Parse the file once, keeping only the columns mapped below: every count and table then reads memory.
    columns = [c for c in columns if re.fullmatch(USED_COLUMNS, c)]
    try:
        return frame.select(columns).collect().lazy(), columns
    except pl.exceptions.PolarsError:
        raise InputError(f"{kind} file {path.name} is not a readable CSV file (a row has the wrong shape)") from None


def _clean(name: str, kind: str, marks: dict[str, frozenset[str]]) -> pl.Expr:
    """The column trimmed, with blanks and this kind's placeholders as null."""
    value = pl.col(name).str.strip_chars()
    return pl.when(value.is_in([*list(marks.get(kind, ())), ""])).then(None).otherwise(value).alias(name)


def _count_placeholders(
    frame: pl.LazyFrame, columns: dict[str, str], where: str, marks: dict[str, frozenset[str]], recon: Reconciliation
) -> None:
    """Count each placeholder value found in the given columns (column -> kind), before they are cleaned."""
    parts = []
    for name, kind in columns.items():
        value = pl.col(name).str.strip_chars()
        parts.append(
            frame.select(value.alias("code"))
            .filter(pl.col("code").is_in(list(marks.get(kind, ()))))
            .group_by("code")
            .len("n")
            .with_columns(pl.lit(name).alias("column"))
        )
    if not parts:
        return
    for column, code, n in (
        pl.concat(parts).collect().sort(["column", "code"]).select("column", "code", "n").iter_rows()
    ):
        recon.add("placeholder", where, f"{column} placeholder set to null", n, "HES", code)


def _date(name: str, marks: dict[str, frozenset[str]]) -> pl.Expr:
    """A date as YYYY-MM-DD text: HES writes that, but SUS+ and local extracts also give DD/MM/YYYY or a
    timestamp; placeholders (in either shape) become null, and anything else is left for ingest to judge."""
    value = _clean(name, "date", marks)
    iso = (
        pl.when(value.str.contains(r"^\d{2}/\d{2}/\d{4}$"))
        .then(
            pl.concat_str(value.str.slice(6, 4), pl.lit("-"), value.str.slice(3, 2), pl.lit("-"), value.str.slice(0, 2))
        )
        .when(value.str.contains(r"^\d{4}-\d{2}-\d{2}[ T]"))
        .then(value.str.slice(0, 10))
        .otherwise(value)
    )
    return pl.when(iso.is_in(list(marks["date"]))).then(None).otherwise(iso).alias(name)


def _sex(name: str) -> pl.Expr:
    value = pl.col(name).str.strip_chars()
    return pl.when(value == "1").then(pl.lit("M")).when(value == "2").then(pl.lit("F")).otherwise(pl.lit("U"))


def _age_years(name: str) -> pl.Expr:
    """Age in whole years: '42.0' is 42 and 7001-7007 (under one year) is 0; anything else out of range is null."""
    age = pl.col(name).str.strip_chars().cast(pl.Float64, strict=False)
    return pl.when(age.is_between(7001, 7007)).then(0).when(age.is_between(0, 120)).then(age.floor()).cast(pl.Int64)


def _dob_from_age(date: pl.Expr, age: pl.Expr) -> pl.Expr:
    """Birth date from an age at a date: the first of the month half a year before the last birthday.

    Someone aged ``a`` on day ``d`` was born in the year before ``d - a years``, so the middle of that window
    is ``d - a years - 6 months``; the store keeps birth dates to the month anyway.
    """
    shift = pl.format("-{}y6mo", age)
    return date.str.to_date(strict=False).dt.offset_by(shift).dt.truncate("1mo")


def _slot_columns(columns: list[str], patterns: tuple[str, ...]) -> list[str]:
    """The numbered slot columns of the first pattern present (full codes before the 4-character ones)."""
    for pattern in patterns:
        found = [c for c in columns if re.fullmatch(pattern, c)]
        if found:
            return found
    return []


def _codes_long(
    frame: pl.LazyFrame,
    key: str,
    slots: list[str],
    placeholder_kinds: tuple[str, ...],
    marks: dict[str, frozenset[str]],
    pattern: str,
    pad_three: bool,
) -> pl.LazyFrame:
    """Slots unpivoted to (key, position, raw, code, status): status is kept, placeholder or invalid.

    The code is matched on its first four characters once dots, dagger/asterisk marks and spaces are gone
    (a fifth character, a ``D``/``A`` suffix or an ``X`` filler is then harmless); the raw text is kept.
    """
    if not slots:
        columns = (key, "slot", "raw", "bare", "code", "status")
        return pl.LazyFrame(schema={**dict.fromkeys(columns, pl.String), "position": pl.Int64})
    drop = sorted(set().union(*(marks.get(k, frozenset()) for k in placeholder_kinds)))
    long = (
        frame.select(key, *slots)
        .unpivot(index=key, on=slots, variable_name="slot", value_name="raw")
        .with_columns(pl.col("raw").str.strip_chars())
        .filter(pl.col("raw").is_not_null() & (pl.col("raw") != ""))
        .with_columns(
            pl.col("slot").str.extract(r"(\d+)$").cast(pl.Int64).alias("position"),
            pl.col("raw").str.to_uppercase().str.replace_all(r"[^A-Z0-9]", "").alias("bare"),
        )
    )
    code = pl.col("bare").str.slice(0, 4)
    if pad_three:
        code = pl.when(pl.col("bare").str.contains(r"^[A-Z][0-9]{2}$")).then(pl.col("bare") + "X").otherwise(code)
    return long.with_columns(code.alias("code")).with_columns(
        pl.when(pl.col("raw").is_in(drop))
        .then(pl.lit("placeholder"))
        .when(pl.col("code").str.contains(pattern))
        .then(pl.lit("kept"))
        .otherwise(pl.lit("invalid"))
        .alias("status")
    )


def _report_codes(long: pl.DataFrame, where: str, system: str, recon: Reconciliation) -> None:
    placeholder = long.filter(pl.col("status") == "placeholder").group_by(pl.col("raw").alias("code")).len("n")
    for code, n in placeholder.sort("code").iter_rows():
        recon.add("placeholder", where, f"{system} slot placeholder dropped", n, system, code)
    invalid = long.filter(pl.col("status") == "invalid").group_by(pl.col("raw").alias("code")).len("n")
    recon.add_codes("unmapped", where, f"not a valid {system} code: dropped", system, invalid)
    reshaped = long.filter((pl.col("status") == "kept") & (pl.col("code") != pl.col("raw")))
    recon.add("cleaned", where, f"{system} code matched on its first four characters (raw kept)", reshaped.height)


def _person_fields(
    frame: pl.LazyFrame, columns: list[str], date_column: str, marks: dict[str, frozenset[str]]
) -> pl.LazyFrame:
    """Sex, ethnicity (raw), LSOA and practice of every row, with the row's date to pick the latest."""

    def maybe(name: str, kind: str) -> pl.Expr:
        return _clean(name, kind, marks) if name in columns else pl.lit(None, pl.String).alias(name)

    lsoa = pl.coalesce(maybe("LSOA11", "lsoa"), maybe("LSOA01", "lsoa"))
    return frame.select(
        pl.col("PSEUDO_HESID").str.strip_chars().alias("person_id"),
        _date(date_column, marks).alias("event_date"),
        (_sex("SEX") if "SEX" in columns else pl.lit("U")).alias("sex"),
        maybe("ETHNOS", "code").alias("ethnos"),
        lsoa.alias("lsoa_code"),
        maybe("GPPRAC", "practice").alias("practice_code"),
    )


def _import_apc(
    path: Path, marks: dict[str, frozenset[str]], out: Path, recon: Reconciliation
) -> tuple[pl.LazyFrame, pl.LazyFrame, int]:
    where = path.name
    frame, columns = _read(path, "APC", REQUIRED["apc"])
    read = frame.select(pl.len()).collect().item()
    recon.add("read", where, "rows read", read)
    status = pl.col("EPISTAT").str.strip_chars()
    unfinished = frame.filter(status != "3").select(pl.len()).collect().item()
    recon.add("dropped", where, "episode not finished (EPISTAT is not 3)", unfinished, "EPISTAT")
    finished = frame.filter(status == "3")
    cleaned = {"GPPRAC": "practice", "LSOA11": "lsoa", "LSOA01": "lsoa", "ADMIDATE": "date", "DISDATE": "date"}
    cleaned |= {"MYDOB": "mydob"}
    _count_placeholders(finished, {c: k for c, k in cleaned.items() if c in columns}, where, marks, recon)

    disdate = _date("DISDATE", marks) if "DISDATE" in columns else pl.lit(None, pl.String)
    dismeth = pl.col("DISMETH").str.strip_chars() if "DISMETH" in columns else pl.lit(None, pl.String)
    known_method = dismeth.is_in(DISCHARGE_METHODS)
    episodes = finished.select(
        pl.col("PSEUDO_HESID").str.strip_chars().alias("person_id"),
        pl.col("EPIKEY").str.strip_chars().alias("episode_id"),
        (_clean("SUSSPELLID", "code", marks) if "SUSSPELLID" in columns else pl.lit(None, pl.String)).alias("spell_id"),
        _date("ADMIDATE", marks).alias("admission_date"),
        disdate.alias("discharge_date"),
        pl.when(known_method).then(dismeth).alias("discharge_method"),
        pl.col("ADMIMETH").str.strip_chars().alias("admission_method"),
        (_clean("PROCODE3", "code", marks) if "PROCODE3" in columns else pl.lit(None, pl.String)).alias(
            "provider_code"
        ),
    ).collect()
    episodes.write_csv(out / "apc_episode.csv")
    recon.add("written", "apc_episode", "rows written", episodes.height)
    if "DISMETH" in columns:
        unknown = finished.filter(~known_method & dismeth.is_not_null() & (dismeth != "")).select(pl.len())
        recon.add("cleaned", where, "DISMETH not 1-5, 8 or 9: discharge_method left blank", unknown.collect().item())
    spells = episodes["spell_id"]
    if "SUSSPELLID" in columns:
        recon.add("note", where, "finished episodes with a SUSSPELLID (written as spell_id)", spells.count())
        recon.add("note", where, "distinct SUSSPELLID values", spells.drop_nulls().n_unique())
    if spells.null_count():
        recon.add("note", where, "episodes without a SUSSPELLID: spell derived at ingest", spells.null_count())

    for table, patterns, kinds, system, pattern, pad, code_column in (
        ("apc_diagnosis", (r"DIAG_\d{2}", r"DIAG_4_\d{2}"), ("diagnosis",), "ICD-10", ICD10_FOUR, True, "icd10_code"),
        (
            "apc_procedure",
            (r"OPERTN_\d{2}", r"OPERTN_4_\d{2}"),
            ("procedure",),
            "OPCS-4",
            OPCS4_FOUR,
            False,
            "opcs4_code",
        ),
    ):
        slots = _slot_columns(columns, patterns)
        long = _codes_long(finished, "EPIKEY", slots, kinds, marks, pattern, pad).collect()
        _report_codes(long, where, system, recon)
        kept = long.filter(pl.col("status") == "kept").select(
            pl.col("EPIKEY").str.strip_chars().alias("episode_id"),
            "position",
            pl.col("code").alias(code_column),
            pl.col("raw").alias(code_column.replace("_code", "_raw")),
        )
        kept.write_csv(out / f"{table}.csv")
        recon.add("written", table, "rows written", kept.height)

    people = _person_fields(finished, columns, "ADMIDATE", marks)
    mydob = _clean("MYDOB", "mydob", marks) if "MYDOB" in columns else pl.lit(None, pl.String)
    birth = pl.concat_str(mydob.str.slice(2, 4), pl.lit("-"), mydob.str.slice(0, 2), pl.lit("-01")).str.to_date(
        strict=False
    )
    people = pl.concat([people, finished.select(birth.alias("date_of_birth"))], how="horizontal").with_columns(
        pl.lit("APC MYDOB (first of the month)").alias("dob_source"), pl.lit(0).alias("priority")
    )
    died = finished.filter(
        (pl.col("DISMETH").str.strip_chars() == "4") if "DISMETH" in columns else pl.lit(False)
    ).select(pl.col("PSEUDO_HESID").str.strip_chars().alias("person_id"), disdate.alias("date_of_death"))
    return people, died, read


def _import_ae(
    path: Path, marks: dict[str, frozenset[str]], out: Path, recon: Reconciliation
) -> tuple[pl.LazyFrame, int]:
    where = path.name
    frame, columns = _read(path, "A&E", REQUIRED["ae"])
    read = frame.select(pl.len()).collect().item()
    recon.add("read", where, "rows read", read)
    _count_placeholders(frame, {c: "practice" for c in ("GPPRAC",) if c in columns}, where, marks, recon)
    attendances = frame.select(
        pl.col("PSEUDO_HESID").str.strip_chars().alias("person_id"),
        pl.col("AEKEY").str.strip_chars().alias("attendance_id"),
        _date("ARRIVALDATE", marks).alias("arrival_date"),
        pl.lit(None, pl.String).alias("diagnosis_snomed"),
        pl.lit(None, pl.Int64).alias("acuity"),
    ).collect()
    attendances.write_csv(out / "ae_attendance.csv")
    recon.add("written", "ae_attendance", "rows written", attendances.height)
    slots = _slot_columns(columns, (r"DIAG2_\d{2}",))
    if slots:
        diagnoses = (
            frame.select(slots)
            .unpivot(on=slots, value_name="code")
            .with_columns(pl.col("code").str.strip_chars())
            .filter(pl.col("code").is_not_null() & (pl.col("code") != "") & ~pl.col("code").is_in(["&", "-"]))
            .group_by("code")
            .len("n")
            .collect()
        )
        recon.add_codes(
            "unmapped", where, "HES A&E diagnosis (own scheme, no SNOMED CT map): not carried", "HES A&E", diagnoses
        )
    people = _with_age_dob(frame, columns, "ARRIVALDATE", "ARRIVALAGE", marks)
    return people, read


def _with_age_dob(
    frame: pl.LazyFrame, columns: list[str], date_column: str, age_column: str, marks: dict[str, frozenset[str]]
) -> pl.LazyFrame:
    people = _person_fields(frame, columns, date_column, marks)
    age = _age_years(age_column) if age_column in columns else pl.lit(None, pl.Int64)
    dob = frame.select(_dob_from_age(_date(date_column, marks), age).alias("date_of_birth"))
    return pl.concat([people, dob], how="horizontal").with_columns(
        pl.lit("derived from age at attendance").alias("dob_source"), pl.lit(1).alias("priority")
    )


def _import_op(
    path: Path, marks: dict[str, frozenset[str]], out: Path, recon: Reconciliation
) -> tuple[pl.LazyFrame, int]:
    where = path.name
    frame, columns = _read(path, "OP", REQUIRED["op"])
    read = frame.select(pl.len()).collect().item()
    recon.add("read", where, "rows read", read)
    cleaned = {"GPPRAC": "practice", "TRETSPEF": "code", "APPTDATE": "date"}
    _count_placeholders(frame, {c: k for c, k in cleaned.items() if c in columns}, where, marks, recon)
    attended = pl.col("ATTENDED").str.strip_chars()
    outcome = (
        pl.when(attended.is_in(["5", "6"]))
        .then(pl.lit("true"))
        .when(attended.is_in(["3", "7"]))
        .then(pl.lit("false"))
        .when(attended.is_in(["2", "4"]))
        .then(pl.lit("cancelled"))
        .otherwise(pl.lit("unknown"))
    )
    first = pl.col("FIRSTATT").str.strip_chars() if "FIRSTATT" in columns else pl.lit(None, pl.String)
    staged = frame.with_columns(outcome.alias("_attended"))
    counts = staged.group_by("_attended", attended.alias("code")).len("n").collect()
    for code, n in counts.filter(pl.col("_attended") == "cancelled").select("code", "n").sort("code").iter_rows():
        recon.add(
            "dropped", where, "appointment cancelled (ATTENDED 2 or 4), not an attendance or a DNA", n, "ATTENDED", code
        )
    unknown = counts.filter(pl.col("_attended") == "unknown").select(pl.col("code").fill_null(""), "n")
    recon.add_codes("dropped", where, "attendance status not known", "ATTENDED", unknown)
    appointments = (
        staged.filter(pl.col("_attended").is_in(["true", "false"]))
        .select(
            pl.col("PSEUDO_HESID").str.strip_chars().alias("person_id"),
            pl.col("ATTENDKEY").str.strip_chars().alias("appointment_id"),
            _date("APPTDATE", marks).alias("appointment_date"),
            pl.col("_attended").alias("attended"),
            pl.when(first.is_in(["1", "3"]))
            .then(pl.lit("true"))
            .when(first.is_in(["2", "4"]))
            .then(pl.lit("false"))
            .alias("first_attendance"),
            (_clean("TRETSPEF", "code", marks) if "TRETSPEF" in columns else pl.lit(None, pl.String)).alias(
                "treatment_function_code"
            ),
        )
        .collect()
    )
    appointments.write_csv(out / "op_appointment.csv")
    recon.add("written", "op_appointment", "rows written", appointments.height)
    slots = _slot_columns(columns, (r"DIAG_\d{2}", r"DIAG_4_\d{2}"))
    long = _codes_long(frame, "ATTENDKEY", slots, ("diagnosis",), marks, ICD10_FOUR, True).collect()
    _report_codes(long, where, "ICD-10", recon)
    procedures = _slot_columns(columns, (r"OPERTN_\d{2}", r"OPERTN_4_\d{2}"))
    coded = _codes_long(frame, "ATTENDKEY", procedures, ("procedure",), marks, OPCS4_FOUR, False).collect()
    _report_codes(coded, where, "OPCS-4", recon)
    for system, slots_long in (("ICD-10", long), ("OPCS-4", coded)):
        recon.add(
            "unmapped",
            where,
            "outpatient codes have no contract table: not carried",
            slots_long.filter(pl.col("status") == "kept").height,
            system,
        )
    kept = staged.filter(pl.col("_attended").is_in(["true", "false"]))
    people = _with_age_dob(kept, columns, "APPTDATE", "APPTAGE", marks)
    return people, read


def _pick(columns: list[str], role: str) -> str | None:
    return next((c for c in ECDS_ALIASES[role] if c in columns), None)


def _import_ecds(
    path: Path, marks: dict[str, frozenset[str]], recon: Reconciliation
) -> tuple[pl.LazyFrame, pl.DataFrame]:
    """ECDS: SNOMED CT diagnoses (the first, primary one) and acuity from its SNOMED refset to levels 1-5."""
    where = path.name
    if not path.is_file():
        raise InputError(f"ECDS file {path.name} does not exist")
    _, columns = _read(path, "ECDS", ())
    roles = {role: _pick(columns, role) for role in ECDS_ALIASES}
    required = []
    for role in ("person", "attendance", "arrival"):
        found = roles[role]
        if found is None:
            raise InputError(f"ECDS file {path.name} lacks the required column {ECDS_ALIASES[role][0]}")
        required.append(found)
    person, attendance, arrival = required
    frame, _ = _read(path, "ECDS", ())
    frame = frame.rename({person: "PSEUDO_HESID"}) if person != "PSEUDO_HESID" else frame
    read = frame.select(pl.len()).collect().item()
    recon.add("read", where, "rows read", read)
    acuity_map = {row["snomed_code"]: int(row["acuity"]) for row in _data_file("ecds_acuity.csv")}
    diagnosis = _clean(roles["diagnosis"], "code", marks) if roles["diagnosis"] else pl.lit(None, pl.String)
    acuity_code = _clean(roles["acuity"], "code", marks) if roles["acuity"] else pl.lit(None, pl.String)
    staged = frame.with_columns(
        diagnosis.alias("_diagnosis"),
        acuity_code.alias("_acuity_code"),
        acuity_code.replace_strict(acuity_map, default=None, return_dtype=pl.Int64).alias("_acuity"),
    )
    attendances = staged.select(
        pl.col("PSEUDO_HESID").str.strip_chars().alias("person_id"),
        pl.col(attendance).str.strip_chars().alias("attendance_id"),
        _date(arrival, marks).alias("arrival_date"),
        pl.when(pl.col("_diagnosis").str.contains(SNOMED_ID)).then(pl.col("_diagnosis")).alias("diagnosis_snomed"),
        pl.col("_acuity").alias("acuity"),
    ).collect()
    bad_diagnosis = (
        staged.filter(pl.col("_diagnosis").is_not_null() & ~pl.col("_diagnosis").str.contains(SNOMED_ID))
        .group_by(pl.col("_diagnosis").alias("code"))
        .len("n")
        .collect()
    )
    recon.add_codes("unmapped", where, "diagnosis is not a SNOMED CT id: left null", "SNOMED CT", bad_diagnosis)
    bad_acuity = (
        staged.filter(pl.col("_acuity_code").is_not_null() & pl.col("_acuity").is_null())
        .group_by(pl.col("_acuity_code").alias("code"))
        .len("n")
        .collect()
    )
    recon.add_codes("unmapped", where, "acuity not in the ECDS acuity refset: left null", "SNOMED CT", bad_acuity)
    people_columns = [c for c in columns if c != person] + ["PSEUDO_HESID"]
    if roles["sex"] and roles["sex"] != "SEX":
        frame = frame.rename({roles["sex"]: "SEX"})
        people_columns.append("SEX")
    age = roles["age"] or "_no_age"
    people = _with_age_dob(frame, people_columns, arrival, age, marks)
    return people, attendances


def _write_people(sources: list[pl.LazyFrame], died: pl.LazyFrame | None, out: Path, recon: Reconciliation) -> int:
    """One person row each: the birth date from an APC record where there is one, else derived from an age;
    sex, ethnicity, LSOA and practice from the most recent record that has them."""
    rows = pl.concat(sources, how="diagonal_relaxed").filter(pl.col("person_id").is_not_null())
    rows = rows.sort(["priority", "event_date"], descending=[False, True], nulls_last=True)
    latest = [pl.col(c).drop_nulls().first() for c in ("ethnos", "lsoa_code", "practice_code")]
    grouped = rows.group_by("person_id").agg(
        pl.col("date_of_birth").drop_nulls().first(),
        pl.col("dob_source").filter(pl.col("date_of_birth").is_not_null()).first(),
        pl.col("sex").filter(pl.col("sex") != "U").first().fill_null("U"),
        *latest,
        (pl.col("priority").n_unique() > 1).alias("_apc_and_other"),
    )
    if died is not None:
        deaths = (
            died.filter(pl.col("date_of_death").is_not_null()).group_by("person_id").agg(pl.col("date_of_death").max())
        )
        grouped = grouped.join(deaths, on="person_id", how="left")
    else:
        grouped = grouped.with_columns(pl.lit(None, pl.String).alias("date_of_death"))
    people = grouped.collect()

    mapping = {row["hes_code"]: row["ethnicity"] or None for row in _data_file("hes_ethnicity_1995.csv")}
    ethnos = pl.col("ethnos")
    people = people.with_columns(
        pl.when(ethnos.is_in(list(ETHNIC_CATEGORIES)))
        .then(ethnos)
        .otherwise(ethnos.replace_strict(mapping, default=None, return_dtype=pl.String))
        .alias("ethnicity")
    )
    old = people.filter(pl.col("ethnos").is_in(list(mapping)) & ~pl.col("ethnos").is_in(["X", "99"]))
    for code, target, n in (
        old.group_by("ethnos", "ethnicity").len("n").sort("ethnos").select("ethnos", "ethnicity", "n").iter_rows()
    ):
        reason = f"1995-2000 ethnicity code mapped to {target}" if target else "1995-2000 ethnicity code set unknown"
        recon.add("cleaned", "person", reason, n, "ETHNOS", code)
    unknown = people.filter(pl.col("ethnos").is_in(["X", "99"])).group_by(pl.col("ethnos").alias("code")).len("n")
    for code, n in unknown.sort("code").iter_rows():
        recon.add("cleaned", "person", "ethnicity not known: left blank", n, "ETHNOS", code)
    other = people.filter(
        pl.col("ethnos").is_not_null() & ~pl.col("ethnos").is_in(list(mapping)) & pl.col("ethnicity").is_null()
    )
    recon.add_codes(
        "unmapped",
        "person",
        "ethnicity code not recognised: left blank",
        "ETHNOS",
        other.group_by(pl.col("ethnos").alias("code")).len("n"),
    )
    lsoa_bad = people.filter(pl.col("lsoa_code").is_not_null() & ~pl.col("lsoa_code").str.contains(LSOA_2011))
    # Only the code's first three characters: a small area with a count of one would point at a person.
    recon.add_codes(
        "unmapped",
        "person",
        "not an England/Wales 2011 LSOA: left blank (code shown to 3 characters)",
        "LSOA",
        lsoa_bad.group_by(pl.col("lsoa_code").str.slice(0, 3).alias("code")).len("n"),
    )
    people = people.with_columns(
        pl.when(pl.col("lsoa_code").str.contains(LSOA_2011)).then(pl.col("lsoa_code")).alias("lsoa_code")
    )
    for source, n in (
        people.group_by(pl.col("dob_source").fill_null("none: no birth date (ingest quarantines)"))
        .len("n")
        .sort("dob_source")
        .iter_rows()
    ):
        recon.add("note", "person", f"birth date {source}", n)
    recon.add(
        "note",
        "person",
        "people seen in A&E/OP whose birth date came from their APC record",
        people.filter(pl.col("_apc_and_other")).height,
    )
    people = people.select(
        "person_id",
        pl.col("date_of_birth").cast(pl.String),
        "sex",
        "ethnicity",
        "lsoa_code",
        "practice_code",
        pl.col("date_of_death").cast(pl.String),
    )
    people.write_csv(out / "person.csv")
    recon.add("written", "person", "rows written", people.height)
    return people.height


def import_hes(
    out: Path,
    *,
    apc: Path | None = None,
    ae: Path | None = None,
    op: Path | None = None,
    ecds: Path | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> ImportResult:
    """Write a source folder of the input contract from HES APC, A&E, OP and ECDS extracts."""
    if not any((apc, ae, op, ecds)):
        raise InputError("give at least one of --apc, --ae, --op or --ecds")
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    marks = placeholders()
    recon = Reconciliation()
    people: list[pl.LazyFrame] = []
    died = None
    if apc:
        progress("APC episodes")
        apc_people, died, _ = _import_apc(apc, marks, out, recon)
        people.append(apc_people)
    ae_frames = []
    if ae:
        progress("A&E attendances")
        ae_people, _ = _import_ae(ae, marks, out, recon)
        people.append(ae_people)
    if ecds:
        progress("ECDS attendances")
        ecds_people, ecds_rows = _import_ecds(ecds, marks, recon)
        people.append(ecds_people)
        ae_frames.append(ecds_rows)
    if op:
        progress("outpatient appointments")
        op_people, _ = _import_op(op, marks, out, recon)
        people.append(op_people)
    if ae_frames:
        _merge_ae(out, ae_frames, recon)
    progress("people")
    _write_people(people, died, out, recon)
    recon.write(out / "import_reconciliation.csv")
    written = {where: n for stage, where, _, _, _, n in recon.rows if stage == "written"}
    read = sum(n for stage, *_, n in recon.rows if stage == "read")
    return ImportResult(out, recon, written, read, time.perf_counter() - started)


def _merge_ae(out: Path, frames: list[pl.DataFrame], recon: Reconciliation) -> None:
    """ECDS attendances join the HES A&E ones in one ``ae_attendance`` table (they cover different years)."""
    path = out / "ae_attendance.csv"
    existing = [pl.read_csv(path, infer_schema=False)] if path.exists() else []
    combined = pl.concat(
        [*existing, *(f.with_columns(pl.col("acuity").cast(pl.String)) for f in frames)], how="diagonal_relaxed"
    )
    combined.write_csv(path)
    recon.rows = [r for r in recon.rows if not (r[0] == "written" and r[1] == "ae_attendance")]
    recon.add("written", "ae_attendance", "rows written", combined.height)
