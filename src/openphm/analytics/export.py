"""Exports of the aggregate tables as CSV, Parquet or one Excel workbook, always through `published_tables`.

Unprotected output (policy `none`) is refused unless the purpose is direct care - declared for the export and
the purpose the store was ingested under - or the user passes an explicit override. Every export, protected or
not, is recorded in `export_log.json` in the output folder and as one line of `<store>.export-log.jsonl` beside
the store, so the audit trail survives the output folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from openphm import __version__
from openphm.analytics.published import PolicyError, published_tables
from openphm.disclosure import POLICIES
from openphm.engine import open_store
from openphm.errors import OpenPHMError
from openphm.pipeline.runlog import last_purpose

FORMATS = ("csv", "parquet", "xlsx")
EXCEL_ROWS = 1_048_575
"""Rows an Excel sheet holds below its header."""
WORKBOOK = "openphm-export.xlsx"
LOG = "export_log.json"


class ExportError(OpenPHMError):
    """The export cannot be written as asked (format, size or output folder)."""


@dataclass
class ExportResult:
    files: list[Path] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    policy: str = "nhs"
    override: bool = False


def check_policy(store: Path, engine: str, policy: str, purpose: str | None, allow_unsuppressed: bool) -> bool:
    """Whether ``policy`` may be used; raises PolicyError when it may not. True when an override was used.

    Policy ``none`` needs direct care as both the declared purpose and the store's ingest purpose (opt-outs are
    only kept, and re-identification only lawful, for direct care), or the explicit override.
    """
    if policy not in POLICIES:
        raise PolicyError(f"policy: '{policy}' is not one of {', '.join(POLICIES)}")
    if not POLICIES[policy].is_none:
        return False
    if purpose == "direct-care":
        eng = open_store(store, engine)
        try:
            ingested = last_purpose(eng)
        finally:
            eng.close()
        if ingested == "direct-care":
            return False
        if not allow_unsuppressed:
            raise PolicyError("policy none: the store was not ingested for direct care; use nhs or ons10")
    if not allow_unsuppressed:
        raise PolicyError("policy none: exact counts need --purpose direct-care or --allow-unsuppressed (logged)")
    return True


def export(
    store: Path,
    out: Path,
    fmt: str = "csv",
    *,
    engine: str = "duckdb",
    policy: str = "nhs",
    level: str | None = None,
    code: str | None = None,
    purpose: str | None = None,
    allow_unsuppressed: bool = False,
) -> ExportResult:
    """Write every aggregate table of ``store`` to ``out`` under ``policy``, and log the export."""
    if fmt not in FORMATS:
        raise ExportError(f"format: '{fmt}' is not one of {', '.join(FORMATS)}")
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out}: exists and is not a folder")
    override = check_policy(store, engine, policy, purpose, allow_unsuppressed)
    tables = published_tables(store, engine, policy, level, code)
    if not tables:
        raise ExportError(f"{store}: has no aggregate tables; run 'phm run' first")
    if fmt == "xlsx":
        too_big = [name for name, table in tables.items() if table.num_rows > EXCEL_ROWS]
        if too_big:
            raise ExportError(f"xlsx: {too_big[0]} has more rows than a sheet holds; use csv or parquet, or --level")
    out.mkdir(parents=True, exist_ok=True)
    result = ExportResult(policy=policy, override=override, rows={n: t.num_rows for n, t in tables.items()})
    if fmt == "xlsx":
        result.files.append(_workbook(tables, out / WORKBOOK))
    else:
        for name, table in tables.items():
            path = out / f"{name}.{fmt}"
            if fmt == "csv":
                pacsv.write_csv(table, path)
            else:
                pq.write_table(table, path)
            result.files.append(path)
    _log(store, out, fmt, result, level, code, purpose)
    return result


def _workbook(tables: dict[str, pa.Table], path: Path) -> Path:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    for name, table in tables.items():
        sheet = book.create_sheet(title=name[:31])
        sheet.append(table.column_names)
        for row in table.to_pylist():
            sheet.append(list(row.values()))
    book.save(path)
    return path


def _log(
    store: Path, out: Path, fmt: str, result: ExportResult, level: str | None, code: str | None, purpose: str | None
) -> None:
    """The export's facts (no data): when, what, under which policy and purpose, and whether overridden."""
    entry = {
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "openphm": __version__,
        "store": str(store.resolve()),
        "out": str(out.resolve()),
        "format": fmt,
        "policy": result.policy,
        "purpose": purpose,
        "override_unsuppressed": result.override,
        "level": level,
        "code": code,
        "rows": result.rows,
    }
    (out / LOG).write_text(json.dumps(entry, indent=2) + "\n", encoding="utf-8")
    beside = store.resolve().parent / f"{store.name}.export-log.jsonl"
    with beside.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")
