"""Write what ``phm link`` produces: the key map ``ingest`` can use, and the controller's report.

``link_map.csv`` holds record ids, opaque person keys, the method and the probability: nothing that
identifies a person on its own. ``link_report.html`` does (its review sample); see ``openphm.link.report``.
Each file is written beside its final name and renamed into place, so a killed run leaves either the old
file or the complete new one, never half a map.
"""

from __future__ import annotations

from pathlib import Path

from openphm.errors import InputError
from openphm.link.linker import LinkResult
from openphm.link.report import render

LINK_MAP = "link_map.csv"
REPORT = "link_report.html"


def write(result: LinkResult, out: Path) -> tuple[Path, Path]:
    """``out/link_map.csv`` and ``out/link_report.html``; ``out`` is created if needed."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError:
        raise InputError(f"cannot create the output folder {out}") from None
    link_map, report = out / LINK_MAP, out / REPORT
    partial = out / f".{LINK_MAP}.partial"
    result.link_map.write_csv(partial, float_precision=6)
    partial.replace(link_map)
    partial = out / f".{REPORT}.partial"
    partial.write_text(render(result), encoding="utf-8")
    partial.replace(report)
    return link_map, report
