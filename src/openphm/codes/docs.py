"""Render the shipped definitions to Markdown (``docs/conditions.md`` is generated from it)."""

from __future__ import annotations

from openphm.codes.conditions import load_definitions
from openphm.codes.systems import SYSTEMS


def render() -> str:
    definitions = load_definitions()
    systems = list(SYSTEMS)
    lines = [
        "# Conditions, medicines and measures (as shipped)",
        "",
        "Generated from `src/openphm/content/codelists/*/manifest.yaml` by `python scripts/generate_docs.py`;",
        "do not edit by hand. Each folder's manifest cites the source and version of every list; resolved-code",
        "lists are counted in brackets. See `src/openphm/content/codelists/SOURCE.md` for provenance and licences.",
        "",
        "| id | name | kind | B2H subsegment | lookback (days) | " + " | ".join(systems) + " | version | sources |",
        "|---|---|---|---|---|" + "---|" * len(systems) + "---|---|",
    ]
    for d in definitions.values():
        counts = []
        for system in systems:
            n = len(d.codelists[system]) if system in d.codelists else 0
            resolved = f" ({len(d.resolved[system])})" if system in d.resolved else ""
            counts.append(f"{n}{resolved}" if n or resolved else "")
        subsegment = f"{d.segment}: {d.subsegment}" if d.subsegment else ""
        flag = "" if d.completeness == "full" else " (partial)"
        lines.append(
            f"| `{d.id}` | {d.name}{flag} | {d.kind} | {subsegment} | {d.lookback_days or ''} | "
            + " | ".join(counts)
            + f" | {d.version} | {'; '.join(d.sources)} |"
        )
    return "\n".join(lines) + "\n"
