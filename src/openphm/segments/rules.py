"""The segmentation rules as data: read, validate and hold the rules file.

Precedence, the subsegments that need more than a code list (frailty from HFRS, organ failure from eGFR and
admissions, infants by age), the need tiers and their bands are package data (``content/segments/rules.yaml``)
because the national dataset's rules are not public and local systems differ: a user can point a run to a file
of their own. Every mistake in such a file stops the run with one line naming the field, before any work.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field

from openphm.content import content_path
from openphm.content.validation import ContentModel, read_yaml, validated
from openphm.errors import OpenPHMError
from openphm.tables import ACTIVITY, MEASURE, POPULATION, RISK, SEGMENT

TABLES = {t.name: t for t in (POPULATION, MEASURE, RISK, ACTIVITY, SEGMENT)}
"""Tables a ``column`` condition may read, as declared; ``segment`` means the row being built (need tiers only)."""
SEGMENT_COLUMNS = ("condition_count",)
RESERVED = SEGMENT.names
"""Output columns a subsegment id may not shadow."""
_ID = re.compile(r"[a-z][a-z0-9_]*")
_KINDS = ("register", "after", "flag", "any_flag_of", "segment", "column", "all", "any")
_OPERATORS = {"min": ">=", "max": "<=", "above": ">", "below": "<", "equals": "=="}


class SegmentRulesError(OpenPHMError):
    """The segmentation rules file is unreadable or a field of it is malformed."""


# -- conditions -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Register:
    """An active register row of a definition, optionally with its latest code within ``within_days``."""

    definition: str
    within_days: int | None = None


@dataclass(frozen=True)
class After:
    """A code of ``then`` recorded on or after the first code of ``first``, both registers active, and ``then``
    begun no more than ``gap_days`` after the latest code of ``first``.

    Written for palliative care that belongs to a cancer: palliative care recorded after a cancer diagnosis,
    while the cancer was current, rather than palliative care (say for heart failure) beside an old cancer.
    """

    then: str
    first: str
    gap_days: int


@dataclass(frozen=True)
class Flag:
    subsegment: str


@dataclass(frozen=True)
class AnyFlagOf:
    segment: str


@dataclass(frozen=True)
class SegmentIs:
    segment: str


@dataclass(frozen=True)
class Compare:
    """``table.column`` compared with a value: operator is one of >=, <=, >, <, ==."""

    table: str
    column: str
    operator: str
    value: float | bool | str


@dataclass(frozen=True)
class All:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Condition, ...]


Condition = Register | After | Flag | AnyFlagOf | SegmentIs | Compare | All | AnyOf


def walk(condition: Condition) -> Iterator[Condition]:
    """The condition and every condition inside it."""
    yield condition
    if isinstance(condition, All | AnyOf):
        for item in condition.items:
            yield from walk(item)


def describe(condition: Condition) -> str:
    """The condition in words, for explanations and the docs."""
    match condition:
        case Register(definition, None):
            return f"on the {definition} register"
        case Register(definition, days):
            return f"on the {definition} register, coded in the last {days} days"
        case After(then, first, gap_days):
            return f"{then} recorded after {first}, begun within {gap_days} days of {first}'s latest code"
        case Flag(subsegment):
            return f"{subsegment} flag"
        case AnyFlagOf(segment):
            return f"any {segment} flag"
        case SegmentIs(segment):
            return f"segment {segment}"
        case Compare(table, column, operator, value):
            shown = str(value).lower() if isinstance(value, bool) else value if isinstance(value, str) else f"{value:g}"
            return f"{table}.{column} {operator} {shown}"
        case All(items):
            return "(" + " and ".join(describe(i) for i in items) + ")"
        case AnyOf(items):
            return "(" + " or ".join(describe(i) for i in items) + ")"
    raise TypeError(condition)


# -- the rules ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SubsegmentRule:
    """Arms of a subsegment beyond its code lists (any one sets the flag), and a lookback for its registers."""

    segment: str
    also: tuple[Condition, ...] = ()
    within_days: int | None = None
    requires: Condition | None = None
    """A condition every arm needs besides its own (the maternal flag: a woman of reproductive age)."""


@dataclass(frozen=True)
class NeedTier:
    tier: int
    name: str
    when: Condition | None
    """None for the tier of everyone else."""


@dataclass(frozen=True)
class Rules:
    source: str
    version: str
    precedence: tuple[str, ...]
    fallback: str
    condition_segment: str
    subsegments: Mapping[str, SubsegmentRule]
    need_tiers: tuple[NeedTier, ...]
    """In order of evaluation; the last one (``when`` None) is everyone else's."""
    need_bands: Mapping[str, tuple[int, int]]

    def band(self, tier: int) -> str:
        return next(name for name, (low, high) in self.need_bands.items() if low <= tier <= high)


