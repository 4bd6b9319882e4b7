"""Generated documentation is up to date, and every quarantine reason is documented and tested."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from openphm.contract.docs import reason_codes, render
from tests.support.ingest_cases import CASES

ROOT = Path(__file__).resolve().parents[1]


def _generator():
    spec = importlib.util.spec_from_file_location("generate_docs", ROOT / "scripts" / "generate_docs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_input_contract_page_is_generated_from_the_schema() -> None:
    assert (ROOT / "docs" / "input-contract.md").read_text(encoding="utf-8") == render(), (
        "run: python scripts/generate_docs.py"
    )


def test_cli_page_is_up_to_date() -> None:
    assert (ROOT / "docs" / "cli.md").read_text(encoding="utf-8") == _generator().cli_reference(), (
        "run: python scripts/generate_docs.py"
    )


def test_tables_page_is_generated_from_the_declared_tables() -> None:
    page = _generator().tables_page()
    assert (ROOT / "docs" / "tables.md").read_text(encoding="utf-8") == page, "run: python scripts/generate_docs.py"
    assert "| `qrisk3` | number | QRISK3 10-year cardiovascular risk (%), null when not eligible |" in page


def test_conditions_page_is_generated_from_the_manifests() -> None:
    from openphm.codes.docs import render as render_conditions

    assert (ROOT / "docs" / "conditions.md").read_text(encoding="utf-8") == render_conditions(), (
        "run: python scripts/generate_docs.py"
    )


def test_content_file_schemas_are_generated_from_the_models() -> None:
    from openphm.content.schemas import FILE_KINDS, json_schema

    published = {p.name for p in (ROOT / "docs" / "schemas").glob("*.schema.json")}
    assert published == {f"{kind}.schema.json" for kind in FILE_KINDS}, "run: python scripts/generate_docs.py"
    for kind in FILE_KINDS:
        text = (ROOT / "docs" / "schemas" / f"{kind}.schema.json").read_text(encoding="utf-8")
        assert text == json_schema(kind), "run: python scripts/generate_docs.py"


def test_every_documented_reason_has_a_test_and_every_tested_reason_is_documented() -> None:
    tested = {case[-1] for case in CASES} | {"person_id_is_nhs_number"}
    assert tested == reason_codes()
