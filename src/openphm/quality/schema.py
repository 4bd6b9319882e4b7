"""The ``data_quality`` table's columns, declared once: every writer and reader takes them from here."""

from __future__ import annotations

import pyarrow as pa

TABLE = "data_quality"
HISTORY = "data_quality_history"
"""The rows of earlier extracts, carried from the store an ingest replaces (same columns)."""

SCHEMA = pa.schema(
    [
        ("extract_date", pa.date32()),
        ("check_id", pa.string()),
        ("category", pa.string()),
        ("check", pa.string()),
        ("table", pa.string()),
        ("column", pa.string()),
        ("level", pa.string()),
        ("level_key", pa.string()),
        ("numerator", pa.int64()),
        ("denominator", pa.int64()),
        ("rate", pa.float64()),
        ("warn_threshold", pa.float64()),
        ("threshold", pa.float64()),
        ("status", pa.string()),
        ("description", pa.string()),
    ]
)
"""One row per check, level and level key: never a person. ``level`` is ``all`` (key empty), ``practice``
(an ODS code), ``month`` (YYYY-MM) or ``year`` (YYYY). ``rate = numerator / denominator`` is the share of
records that break the check; ``threshold`` is the fail limit and ``warn_threshold`` the warn limit."""

KEY = ("check_id", "table", "column", "level", "level_key")
"""What identifies a row within one extract: the join key when two extracts are compared."""

STATUSES = ("fail", "warn", "pass")
"""Most serious first: the order the command and the report list rows in."""
