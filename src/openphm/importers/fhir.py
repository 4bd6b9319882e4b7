"""FHIR R4 (Bundles and bulk-export NDJSON) to the input contract.

FHIR arrives as transaction/collection Bundles (one JSON document each) or as a bulk ``$export``: NDJSON
files of one resource a line, often gzipped, one resource type per file and millions of lines. The importer
reads each line or bundle with orjson and picks out only the fields the contract needs - no validating FHIR
object model, which is an order of magnitude slower and holds whole resources in memory. Rows are collected
in batches, written to Parquet part files and joined to the people at the end with Polars' streaming engine,
so memory stays bounded by the batch size and the number of people, not by the number of resources.

What does not come across is counted, never guessed: LOINC codes outside the mapping table, values in a unit
the table does not know, RxNorm or other non-dm+d medicines (RxNorm ids are digits too, so the code system
decides, never the shape of the code), US Core race and ethnicity. The reconciliation holds codes and counts
only, never a person's identifier.
"""

from __future__ import annotations

import gzip
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from openphm.contract.schema import TABLES as CONTRACT
from openphm.errors import InputError
from openphm.importers.measures import measure_rows
from openphm.importers.reconcile import ImportResult, Reconciliation

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
DMD = "https://dmd.nhs.uk"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
NHS_NUMBER = "https://fhir.nhs.uk/Id/nhs-number"
ODS_ORGANISATION = "https://fhir.nhs.uk/Id/ods-organization-code"
ETHNIC_EXTENSIONS = frozenset(
    {
        "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory",
        "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Extension-EthnicCategory",
    }
)
"""The UK Core ethnic category extension (the second spelling is used by some derived guides)."""
ETHNIC_SYSTEMS = frozenset(
    {
        "https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategory",
        "https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategoryEngland",
        "https://fhir.hl7.org.uk/STU3/CodeSystem/CareConnect-EthnicCategory-1",
    }
)
"""Code systems of the NHS Data Dictionary ethnic category: UK Core's two spellings and the Care Connect (STU3)
one that older feeds still put inside the UK Core extension. Only its single letters are taken: the extended
two-letter codes (``CA`` English ...) are counted, not rolled up."""
US_CORE_RACE = (
    "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
    "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity",
)
MEDICINE_SYSTEMS = frozenset({DMD, SNOMED})
"""dm+d concepts are SNOMED CT UK drug extension ids, so UK Core allows either system for a dm+d code."""
GENDER = {"male": "M", "female": "F", "other": "U", "unknown": "U"}
EMERGENCY = frozenset({"EMER"})
INPATIENT = frozenset({"IMP", "ACUTE", "NONAC"})
AMBULATORY = frozenset({"AMB"})
ADMISSION_METHOD_EXTENSION = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-AdmissionMethod"
UNKNOWN_METHOD = "99"
"""The NHS Data Dictionary's default admission method, "not known"."""
ADMISSION_METHODS = frozenset(CONTRACT["apc_episode"].column("admission_method").codes or ())
ETHNIC_CATEGORIES = frozenset(CONTRACT["person"].column("ethnicity").codes or ())
NOT_HAPPENED = frozenset({"entered-in-error", "cancelled", "planned", "unknown"})
"""Encounter statuses that are not an attendance (R4 Encounter.status)."""
VOID = frozenset({"entered-in-error", "cancelled"})
"""Observation/Condition/medication statuses that say the record is void."""
REFUTED = frozenset({"refuted", "entered-in-error"})
"""Condition verification statuses that say the person does not have it."""
BATCH_ROWS = 200_000
"""Rows per table held in memory before a Parquet part is written: bounds memory whatever the input size."""
LONDON = "Europe/London"
FILES_LISTED = 20
"""Above this many input files the reconciliation names the largest only, and sums the rest in one row."""
SUFFIXES = (".ndjson", ".ndjson.gz", ".jsonl", ".jsonl.gz", ".json", ".json.gz")

