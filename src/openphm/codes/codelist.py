"""Code lists: a set of codes of one system, checked when defined, applied only to columns of that system."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path

from openphm.codes.systems import CodedColumn, CodeSystem, CodeSystemError
from openphm.content import csv_rows


@dataclass(frozen=True)
class Codelist:
    """Normalised codes of one system. Building one with a code of another system raises at once."""

    system: CodeSystem
    codes: frozenset[str]
    name: str = ""

    @classmethod
    def of(cls, system: CodeSystem, codes: Iterable[str], name: str = "") -> Codelist:
        normalised = frozenset(system.normalise_code(c) for c in codes if c and c.strip())
        for code in normalised:
            try:
                system.check(code)
            except CodeSystemError as exc:
                raise CodeSystemError(f"code list {name or '(unnamed)'}: {exc}") from None
        return cls(system, normalised, name)

    @classmethod
    def read(cls, system: CodeSystem, path: Path | Traversable, name: str = "") -> Codelist:
        """Read a ``code,term`` CSV (as exported by OpenCodelists)."""
        rows = csv_rows(path)
        if rows and "code" not in rows[0]:
            raise CodeSystemError(f"code list {name or path}: the file has no 'code' column")
        return cls.of(system, (r["code"] for r in rows), name)

    def applied_to(self, column: CodedColumn) -> CodedColumn:
        """The column, after checking it holds codes of this list's system."""
        if column.system != self.system:
            raise CodeSystemError(
                f"code list {self.name or '(unnamed)'} is {self.system.title}; "
                f"{column.table}.{column.column} holds {column.system.title} codes"
            )
        return column

    def prefix_lengths(self) -> list[int]:
        """Distinct code lengths, for prefix matching by equality on a prefix of each length."""
        return sorted({len(c) for c in self.codes})

    def __len__(self) -> int:
        return len(self.codes)
