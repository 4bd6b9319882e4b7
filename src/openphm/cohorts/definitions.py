"""Cohort definitions as data: one YAML file per cohort, loaded and checked before anything runs.

A definition names its inclusion rules and exclusion rules; each rule has a type that says which table it
reads (demographics, registers, measures, scores, segments, admission risk, activity, hospital admissions).
Every problem a definition can have is found here, when it is loaded, and reported in one line naming the
file, the rule and the field - so that a typo never turns into an empty cohort at the end of a long run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Literal

import narwhals as nw
from pydantic import Field

from openphm.codes.systems import ICD10, OPCS4
from openphm.content import content_path, csv_rows
from openphm.content.validation import ContentModel, read_yaml, validated
from openphm.errors import OpenPHMError
from openphm.pipeline.schema import Table
from openphm.tables import ACTIVITY, ADMISSION_RISK, MEASURE, POPULATION, RISK, SEGMENT
from openphm.vocabulary import ELECTIVE_ADMISSION_METHODS, EMERGENCY_ADMISSION_METHODS, PERSON_AS_OF


class CohortError(OpenPHMError):
    """A cohort definition that cannot be used: named by file, rule and field."""


NUMBER, TEXT, BOOL = "number", "text", "bool"

KINDS = {nw.Int64: NUMBER, nw.Float64: NUMBER, nw.String: TEXT, nw.Boolean: BOOL}
"""How a rule's value is checked against a declared column type (dates are not compared by rules)."""


def rule_columns(table: Table) -> dict[str, str]:
    """The columns of a declared table a comparison rule may read, with the kind of value each takes."""
    return {c.name: KINDS[c.dtype] for c in table.columns if c.name not in PERSON_AS_OF and c.dtype in KINDS}


ACTIVITY_24M = tuple(n.removesuffix("_24m") for n in ACTIVITY.names if n.endswith("_24m"))
WINDOWS = ("12m", "24m")

COMPARISON_TABLES = {
    "demographic": POPULATION,
    "measure": MEASURE,
    "score": RISK,
    "segment": SEGMENT,
    "admission_risk": ADMISSION_RISK,
    "activity": ACTIVITY,
}
"""Rule types that compare columns of one table keyed by (person_id, as_of), and the table each reads."""
RULE_TYPES = (*COMPARISON_TABLES, "register", "admissions")
OPERATORS = ("==", "!=", ">", ">=", "<", "<=", "in", "not_in", "between")
ORDERING = (">", ">=", "<", "<=", "between")
ADMISSION_METHODS = {
    "emergency": EMERGENCY_ADMISSION_METHODS,
    "elective": ELECTIVE_ADMISSION_METHODS,
    "maternity": ("31", "32"),
    "other": ("81", "82", "83"),
}
DIAGNOSIS_POSITIONS = ("primary", "any")
RULE_SET_KINDS = ("primary", "any", "with_secondary", "without_secondary", "without_procedure")
MAX_WINDOW_DAYS = 3660
NAME = re.compile(r"[a-z][a-z0-9_]*")
TOP_FIELDS = {"name", "title", "description", "version", "sources", "include", "exclude"}
COMMON_FIELDS = {"name", "type", "description"}
COMPARISON_FIELDS = {"column", "op", "value", "window", "any", "all", "label"}


def _subsegments() -> frozenset[str]:
    """The segment table's flag columns (its ``more`` family): subsegments of the code lists and of the rules."""
    from openphm.codes import load_definitions
    from openphm.segments.rules import load_rules

    coded = {d.subsegment for d in load_definitions().values() if d.subsegment}
    return frozenset(coded | set(load_rules().subsegments))


@dataclass(frozen=True)
class Comparison:
    """``column op value`` on one table; ``label`` is how a member's reasons name it."""

    column: str
    op: str
    value: Any
    label: str


@dataclass(frozen=True)
class Condition:
    """A comparison, or all / any of nested conditions."""

    combine: str
    """``leaf``, ``all`` or ``any``."""
    parts: tuple[Condition, ...] = ()
    leaf: Comparison | None = None
    label: str | None = None
    """How a member's reasons name a nested all/any condition (default: its comparisons joined)."""

    def comparisons(self) -> list[Comparison]:
        return [self.leaf] if self.leaf else [c for p in self.parts for c in p.comparisons()]