TABLES: dict[str, tuple[str, ...]] = {
    "person": (
        "patient_id",
        "nhs_number",
        "date_of_birth",
        "sex",
        "ethnicity",
        "practice_code",
        "practice_ref",
        "date_of_death",
    ),
    "alias": ("ref", "patient_id"),
    "gp_event": ("subject", "event_date", "snomed_code", "value", "unit"),
    "gp_medication": ("subject", "issue_date", "dmd_code", "medication_ref"),
    "ae_attendance": ("subject", "attendance_id", "arrival_date"),
    "apc_episode": ("subject", "episode_id", "admission_date", "discharge_date", "admission_method"),
    "op_appointment": ("subject", "appointment_id", "appointment_date", "attended"),
    "medication": ("ref", "dmd_code"),
    "organisation": ("ref", "practice_code"),
}
"""Staging tables: the contract tables with the subject reference still raw, and the lookups resolved at the end."""
DATE_COLUMNS = {
    "person": ("date_of_birth", "date_of_death"),
    "gp_event": ("event_date",),
    "gp_medication": ("issue_date",),
    "ae_attendance": ("arrival_date",),
    "apc_episode": ("admission_date", "discharge_date"),
    "op_appointment": ("appointment_date",),
}
FLOAT_COLUMNS = frozenset({"value"})


@dataclass(frozen=True)
class Measure:
    """One row of the LOINC mapping table: a LOINC code in one unit to a SNOMED CT code in the contract's unit."""

    snomed_code: str
    subtract: float
    multiply: float
    divide: float
    unit_out: str

    def convert(self, value: float) -> float:
        return (value - self.subtract) * self.multiply / self.divide


def loinc_measures() -> dict[tuple[str, str], Measure]:
    """The shipped LOINC table, keyed by (LOINC code, unit as UCUM code or text); see data/SOURCE.md."""
    return {
        (row["loinc"], row["unit"]): Measure(
            row["snomed_code"], float(row["subtract"]), float(row["multiply"]), float(row["divide"]), row["unit_out"]
        )
        for row in measure_rows()
    }


def _reference_key(reference: object) -> str | None:
    """``Patient/<id>``, ``urn:uuid:<id>`` and absolute ``.../Patient/<id>`` all give ``<id>``."""
    if not isinstance(reference, dict):
        return None
    ref = reference.get("reference")
    if isinstance(ref, str):
        ref = ref.split("/_history/", 1)[0]
        if ref.startswith("urn:uuid:"):
            return ref[9:]
        if "/" in ref:
            return ref.rsplit("/", 1)[1]
        return ref
    identifier = reference.get("identifier")
    if isinstance(identifier, dict) and identifier.get("system") == NHS_NUMBER and identifier.get("value"):
        return f"nhs:{str(identifier['value']).replace(' ', '')}"
    return None


def _codings(concept: object) -> list[dict[str, Any]]:
    if not isinstance(concept, dict):
        return []
    return [c for c in concept.get("coding") or () if isinstance(c, dict) and c.get("code")]


def _first(*values: object) -> str | None:
    return next((v for v in values if isinstance(v, str) and v), None)


def _period(resource: dict[str, Any], name: str, end: str = "start") -> str | None:
    period = resource.get(name)
    return _first(period.get(end)) if isinstance(period, dict) else None


@dataclass
class _Staging:
    """Batches of staged rows, flushed to Parquet part files."""

    folder: Path
    rows: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    parts: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, table: str, *values: Any) -> None:
        columns = self.rows.get(table)
        if columns is None:
            columns = self.rows[table] = {c: [] for c in TABLES[table]}
        for column, value in zip(columns.values(), values, strict=True):
            column.append(value)
        if len(columns[TABLES[table][0]]) >= BATCH_ROWS:
            self.flush(table)

    def flush(self, table: str) -> None:
        columns = self.rows.pop(table, None)
        if not columns or not columns[TABLES[table][0]]:
            return
        schema = {c: (pl.Float64 if c in FLOAT_COLUMNS else pl.String) for c in columns}
        frame = pl.DataFrame(columns, schema=schema)
        dates = DATE_COLUMNS.get(table, ())
        if dates:
            frame = frame.with_columns(*(london_day(pl.col(c)).alias(c) for c in dates))
        frame.write_parquet(self.folder / f"{table}-{self.parts[table]:05d}.parquet")
        self.parts[table] += 1

    def flush_all(self) -> None:
        for table in list(self.rows):
            self.flush(table)

    def scan(self, table: str) -> pl.LazyFrame:
        if not self.parts[table]:
            schema = {c: (pl.Float64 if c in FLOAT_COLUMNS else pl.String) for c in TABLES[table]}
            return pl.LazyFrame(schema=schema)
        return pl.scan_parquet(self.folder / f"{table}-*.parquet")


