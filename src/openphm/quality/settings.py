"""The data-quality settings: which check type applies to which table and column, and its thresholds.

The shipped file is ``content/quality/settings.yaml`` (sources in its SOURCE.md); ``--quality-settings FILE``
replaces it whole. A file is checked when it is read, so a typo is one clear line, not a missing check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from openphm.content import content_path
from openphm.content.validation import parse_yaml
from openphm.contract.schema import TABLES
from openphm.errors import InputError

CATEGORIES = ("conformance", "completeness", "plausibility", "coverage")
LEVELS = ("all", "practice", "month")
PERIODS = ("month", "year")


@dataclass(frozen=True)
class CheckSpec:
    """One entry of the settings file: a check type with its parameters."""

    id: str
    category: str
    check: str
    table: str
    warn: float
    fail: float
    description: str
    column: str = ""
    levels: tuple[str, ...] = ("all",)
    params: dict[str, Any] = field(default_factory=dict)

    def param(self, name: str, default: Any = None) -> Any:
        return self.params.get(name, default)


@dataclass(frozen=True)
class QualitySettings:
    version: str
    min_denominator: int
    checks: tuple[CheckSpec, ...]
    source: str
    """Where the settings came from (the shipped file or the user's path), for the run log."""


_COMMON = {"id", "category", "check", "table", "column", "levels", "warn", "fail", "description"}


def _spec(raw: dict[str, Any], where: str, check_types: set[str]) -> CheckSpec:
    name = raw.get("id")
    if not isinstance(name, str) or not name:
        raise InputError(f"{where}: every check needs an id")
    missing = [key for key in ("category", "check", "table", "warn", "fail") if key not in raw]
    if missing:
        raise InputError(f"{where}: check {name}: missing {', '.join(missing)}")
    if raw["category"] not in CATEGORIES:
        raise InputError(f"{where}: check {name}: category must be one of {', '.join(CATEGORIES)}")
    if raw["check"] not in check_types:
        raise InputError(
            f"{where}: check {name}: unknown check type '{raw['check']}' ({', '.join(sorted(check_types))})"
        )
    if raw["table"] not in TABLES:
        raise InputError(f"{where}: check {name}: '{raw['table']}' is not a contract table")
    column = str(raw.get("column") or "")
    if column and column not in {c.name for c in TABLES[raw["table"]].columns} | {"nhs_number"}:
        raise InputError(f"{where}: check {name}: {raw['table']} has no column '{column}'")
    levels = tuple(raw.get("levels") or ("all",))
    if any(level not in LEVELS for level in levels):
        raise InputError(f"{where}: check {name}: levels must be among {', '.join(LEVELS)}")
    if "month" in levels and "date" not in raw:
        raise InputError(f"{where}: check {name}: the month level needs a date column ('date')")
    if raw.get("period", "month") not in PERIODS:
        raise InputError(f"{where}: check {name}: period must be one of {', '.join(PERIODS)}")
    try:
        warn, fail = float(raw["warn"]), float(raw["fail"])
    except (TypeError, ValueError):
        raise InputError(f"{where}: check {name}: warn and fail must be numbers (shares, 0 to 1)") from None
    if not 0 <= warn <= fail <= 1:
        raise InputError(f"{where}: check {name}: need 0 <= warn <= fail <= 1")
    return CheckSpec(
        id=name,
        category=raw["category"],
        check=raw["check"],
        table=raw["table"],
        warn=warn,
        fail=fail,
        description=str(raw.get("description") or name),
        column=column,
        levels=levels,
        params={k: v for k, v in raw.items() if k not in _COMMON},
    )


def load_settings(path: Path | None = None) -> QualitySettings:
    """The shipped settings, or the file at ``path`` in their place."""
    from openphm.quality.checks import CHECK_TYPES

    if path is None:
        text, where = content_path("quality", "settings.yaml").read_text(encoding="utf-8"), "shipped settings"
    else:
        where = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"{path}: cannot read the data-quality settings ({exc.strerror})") from None
    try:
        raw = parse_yaml(text)
    except yaml.YAMLError:
        raise InputError(f"{where}: is not valid YAML") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("checks"), list):
        raise InputError(f"{where}: needs a 'checks' list (see docs/data-quality.md)")
    specs = tuple(_spec(entry if isinstance(entry, dict) else {}, where, set(CHECK_TYPES)) for entry in raw["checks"])
    seen: set[str] = set()
    for spec in specs:
        if spec.id in seen:
            raise InputError(f"{where}: check id '{spec.id}' is used twice")
        seen.add(spec.id)
    return QualitySettings(str(raw.get("version", "unversioned")), int(raw.get("min_denominator", 0)), specs, where)
