"""Regenerate the generated documentation pages: ``python scripts/generate_docs.py``.

- docs/input-contract.md from the contract declared in code;
- docs/cli.md from the Typer application (via Typer's own ``utils docs``);
- docs/conditions.md from the code list manifests;
- docs/schemas/<kind>.schema.json, the JSON Schema of each content file kind, from the loaders' models.
A test fails when any of them is out of date.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from openphm.codes.docs import render as render_conditions
from openphm.content.schemas import FILE_KINDS, json_schema
from openphm.contract.docs import render

DOCS = Path(__file__).resolve().parents[1] / "docs"


def cli_reference() -> str:
    result = subprocess.run(
        [sys.executable, "-m", "typer", "openphm.cli", "utils", "docs", "--name", "phm", "--title", "CLI reference"],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.rstrip() + "\n"


def main() -> None:
    (DOCS / "input-contract.md").write_text(render(), encoding="utf-8")
    (DOCS / "cli.md").write_text(cli_reference(), encoding="utf-8")
    (DOCS / "conditions.md").write_text(render_conditions(), encoding="utf-8")
    schemas = DOCS / "schemas"
    schemas.mkdir(exist_ok=True)
    for kind in FILE_KINDS:
        (schemas / f"{kind}.schema.json").write_text(json_schema(kind), encoding="utf-8")
    print(f"written input-contract.md, cli.md, conditions.md and schemas/ in {DOCS}")


if __name__ == "__main__":
    main()