@dataclass(frozen=True)
class RuleSetRow:
    """One line of a diagnosis rule set (e.g. the ACSC list): a code, its system and what it does."""

    condition: str
    kind: str
    system: str
    code: str


@dataclass(frozen=True)
class Rule:
    """One named inclusion or exclusion rule."""

    name: str
    type: str
    exclude: bool
    condition: Condition | None = None
    definitions: tuple[str, ...] = ()
    status: str = "active"
    within_days: int | None = None
    methods: tuple[str, ...] = ()
    window_days: int = 365
    at_least: int = 1
    rule_set: tuple[RuleSetRow, ...] = ()

    @property
    def table(self) -> str:
        if self.type in COMPARISON_TABLES:
            return COMPARISON_TABLES[self.type].name
        return "register" if self.type == "register" else "apc_episode"


@dataclass(frozen=True)
class Cohort:
    """A named cohort: metadata, and its rules in the order they are applied."""

    name: str
    title: str
    description: str
    version: str
    sources: tuple[str, ...]
    rules: tuple[Rule, ...]
    file: str


class _Checker:
    """Raises CohortError with the file, rule and field of the first problem found."""

    def __init__(self, file: str, folder: Traversable | Path) -> None:
        self.file = file
        self.folder = folder
        self.rule: str | None = None

    def fail(self, field: str, problem: str) -> CohortError:
        where = f"{self.file}: rule '{self.rule}'" if self.rule else self.file
        return CohortError(f"{where}: field '{field}': {problem}")

    def mapping(self, data: object, field: str) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise self.fail(field, "must be a mapping of field: value")
        return data

    def known_fields(self, data: dict[str, Any], allowed: set[str]) -> None:
        for key in data:
            if key not in allowed:
                raise self.fail(str(key), f"unknown field (expected one of {', '.join(sorted(allowed))})")

    def required(self, data: dict[str, Any], field: str) -> Any:
        if data.get(field) in (None, ""):
            raise self.fail(field, "missing")
        return data[field]

    def positive_int(self, data: dict[str, Any], field: str, default: int | None, maximum: int) -> int | None:
        value = data.get(field, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
            raise self.fail(field, f"must be a whole number from 1 to {maximum}")
        return value

    def names(self, value: object, field: str) -> tuple[str, ...]:
        items = value if isinstance(value, list) else [value]
        if not items or not all(isinstance(i, str) and i for i in items):
            raise self.fail(field, "must be a name or a list of names")
        return tuple(items)


def _columns(rule_type: str) -> dict[str, str]:
    columns = rule_columns(COMPARISON_TABLES[rule_type])
    if rule_type == "segment":
        return columns | dict.fromkeys(_subsegments(), BOOL)
    return columns


def _value_fits(value: object, kind: str) -> bool:
    if kind == BOOL:
        return isinstance(value, bool)
    if kind == NUMBER:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, str | int) and not isinstance(value, bool)


def _comparison(check: _Checker, data: dict[str, Any], rule_type: str) -> Comparison:
    columns = _columns(rule_type)
    column = check.required(data, "column")
    if not isinstance(column, str):
        raise check.fail("column", "must be a column name")
    window = data.get("window")
    if window is not None:
        if rule_type != "activity":
            raise check.fail("window", "only activity rules have a window (12m or 24m)")
        if window not in WINDOWS:
            raise check.fail("window", f"'{window}' is not a window: use 12m or 24m")
        if window == "24m":
            if column not in ACTIVITY_24M:
                raise check.fail("window", f"activity has no 24m count of '{column}' (24m: {', '.join(ACTIVITY_24M)})")
            column = f"{column}_24m"
    if column not in columns:
        raise check.fail("column", f"unknown column '{column}' for a {rule_type} rule")
    op = check.required(data, "op")
    if op not in OPERATORS:
        raise check.fail("op", f"'{op}' is not an operator: use one of {' '.join(OPERATORS)}")
    kind = columns[column]
    if "value" not in data:
        raise check.fail("value", "missing")
    value = data["value"]
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value or not all(_value_fits(v, kind) for v in value):
            raise check.fail("value", f"'{op}' needs a list of {kind} values")
        value = tuple(value)
    elif op == "between":
        if not (isinstance(value, list) and len(value) == 2 and all(_value_fits(v, NUMBER) for v in value)):
            raise check.fail("value", "'between' needs [lowest, highest] (both included)")
        value = tuple(value)
    elif not _value_fits(value, kind):
        raise check.fail("value", f"'{column}' is a {kind}: compare it with a {kind} value")
    if op in ORDERING and kind != NUMBER:
        raise check.fail("op", f"'{op}' needs a numeric column; '{column}' is a {kind}")
    if kind == TEXT:  # codes written as numbers in YAML (e.g. 12) are compared as the text they are
        value = tuple(str(v) for v in value) if isinstance(value, tuple) else str(value)
    label = data.get("label") or f"{column} {op} {_text(value)}"
    return Comparison(column, op, value, str(label))


