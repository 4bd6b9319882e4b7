"""Find the contract's tables in a source folder, check their headers, and read them as strings.

Problems that make a file unusable - not CSV or Parquet, unreadable, a required column missing, no person
identifier - stop the run with :class:`InputError` naming the file and column. Everything row-level is
left to validation, which quarantines rather than stops.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import narwhals as nw
import pyarrow.parquet as pq

from openphm.contract.schema import ID_COLUMNS, TABLES, Table
from openphm.engine import ROW, Engine
from openphm.errors import InputError

SUFFIXES = {".csv": "csv", ".parquet": "parquet"}
EXTRACT_DATE_FILE = "extract_date.txt"
"""An optional file beside the tables holding the extract date (one YYYY-MM-DD line), as ``phm synth`` writes it:
ingest uses it when no extract date is given, so rows dated after the data window are quarantined."""


@dataclass(frozen=True)
class SourceFile:
    """A located source table and what its header told us."""

    table: Table
    path: Path
    format: str
    columns: tuple[str, ...]
    id_column: str | None
    """``nhs_number`` or ``person_id`` for person-level tables, else None."""

    @property
    def extra_columns(self) -> tuple[str, ...]:
        known = {c.name for c in self.table.columns} | set(ID_COLUMNS)
        return tuple(c for c in self.columns if c not in known)


def _header(path: Path, fmt: str) -> tuple[str, ...]:
    try:
        if fmt == "parquet":
            return tuple(pq.read_schema(path).names)
        with path.open(encoding="utf-8-sig", newline="") as handle:
            row = next(csv.reader(handle), None)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: cannot be read as {fmt.upper()} ({type(exc).__name__})") from None
    except Exception as exc:  # pyarrow raises its own error types for non-Parquet files
        raise InputError(f"{path}: cannot be read as {fmt.upper()} ({type(exc).__name__})") from None
    if not row:
        raise InputError(f"{path}: is empty (a header row is required)")
    return tuple(name.strip() for name in row)


def discover(folder: Path) -> tuple[dict[str, SourceFile], list[str]]:
    """The contract tables present in ``folder`` and the names of files that are not contract tables."""
    if not folder.is_dir():
        raise InputError(f"{folder}: source folder not found")
    found: dict[str, SourceFile] = {}
    ignored: list[str] = []
    for path in sorted(folder.iterdir()):
        fmt = SUFFIXES.get(path.suffix.lower())
        table = TABLES.get(path.stem)
        if path.name == EXTRACT_DATE_FILE:
            continue
        if path.is_dir() or table is None or fmt is None:
            ignored.append(path.name)
            continue
        if table.name in found:
            raise InputError(f"{path}: table '{table.name}' is supplied twice ({found[table.name].path.name})")
        found[table.name] = _inspect(table, path, fmt)
    if "person" not in found:
        raise InputError(f"{folder / 'person.csv'}: the person table is required (person.csv or person.parquet)")
    for src in found.values():
        if src.table.parent and src.table.parent[0] not in found:
            raise InputError(f"{src.path}: needs {src.table.parent[0]} in the same folder (its rows belong to it)")
    return found, ignored


def source_extract_date(folder: Path) -> date | None:
    """The extract date written beside the tables (``extract_date.txt``), or None when there is none."""
    path = folder / EXTRACT_DATE_FILE
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8-sig").strip()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{path}: must hold one date in YYYY-MM-DD form (the extract date)") from None


def _inspect(table: Table, path: Path, fmt: str) -> SourceFile:
    columns = _header(path, fmt)
    id_column = None
    if table.person_level:
        present = [c for c in ID_COLUMNS if c in columns]
        if len(present) != 1:
            what = "both" if present else "neither"
            raise InputError(f"{path}: column nhs_number or person_id - the file has {what}; it needs exactly one")
        id_column = present[0]
    for name in table.required_columns:
        if name == "person_id":
            continue
        if name not in columns:
            raise InputError(f"{path}: required column '{name}' is missing")
    return SourceFile(table, path, fmt, columns, id_column)


def _blank_as_null(text: nw.Expr) -> nw.Expr:
    """Spaces trimmed (as padded fixed-width exports leave them), blanks as null.

    Trimming only values that start or end with a space is about five times faster in DuckDB than
    trimming every value, and gives the same result.
    """
    padded = text.str.starts_with(" ") | text.str.ends_with(" ")
    trimmed = text.str.strip_chars(" ")
    return (
        nw.when(text == "")
        .then(None)
        .when(padded & (trimmed == ""))
        .then(None)
        .when(padded)
        .then(trimmed)
        .otherwise(text)
    )


def read(engine: Engine, source: SourceFile) -> nw.LazyFrame:
    """The file as strings: trimmed, blanks as null, absent optional columns as null, extras dropped.

    The identifier column is kept under its own name (``nhs_number`` or ``person_id``).
    """
    frame = engine.read_csv(source.path) if source.format == "csv" else engine.read_parquet(source.path)
    wanted = [c.name for c in source.table.columns if c.name != "person_id"]
    if source.id_column:
        wanted.insert(0, source.id_column)
    exprs = [nw.col(ROW)]
    for name in wanted:
        if name in source.columns:
            exprs.append(_blank_as_null(nw.col(name).cast(nw.String)).alias(name))
        else:
            exprs.append(nw.lit(None, dtype=nw.String).alias(name))
    return frame.select(exprs)
