"""The offline HTML report: one self-contained file of disclosure-controlled charts, with a geography picker.

>>> from openphm.report import write_report                                       # doctest: +SKIP
>>> write_report(Path("phm.duckdb"), Path("report.html"))
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from openphm.errors import InputError, StoreError
from openphm.report.build import build_report
from openphm.report.check import check_disclosed
from openphm.report.render import render

__all__ = ["ReportResult", "write_report"]


@dataclass(frozen=True)
class ReportResult:
    """Where the report went and what it holds."""

    path: Path
    bytes: int
    areas: int
    charts: int
    seconds: float


def write_report(
    store: Path,
    out: Path,
    *,
    engine: str = "duckdb",
    policy: str = "nhs",
    progress: Callable[[str], None] | None = None,
    purpose: str | None = None,
    allow_purpose_mismatch: bool = False,
) -> ReportResult:
    """Build the report of ``store`` and write it to ``out`` (replaced only once complete).

    ``purpose`` (planning unless policy none) must be covered by the store's ingest purpose; an override
    is stated in the page and logged beside the store.
    """
    from openphm.analytics.disclosure import POLICIES

    started = time.perf_counter()
    if policy not in POLICIES:
        raise InputError(f"unknown disclosure policy '{policy}': available: {', '.join(POLICIES)}")
    if not store.exists():
        raise StoreError(f"{store}: no such store")
    report = build_report(store, engine, policy, progress, purpose, allow_purpose_mismatch)
    check_disclosed(report, POLICIES[policy])
    if progress:
        progress("writing the page")
    page = render(report).encode("utf-8")
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.{os.getpid()}.tmp")  # same folder: the rename is atomic
    try:
        with temporary.open("xb") as file:  # ordinary permissions (umask), unlike a mkstemp file
            file.write(page)
        temporary.replace(out)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    if allow_purpose_mismatch:
        _log_override(store, out, report.methods.output_purpose, report.methods.purpose)
    return ReportResult(out, len(page), len(report.areas), len(report.charts), time.perf_counter() - started)


def _log_override(store: Path, out: Path, purpose: str, store_purpose: str) -> None:
    """A purpose override is an audit fact: one line beside the store, as exports write theirs."""
    entry = {
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "output": "report",
        "out": str(out.resolve()),
        "purpose": purpose,
        "store_purpose": store_purpose,
        "override_purpose_mismatch": True,
    }
    with (store.resolve().parent / f"{store.name}.export-log.jsonl").open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")