def _text(value: object) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _condition(check: _Checker, data: dict[str, Any], rule_type: str) -> Condition:
    groups = [k for k in ("any", "all") if k in data]
    if len(groups) > 1:
        raise check.fail("any", "give either 'any' or 'all', not both")
    if groups:
        key = groups[0]
        if any(k in data for k in ("column", "op", "value")):
            raise check.fail(key, f"give either '{key}' or column/op/value, not both")
        items = data[key]
        if not isinstance(items, list) or not items:
            raise check.fail(key, "must be a non-empty list of conditions")
        parts = []
        for item in items:
            part = check.mapping(item, key)
            check.known_fields(part, COMPARISON_FIELDS)
            parts.append(_condition(check, part, rule_type))
        return Condition(key, tuple(parts), label=str(data["label"]) if data.get("label") else None)
    return Condition("leaf", leaf=_comparison(check, data, rule_type))


def _rule_set_file(check: _Checker, name: str) -> Traversable | Path:
    for folder in (check.folder, content_path("cohorts")):
        candidate = folder.joinpath(name)
        if candidate.is_file():
            return candidate
    raise check.fail("rule_set", f"no rule set file '{name}' beside the definition or in the package")


def read_rule_set(check: _Checker, name: str) -> tuple[RuleSetRow, ...]:
    """A diagnosis rule set (CSV: condition, group, rule, system, code), codes normalised and checked."""
    path = _rule_set_file(check, name)
    lines = csv_rows(path)
    rows = []
    for n, line in enumerate(lines, start=2):
        kind, system = line.get("rule"), line.get("system")
        if kind not in RULE_SET_KINDS:
            raise check.fail("rule_set", f"{name} line {n}: rule must be one of {', '.join(RULE_SET_KINDS)}")
        expected = "opcs4" if kind == "without_procedure" else "icd10"
        if system != expected:
            raise check.fail("rule_set", f"{name} line {n}: a '{kind}' rule takes {expected} codes")
        code_system = OPCS4 if system == "opcs4" else ICD10
        code = code_system.normalise_code(line.get("code") or "")
        if not re.fullmatch(r"[A-Z][0-9A-Z]{0,6}", code) or not line.get("condition"):
            raise check.fail("rule_set", f"{name} line {n}: needs a condition and a code")
        rows.append(RuleSetRow(str(line["condition"]), kind, system, code))
    if not any(r.kind in ("primary", "any") for r in rows):
        raise check.fail("rule_set", f"{name} has no diagnosis to include")
    return tuple(rows)