# -- the file's shape (for editors: docs/schemas/segment-rules.schema.json) ----------------------------------
class AfterFile(ContentModel):
    """A code of ``register`` on or after the first code of ``first``, begun within ``within_days`` of its latest."""

    register_: str = Field(alias="register", description="The definition id recorded after (palliative care).")
    first: str = Field(description="The definition id it follows (a cancer).")
    within_days: int = Field(ge=1, description="register first coded no more than N days after first's latest code.")


class ConditionFile(ContentModel):
    """One condition: exactly one of register, after, flag, any_flag_of, segment, column, all, any (checked on
    loading)."""

    register_: str | None = Field(  # BaseModel has an attribute named register
        None, alias="register", description="An active register row of this definition id."
    )
    within_days: int | None = Field(None, ge=1, description="With register: its latest code within N days.")
    after: AfterFile | None = Field(None, description="Subsegments only: a register recorded after another.")
    flag: str | None = Field(None, description="Need tiers only: this subsegment flag is set.")
    any_flag_of: str | None = Field(None, description="Need tiers only: any flag of this segment is set.")
    segment: str | None = Field(None, description="Need tiers only: the assigned segment is this one.")
    column: str | None = Field(None, description=f"TABLE.COLUMN, TABLE one of {', '.join(TABLES)}.")
    min: float | None = None
    max: float | None = None
    above: float | None = None
    below: float | None = None
    equals: float | bool | None = None
    all: list[ConditionFile] | None = None
    any: list[ConditionFile] | None = None


class SubsegmentFile(ContentModel):
    segment: str
    also: list[ConditionFile] | None = Field(None, description="Further arms, any of which sets the flag.")
    within_days: int | None = Field(None, ge=1)
    requires: ConditionFile | None = Field(None, description="Must hold besides whichever arm sets the flag.")


class NeedTierFile(ContentModel):
    tier: int = Field(ge=1)
    name: str = Field(min_length=1)
    when: ConditionFile


class OtherwiseTierFile(ContentModel):
    tier: int = Field(ge=1)
    name: str = Field(min_length=1)


class RulesFile(ContentModel):
    """The segmentation rules file (``content/segments/rules.yaml`` or a user's ``--segment-rules``)."""

    version: str | int | float
    precedence: list[str] = Field(min_length=1, description="Segment ids, highest first; the fallback last.")
    fallback: str
    condition_segment: str
    subsegments: dict[str, SubsegmentFile] | None = None
    need_tiers: list[NeedTierFile] = Field(min_length=1)
    need_tier_otherwise: OtherwiseTierFile
    need_bands: dict[str, tuple[int, int]] = Field(min_length=1, description="Band: [lowest tier, highest tier].")


