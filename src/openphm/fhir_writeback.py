"""FHIR R4 write-back of an approved re-identification: one UK Core Observation per matched person.

Each Observation carries the person's segment and need tier as codes of openphm's CodeSystem
(``content/explanations/openphm-codesystem.json``) with the plain-English words as the text, the as_of date as
``effectiveDateTime``, the NHS number the practice supplied as ``subject.identifier`` (no Patient resource: the
practice's own system resolves it), and ``method`` naming the openphm and rules versions. A licensed ACG need
group (``acg_png``), when the store holds one, is carried through as a component exactly as stored: it is never
recomputed here, and it is not one of openphm's codes.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import pyarrow as pa

from openphm.explanations import (
    CODESYSTEM_URL,
    SEGMENT_CONCEPT,
    ExplanationsFile,
    load_explanations,
    method_text,
    segment_code,
    tier_code,
)

UK_CORE_OBSERVATION = "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Observation"
NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
OBSERVED = "Population segment and need tier"
ACG_SYSTEM = "https://openphm.org/fhir/CodeSystem/acg-png-as-supplied"
"""Names where the ACG code came from (the store, as supplied under the deployment's licence), not its meaning."""


def bundle(
    worklist: pa.Table, as_of: date, rules_version: str, explanations: ExplanationsFile | None = None
) -> dict[str, Any]:
    """A Bundle (type collection) of one Observation per row of an identified worklist
    (:func:`openphm.reidentify.worklist`)."""
    words = explanations or load_explanations()
    entries = []
    for row in worklist.to_pylist():
        observation = _observation(row, as_of, rules_version, words)
        entries.append({"fullUrl": f"urn:uuid:{observation['id']}", "resource": observation})
    return {"resourceType": "Bundle", "id": str(uuid.uuid4()), "type": "collection", "entry": entries}


def _observation(row: dict[str, Any], as_of: date, rules_version: str, words: ExplanationsFile) -> dict[str, Any]:
    segment, tier = row["segment"], row["need_tier"]
    seg_entry, tier_entry = words.segments.get(segment), words.need_tiers.get(tier)
    codings = []
    text = []
    if seg_entry is not None:
        codings.append({"system": CODESYSTEM_URL, "code": segment_code(segment), "display": seg_entry.title})
        text.append(seg_entry.text())
    if tier_entry is not None:
        codings.append(
            {"system": CODESYSTEM_URL, "code": tier_code(tier), "display": f"Need tier {tier}: {tier_entry.title}"}
        )
        text.append(tier_entry.text())
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "id": str(uuid.uuid4()),
        "meta": {"profile": [UK_CORE_OBSERVATION]},
        "status": "final",
        "code": {
            "coding": [
                {"system": CODESYSTEM_URL, "code": SEGMENT_CONCEPT, "display": "Population segment and need tier"}
            ],
            "text": "Population segment and need tier (not a diagnosis)",
        },
        "subject": {"identifier": {"system": NHS_NUMBER_SYSTEM, "value": row["nhs_number"]}},
        "effectiveDateTime": as_of.isoformat(),
        "valueCodeableConcept": {"coding": codings, "text": " ".join(text)},
        "method": {"text": method_text(rules_version)},
    }
    if row.get("acg_png") is not None:
        observation["component"] = [
            {
                "code": {"text": "ACG need group (licensed; carried through as supplied, not computed by openphm)"},
                "valueCodeableConcept": {"coding": [{"system": ACG_SYSTEM, "code": str(row["acg_png"])}]},
            }
        ]
    return observation