def _admissions(check: _Checker, data: dict[str, Any]) -> dict[str, Any]:
    method = data.get("method", "emergency")
    if isinstance(method, str) and method in ADMISSION_METHODS:
        methods = ADMISSION_METHODS[method]
    elif isinstance(method, str) and method == "any":
        methods = ()
    elif isinstance(method, list) and method and all(isinstance(m, str) and re.fullmatch(r"\d\d", m) for m in method):
        methods = tuple(method)
    else:
        raise check.fail("method", f"use {', '.join(ADMISSION_METHODS)}, any, or a list of 2-digit codes")
    out: dict[str, Any] = {
        "methods": methods,
        "window_days": check.positive_int(data, "window_days", 365, MAX_WINDOW_DAYS),
        "at_least": check.positive_int(data, "at_least", 1, 1000),
    }
    if "rule_set" in data and "icd10" in data:
        raise check.fail("icd10", "give either 'rule_set' or 'icd10', not both")
    if "rule_set" in data:
        name = data["rule_set"]
        if not isinstance(name, str) or not name:
            raise check.fail("rule_set", "must be the name of a CSV file")
        rows = read_rule_set(check, name)
        if "conditions" in data:
            chosen = check.names(data["conditions"], "conditions")
            known = {r.condition for r in rows}
            for c in chosen:
                if c not in known:
                    raise check.fail("conditions", f"'{c}' is not a condition of {name}")
            rows = tuple(r for r in rows if r.condition in chosen)
        out["rule_set"] = rows
    elif "icd10" in data:
        position = data.get("position", "primary")
        if position not in DIAGNOSIS_POSITIONS:
            raise check.fail("position", "must be primary or any")
        codes = check.names(data["icd10"], "icd10")
        normalised = [ICD10.normalise_code(c) for c in codes]
        for code in normalised:
            if not re.fullmatch(ICD10.pattern, code):
                raise check.fail("icd10", f"'{code}' is not an ICD-10 code")
        out["rule_set"] = tuple(RuleSetRow(str(data["name"]), position, "icd10", c) for c in normalised)
    elif "position" in data or "conditions" in data:
        raise check.fail("position" if "position" in data else "conditions", "needs 'icd10' or 'rule_set'")
    return out


ADMISSION_FIELDS = {"method", "window_days", "at_least", "rule_set", "conditions", "icd10", "position"}
REGISTER_FIELDS = {"definition", "status", "within_days"}


def _rule(check: _Checker, data: object, exclude: bool, index: int, section: str) -> Rule:
    check.rule = None
    data = check.mapping(data, f"{section}[{index}]")
    name = data.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise check.fail(f"{section}[{index}].name", "missing, or not a lower_case name")
    check.rule = name
    rule_type = check.required(data, "type")
    if rule_type not in RULE_TYPES:
        raise check.fail("type", f"unknown rule type '{rule_type}' (known: {', '.join(RULE_TYPES)})")
    if rule_type in COMPARISON_TABLES:
        check.known_fields(data, COMMON_FIELDS | COMPARISON_FIELDS - {"label"})
        return Rule(name, rule_type, exclude, condition=_condition(check, data, rule_type))
    if rule_type == "register":
        check.known_fields(data, COMMON_FIELDS | REGISTER_FIELDS)
        status = data.get("status", "active")
        if status not in ("active", "ever"):
            raise check.fail("status", "must be active or ever")
        return Rule(
            name,
            rule_type,
            exclude,
            definitions=check.names(check.required(data, "definition"), "definition"),
            status=status,
            within_days=check.positive_int(data, "within_days", None, MAX_WINDOW_DAYS),
        )
    check.known_fields(data, COMMON_FIELDS | ADMISSION_FIELDS)
    return Rule(name, rule_type, exclude, **_admissions(check, data))


class CohortRuleFile(ContentModel):
    """One rule of a cohort: its fields depend on ``type`` (see docs/cohorts.md); checked in full on loading."""

    name: str = Field(json_schema_extra={"pattern": f"^{NAME.pattern}$"})  # checked with its own message
    type: Literal["demographic", "measure", "score", "segment", "admission_risk", "activity", "register", "admissions"]
    description: str | None = None
    column: str | None = Field(None, description="Comparison rules: a column of the rule type's table.")
    op: Literal["==", "!=", ">", ">=", "<", "<=", "in", "not_in", "between"] | None = None
    value: float | bool | str | list[float | str] | None = None
    window: Literal["12m", "24m"] | None = Field(None, description="Activity rules: the 12- or 24-month count.")
    any: list[dict[str, object]] | None = Field(None, description="Conditions (column, op, value), any true.")
    all: list[dict[str, object]] | None = Field(None, description="Conditions (column, op, value), all true.")
    definition: str | list[str] | None = Field(None, description="Register rules: definition id(s).")
    status: Literal["active", "ever"] | None = None
    within_days: int | None = Field(None, ge=1, le=MAX_WINDOW_DAYS)
    method: str | list[str] | None = Field(None, description="emergency, elective, maternity, other, any or codes.")
    window_days: int | None = Field(None, ge=1, le=MAX_WINDOW_DAYS)
    at_least: int | None = Field(None, ge=1, le=1000)
    rule_set: str | None = Field(None, description="A CSV of diagnosis rules beside the definition or shipped.")
    conditions: str | list[str] | None = None
    icd10: str | list[str] | None = None
    position: Literal["primary", "any"] | None = None