# -- parsing --------------------------------------------------------------------------------------------
class _Reader:
    """Parses one file, raising SegmentRulesError with the file's name and the field's path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, field: str, problem: str) -> SegmentRulesError:
        return SegmentRulesError(f"segment rules {self.source}: field '{field}': {problem}")

    def mapping(self, value: object, field: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> dict:
        if not isinstance(value, dict):
            raise self.fail(field, "must be a mapping")
        for key in value:
            if key not in allowed:
                raise self.fail(
                    f"{field}.{key}" if field else str(key), f"unknown field (expected {', '.join(allowed)})"
                )
        for key in required:
            if key not in value:
                raise self.fail(f"{field}.{key}" if field else key, "is missing")
        return value

    def ident(self, value: object, field: str) -> str:
        if not isinstance(value, str) or not _ID.fullmatch(value):
            raise self.fail(field, "must be a lower-case identifier (letters, digits, underscores)")
        return value

    def integer(self, value: object, field: str, minimum: int = 1) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(field, f"must be a whole number >= {minimum}")
        return value

    def condition(self, value: object, field: str, segments: tuple[str, ...], *, in_tiers: bool) -> Condition:
        if not isinstance(value, dict) or not value:
            raise self.fail(field, f"must be a mapping with one of {', '.join(_KINDS)}")
        kinds = [k for k in _KINDS if k in value]
        if len(kinds) != 1:
            raise self.fail(field, f"must have exactly one of {', '.join(_KINDS)}")
        kind = kinds[0]
        here = f"{field}.{kind}"
        if kind in ("flag", "any_flag_of", "segment") and not in_tiers:
            raise self.fail(here, "is allowed in need tiers only (subsegments are decided before flags exist)")
        if kind in ("all", "any"):
            self.mapping(value, field, (kind,))
            items = value[kind]
            if not isinstance(items, list) or not items:
                raise self.fail(here, "must be a non-empty list of conditions")
            parsed = tuple(
                self.condition(item, f"{here}[{i}]", segments, in_tiers=in_tiers) for i, item in enumerate(items)
            )
            return All(parsed) if kind == "all" else AnyOf(parsed)
        if kind == "register":
            self.mapping(value, field, ("register", "within_days"))
            days = value.get("within_days")
            return Register(
                self.ident(value["register"], here),
                None if days is None else self.integer(days, f"{field}.within_days"),
            )
        if kind == "after":
            self.mapping(value, field, ("after",))
            body = self.mapping(
                value["after"], here, ("register", "first", "within_days"), ("register", "first", "within_days")
            )
            return After(
                self.ident(body["register"], f"{here}.register"),
                self.ident(body["first"], f"{here}.first"),
                self.integer(body["within_days"], f"{here}.within_days"),
            )
        if kind == "flag":
            self.mapping(value, field, ("flag",))
            return Flag(self.ident(value["flag"], here))
        if kind in ("any_flag_of", "segment"):
            self.mapping(value, field, (kind,))
            segment = self.ident(value[kind], here)
            if segment not in segments:
                raise self.fail(here, f"'{segment}' is not a segment of the precedence list")
            return AnyFlagOf(segment) if kind == "any_flag_of" else SegmentIs(segment)
        return self.compare(value, field, in_tiers=in_tiers)

    def compare(self, value: dict, field: str, *, in_tiers: bool) -> Condition:
        self.mapping(value, field, ("column", *_OPERATORS))
        reference = value["column"]
        here = f"{field}.column"
        if not isinstance(reference, str) or reference.count(".") != 1:
            raise self.fail(here, "must be TABLE.COLUMN")
        table, column = reference.split(".")
        if table not in TABLES:
            raise self.fail(here, f"unknown table '{table}' (expected {', '.join(TABLES)})")
        self.ident(column, here)
        if column not in TABLES[table].names:
            raise self.fail(here, f"table {table} has no column '{column}' (see docs/tables.md)")
        if table == "segment" and (not in_tiers or column not in SEGMENT_COLUMNS):
            raise self.fail(here, f"segment.{column} is not available here (need tiers may use condition_count)")
        tests = [k for k in _OPERATORS if k in value]
        if not tests:
            raise self.fail(field, "needs one of min, max, above, below, equals")
        parts: list[Condition] = []
        for key in tests:
            bound = value[key]
            exact_ok = key == "equals" and isinstance(bound, bool | str)
            if not exact_ok and (isinstance(bound, bool) or not isinstance(bound, int | float)):
                raise self.fail(
                    f"{field}.{key}", "must be a number" + (", true/false or a text" if key == "equals" else "")
                )
            parts.append(Compare(table, column, _OPERATORS[key], bound))
        return parts[0] if len(parts) == 1 else All(tuple(parts))


def parse(document: object, source: str) -> Rules:
    """Rules from a parsed YAML document; ``source`` names the file in error messages."""
    validated(RulesFile, document, f"segment rules {source}", SegmentRulesError)  # the shape; then the meaning
    r = _Reader(source)
    top = r.mapping(
        document,
        "",
        (
            "version",
            "precedence",
            "fallback",
            "condition_segment",
            "subsegments",
            "need_tiers",
            "need_tier_otherwise",
            "need_bands",
        ),
        ("version", "precedence", "fallback", "condition_segment", "need_tiers", "need_tier_otherwise", "need_bands"),
    )
    precedence = top["precedence"]
    if not isinstance(precedence, list) or not precedence:
        raise r.fail("precedence", "must be a non-empty list of segment ids")
    segments = tuple(r.ident(s, f"precedence[{i}]") for i, s in enumerate(precedence))
    if len(set(segments)) != len(segments):
        raise r.fail("precedence", "lists a segment twice")
    fallback = r.ident(top["fallback"], "fallback")
    if segments[-1] != fallback:
        raise r.fail("fallback", "must be the last segment of the precedence list")
    condition_segment = r.ident(top["condition_segment"], "condition_segment")
    if condition_segment not in segments:
        raise r.fail("condition_segment", f"'{condition_segment}' is not in the precedence list")

    subsegments: dict[str, SubsegmentRule] = {}
    raw_subsegments = top.get("subsegments") or {}
    if not isinstance(raw_subsegments, dict):
        raise r.fail("subsegments", "must be a mapping of subsegment id to its rule")
    for key, raw in raw_subsegments.items():
        field = f"subsegments.{key}"
        ident = r.ident(key, field)
        if ident in RESERVED:
            raise r.fail(field, "is the name of an output column; choose another id")
        body = r.mapping(raw, field, ("segment", "also", "within_days", "requires"), ("segment",))
        segment = r.ident(body["segment"], f"{field}.segment")
        if segment not in segments:
            raise r.fail(f"{field}.segment", f"'{segment}' is not in the precedence list")
        if segment == fallback:
            raise r.fail(f"{field}.segment", "the fallback segment has no subsegments")
        also = body.get("also") or []
        if not isinstance(also, list):
            raise r.fail(f"{field}.also", "must be a list of conditions")
        days = body.get("within_days")
        subsegments[ident] = SubsegmentRule(
            segment,
            tuple(r.condition(c, f"{field}.also[{i}]", segments, in_tiers=False) for i, c in enumerate(also)),
            None if days is None else r.integer(days, f"{field}.within_days"),
            None
            if "requires" not in body
            else r.condition(body["requires"], f"{field}.requires", segments, in_tiers=False),
        )

    tiers_raw = top["need_tiers"]
    if not isinstance(tiers_raw, list) or not tiers_raw:
        raise r.fail("need_tiers", "must be a non-empty list")
    tiers: list[NeedTier] = []
    for i, raw in enumerate(tiers_raw):
        field = f"need_tiers[{i}]"
        body = r.mapping(raw, field, ("tier", "name", "when"), ("tier", "name", "when"))
        tiers.append(
            NeedTier(
                r.integer(body["tier"], f"{field}.tier"),
                _name(r, body["name"], f"{field}.name"),
                r.condition(body["when"], f"{field}.when", segments, in_tiers=True),
            )
        )
    body = r.mapping(top["need_tier_otherwise"], "need_tier_otherwise", ("tier", "name"), ("tier", "name"))
    tiers.append(
        NeedTier(
            r.integer(body["tier"], "need_tier_otherwise.tier"),
            _name(r, body["name"], "need_tier_otherwise.name"),
            None,
        )
    )
    numbers = [t.tier for t in tiers]
    if len(set(numbers)) != len(numbers):
        raise r.fail("need_tiers", "a tier number is used twice")

    bands_raw = top["need_bands"]
    if not isinstance(bands_raw, dict) or not bands_raw:
        raise r.fail("need_bands", "must map band names to [lowest tier, highest tier]")
    bands: dict[str, tuple[int, int]] = {}
    for name, span in bands_raw.items():
        field = f"need_bands.{name}"
        if not isinstance(span, list) or len(span) != 2:
            raise r.fail(field, "must be [lowest tier, highest tier]")
        low, high = (r.integer(v, field) for v in span)
        if low > high:
            raise r.fail(field, "lowest tier is above highest tier")
        bands[r.ident(name, field)] = (low, high)
    for tier in numbers:
        covering = [name for name, (low, high) in bands.items() if low <= tier <= high]
        if len(covering) != 1:
            raise r.fail("need_bands", f"tier {tier} must fall in exactly one band")
    version = top["version"]
    if not isinstance(version, str | int | float):
        raise r.fail("version", "must be a string")
    return Rules(source, str(version), segments, fallback, condition_segment, subsegments, tuple(tiers), bands)


def _name(r: _Reader, value: object, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise r.fail(field, "must be a non-empty text")
    return value


def _load(path: str | None) -> Rules:
    file = content_path("segments", "rules.yaml") if path is None else Path(path)
    source = "(package default)" if path is None else file.name
    return parse(read_yaml(file, f"segment rules {source}", SegmentRulesError), source)


def load_rules(path: Path | str | None = None) -> Rules:
    """The rules in ``path``, or the package's default rules."""
    return _load(None if path is None else str(path))
