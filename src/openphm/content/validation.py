"""One way to read and check every content file a user can replace: pydantic models and one error formatter.

Each file kind (a code-list manifest, a cohort definition, the segmentation rules, the eFI, analytics and
model-feature settings) has a model that forbids unknown fields, so a typing error in a field name stops the
run rather than being ignored. A validation error becomes one line that names the file, the rule (when the
field sits in a list of named rules) and the field, never a value from the data and never a traceback:
``severe_frailty.yaml: rule 'frail': field 'status': Input should be 'active' or 'ever'``. The models also
give the JSON Schema of each kind (``docs/schemas/``), which an editor uses to check a file as it is typed.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import ErrorDetails

from openphm.errors import OpenPHMError


class ContentError(OpenPHMError):
    """A content file shipped with the package (eFI, analytics, model features) is unreadable or malformed."""


class ContentModel(BaseModel):
    """A content file, or a part of one: unknown fields are errors, and the parsed value cannot change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


Model = TypeVar("Model", bound=ContentModel)


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader when PyYAML was built with it (the wheels are): the same documents, about ten times
faster than the pure-Python one - it was a tenth of a small ``phm ingest``, which reads several content files."""


def parse_yaml(text: str) -> Any:
    """``yaml.safe_load`` through the fastest safe loader available; raises ``yaml.YAMLError`` as it does."""
    return yaml.load(text, Loader=_LOADER)


def read_yaml(file: Traversable | Path, source: str, error: type[OpenPHMError]) -> object:
    """The parsed YAML document of ``file``; an unreadable file or bad YAML is one line naming ``source``."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise error(f"{source}: cannot read the file") from None
    try:
        return parse_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise error(f"{source}: not valid YAML{where}") from None


def validated(
    model: type[Model],
    document: object,
    source: str,
    error: type[OpenPHMError],
    rule_lists: Mapping[str, str] | None = None,
) -> Model:
    """``document`` checked against ``model``; the first problem is raised as ``error`` with one line.

    ``rule_lists`` maps the name of a list of named items to what one item is called in the message
    (``{"include": "rule"}``): an item's ``name`` then stands for its position.
    """
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise error(one_line(exc.errors()[0], document, source, rule_lists or {})) from None


def one_line(problem: ErrorDetails, document: object, source: str, rule_lists: Mapping[str, str]) -> str:
    """``source: [rule 'x': ]field 'y': problem`` for one pydantic error.

    The offending value is shown only when it is one of a fixed list's wrong choices (a content file's own
    word, such as an operator); content files hold settings, never a person's data.
    """
    path: list[str] = []
    rule = ""
    here = document
    location = list(problem["loc"])
    for step, part in enumerate(location):
        listed = location[step - 1] if step else None
        if isinstance(part, int) and isinstance(listed, str) and listed in rule_lists and isinstance(here, list):
            item = here[part] if part < len(here) else None
            name = item.get("name") if isinstance(item, dict) else None
            if isinstance(name, str):
                rule, path = f"{rule_lists[listed]} '{name}': ", []
                here = item
                continue
        if isinstance(part, int):
            path[-1:] = [f"{path[-1]}[{part}]" if path else f"[{part}]"]
        else:
            path.append(str(part))
        here = _child(here, part)
    field = ".".join(path)
    where = f"{rule}field '{field}': " if field else rule
    return f"{source}: {where}{_problem(problem)}"


def _child(node: object, part: int | str) -> object:
    if isinstance(node, dict):
        return node.get(part)
    if isinstance(node, list) and isinstance(part, int) and part < len(node):
        return node[part]
    return None


def _problem(problem: ErrorDetails) -> str:
    """Pydantic's message, in the project's words where they differ, without the offending value."""
    kind = problem["type"]
    if kind == "missing":
        return "missing"
    if kind == "extra_forbidden":
        return "unknown field (a typing error?)"
    if kind == "literal_error" and isinstance(problem.get("input"), str | int | float):
        return f"'{problem.get('input')}' is not one of {problem.get('ctx', {}).get('expected', 'the allowed values')}"
    message = problem["msg"]
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def folder_version(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """Every file under ``folder`` with its size and modification time: a cache key that changes on any edit."""
    if not folder.is_dir():
        return ()
    return tuple(
        (str(path.relative_to(folder)), stat.st_size, stat.st_mtime_ns)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and (stat := path.stat())
    )
