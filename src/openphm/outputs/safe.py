"""Spreadsheet-safe text: no cell that openphm writes can run as a formula when a spreadsheet opens it.

Names in exports come from files users receive from elsewhere (practice, PCN and local authority names, the
ids of a file they score), and exports go to many people. Excel, LibreOffice Calc and Google Sheets read a
cell that begins with ``=``, ``+``, ``-`` or ``@`` as a formula (and a leading tab or carriage return can hide
one), so ``=HYPERLINK("http://x.invalid","click")`` as an area name would be a live link in everyone's copy.

The rule is OWASP's for CSV injection, as OWASP ASVS 5.0 requirement 1.2.10 states it: a text value whose
first character is one of those (or a NUL) is prefixed with a single quote, which spreadsheets take as "this
is text". Only text is touched: numbers, including negative numbers, stay numbers. In an xlsx workbook every
text cell is written as a string cell, never a formula, and a neutralised one carries Excel's own
quote-prefix flag rather than a visible quote, so it shows the name as given and stays text when edited.

Parquet is data for programs, not spreadsheets, and is written raw. The HTML report escapes every value
through Jinja's autoescaping. Any future CSV download (the web app's included) goes through
:func:`write_csv` or :func:`neutralise_table`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\0")
"""First characters that make a spreadsheet read a cell as a formula (OWASP; ASVS 5.0 1.2.10 adds NUL)."""
_TRIGGER = r"^([=+\-@\t\r\x00])"
_NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
QUOTE = "'"


def is_formula_like(text: str) -> bool:
    """Whether a spreadsheet would read ``text`` as the start of a formula."""
    return text.startswith(TRIGGERS)


def neutralise(text: str) -> str:
    """``text`` with a single quote in front when a spreadsheet would read it as a formula."""
    return QUOTE + text if is_formula_like(text) else text


def _text(values: pa.ChunkedArray) -> bool:
    kind = values.type.value_type if pa.types.is_dictionary(values.type) else values.type
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def neutralise_table(table: pa.Table, *, keep_numbers: bool = False) -> pa.Table:
    """Every text column of ``table`` with formula-like values neutralised; other columns unchanged.

    Vectorised (Arrow compute), so it costs one pass over each text column. ``keep_numbers`` leaves a text
    value that is a plain number (``-2``, ``+1.5``, ``1E3``) as it is: for the file calculators, which echo
    the user's own numeric inputs as text. Exports leave it off: an area named ``+1`` is a name.
    """
    columns = []
    for values in table.columns:
        if not _text(values):
            columns.append(values)
            continue
        if pa.types.is_dictionary(values.type):
            values = values.cast(values.type.value_type)
        quoted = pc.replace_substring_regex(values, _TRIGGER, QUOTE + r"\1")
        if keep_numbers:
            quoted = pc.if_else(pc.match_substring_regex(values, _NUMBER), values, quoted)
        columns.append(quoted)
    return pa.table(columns, names=table.column_names)


def write_csv(table: pa.Table, path: Path, *, keep_numbers: bool = False) -> None:
    """Write ``table`` as CSV with every formula-like text cell neutralised."""
    pacsv.write_csv(neutralise_table(table, keep_numbers=keep_numbers), path)


def write_sheet(book: Any, title: str, table: pa.Table) -> None:
    """Append ``table`` as a sheet of a write-only openpyxl workbook, every text cell a string cell.

    openpyxl writes any string starting with ``=`` as a formula unless the cell is typed otherwise, so each
    text cell is typed ``s``; formula-like ones also get Excel's quote prefix (a style flag, not a character).
    """
    from openpyxl.cell import WriteOnlyCell

    sheet = book.create_sheet(title=title)
    sheet.append([_cell(WriteOnlyCell, sheet, name) for name in table.column_names])
    for row in table.to_pylist():
        sheet.append([_cell(WriteOnlyCell, sheet, value) for value in row.values()])


def _cell(make: Any, sheet: Any, value: object) -> object:
    if not isinstance(value, str):
        return value
    cell = make(sheet, value=value)
    cell.data_type = "s"
    if is_formula_like(value):
        cell.quotePrefix = True
    return cell
