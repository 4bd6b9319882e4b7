"""What every importer reports: rows read per file, rows written per contract table, and every value cleaned,
dropped or left unmapped, counted by reason and code system with the most frequent codes named.

Shared by ``phm import hes``, ``fhir`` and ``omop`` so a user reads one reconciliation shape whatever came in.
It holds counts and codes, never a person's identifier.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

TOP_CODES = 10
"""How many unmapped codes per reason the reconciliation lists before lumping the rest together."""


@dataclass
class Reconciliation:
    """Counts of what was read, written, cleaned, dropped and left unmapped; codes but never identifiers."""

    rows: list[tuple[str, str, str, str, str, int]] = field(default_factory=list)

    def add(self, stage: str, where: str, reason: str, count: int, code_system: str = "", code: str = "") -> None:
        """Record one count (zero counts of clean-ups are skipped: they say nothing; zero notes are kept)."""
        if count or stage in ("read", "written", "note"):
            self.rows.append((stage, where, reason, code_system, code, int(count)))

    def add_codes(self, stage: str, where: str, reason: str, code_system: str, codes: pl.DataFrame) -> None:
        """Record a frame of ``code, n`` as its top codes and one row for the rest."""
        codes = codes.sort(["n", "code"], descending=[True, False])
        for code, n in codes.head(TOP_CODES).iter_rows():
            self.add(stage, where, reason, n, code_system, code)
        rest = codes.slice(TOP_CODES)
        if rest.height:
            self.add(stage, where, reason, int(rest["n"].sum()), code_system, f"({rest.height} other codes)")

    def write(self, path: Path) -> None:
        """Write the rows as ``import_reconciliation.csv`` beside the contract files."""
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["stage", "file_or_table", "reason", "code_system", "code", "count"])
            writer.writerows(self.rows)


@dataclass
class ImportResult:
    """What an import wrote, for the CLI to print."""

    out: Path
    reconciliation: Reconciliation
    written: dict[str, int]
    rows_read: int
    seconds: float
