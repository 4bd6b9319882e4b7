"""Conditions, medicines and measures as package data: a folder per definition, a manifest, code lists.

Each folder under ``openphm/content/codelists`` holds ``manifest.yaml`` and one ``<system>.csv`` per code
system (``code,term``), plus ``<system>_resolved.csv`` where the condition can resolve. The manifest cites
the source and version of every list. A user can point to their own folder with the same layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path

import yaml

from openphm.codes.codelist import Codelist
from openphm.codes.systems import SYSTEMS, CodeSystemError
from openphm.content import content_path

KINDS = ("condition", "medicine", "procedure", "finding", "measure", "status")
REGISTER_KINDS = ("condition", "medicine", "procedure", "finding")
"""Kinds the register stage records (first and last date, active as at each as_of). A ``finding`` is a coded
observation that qualifies a condition rather than being one (an MRC dyspnoea grade, an NYHA class): rules
read it, but it is not counted as a condition. Measures and statuses are read by the measures stage instead."""


@dataclass(frozen=True)
class Definition:
    """One condition (or medicine, measure, status) with its code lists and metadata."""

    id: str
    name: str
    version: str
    kind: str
    segment: str | None
    subsegment: str | None
    uses: tuple[str, ...]
    lookback_days: int | None
    completeness: str
    codelists: dict[str, Codelist]
    resolved: dict[str, Codelist] = field(default_factory=dict)
    plausible: tuple[float, float] | None = None
    unit: str | None = None
    sources: tuple[str, ...] = ()
    notes: str = ""

    def code_counts(self) -> dict[str, int]:
        return {system: len(codes) for system, codes in self.codelists.items()}


def _sources(entries: list[dict]) -> tuple[str, ...]:
    out = []
    for entry in entries:
        for source in entry.get("sources") or []:
            text = source.get("name", "")
            if source.get("opencodelists"):
                text += f" (OpenCodelists {source['opencodelists']})"
            out.append(text)
    return tuple(dict.fromkeys(out))


def _lists(folder: Traversable | Path, entries: list[dict] | None, name: str) -> dict[str, Codelist]:
    lists: dict[str, Codelist] = {}
    for entry in entries or []:
        system = SYSTEMS.get(entry["system"])
        if system is None:
            raise CodeSystemError(f"{name}: unknown code system '{entry['system']}'")
        lists[system.name] = Codelist.read(system, folder.joinpath(entry["file"]), f"{name}/{entry['file']}")
    return lists


def read_definition(folder: Traversable | Path) -> Definition:
    manifest = yaml.safe_load(folder.joinpath("manifest.yaml").read_text(encoding="utf-8"))
    ident = manifest["id"]
    if manifest.get("kind") not in KINDS:
        raise CodeSystemError(f"{ident}: kind must be one of {', '.join(KINDS)}")
    b2h = manifest.get("b2h") or {}
    plausible = manifest.get("plausible")
    return Definition(
        id=ident,
        name=manifest["name"],
        version=str(manifest["version"]),
        kind=manifest["kind"],
        segment=b2h.get("segment"),
        subsegment=b2h.get("subsegment"),
        uses=tuple(manifest.get("uses") or ()),
        lookback_days=manifest.get("lookback_days"),
        completeness=manifest.get("completeness", "full"),
        codelists=_lists(folder, manifest.get("files"), ident),
        resolved=_lists(folder, manifest.get("resolved"), ident),
        plausible=(float(plausible["min"]), float(plausible["max"])) if plausible else None,
        unit=manifest.get("unit"),
        sources=_sources([*(manifest.get("files") or []), *(manifest.get("resolved") or [])]),
        notes=manifest.get("notes", ""),
    )


def load_definitions(root: Path | None = None) -> dict[str, Definition]:
    """Every definition under ``root`` (default: the package's code lists), by id."""
    base: Traversable | Path = root if root is not None else content_path("codelists")
    if not base.is_dir():
        return {}
    folders = sorted(
        (p for p in base.iterdir() if p.is_dir() and p.joinpath("manifest.yaml").is_file()), key=lambda p: p.name
    )
    return {d.id: d for d in (read_definition(f) for f in folders)}
