"""Plain-English explanations of segments, need tiers and cohorts, and the FHIR CodeSystem built from them.

A worklist or a person view that says "frailty_and_dementia, tier 11" helps nobody at a front desk. The words
that say what a group means, what it does not mean (none is a diagnosis) and what the practice may offer are
content (``content/explanations/explanations.yaml``, with a version), not code, so a deployment can rewrite
them for its own services. The same entries give the codes and display texts of the openphm CodeSystem that
FHIR write-back uses (:func:`codesystem`), so the coded value and the words a patient reads cannot disagree.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import Field

from openphm import __version__
from openphm.content import content_path
from openphm.content.validation import ContentError, ContentModel, read_yaml, validated

CODESYSTEM_URL = "https://openphm.org/fhir/CodeSystem/openphm-segmentation"
"""The canonical URL of openphm's CodeSystem (an identifier; nothing is fetched from it)."""
CODESYSTEM_FILE = "openphm-codesystem.json"
SEGMENT_CONCEPT = "population-segment"
"""The code of the Observation itself (``Observation.code``): what is observed."""


class Entry(ContentModel):
    """One group's explanation."""

    title: str = Field(min_length=3, max_length=80)
    means: str = Field(min_length=10)
    not_meant: str = Field(min_length=10, description="What it does not mean: never a diagnosis.")
    may_offer: str = Field(min_length=10, description="What the practice may offer.")

    def text(self) -> str:
        """The three sentences as one paragraph (a worklist cell, a FHIR ``valueCodeableConcept.text``)."""
        return f"{self.means} {self.not_meant} What the practice may offer: {self.may_offer}"


class ExplanationsFile(ContentModel):
    """``content/explanations/explanations.yaml``."""

    version: str
    segments: dict[str, Entry]
    need_tiers: dict[int, Entry]
    cohorts: dict[str, Entry]


def load_explanations(path: Path | None = None) -> ExplanationsFile:
    """The explanations in ``path``, else the package's (cached: the file is read once per process)."""
    return _load(None if path is None else str(path))


@cache
def _load(path: str | None) -> ExplanationsFile:
    file = Path(path) if path is not None else content_path("explanations", "explanations.yaml")
    document = read_yaml(file, "explanations.yaml", ContentError)
    return validated(ExplanationsFile, document, "explanations.yaml", ContentError)


def segment_code(segment: str) -> str:
    return f"segment-{segment}"


def tier_code(tier: int) -> str:
    return f"need-tier-{tier}"


def codesystem(explanations: ExplanationsFile | None = None) -> dict[str, Any]:
    """The FHIR R4 CodeSystem of every segment and need tier (``content/explanations/openphm-codesystem.json``)."""
    content = explanations or load_explanations()
    concepts = (
        [
            {
                "code": SEGMENT_CONCEPT,
                "display": "Population segment and need tier",
                "definition": "What an Observation of a person's segment and need tier records (not a diagnosis).",
            }
        ]
        + [
            {"code": segment_code(name), "display": entry.title, "definition": entry.means}
            for name, entry in content.segments.items()
        ]
        + [
            {"code": tier_code(tier), "display": f"Need tier {tier}: {entry.title}", "definition": entry.means}
            for tier, entry in sorted(content.need_tiers.items())
        ]
    )
    return {
        "resourceType": "CodeSystem",
        "id": "openphm-segmentation",
        "url": CODESYSTEM_URL,
        "version": content.version,
        "name": "OpenphmSegmentation",
        "title": "openphm population segments and need tiers",
        "status": "active",
        "experimental": True,
        "publisher": "openphm",
        "description": (
            "Bridges to Health segments and openphm's open need tiers, as assigned by openphm's rules. "
            "A population grouping for planning and proactive care, not a diagnosis."
        ),
        "caseSensitive": True,
        "content": "complete",
        "count": len(concepts),
        "concept": concepts,
    }


def codesystem_json(explanations: ExplanationsFile | None = None) -> str:
    """The CodeSystem as the packaged file holds it (sorted keys, two-space indent, a final newline)."""
    return json.dumps(codesystem(explanations), indent=2, sort_keys=True) + "\n"


def method_text(rules_version: str) -> str:
    """What an Observation's ``method`` names: the software and rules that assigned the value."""
    return f"openphm {__version__}, segmentation rules {rules_version}"
