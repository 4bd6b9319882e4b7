"""Subsegment flags, the segment, condition count and need tier of each person, from the rules and the registers.

One wide frame per person and as_of carries every value a rule reads (``population__age``, ``risk__hfrs``,
``register__copd``, ...). Each condition of the rules compiles to one engine expression over it, in three-valued
logic: a value from a table the store does not have is null, so a rule that needs it is unknown rather than
false, and ``false or unknown`` stays unknown. A missing value in a table that exists (no eGFR ever recorded)
is an answer, not an unknown: the comparison is false. The segment and need tier take the first rule that is known to
hold; an unknown rule does not place anyone.

The stage and ``explain`` both build this frame, so an explanation can never disagree with the stored segment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import reduce

import narwhals as nw
import pyarrow as pa

from openphm.codes import Definition
from openphm.pipeline import required
from openphm.pipeline.dates import days_between
from openphm.segments.rules import (
    TABLES,
    After,
    All,
    AnyFlagOf,
    AnyOf,
    Compare,
    Condition,
    Flag,
    Register,
    Rules,
    SegmentIs,
    SegmentRulesError,
    walk,
)
from openphm.vocabulary import PERSON_AS_OF

KEYS = list(PERSON_AS_OF)
RULE_TABLES = tuple(name for name in TABLES if name != "segment")
"""Tables whose columns rules read (besides the registers)."""

FrameOf = Callable[[pa.Table], nw.LazyFrame]


@dataclass(frozen=True)
class Subsegment:
    """A subsegment flag: set by an active register of any of ``registers`` or by any of ``also``."""

    id: str
    segment: str
    registers: tuple[str, ...]
    also: tuple[Condition, ...] = ()
    within_days: int | None = None
    requires: Condition | None = None
    """Needed besides any arm (see ``SubsegmentRule.requires``)."""


def catalogue(rules: Rules, definitions: list[Definition]) -> dict[str, Subsegment]:
    """Every subsegment of the run: those the code lists name, and those the rules define; in output order.

    Order: by the segment's place in the precedence list, then by id, so the columns are stable.
    """
    named: dict[str, list[Definition]] = {}
    for d in definitions:
        if d.kind != "condition" or not d.subsegment:
            continue
        if d.segment not in rules.precedence or d.segment == rules.fallback:
            raise SegmentRulesError(
                f"code list {d.id}: its B2H segment '{d.segment}' is not a segment of the rules with subsegments"
            )
        named.setdefault(d.subsegment, []).append(d)
    out: dict[str, Subsegment] = {}
    for ident in sorted(set(named) | set(rules.subsegments)):
        segments = {d.segment for d in named.get(ident, []) if d.segment}  # checked above: in the precedence
        rule = rules.subsegments.get(ident)
        if rule is not None:
            segments.add(rule.segment)
        if len(segments) != 1:
            raise SegmentRulesError(f"subsegment {ident}: code lists and rules place it in different segments")
        out[ident] = Subsegment(
            ident,
            segments.pop(),
            tuple(sorted(d.id for d in named.get(ident, []))),
            rule.also if rule else (),
            rule.within_days if rule else None,
            rule.requires if rule else None,
        )
    order = {s: i for i, s in enumerate(rules.precedence)}
    return dict(sorted(out.items(), key=lambda item: (order[item[1].segment], item[0])))


def register_column(definition: str, within_days: int | None) -> str:
    return f"register__{definition}" + (f"__{within_days}" if within_days else "")


def after_column(condition: After) -> str:
    return f"after__{condition.then}__{condition.first}__{condition.gap_days}"


@dataclass
class Env:
    """What the wide frame holds, and the references the rules made to things this run does not have."""

    columns: set[str]
    flags_of: dict[str, list[str]]
    missing: set[str] = field(default_factory=set)
    """References that were not available (``risk.hfrs``, ``register:palliative_care``, ``flag:x``)."""

    def null(self, what: str) -> nw.Expr:
        self.missing.add(what)
        return nw.lit(None, dtype=nw.Boolean)

    def expr(self, condition: Condition) -> nw.Expr:
        match condition:
            case Register(definition, days):
                name = register_column(definition, days)
                return nw.col(name) if name in self.columns else self.null(f"register:{definition}")
            case After(then, first, _):
                name = after_column(condition)
                return nw.col(name) if name in self.columns else self.null(f"register:{then} after {first}")
            case Flag(subsegment):
                known = any(subsegment in flags for flags in self.flags_of.values())
                return nw.col(subsegment) if known else self.null(f"flag:{subsegment}")
            case AnyFlagOf(segment):
                flags = self.flags_of.get(segment, [])
                return _any([nw.col(f) for f in flags]) if flags else nw.lit(False)
            case SegmentIs(segment):
                return nw.col("segment") == nw.lit(segment)
            case Compare(table, column, operator, value):
                name = "condition_count" if table == "segment" else f"{table}__{column}"
                if name not in self.columns:
                    return self.null(f"{table}.{column}")
                return _compare(nw.col(name), operator, value).fill_null(False)  # no reading: not met
            case All(items):
                return reduce(lambda a, b: a & b, [self.expr(i) for i in items])
            case AnyOf(items):
                return _any([self.expr(i) for i in items])
        raise TypeError(condition)


def _any(exprs: list[nw.Expr]) -> nw.Expr:
    return reduce(lambda a, b: a | b, exprs)


def _compare(column: nw.Expr, operator: str, value: float | bool | str) -> nw.Expr:
    literal = nw.lit(value)
    match operator:
        case ">=":
            return column >= literal
        case "<=":
            return column <= literal
        case ">":
            return column > literal
        case "<":
            return column < literal
    return column == literal


def _held(expr: nw.Expr) -> nw.Expr:
    """True only where the condition is known to hold."""
    return expr.fill_null(False)


def rule_conditions(rules: Rules, subsegments: Mapping[str, Subsegment]) -> list[Condition]:
    arms = [c for s in subsegments.values() for c in (*s.also, *([s.requires] if s.requires else []))]
    return arms + [t.when for t in rules.need_tiers if t.when is not None]


def _needed_columns(conditions: list[Condition]) -> dict[str, set[str]]:
    needed: dict[str, set[str]] = {t: set() for t in RULE_TABLES}
    for condition in conditions:
        for c in walk(condition):
            if isinstance(c, Compare) and c.table in needed:
                needed[c.table].add(c.column)
    needed["risk"].add("cms")
    return needed


def _needed_registers(
    conditions: list[Condition], subsegments: Mapping[str, Subsegment]
) -> set[tuple[str, int | None]]:
    wanted = {(d, s.within_days) for s in subsegments.values() for d in s.registers}
    for condition in conditions:
        wanted |= {(c.definition, c.within_days) for c in walk(condition) if isinstance(c, Register)}
    return wanted


def _needed_afters(conditions: list[Condition]) -> list[After]:
    return sorted({c for condition in conditions for c in walk(condition) if isinstance(c, After)}, key=after_column)


def wide_frame(
    tables: Mapping[str, nw.LazyFrame | None],
    rules: Rules,
    subsegments: Mapping[str, Subsegment],
    known_definitions: set[str],
    as_of: tuple[date, ...],
    frame_of: FrameOf,
) -> tuple[nw.LazyFrame, Env]:
    """People in the population at each as_of with every value the rules read, flags, segment and need tier."""
    population = required(tables, "population")
    register = required(tables, "register")
    conditions = rule_conditions(rules, subsegments)
    needed = _needed_columns(conditions)
    present = set(population.collect_schema().names())
    wide = population.filter(nw.col("in_population")).select(
        *KEYS, *[nw.col(c).alias(f"population__{c}") for c in sorted(needed["population"] & present - set(KEYS))]
    )
    columns = {f"population__{c}" for c in needed["population"] & present}
    for name in ("measure", "risk", "activity"):
        frame = tables.get(name)
        # A table's column can be absent too: the measure table has no ckd_stage when no eGFR was ever coded.
        picked = sorted(needed[name] & set(frame.collect_schema().names())) if frame is not None else []
        if frame is None or not picked:
            continue
        wide = wide.join(frame.select(*KEYS, *[nw.col(c).alias(f"{name}__{c}") for c in picked]), on=KEYS, how="left")
        columns |= {f"{name}__{c}" for c in picked}

    registers = sorted(
        ((d, days) for d, days in _needed_registers(conditions, subsegments) if d in known_definitions),
        key=lambda r: (r[0], r[1] or 0),
    )
    if registers:
        wide = wide.join(_register_flags(register, registers, as_of, frame_of), on=KEYS, how="left")
        names = [register_column(d, days) for d, days in registers]
        wide = wide.with_columns(*[nw.col(n).fill_null(False) for n in names])
        columns |= set(names)

    for a in _needed_afters(conditions):
        if {a.then, a.first} <= known_definitions:
            name = after_column(a)
            wide = wide.join(_after_flag(register, a), on=KEYS, how="left").with_columns(nw.col(name).fill_null(False))
            columns.add(name)

    flags_of: dict[str, list[str]] = {}
    for s in subsegments.values():
        flags_of.setdefault(s.segment, []).append(s.id)
    env = Env(columns, flags_of)
    flag_exprs = []
    for s in subsegments.values():
        arms = [Register(d, s.within_days) for d in s.registers] + list(s.also)
        flag = _any([env.expr(a) for a in arms]) if arms else nw.lit(None, dtype=nw.Boolean)
        if s.requires is not None:
            flag = flag & env.expr(s.requires)
        flag_exprs.append(flag.alias(s.id))
    wide = wide.with_columns(*flag_exprs)

    counted = flags_of.get(rules.condition_segment, [])
    count = reduce(lambda a, b: a + b, [_held(nw.col(f)).cast(nw.Int64) for f in counted]) if counted else nw.lit(0)
    segment = nw.lit(rules.fallback)
    for name in reversed(rules.precedence[:-1]):
        flags = flags_of.get(name, [])
        if flags:
            segment = nw.when(_held(_any([nw.col(f) for f in flags]))).then(nw.lit(name)).otherwise(segment)
    wide = wide.with_columns(count.cast(nw.Int64).alias("condition_count"), segment.alias("segment"))
    env.columns |= {"condition_count", "segment"}

    *ruled, otherwise = rules.need_tiers
    tier = nw.lit(otherwise.tier)
    for t in reversed(ruled):
        assert t.when is not None
        tier = nw.when(_held(env.expr(t.when))).then(nw.lit(t.tier)).otherwise(tier)
    band = nw.lit(None, dtype=nw.String)
    for name, (low, high) in reversed(list(rules.need_bands.items())):
        band = nw.when((nw.col("need_tier") >= low) & (nw.col("need_tier") <= high)).then(nw.lit(name)).otherwise(band)
    wide = wide.with_columns(tier.cast(nw.Int64).alias("need_tier")).with_columns(band.alias("need_band"))
    return wide, env


def _register_flags(
    register: nw.LazyFrame, wanted: list[tuple[str, int | None]], as_of: tuple[date, ...], frame_of: FrameOf
) -> nw.LazyFrame:
    """One row per person and as_of with an active register: a boolean column per (definition, lookback)."""
    lookbacks = sorted({days for _, days in wanted if days})
    active = register.filter(nw.col("active") & nw.col("definition").is_in(sorted({d for d, _ in wanted})))
    if lookbacks:
        starts = frame_of(
            pa.table(
                {
                    "as_of": pa.array(as_of, pa.date32()),
                    **{f"start_{n}": pa.array([d - timedelta(days=n) for d in as_of], pa.date32()) for n in lookbacks},
                }
            )
        )
        active = active.join(starts, on="as_of", how="inner")
    indicators = []
    for definition, days in wanted:
        hit = nw.col("definition") == nw.lit(definition)
        if days:
            hit = hit & (nw.col("last_date") >= nw.col(f"start_{days}"))
        indicators.append(hit.alias(register_column(definition, days)))
    names = [register_column(d, days) for d, days in wanted]
    return active.with_columns(*indicators).group_by(*KEYS).agg(*[nw.col(n).max() for n in names])


def _after_flag(register: nw.LazyFrame, after: After) -> nw.LazyFrame:
    """(person_id, as_of, the ``after`` column) for people with both registers active.

    Read from the register's first and latest dates: a ``then`` code on or after the first ``first`` code
    (``then``'s latest date is not before ``first``'s first date), and ``then`` begun within the gap of the
    latest ``first`` code (``then``'s first date no more than ``gap_days`` after ``first``'s latest date).
    """
    active = register.filter(nw.col("active"))
    first = active.filter(nw.col("definition") == nw.lit(after.first)).select(
        *KEYS, nw.col("first_date").alias("first_first"), nw.col("last_date").alias("first_last")
    )
    then = active.filter(nw.col("definition") == nw.lit(after.then)).select(
        *KEYS, nw.col("first_date").alias("then_first"), nw.col("last_date").alias("then_last")
    )
    held = (nw.col("then_last") >= nw.col("first_first")) & (days_between("first_last", "then_first") <= after.gap_days)
    return first.join(then, on=KEYS, how="inner").select(*KEYS, held.alias(after_column(after)))
