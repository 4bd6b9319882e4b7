"""Conditions, medicines and measures as package data: a folder per definition, a manifest, code lists.

Each folder under ``openphm/content/codelists`` holds ``manifest.yaml`` and one ``<system>.csv`` per code
system (``code,term``), plus ``<system>_resolved.csv`` where the condition can resolve. The manifest cites
the source and version of every list. A user can point to their own folder with the same layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Literal, get_args

from pydantic import ConfigDict, Field, field_validator

from openphm.codes.codelist import Codelist
from openphm.codes.systems import SYSTEMS, CodeSystemError
from openphm.content import content_path
from openphm.content.validation import ContentModel, read_yaml, validated

Kind = Literal["condition", "medicine", "procedure", "finding", "measure", "status"]
KINDS: tuple[str, ...] = get_args(Kind)
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


class Citation(ContentModel):
    """Where one code list came from: a name, and the OpenCodelists id or repository it was taken from."""

    model_config = ConfigDict(extra="allow", frozen=True)  # provenance details vary by source (commit, path ...)

    name: str
    opencodelists: str | None = None


class ListFile(ContentModel):
    """One ``code,term`` CSV of the definition: its code system, file name and the sources it was built from."""

    system: str
    file: str
    codes: int | None = Field(None, ge=0, description="How many codes the file holds (written by the builder).")
    sources: tuple[Citation, ...] = ()

    @field_validator("system")
    @classmethod
    def _known_system(cls, system: str) -> str:
        if system not in SYSTEMS:
            raise ValueError(f"unknown code system (known: {', '.join(sorted(SYSTEMS))})")
        return system


class B2H(ContentModel):
    """The Bridges to Health segment and subsegment whose flag this definition sets."""

    segment: str
    subsegment: str


class Plausible(ContentModel):
    """The range of a measure's values kept; others are dropped as implausible (and counted)."""

    min: float
    max: float


class Manifest(ContentModel):
    """``manifest.yaml`` of a code-list folder (``content/codelists/<id>/``, or a user's ``--codelists`` folder)."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="The definition's id: lower-case, unique.")
    name: str
    version: str | int | float
    kind: Kind
    b2h: B2H | None = None
    uses: tuple[str, ...] = ()
    lookback_days: int | None = Field(None, ge=1)
    completeness: str = "full"
    files: tuple[ListFile, ...] = ()
    resolved: tuple[ListFile, ...] = ()
    plausible: Plausible | None = None
    unit: str | None = None
    notes: str = ""


def _sources(entries: tuple[ListFile, ...]) -> tuple[str, ...]:
    out = []
    for entry in entries:
        for source in entry.sources:
            text = source.name
            if source.opencodelists:
                text += f" (OpenCodelists {source.opencodelists})"
            out.append(text)
    return tuple(dict.fromkeys(out))


def _lists(folder: Traversable | Path, entries: tuple[ListFile, ...], name: str) -> dict[str, Codelist]:
    lists: dict[str, Codelist] = {}
    for entry in entries:
        system = SYSTEMS[entry.system]
        lists[system.name] = Codelist.read(system, folder.joinpath(entry.file), f"{name}/{entry.file}")
    return lists


def read_manifest(folder: Traversable | Path) -> Manifest:
    """The folder's ``manifest.yaml``, checked; a problem is one line naming the folder and the field."""
    source = f"{folder.name}/manifest.yaml"
    return validated(
        Manifest, read_yaml(folder.joinpath("manifest.yaml"), source, CodeSystemError), source, CodeSystemError
    )


def read_definition(folder: Traversable | Path) -> Definition:
    manifest = read_manifest(folder)
    return Definition(
        id=manifest.id,
        name=manifest.name,
        version=str(manifest.version),
        kind=manifest.kind,
        segment=manifest.b2h.segment if manifest.b2h else None,
        subsegment=manifest.b2h.subsegment if manifest.b2h else None,
        uses=manifest.uses,
        lookback_days=manifest.lookback_days,
        completeness=manifest.completeness,
        codelists=_lists(folder, manifest.files, manifest.id),
        resolved=_lists(folder, manifest.resolved, manifest.id),
        plausible=(manifest.plausible.min, manifest.plausible.max) if manifest.plausible else None,
        unit=manifest.unit,
        sources=_sources((*manifest.files, *manifest.resolved)),
        notes=manifest.notes,
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
