"""Exports of the aggregate tables as CSV, Parquet or one Excel workbook, always through `published_tables`.

CSV and xlsx go through `openphm.outputs.safe`, so an area name that looks like a formula is text in a
spreadsheet (docs/security.md).

Unprotected output (policy `none`) is refused unless the purpose is direct care - declared for the export and
the purpose the store was ingested under - or the user passes an explicit override. An export's purpose
(planning unless declared) must be covered by the opt-outs the store's ingest applied: aggregates for planning
from a store ingested for direct care are refused unless overridden (logged). Every export, protected or not,
is recorded - with its purpose, the store's purpose and opt-out policy version - in `export_log.json` in the
output folder and as one line of `<store>.export-log.jsonl` beside the store, so the audit trail survives the
output folder.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from openphm import __version__
from openphm.analytics.disclosure import POLICIES
from openphm.analytics.published import PolicyError, published_tables
from openphm.engine import open_store
from openphm.engine.store import process_alive
from openphm.errors import OpenPHMError
from openphm.ingest.policy import StoreGovernance, check_output_purpose, store_governance
from openphm.outputs.safe import write_csv, write_sheet
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
    purpose: str = "planning"
    purpose_override: bool = False
    governance: StoreGovernance | None = None
    warnings: list[str] = field(default_factory=list)


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
    allow_purpose_mismatch: bool = False,
) -> ExportResult:
    """Write every aggregate table of ``store`` to ``out`` under ``policy``, and log the export.

    ``purpose`` is what the export is for (planning unless declared); it is checked against the purpose
    the store was ingested under before anything is read.
    """
    if fmt not in FORMATS:
        raise ExportError(f"format: '{fmt}' is not one of {', '.join(FORMATS)}")
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out}: exists and is not a folder")
    override = check_policy(store, engine, policy, purpose, allow_unsuppressed)
    eng = open_store(store, engine)
    try:
        governance = store_governance(eng)
    finally:
        eng.close()
    purpose_override = check_output_purpose(governance, purpose or "planning", allow_purpose_mismatch)
    tables = published_tables(store, engine, policy, level, code)
    if not tables:
        raise ExportError(f"{store}: has no aggregate tables; run 'phm run' first")
    if fmt == "xlsx":
        too_big = [name for name, table in tables.items() if table.num_rows > EXCEL_ROWS]
        if too_big:
            raise ExportError(f"xlsx: {too_big[0]} has more rows than a sheet holds; use csv or parquet, or --level")
    out.mkdir(parents=True, exist_ok=True)
    result = ExportResult(
        policy=policy,
        override=override,
        rows={n: t.num_rows for n, t in tables.items()},
        purpose=purpose or "planning",
        purpose_override=purpose_override,
        governance=governance,
        warnings=governance.warnings(datetime.now(UTC).date()),
    )
    # Written beside the output first, then moved in one file at a time, with the log last: a killed export
    # leaves no export_log.json, so a folder with a log always holds every file the log lists.
    _clean_staging(out)
    staging = out / f".exporting-{os.getpid()}-{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    try:
        if fmt == "xlsx":
            written = [_workbook(tables, staging / WORKBOOK)]
        else:
            written = []
            for name, table in tables.items():
                path = staging / f"{name}.{fmt}"
                if fmt == "csv":
                    write_csv(table, path)  # formula-like names neutralised; Parquet stays raw data
                else:
                    pq.write_table(table, path)
                written.append(path)
        (out / LOG).unlink(missing_ok=True)
        for path in written:
            path.replace(out / path.name)
            result.files.append(out / path.name)
        _log(store, out, fmt, result, level, code)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return result


def _clean_staging(out: Path) -> None:
    """Remove the staging folders of exports into ``out`` that were killed (their process is gone)."""
    for folder in out.glob(".exporting-*"):
        pid = folder.name.split("-")[1]
        if pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _workbook(tables: dict[str, pa.Table], path: Path) -> Path:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    for name, table in tables.items():
        write_sheet(book, name[:31], table)  # text as string cells, never formulas
    book.save(path)
    return path


def _log(store: Path, out: Path, fmt: str, result: ExportResult, level: str | None, code: str | None) -> None:
    """The export's facts (no data): when, what, under which policy and purpose, and whether overridden."""
    governance = result.governance or StoreGovernance(None, None, frozenset(), None, None)
    entry = {
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "openphm": __version__,
        "store": str(store.resolve()),
        "out": str(out.resolve()),
        "format": fmt,
        "policy": result.policy,
        "purpose": result.purpose,
        "store_purpose": governance.purpose,
        "opt_out_policy_version": governance.policy_version,
        "opt_outs": governance.statement(),
        "national_check": governance.checked_on.isoformat() if governance.checked_on else None,
        "warnings": result.warnings,
        "override_purpose_mismatch": result.purpose_override,
        "override_unsuppressed": result.override,
        "level": level,
        "code": code,
        "rows": result.rows,
    }
    written = out / f".{LOG}.{os.getpid()}.tmp"
    written.write_text(json.dumps(entry, indent=2) + "\n", encoding="utf-8")
    written.replace(out / LOG)
    beside = store.resolve().parent / f"{store.name}.export-log.jsonl"
    with beside.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")
