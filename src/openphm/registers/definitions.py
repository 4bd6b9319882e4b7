"""Which definitions a run uses: the package's, or a folder the user points to with ``--codelists``."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from openphm.codes import Definition, load_definitions
from openphm.content.validation import folder_version
from openphm.pipeline import RunContext


@cache
def _load(root: str | None, version: tuple[tuple[str, int, int], ...]) -> dict[str, Definition]:
    """Read once per run per folder state: ``version`` changes whenever a file of the folder does."""
    return load_definitions(Path(root) if root else None)


def definitions(context: RunContext, kinds: tuple[str, ...]) -> list[Definition]:
    """The run's definitions of the given kinds, sorted by id.

    A user's folder is read again after any of its files changes (a notebook edits a manifest and runs
    again): the cache is keyed on the files' names, sizes and modification times, not on the folder's name.
    """
    root = context.options.codelists
    folder = str(root) if root else None
    version = folder_version(Path(folder)) if folder else ()
    return [d for d in _load(folder, version).values() if d.kind in kinds]
