"""Typed code systems, and the store columns that hold codes of each.

A code list knows its system, and so does every coded column: applying an ICD-10 list to a SNOMED CT
column is refused when the query is defined, not discovered as an empty result later.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import narwhals as nw

from openphm.errors import OpenPHMError


class CodeSystemError(OpenPHMError):
    """A code list applied to a column of another code system, or a code not of its list's system."""


@dataclass(frozen=True)
class CodeSystem:
    """A clinical coding system: how its codes look once normalised, and how they match."""

    name: str
    title: str
    pattern: str
    """A normalised code matches this regular expression in full."""
    prefix: bool
    """True where a listed code stands for itself and every code that starts with it (ICD-10, OPCS-4, BNF)."""

    def normalise_code(self, code: str) -> str:
        """A code as written in a list or a record, in the system's canonical form."""
        text = code.strip().upper()
        if self.name in ("icd10", "opcs4"):
            # Dots, dagger/asterisk markers and fillers go; ICD-10 keeps the category (three characters)
            # and the digits after it, so 'I50.0', 'I500', 'I10X' and 'A17.0D' become I500, I500, I10, A170.
            text = re.sub(r"[.\s†*+]", "", text)
            text = text[:3] + re.sub(r"[^0-9]", "", text[3:])
        return text

    def normalise(self, expr: nw.Expr) -> nw.Expr:
        """The same normalisation as :meth:`normalise_code`, as an engine expression."""
        text = expr.str.strip_chars().str.to_uppercase()
        if self.name in ("icd10", "opcs4"):
            text = text.str.replace_all(r"[.\s†*+]", "")
            text = nw.concat_str([text.str.slice(0, 3), text.str.slice(3).str.replace_all(r"[^0-9]", "")])
        return text

    def check(self, code: str) -> None:
        if not re.fullmatch(self.pattern, code):
            raise CodeSystemError(f"'{code}' is not a {self.title} code")


SNOMED = CodeSystem("snomed", "SNOMED CT", r"[0-9]{6,18}", prefix=False)
ICD10 = CodeSystem("icd10", "ICD-10", r"[A-Z][0-9][0-9A-Z][0-9]{0,4}", prefix=True)
OPCS4 = CodeSystem("opcs4", "OPCS-4", r"[A-Z][0-9]{1,3}", prefix=True)
DMD = CodeSystem("dmd", "dm+d", r"[0-9]{6,20}", prefix=False)
BNF = CodeSystem("bnf", "BNF", r"[0-9A-Z]{2,15}", prefix=True)
SYSTEMS: dict[str, CodeSystem] = {s.name: s for s in (SNOMED, ICD10, OPCS4, DMD, BNF)}


@dataclass(frozen=True)
class CodedColumn:
    """A store column holding codes of one system, with the date and care setting of each code."""

    table: str
    column: str
    system: CodeSystem
    date: str
    setting: str
    """gp, medication, hospital (admitted patient care) or ae."""


CODED_COLUMNS: tuple[CodedColumn, ...] = (
    CodedColumn("gp_event", "snomed_code", SNOMED, "event_date", "gp"),
    CodedColumn("ae_attendance", "diagnosis_snomed", SNOMED, "arrival_date", "ae"),
    CodedColumn("gp_medication", "dmd_code", DMD, "issue_date", "medication"),
    CodedColumn("gp_medication", "bnf_code", BNF, "issue_date", "medication"),
    CodedColumn("apc_diagnosis", "icd10_code", ICD10, "admission_date", "hospital"),
    CodedColumn("apc_procedure", "opcs4_code", OPCS4, "admission_date", "hospital"),
)
SETTINGS = ("gp", "medication", "hospital", "ae")
