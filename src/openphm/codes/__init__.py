"""Typed code systems, code lists, and the condition definitions shipped as package data."""

from openphm.codes.codelist import Codelist
from openphm.codes.conditions import REGISTER_KINDS, Definition, load_definitions
from openphm.codes.systems import CODED_COLUMNS, SYSTEMS, CodedColumn, CodeSystem, CodeSystemError

__all__ = [
    "CODED_COLUMNS",
    "REGISTER_KINDS",
    "SYSTEMS",
    "CodeSystem",
    "CodeSystemError",
    "CodedColumn",
    "Codelist",
    "Definition",
    "load_definitions",
]
