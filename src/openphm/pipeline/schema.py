"""What a stage promises to write: each output table's columns, their types and what each one means.

The inputs are declared by the contract (:mod:`openphm.contract.schema`); the outputs are declared here, one
:class:`Table` per table a stage writes (the declarations themselves are in :mod:`openphm.tables`). The
runner checks every table a stage returns against its declaration before writing it, so a renamed, missing or
retyped column stops the run with one line naming it, instead of surfacing later as a wrong join or a wrong
count in another stage. Modules that read another stage's table (cohort rules, segment rules, the report)
take its columns from the declaration rather than listing them again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import narwhals as nw
from narwhals.dtypes import DType

TYPE_NAMES = {
    nw.String: "text",
    nw.Int64: "integer",
    nw.Float64: "number",
    nw.Boolean: "true/false",
    nw.Date: "date",
}
"""The column types a stage may write, and the word the docs use for each."""


@dataclass(frozen=True)
class Column:
    """One declared column: its name, its narwhals type and a one-line meaning."""

    name: str
    dtype: type[DType]
    meaning: str

    @property
    def type_name(self) -> str:
        return TYPE_NAMES[self.dtype]


@dataclass(frozen=True)
class Table:
    """A table a stage writes: its columns in order, and the grain of a row."""

    name: str
    row: str
    """What one row is, e.g. "person x as_of"."""
    columns: tuple[Column, ...]
    description: str = ""
    more: Column | None = None
    """Columns named by content rather than by code (say, one true/false column per subsegment of the rules):
    any column beyond the declared ones must have this type; its name and meaning describe the family."""

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"table {self.name}: column '{duplicates[0]}' is declared twice")
        for column in (*self.columns, *((self.more,) if self.more else ())):
            if column.dtype not in TYPE_NAMES:
                raise ValueError(f"table {self.name}: column '{column.name}' has an undeclarable type {column.dtype}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def types(self) -> dict[str, type[DType]]:
        """Declared column name to type (without the ``more`` family)."""
        return {c.name: c.dtype for c in self.columns}

    def conform(self, frame: nw.LazyFrame) -> nw.LazyFrame:
        """The frame's declared columns in declared order, each one it lacks added as a typed null.

        For a stage whose columns depend on what was supplied (no source table: not available, so null).
        """
        present = set(frame.collect_schema().names())
        absent = [nw.lit(None, c.dtype()).alias(c.name) for c in self.columns if c.name not in present]
        return frame.with_columns(*absent).select(*self.names) if absent else frame.select(*self.names)

    def mismatch(self, schema: Mapping[str, DType]) -> str | None:
        """The first difference between a frame's schema and the declaration, in words; None when they agree."""
        for column in self.columns:
            if column.name not in schema:
                return f"has no column '{column.name}' (declared {column.type_name})"
            if schema[column.name] != column.dtype:
                return f"column '{column.name}' is {schema[column.name]}, declared {column.type_name}"
        declared = set(self.names)
        for name, dtype in schema.items():
            if name in declared:
                continue
            if self.more is None:
                return f"column '{name}' is not declared"
            if dtype != self.more.dtype:
                return f"column '{name}' is {dtype}, declared {self.more.type_name} ({self.more.name})"
        return None


def columns(*rows: tuple[str, type[DType], str]) -> tuple[Column, ...]:
    """Columns from (name, type, meaning) rows: the declarations read as a table."""
    return tuple(Column(name, dtype, meaning) for name, dtype, meaning in rows)
