"""The offline HTML report: one self-contained file of disclosure-controlled charts, with a geography picker.

>>> from openphm.report import write_report                                       # doctest: +SKIP
>>> write_report(Path("phm.duckdb"), Path("report.html"))
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
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
) -> ReportResult:
    """Build the report of ``store`` and write it to ``out`` (replaced only once complete)."""
    from openphm.disclosure import POLICIES

    started = time.perf_counter()
    if policy not in POLICIES:
        raise InputError(f"unknown disclosure policy '{policy}': available: {', '.join(POLICIES)}")
    if not store.exists():
        raise StoreError(f"{store}: no such store")
    report = build_report(store, engine, policy, progress)
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
    return ReportResult(out, len(page), len(report.areas), len(report.charts), time.perf_counter() - started)