class CohortFile(ContentModel):
    """A cohort definition file (``content/cohorts/*.yaml`` or a user's ``--cohorts`` folder)."""

    name: str = Field(
        description="The cohort's name: lower-case, unique in the folder.",
        json_schema_extra={"pattern": f"^{NAME.pattern}$"},  # checked with its own message
    )
    title: str
    description: str | None = None
    version: str | int | float | None = None
    sources: list[str | dict[str, str]] | None = Field(None, description="Citations: text, or name: citation.")
    include: list[CohortRuleFile] = Field(min_length=1)
    exclude: list[CohortRuleFile] | None = None


def read_cohort(path: Traversable | Path, folder: Traversable | Path) -> Cohort:
    """Load and check one cohort definition file."""
    check = _Checker(path.name, folder)
    data = read_yaml(path, path.name, CohortError)
    validated(CohortFile, data, path.name, CohortError, {"include": "rule", "exclude": "rule"})  # the shape
    data = check.mapping(data, "(file)")
    check.known_fields(data, TOP_FIELDS)
    name = check.required(data, "name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise check.fail("name", "must be a lower_case name (letters, digits, underscores)")
    title = str(check.required(data, "title"))
    include = check.required(data, "include")
    exclude = data.get("exclude") or []
    if not isinstance(include, list) or not isinstance(exclude, list):
        raise check.fail("include" if not isinstance(include, list) else "exclude", "must be a list of rules")
    rules = [_rule(check, r, False, i, "include") for i, r in enumerate(include)]
    rules += [_rule(check, r, True, i, "exclude") for i, r in enumerate(exclude)]
    check.rule = None
    seen: set[str] = set()
    for rule in rules:
        if rule.name in seen:
            check.rule = rule.name
            raise check.fail("name", "two rules of this cohort have this name")
        seen.add(rule.name)
    sources = data.get("sources") or []
    if not isinstance(sources, list):
        raise check.fail("sources", "must be a list")
    return Cohort(
        name=name,
        title=title,
        description=str(data.get("description") or "").strip(),
        version=str(data.get("version") or ""),
        sources=tuple(str(s) for s in sources),
        rules=tuple(rules),
        file=path.name,
    )


def load_cohorts(folder: Path | None = None) -> dict[str, Cohort]:
    """Every ``*.yaml`` cohort of ``folder`` (default: the shipped ones), by name, sorted."""
    root: Traversable | Path = folder if folder is not None else content_path("cohorts")
    if folder is not None and not folder.is_dir():
        raise CohortError(f"{folder}: no such folder of cohort definitions")
    files = sorted((f for f in root.iterdir() if f.name.endswith((".yaml", ".yml"))), key=lambda f: f.name)
    cohorts: dict[str, Cohort] = {}
    for file in files:
        cohort = read_cohort(file, root)
        if cohort.name in cohorts:
            raise CohortError(f"{file.name}: field 'name': '{cohort.name}' is also the name of another cohort file")
        cohorts[cohort.name] = cohort
    return dict(sorted(cohorts.items()))


def check_registers(cohorts: dict[str, Cohort], known: set[str]) -> None:
    """Every register rule names a definition of the run (package code lists or the run's own folder)."""
    for cohort in cohorts.values():
        for rule in cohort.rules:
            for definition in rule.definitions:
                if definition not in known:
                    raise CohortError(
                        f"{cohort.file}: rule '{rule.name}': field 'definition': no definition '{definition}' "
                        "in the run's code lists"
                    )
