"""Render the input contract, as implemented, to Markdown (``docs/input-contract.md`` is generated from it)."""

from __future__ import annotations

from openphm.contract.schema import CONTRACT_VERSION, TABLES, Table


def _table(table: Table) -> list[str]:
    kind = "reference table" if table.reference else ("required" if table.required else "optional")
    lines = [f"## `{table.name}` ({kind})", "", table.description, ""]
    lines += ["| column | type | required | rule | notes |", "|---|---|---|---|---|"]
    for column in table.columns:
        name = (
            "`nhs_number` or `person_id`" if column.name == "person_id" and table.person_level else f"`{column.name}`"
        )
        lines.append(
            f"| {name} | {column.type} | {'no' if column.nullable else 'yes'} | {column.rule_text()} | "
            f"{column.description} |"
        )
    extras = []
    if table.key:
        extras.append(f"Unique key: {', '.join(f'`{k}`' for k in table.key)} (later repeats: `duplicate_key`).")
    for earlier, later in table.date_order:
        extras.append(f"`{later}` may not be before `{earlier}` (`date_order`).")
    if table.parent:
        extras.append(f"Each row must belong to a loaded `{table.parent[0]}` row by `{table.parent[1]}`.")
    if table.person_level and table.name not in ("person", "opt_out"):
        extras.append("Each row's person must be a loaded `person` row (`unknown_person`).")
    return [*lines, "", *extras, ""]


REASONS: dict[str, str] = {
    "missing_value": "a required column is empty",
    "invalid_date": "not a calendar date in YYYY-MM-DD form",
    "date_before_1900": "a date before 1900-01-01",
    "date_in_future": "a date after the extract date (`--extract-date`, else the folder's `extract_date.txt`, "
    "else today)",
    "invalid_float": "not a number",
    "invalid_int": "not a whole number",
    "invalid_bool": "not true/false (1/0, yes/no, y/n and t/f are accepted)",
    "out_of_range": "a number outside its allowed range",
    "negative_cost": "a cost below zero",
    "invalid_code": "not one of the allowed codes",
    "invalid_format": "does not match the column's format (e.g. a SNOMED CT id of 6-18 digits)",
    "invalid_nhs_number": "not ten digits with a valid Modulus 11 check digit",
    "person_id_is_nhs_number": "a supplied `person_id` is itself a valid NHS number, also when written with "
    "spaces, hyphens or a trailing `.0` (it would be stored in clear)",
    "duplicate_key": "repeats the key of an earlier row of the file; the first row is kept",
    "date_order": "an end date before its start (discharge before admission, death before birth ...)",
    "unknown_person": "the row's person is not a loaded `person` row",
    "orphan_episode": "a diagnosis or procedure whose episode is absent or was quarantined",
}


def render() -> str:
    """The whole page."""
    lines = [
        f"# Input contract, version {CONTRACT_VERSION} (as implemented)",
        "",
        "Generated from `src/openphm/contract/schema.py` by `python scripts/generate_docs.py`; do not edit by hand.",
        "",
        "A source folder holds one file per table, named after the table: `person.csv` or `person.parquet`, and so",
        "on. CSV files are UTF-8 (a byte order mark is allowed) in the RFC 4180 dialect: comma-separated, the",
        "header on the first line, fields with commas, quotes or line breaks in double quotes, a quote inside",
        "one doubled, every row with the header's number of fields, and no comment lines (a row starting with",
        "`#` is data). Only `person` is required. Columns marked 'required: no' may be absent from the file",
        "altogether. Other files in the folder are ignored and listed in the run log, except `extract_date.txt`: one",
        "YYYY-MM-DD line, the last day of the extract (`phm synth` writes it). Ingest uses it when `--extract-date`",
        "is not given; without either, the extract date is today.",
        "",
        "Each person-level table identifies its person by exactly one of `nhs_number` (ten digits, spaces",
        "allowed; pseudonymised at ingest, never stored) or `person_id` (an upstream pseudonym, passed through).",
        "",
        "## What happens to a row that breaks the contract",
        "",
        "It goes to the `quarantine` table - table, row number (1 = the first data row), column, reason code and",
        "a message that never contains the value - and the run goes on. For every table, input rows = loaded +",
        "quarantined + opted out, recorded in `run_log` and printed at the end of an ingest. A file that cannot",
        "be read at all, or lacks a required column, stops the run (exit code 2) with one line naming the file",
        "and the column, and leaves any earlier store untouched.",
        "",
        "| reason | meaning |",
        "|---|---|",
        *[f"| `{code}` | {text} |" for code, text in REASONS.items()],
        "",
    ]
    for table in TABLES.values():
        lines += _table(table)
    return "\n".join(lines).rstrip() + "\n"


def reason_codes() -> set[str]:
    """Reason codes documented above (a test checks that rules use no other)."""
    return set(REASONS)


__all__ = ["reason_codes", "render"]
