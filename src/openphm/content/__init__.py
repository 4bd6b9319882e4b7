"""Clinical and reference content shipped as package data; each file's folder has a SOURCE.md."""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable


def content_path(*parts: str) -> Traversable:
    """A file or folder of the package's content."""
    return files("openphm.content").joinpath(*parts)
