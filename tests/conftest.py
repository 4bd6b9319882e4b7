"""Fixtures shared by the tests; the helpers they use live in ``tests/support``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from importlib.resources import as_file
from pathlib import Path

import pytest

from openphm.content import content_path
from tests.support.sources import write_source


@pytest.fixture
def demo_source(tmp_path: Path) -> Iterator[Path]:
    """A copy of the demo fixture shipped in the package (every table, some planted errors)."""
    import shutil

    with as_file(content_path("fixtures", "demo")) as fixture:
        target = tmp_path / "demo-source"
        shutil.copytree(fixture, target)
    yield target


@pytest.fixture
def source(tmp_path: Path) -> Callable[[dict[str, list[dict[str, object]]]], Path]:
    """Write a source folder from rows: ``source({"person": [person(ALICE)]})``."""
    counter = iter(range(1000))

    def make(tables: dict[str, list[dict[str, object]]]) -> Path:
        return write_source(tmp_path / f"source{next(counter)}", tables)

    return make
