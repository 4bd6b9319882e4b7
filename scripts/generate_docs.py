"""Regenerate the generated documentation pages: ``python scripts/generate_docs.py``.

- docs/input-contract.md from the contract declared in code;
- docs/cli.md from the Typer application (via Typer's own ``utils docs``);
- docs/conditions.md from the code list manifests;
- docs/tables.md from the declared output tables (openphm.tables) and the stage list.
- docs/schemas/<kind>.schema.json, the JSON Schema of each content file kind, from the loaders' models;
- docs/fhir/openphm-codesystem.json (and its copy in the package), the FHIR CodeSystem of the explanations.
A test fails when any of them is out of date.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from openphm.codes.docs import render as render_conditions
from openphm.content.schemas import FILE_KINDS, json_schema
from openphm.contract.docs import render
from openphm.explanations import CODESYSTEM_FILE, codesystem_json

DOCS = Path(__file__).resolve().parents[1] / "docs"


def cli_reference() -> str:
    result = subprocess.run(
        [sys.executable, "-m", "typer", "openphm.cli", "utils", "docs", "--name", "phm", "--title", "CLI reference"],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.rstrip() + "\n"


TABLES_INTRO = """# Tables in a store

Generated from the declarations in `src/openphm/tables.py` by `scripts/generate_docs.py`: do not edit by hand.
The runner checks every table a stage writes against its declaration, so this page is what a store holds.

Stages meet only through these tables. Person-level tables are keyed by `person_id` (a keyed pseudonym, never an
NHS number) and, where they describe a person "as at" a date, by `as_of`. Aggregate tables (`agg_*`) hold exact
counts; disclosure control is applied when anything leaves the store (exports, report). Types: text, integer,
number (a float), true/false, date; any column may be null where a value is not known or not available.

| table | written by | one row per |
|---|---|---|
| `person`, `gp_event`, `gp_medication`, `apc_episode`, `apc_diagnosis`, `apc_procedure`, `ae_attendance`, \
`op_appointment`, `community_contact`, `mh_contact`, `social_care_service`, `waiting_list`, `practice`, `lsoa` \
| `phm ingest` | input record (typed, pseudonymised): see the [input contract](input-contract.md) |
| `quarantine` | `phm ingest` | rejected input row (table, row, column, reason; never the value) |
| `run_log` | every command | fact of a run (counts, seconds, purpose, as_of): see [architecture](architecture.md) |
| `admission_model` | `phm risk train` | coefficient of the current model: see [admission model](admission-model.md) |
"""


def tables_page() -> str:
    """docs/tables.md: an overview of every table, then each declared table's columns."""
    from openphm.stages import STAGES
    from openphm.tables import DECLARED

    writer = {t.name: s.name for s in STAGES for t in s.tables}
    lines = [TABLES_INTRO.rstrip("\n")]
    lines += [f"| `{t.name}` | stage `{writer[t.name]}` | {t.row} |" for t in DECLARED.values()]
    for t in DECLARED.values():
        lines += ["", f"## {t.name}", "", f"{t.description} One row per {t.row}; written by stage `{writer[t.name]}`."]
        lines += ["", "| column | type | meaning |", "|---|---|---|"]
        lines += [f"| `{c.name}` | {c.type_name} | {c.meaning} |" for c in t.columns]
        if t.more is not None:
            lines.append(f"| `{t.more.name}` | {t.more.type_name} | {t.more.meaning} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    (DOCS / "input-contract.md").write_text(render(), encoding="utf-8")
    (DOCS / "cli.md").write_text(cli_reference(), encoding="utf-8")
    (DOCS / "conditions.md").write_text(render_conditions(), encoding="utf-8")
    (DOCS / "tables.md").write_text(tables_page(), encoding="utf-8")
    schemas = DOCS / "schemas"
    schemas.mkdir(exist_ok=True)
    for kind in FILE_KINDS:
        (schemas / f"{kind}.schema.json").write_text(json_schema(kind), encoding="utf-8")
    # The FHIR CodeSystem of direct care's write-back: in the package (served) and in the docs (published).
    codes = codesystem_json()
    (DOCS.parent / "src" / "openphm" / "content" / "explanations" / CODESYSTEM_FILE).write_text(codes, encoding="utf-8")
    (DOCS / "fhir").mkdir(exist_ok=True)
    (DOCS / "fhir" / CODESYSTEM_FILE).write_text(codes, encoding="utf-8")
    print(f"written input-contract.md, cli.md, conditions.md, tables.md, schemas/ and fhir/ in {DOCS}")


if __name__ == "__main__":
    main()