def london_day(value: pl.Expr) -> pl.Expr:
    """A FHIR date or dateTime as the YYYY-MM-DD day in Europe/London.

    An instant with an offset (``Z``, ``-08:00``) is converted to Europe/London before the day is taken: the
    same BMI is on 30 November in California and on 1 December in England. A date alone is kept; a dateTime
    without an offset (not valid FHIR) keeps its own day. A year or year-month alone is no day: null.
    """
    instant = value.str.replace(r"Z$", "+00:00").str.to_datetime(
        "%Y-%m-%dT%H:%M:%S%.f%:z", time_zone="UTC", strict=False
    )
    return (
        pl.when(value.str.contains(r"^\d{4}-\d{2}-\d{2}$"))
        .then(value)
        .when(value.str.contains(r"^\d{4}-\d{2}-\d{2}T.*([+-]\d{2}:\d{2}|Z)$"))
        .then(instant.dt.convert_time_zone(LONDON).dt.date().cast(pl.String))
        .when(value.str.contains(r"^\d{4}-\d{2}-\d{2}T"))
        .then(value.str.slice(0, 10))
    )


@dataclass
class _Counts:
    """Counts for the reconciliation: plain ones, and ones to be listed by code (top codes then the rest)."""

    plain: Counter[tuple[str, str, str, str, str]] = field(default_factory=Counter)
    coded: dict[tuple[str, str, str, str], Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    def count(self, stage: str, where: str, reason: str, system: str = "", code: str = "", n: int = 1) -> None:
        self.plain[(stage, where, reason, system, code)] += n

    def code(self, stage: str, where: str, reason: str, system: str, code: str) -> None:
        self.coded[(stage, where, reason, system)][code] += 1


class _Importer:
    """Reads resources one at a time and stages the contract rows they give."""

    def __init__(self, staging: _Staging) -> None:
        self.staging = staging
        self.counts = _Counts()
        self.measures = loinc_measures()
        self.loinc_codes = {loinc for loinc, _ in self.measures}
        self.by_type: Counter[str] = Counter()
        self.handlers: dict[str, Callable[[dict[str, Any]], None]] = {
            "Patient": self.patient,
            "Condition": self.condition,
            "Observation": self.observation,
            "MedicationRequest": self.medication_request,
            "MedicationStatement": self.medication_statement,
            "Medication": self.medication,
            "Encounter": self.encounter,
            "Organization": self.organisation,
        }

    def resource(self, resource: dict[str, Any]) -> None:
        kind = resource.get("resourceType")
        if not isinstance(kind, str):
            self.counts.count("dropped", "resource", "no resourceType: not a FHIR resource")
            return
        self.by_type[kind] += 1
        handler = self.handlers.get(kind)
        if handler is None:
            self.counts.code("unmapped", "resource", "resource type not carried by the contract", "FHIR", kind)
            return
        handler(resource)

    # Patients -------------------------------------------------------------------------------------------------
    def patient(self, r: dict[str, Any]) -> None:
        patient_id = r.get("id")
        if not isinstance(patient_id, str) or not patient_id:
            self.counts.count("dropped", "Patient", "Patient without an id")
            return
        nhs_number = None
        for identifier in r.get("identifier") or ():
            if isinstance(identifier, dict) and identifier.get("system") == NHS_NUMBER and identifier.get("value"):
                nhs_number = str(identifier["value"]).replace(" ", "")
                break
        gender = r.get("gender")
        sex = GENDER.get(gender) if isinstance(gender, str) else None
        if sex is None:
            self.counts.code("cleaned", "person", "gender missing or not an R4 code: sex U", "FHIR gender", str(gender))
            sex = "U"
        deceased = r.get("deceasedDateTime")
        if r.get("deceasedBoolean") is True:
            self.counts.count("note", "person", "deceasedBoolean true without a date: date_of_death left blank")
        ethnicity = self.ethnicity(r)
        if ethnicity is None:
            self.counts.count("note", "person", "no UK Core ethnic category: ethnicity blank")
        practice_code, practice_ref = self.practice(r)
        if r.get("address"):
            self.counts.count("note", "person", "Patient address (postcode) not carried: the contract has LSOA only")
        self.staging.add(
            "person",
            patient_id,
            nhs_number,
            _first(r.get("birthDate")),
            sex,
            ethnicity,
            practice_code,
            practice_ref,
            deceased if isinstance(deceased, str) else None,
        )
        self.staging.add("alias", patient_id, patient_id)
        if nhs_number:
            self.staging.add("alias", f"nhs:{nhs_number}", patient_id)
        full_url = r.get("_fullUrl")
        if isinstance(full_url, str) and full_url.startswith("urn:uuid:") and full_url[9:] != patient_id:
            self.staging.add("alias", full_url[9:], patient_id)

    def ethnicity(self, r: dict[str, Any]) -> str | None:
        """The UK Core ethnic category, and only that: US Core race/ethnicity is counted, never mapped."""
        found = None
        for extension in r.get("extension") or ():
            if not isinstance(extension, dict):
                continue
            url = extension.get("url")
            if url in ETHNIC_EXTENSIONS:
                for coding in _codings(extension.get("valueCodeableConcept")):
                    system, code = coding.get("system", ""), str(coding["code"])
                    if system in ETHNIC_SYSTEMS and code in ETHNIC_CATEGORIES:
                        found = code
                    else:
                        self.counts.code("unmapped", "person", "ethnic category code not recognised", system, code)
            elif url in US_CORE_RACE:
                for sub in extension.get("extension") or ():
                    if isinstance(sub, dict) and sub.get("url") == "ombCategory":
                        coding = sub.get("valueCoding") or {}
                        self.counts.code(
                            "unmapped",
                            "person",
                            "US Core race/ethnicity has no NHS ethnic category map: not carried",
                            str(url).rsplit("/", 1)[1],
                            str(coding.get("code")),
                        )
        return found

    def practice(self, r: dict[str, Any]) -> tuple[str | None, str | None]:
        """The registered practice's ODS code: given on the reference or on the Organization it points to."""
        for gp in r.get("generalPractitioner") or ():
            if not isinstance(gp, dict):
                continue
            identifier = gp.get("identifier")
            if isinstance(identifier, dict) and identifier.get("system") == ODS_ORGANISATION:
                return _first(identifier.get("value")), None
            ref = gp.get("reference")
            if isinstance(ref, str) and ("Organization/" in ref or ref.startswith("urn:uuid:")):
                return None, _reference_key(gp)
        return None, None

    def organisation(self, r: dict[str, Any]) -> None:
        for identifier in r.get("identifier") or ():
            if isinstance(identifier, dict) and identifier.get("system") == ODS_ORGANISATION and r.get("id"):
                self.staging.add("organisation", r["id"], _first(identifier.get("value")))
                full_url = r.get("_fullUrl")
                if isinstance(full_url, str) and full_url.startswith("urn:uuid:"):
                    self.staging.add("organisation", full_url[9:], _first(identifier.get("value")))
                return

    # Clinical records -----------------------------------------------------------------------------------------
    def _subject(self, r: dict[str, Any], kind: str) -> str | None:
        subject = _reference_key(r.get("subject") or r.get("patient"))
        if subject is None:
            self.counts.count("dropped", kind, "no subject reference")
        return subject

    def condition(self, r: dict[str, Any]) -> None:
        verification = _codings(r.get("verificationStatus"))
        if any(c["code"] in REFUTED for c in verification):
            self.counts.code("dropped", "Condition", "refuted or entered in error", "verificationStatus", "")
            return
        subject = self._subject(r, "Condition")
        if subject is None:
            return
        date = _first(r.get("onsetDateTime"), _period(r, "onsetPeriod"), r.get("recordedDate"))
        codings = _codings(r.get("code"))
        snomed = next((c for c in codings if c.get("system") == SNOMED), None)
        if snomed is None:
            for c in codings[:1] or [{"system": "", "code": "(no code)"}]:
                self.counts.code("unmapped", "Condition", "not coded in SNOMED CT", c.get("system", ""), c["code"])
            return
        self.staging.add("gp_event", subject, date, str(snomed["code"]), None, None)

    def observation(self, r: dict[str, Any]) -> None:
        if r.get("status") in VOID:
            self.counts.code("dropped", "Observation", "status cancelled or entered in error", "status", r["status"])
            return
        subject = self._subject(r, "Observation")
        if subject is None:
            return
        date = _first(
            r.get("effectiveDateTime"), _period(r, "effectivePeriod"), r.get("effectiveInstant"), r.get("issued")
        )
        components = [c for c in r.get("component") or () if isinstance(c, dict)]
        has_value = any(k.startswith("value") for k in r)
        if has_value or not components:
            self._observed(subject, date, r.get("code"), r)
        for component in components:
            self._observed(subject, date, component.get("code"), component)

    def _observed(self, subject: str, date: str | None, code: object, holder: dict[str, Any]) -> None:
        """One coded value (an Observation or one component of a panel) to a gp_event row, or a counted reason."""
        codings = _codings(code)
        snomed = next((c for c in codings if c.get("system") == SNOMED), None)
        quantity = holder.get("valueQuantity")
        value = quantity.get("value") if isinstance(quantity, dict) else None
        if isinstance(quantity, dict) and isinstance(quantity.get("comparator"), str):
            # A laboratory's "eGFR >90" is a number with a comparator; GP systems file the number, and so do we.
            reason = "value with a comparator (<, >) written as its number"
            self.counts.code("cleaned", "gp_event", reason, "comparator", quantity["comparator"])
        if snomed is not None:
            unit = _first(quantity.get("unit"), quantity.get("code")) if isinstance(quantity, dict) else None
            self.staging.add("gp_event", subject, date, str(snomed["code"]), _number(value), unit)
            for given in _codings(holder.get("valueCodeableConcept"))[:1]:
                reason = "coded answer of a SNOMED CT observation not carried (the question code is)"
                self.counts.code("unmapped", "Observation", reason, given.get("system", ""), str(given["code"]))
            return
        loinc = next((c for c in codings if c.get("system") == LOINC and c["code"] in self.loinc_codes), None)
        if loinc is None:
            first = codings[0] if codings else {"system": "", "code": "(no code)"}
            reason = "LOINC code not in the mapping table" if first.get("system") == LOINC else "not SNOMED CT or LOINC"
            self.counts.code("unmapped", "Observation", reason, first.get("system", ""), str(first["code"]))
            return
        code = str(loinc["code"])
        answer = self.measures.get((code, ""))
        if answer is not None and not answer.snomed_code:  # the SNOMED CT answer is the event (smoking status)
            coded = next((c for c in _codings(holder.get("valueCodeableConcept")) if c.get("system") == SNOMED), None)
            if coded is None:
                self.counts.code("unmapped", "Observation", "answer not coded in SNOMED CT", LOINC, code)
                return
            self.staging.add("gp_event", subject, date, str(coded["code"]), None, None)
            return
        number = _number(value)
        if not isinstance(quantity, dict) or number is None:
            self.counts.code("unmapped", "Observation", "mapped LOINC code without a numeric value", LOINC, code)
            return
        unit = _first(quantity.get("code"), quantity.get("unit")) or ""
        measure = self.measures.get((code, unit)) or self.measures.get((code, str(quantity.get("unit") or "")))
        if measure is None:
            self.counts.code("unmapped", "Observation", f"LOINC {code} in a unit the table does not know", "UCUM", unit)
            return
        converted = measure.convert(number)
        if measure.divide != 1 or measure.multiply != 1 or measure.subtract:
            self.counts.code("cleaned", "gp_event", f"LOINC {code} converted to {measure.unit_out}", "UCUM", unit)
        self.staging.add("gp_event", subject, date, measure.snomed_code, converted, measure.unit_out or None)

    # Medicines ------------------------------------------------------------------------------------------------
    def _medicine(self, r: dict[str, Any], kind: str, date: str | None) -> None:
        if r.get("status") in VOID:
            self.counts.code("dropped", kind, "status cancelled or entered in error", "status", r["status"])
            return
        subject = self._subject(r, kind)
        if subject is None:
            return
        concept = r.get("medicationCodeableConcept")
        reference = r.get("medicationReference")
        if concept is None and isinstance(reference, dict):
            ref = reference.get("reference")
            if isinstance(ref, str) and ref.startswith("#"):  # a contained Medication
                contained = [c for c in r.get("contained") or () if isinstance(c, dict) and c.get("id") == ref[1:]]
                concept = contained[0].get("code") if contained else None
            else:
                self.staging.add("gp_medication", subject, date, None, _reference_key(reference))
                return
        code = self._dmd(concept, kind)
        if code is not None:
            self.staging.add("gp_medication", subject, date, code, None)

    def _dmd(self, concept: object, kind: str) -> str | None:
        """A dm+d code by its code system; RxNorm and anything else counted as unmapped."""
        codings = _codings(concept)
        for coding in codings:
            if coding.get("system") in MEDICINE_SYSTEMS and str(coding["code"]).isdigit():
                return str(coding["code"])
        first = codings[0] if codings else {"system": "", "code": "(no code)"}
        reason = "RxNorm is not dm+d: not carried" if first.get("system") == RXNORM else "not coded in dm+d"
        self.counts.code("unmapped", kind, reason, first.get("system", ""), str(first["code"]))
        return None

    def medication_request(self, r: dict[str, Any]) -> None:
        self._medicine(r, "MedicationRequest", _first(r.get("authoredOn")))

    def medication_statement(self, r: dict[str, Any]) -> None:
        date = _first(r.get("effectiveDateTime"), _period(r, "effectivePeriod"), r.get("dateAsserted"))
        self._medicine(r, "MedicationStatement", date)

    def medication(self, r: dict[str, Any]) -> None:
        """A Medication resource referred to by a request: its dm+d code, looked up when the rows are written."""
        if not r.get("id"):
            return
        code = self._dmd(r.get("code"), "Medication")
        self.staging.add("medication", r["id"], code)
        full_url = r.get("_fullUrl")
        if isinstance(full_url, str) and full_url.startswith("urn:uuid:") and full_url[9:] != r["id"]:
            self.staging.add("medication", full_url[9:], code)

    # Encounters -----------------------------------------------------------------------------------------------
    def encounter(self, r: dict[str, Any]) -> None:
        klass = r.get("class")
        code = str(klass.get("code")) if isinstance(klass, dict) else ""
        status = r.get("status")
        if status in NOT_HAPPENED:
            self.counts.code("dropped", "Encounter", "encounter did not take place (status)", "status", str(status))
            return
        subject = self._subject(r, "Encounter")
        encounter_id = r.get("id")
        if subject is None or not isinstance(encounter_id, str):
            return
        start = _period(r, "period")
        if code in EMERGENCY:
            self.staging.add("ae_attendance", subject, encounter_id, start)
        elif code in INPATIENT:
            self.staging.add("apc_episode", subject, encounter_id, start, _period(r, "period", "end"), self._method(r))
        elif code in AMBULATORY:
            self.staging.add("op_appointment", subject, encounter_id, start, "true")
        else:
            self.counts.code("unmapped", "Encounter", "encounter class not carried", "v3-ActCode", code or "(none)")

    def _method(self, r: dict[str, Any]) -> str:
        """The UK Core admission method (HES codes), else 99, the NHS Data Dictionary's "not known": the stay is
        an admission, counted as neither elective nor emergency (the encounter class cannot tell which)."""
        hospitalisation = r.get("hospitalization")
        extensions = hospitalisation.get("extension") if isinstance(hospitalisation, dict) else None
        for extension in [*(extensions or ()), *(r.get("extension") or ())]:
            if isinstance(extension, dict) and extension.get("url") == ADMISSION_METHOD_EXTENSION:
                for coding in _codings(extension.get("valueCodeableConcept")):
                    if str(coding["code"]) in ADMISSION_METHODS:
                        return str(coding["code"])
        self.counts.count("unmapped", "apc_episode", "no UK Core admission method: written as 99 (not known)")
        return UNKNOWN_METHOD


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _files(paths: list[Path]) -> list[Path]:
    """The input files: those named, and every FHIR-looking file under a named folder, in a stable order."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(SUFFIXES))
        elif path.is_file():
            found.append(path)
        else:
            raise InputError(f"FHIR input {path.name} does not exist")
    if not found:
        raise InputError("no FHIR files (.json, .ndjson, .ndjson.gz) found in the paths given")
    return found


def _open(path: Path) -> Iterator[bytes]:
    """The file's lines, gunzipped where the name says so; one clear error for a broken gzip stream."""
    zipped = path.name.lower().endswith(".gz")
    try:
        with gzip.open(path, "rb") if zipped else path.open("rb") as handle:
            yield from handle
    except (OSError, EOFError):
        what = "a readable gzip file" if zipped else "readable"
        raise InputError(f"FHIR file {path.name} is not {what}") from None


def _resources(path: Path) -> Iterator[dict[str, Any]]:
    """Resources of one file: NDJSON line by line, a Bundle (or single resource) as one document."""
    name = path.name.lower()
    if name.endswith((".ndjson", ".ndjson.gz", ".jsonl", ".jsonl.gz")):
        for number, line in enumerate(_open(path), start=1):
            if line.strip():
                yield from _entries(_fhir(_parse(line, path, f" line {number}"), path, f" line {number}"))
        return
    yield from _entries(_fhir(_parse(b"".join(_open(path)), path, ""), path, ""))


def _entries(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A Bundle's resources, each with its entry's ``fullUrl`` (for ``urn:uuid:`` references); else the resource."""
    if document["resourceType"] != "Bundle":
        yield document
        return
    for entry in document.get("entry") or ():
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict):
            if isinstance(entry.get("fullUrl"), str):
                resource["_fullUrl"] = entry["fullUrl"]
            yield resource


def _parse(text: bytes, path: Path, where: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        raise InputError(f"FHIR file {path.name}{where} is not JSON") from None


def _fhir(document: Any, path: Path, where: str) -> dict[str, Any]:
    if not isinstance(document, dict) or not isinstance(document.get("resourceType"), str):
        raise InputError(f"FHIR file {path.name}{where} is not a FHIR resource (no resourceType)")
    return document


def import_fhir(paths: list[Path], out: Path, *, progress: Callable[[str], None] = lambda _: None) -> ImportResult:
    """Write a source folder of the input contract from FHIR R4 Bundles and bulk-export NDJSON."""
    started = time.perf_counter()
    files = _files(paths)
    out.mkdir(parents=True, exist_ok=True)
    recon = Reconciliation()
    with tempfile.TemporaryDirectory(prefix=".fhir-import-", dir=out) as folder:
        staging = _Staging(Path(folder))
        importer = _Importer(staging)
        per_file: dict[str, int] = {}
        for number, path in enumerate(files, start=1):
            progress(f"reading {path.name} ({number:,} of {len(files):,} files)")
            count = 0
            for resource in _resources(path):
                importer.resource(resource)
                count += 1
            per_file[path.name] = per_file.get(path.name, 0) + count
        read = sum(per_file.values())
        _report_files(per_file, recon)
        staging.flush_all()
        for kind, n in sorted(importer.by_type.items()):
            recon.add("read", "all files", f"{kind} resources", n)
        progress("writing contract files")
        _write(staging, importer.counts, out, recon)
    _report(importer.counts, recon)
    recon.write(out / "import_reconciliation.csv")
    written = {where: n for stage, where, _, _, _, n in recon.rows if stage == "written"}
    return ImportResult(out, recon, written, read, time.perf_counter() - started)


def _report_files(per_file: dict[str, int], recon: Reconciliation) -> None:
    """Resources read per file: every file of a bulk export (a handful), but only the largest of a folder of
    thousands of per-patient bundles, with one row for the rest, so the printed table stays readable."""
    listed = sorted(per_file.items(), key=lambda item: -item[1])[:FILES_LISTED] if len(per_file) > FILES_LISTED else []
    for name, n in listed or per_file.items():
        recon.add("read", name, "resources read", n)
    if listed:
        rest = sum(per_file.values()) - sum(n for _, n in listed)
        recon.add("read", f"({len(per_file) - len(listed):,} other files)", "resources read", rest)


def _write(staging: _Staging, counts: _Counts, out: Path, recon: Reconciliation) -> None:
    """Resolve subjects, medicines and practices, and write each contract file with a streaming sink."""
    people = _people(staging, counts)
    by_nhs = people.select(pl.col("nhs_number").is_not_null().all()).item() and people.height > 0
    key = "nhs_number" if by_nhs else "person_id"
    if not by_nhs:
        with_nhs = people.select(pl.col("nhs_number").is_not_null().sum()).item()
        if with_nhs:
            reason = "NHS numbers not carried: not every Patient has one, and a contract file has one identifier column"
            counts.count("note", "person", reason, n=with_nhs)
    people = people.with_columns((pl.col("nhs_number") if by_nhs else pl.col("patient_id")).alias(key))
    undated = people.filter(pl.col("date_of_birth").is_null()).height
    counts.count("note", "person", "no birthDate as a full date: ingest quarantines the person", n=undated)
    person_columns = [key, "date_of_birth", "sex", "ethnicity", "practice_code", "date_of_death"]
    people.select(person_columns).write_csv(out / "person.csv")
    recon.add("written", "person", "rows written", people.height)
    counts.count("note", "person", f"people identified by {key}", n=people.height)
    keys = (
        staging.scan("alias")
        .unique("ref", keep="first", maintain_order=True)
        .join(people.lazy().select("patient_id", key), on="patient_id", how="inner")
        .select(pl.col("ref").alias("subject"), key)
    )
    medicines = (
        staging.scan("medication")
        .unique("ref", keep="first", maintain_order=True)
        .rename({"ref": "medication_ref", "dmd_code": "_dmd"})
    )
    columns = {
        "gp_event": ["event_date", "snomed_code", "value", "unit"],
        "gp_medication": ["issue_date", "dmd_code"],
        "ae_attendance": ["attendance_id", "arrival_date"],
        "apc_episode": ["episode_id", "admission_date", "discharge_date", "admission_method"],
        "op_appointment": ["appointment_id", "appointment_date", "attended"],
    }
    for table, wanted in columns.items():
        (out / f"{table}.csv").unlink(missing_ok=True)  # a table this import has no rows for: none left from before
        if not staging.parts[table]:
            continue
        frame = staging.scan(table)
        if table == "gp_medication":
            frame = frame.join(medicines, on="medication_ref", how="left").with_columns(
                pl.coalesce("dmd_code", "_dmd").alias("dmd_code")
            )
            unresolved = frame.filter(pl.col("medication_ref").is_not_null() & pl.col("dmd_code").is_null())
            n = unresolved.select(pl.len()).collect().item()
            counts.count("dropped", table, "medicationReference to no Medication with a dm+d code", n=n)
            frame = frame.filter(pl.col("dmd_code").is_not_null())
        orphans = frame.join(keys, on="subject", how="anti").select(pl.len()).collect().item()
        counts.count("dropped", table, "subject is not a Patient in the input", n=orphans)
        first_date = wanted[0] if wanted[0].endswith("date") else wanted[1]
        rows = frame.join(keys, on="subject", how="inner")
        undated = rows.filter(pl.col(first_date).is_null()).select(pl.len()).collect().item()
        counts.count("dropped", table, "no date, or a year or month only", n=undated)
        rows = rows.filter(pl.col(first_date).is_not_null()).select(key, *wanted)
        rows.sink_csv(out / f"{table}.csv")
        recon.add("written", table, "rows written", pl.scan_csv(out / f"{table}.csv").select(pl.len()).collect().item())


def _people(staging: _Staging, counts: _Counts) -> pl.DataFrame:
    """One row per Patient id (the first seen), with the practice resolved through Organization resources."""
    staged = staging.scan("person").collect()
    people = staged.unique("patient_id", keep="first", maintain_order=True)
    counts.count("dropped", "person", "Patient id repeated: the first kept", n=staged.height - people.height)
    organisations = (
        staging.scan("organisation")
        .unique("ref", keep="first", maintain_order=True)
        .rename({"ref": "practice_ref", "practice_code": "_ods"})
    )
    people = (
        people.lazy()
        .join(organisations, on="practice_ref", how="left")
        .with_columns(pl.coalesce("practice_code", "_ods").alias("practice_code"))
        .collect()
    )
    counts.count(
        "unmapped",
        "person",
        "generalPractitioner without an ODS organisation code: practice blank",
        n=people.filter(pl.col("practice_ref").is_not_null() & pl.col("practice_code").is_null()).height,
    )
    return people


def _report(counts: _Counts, recon: Reconciliation) -> None:
    """Counts after the read and written rows, stage by stage: clean-ups, drops, unmapped codes, notes."""
    for stage in ("cleaned", "dropped", "unmapped", "note"):
        for (stage_, where, reason, system, code), n in sorted(counts.plain.items()):
            if stage_ == stage:
                recon.add(stage, where, reason, n, system, code)
        for (stage_, where, reason, system), codes in sorted(counts.coded.items()):
            if stage_ == stage:
                frame = pl.DataFrame(
                    {"code": list(codes), "n": list(codes.values())}, schema={"code": pl.String, "n": pl.Int64}
                )
                recon.add_codes(stage, where, reason, system, frame)
