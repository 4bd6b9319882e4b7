"""Clinical and reference content shipped as package data; each file's folder has a SOURCE.md."""

from __future__ import annotations

import csv
import io
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path


def content_path(*parts: str) -> Traversable:
    """A file or folder of the package's content."""
    return files("openphm.content").joinpath(*parts)


def csv_rows(file: Traversable | Path) -> list[dict[str, str]]:
    """The rows of a small UTF-8 CSV file (a byte-order mark allowed) as mappings by the header's names.

    Read whole, then parsed with line endings untouched (as ``newline=""`` would), so a quoted field may
    hold a line break; works for package data and a user's files alike.
    """
    return list(csv.DictReader(io.StringIO(file.read_text(encoding="utf-8-sig"), newline="")))
