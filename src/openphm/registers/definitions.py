"""Which definitions a run uses: the package's, or a folder the user points to with ``--codelists``."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from openphm.codes import Definition, load_definitions
from openphm.pipeline import RunContext


@cache
def _load(root: str | None) -> dict[str, Definition]:
    return load_definitions(Path(root) if root else None)


def definitions(context: RunContext, kinds: tuple[str, ...]) -> list[Definition]:
    """The run's definitions of the given kinds, sorted by id."""
    root = context.options.codelists
    return [d for d in _load(str(root) if root else None).values() if d.kind in kinds]
