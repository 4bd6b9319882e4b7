"""The LOINC measure map shared by the importers that meet LOINC-coded results (FHIR, OMOP)."""

from __future__ import annotations

import csv
from importlib import resources


def measure_rows() -> list[dict[str, str]]:
    """``data/loinc_measures.csv``: the LOINC codes of the measures openphm computes, each with the SNOMED CT
    concept of the project's measure code list and a unit conversion. One table for every importer that meets
    LOINC (FHIR, OMOP), so a code or a conversion is corrected once."""
    text = resources.files("openphm.importers").joinpath("data", "loinc_measures.csv").read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))
