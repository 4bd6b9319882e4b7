"""The JSON Schema of every content file kind a user can replace or edit, published in ``docs/schemas/``.

An editor with a YAML language server (VS Code's YAML extension, for one) checks a file against its schema as
it is typed: unknown fields, wrong types and missing fields are underlined before any run. The schemas are
generated from the same pydantic models the loaders validate with, so they cannot drift from the code.
"""

from __future__ import annotations

import json

from pydantic import BaseModel

from openphm.analytics.settings import Settings
from openphm.codes.conditions import Manifest
from openphm.cohorts.definitions import CohortFile
from openphm.explanations import ExplanationsFile
from openphm.risk.efi import EfiSettings
from openphm.risk.model.features import FeaturesFile
from openphm.segments.rules import RulesFile

FILE_KINDS: dict[str, tuple[type[BaseModel], str]] = {
    "codelist-manifest": (Manifest, "`manifest.yaml` of each code-list folder (`--codelists`)"),
    "cohort": (CohortFile, "a cohort definition, one `*.yaml` per cohort (`--cohorts`)"),
    "segment-rules": (RulesFile, "the segmentation rules file (`--segment-rules`)"),
    "efi-settings": (EfiSettings, "`content/scores/efi/settings.yaml`"),
    "analytics-settings": (Settings, "`content/analytics/settings.yaml`"),
    "model-features": (FeaturesFile, "`content/model/features.yaml`"),
    "explanations": (ExplanationsFile, "`content/explanations/explanations.yaml` (plain-English words)"),
}
"""File kind -> (model, which files are of that kind). ``docs/schemas/<kind>.schema.json`` is generated."""


def json_schema(kind: str) -> str:
    """The schema of one file kind as JSON text (stable key order, newline at the end)."""
    model, _ = FILE_KINDS[kind]
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **model.model_json_schema()}
    return json.dumps(schema, indent=2) + "\n"
