"""Why a person is in their segment and need tier: the codes, dates, settings and values that placed them.

A clinician looking at a list asks "why is this patient here?". The answer is rebuilt from the store for the
one person with the same rules and the same frame the stage used (``assign.wide_frame``), so it cannot disagree
with the stored segment: for each subsegment flag that is set, the code that put them on the register (the
latest one on or before the as_of date, with its term, date and care setting) or the values a rule read
(age, HFRS, eGFR stage, admissions); and the facts behind the need tier's rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import narwhals as nw

from openphm.codes import REGISTER_KINDS, SYSTEMS, Codelist, Definition, load_definitions
from openphm.codes.conditions import read_manifest
from openphm.content import content_path, csv_rows
from openphm.engine import Engine, open_store
from openphm.errors import OpenPHMError, StoreError
from openphm.registers.events import coded_events
from openphm.registers.register import SOURCES
from openphm.segments.assign import Env, catalogue, wide_frame
from openphm.segments.rules import (
    After,
    All,
    AnyOf,
    Compare,
    Condition,
    Register,
    Rules,
    describe,
    load_rules,
    walk,
)


class ExplainError(OpenPHMError):
    """The person or the as_of date asked about is not in the store's segment table."""


@dataclass(frozen=True)
class Fact:
    """One reason: a code on a register, or a value a rule read."""

    supports: str
    """The subsegment flag or need tier this fact supports."""
    condition: str
    """The condition's name (e.g. 'Heart failure') or the rule in words (e.g. 'risk.hfrs > 15')."""
    code: str | None = None
    term: str | None = None
    system: str | None = None
    date: date | None = None
    setting: str | None = None
    """gp, medication, hospital or ae."""
    value: str | None = None
    """For a rule: the value read, e.g. '17.2'."""


@dataclass(frozen=True)
class Explanation:
    """A person's segment and need tier at one as_of, and the facts behind them."""

    person_id: str
    as_of: date
    segment: str
    flags: tuple[str, ...]
    condition_count: int
    cms: float | None
    need_tier: int
    need_tier_name: str
    need_band: str
    acg_png: int | None
    facts: tuple[Fact, ...]
    not_available: tuple[str, ...]
    """Rule inputs the store did not have (e.g. risk.hfrs when the risk stage has not run)."""


def explain(
    store: Path,
    person_id: str,
    as_of: date | None = None,
    engine: str = "duckdb",
    *,
    rules: Path | None = None,
    codelists: Path | None = None,
) -> Explanation:
    """Explain one person's segment and need tier (``person_id`` is the store's pseudonym, never an NHS number).

    ``as_of`` defaults to the latest date at which the person has a segment. ``rules`` and ``codelists`` must be
    the ones the run used (default: the package's).
    """
    eng = open_store(store, engine)
    try:
        return _explain(eng, person_id, as_of, load_rules(rules), codelists)
    finally:
        eng.close()


def _explain(eng: Engine, person_id: str, as_of: date | None, rules: Rules, codelists: Path | None) -> Explanation:
    if not eng.has_table("segment"):
        raise StoreError("the store has no segment table; run 'phm run' first")
    mine = eng.table("segment").filter(nw.col("person_id") == nw.lit(person_id))
    dates = sorted(d for (d,) in mine.select("as_of").collect().rows())
    if not dates:
        raise ExplainError("unknown person: no segment row for that person_id (use a pseudonym from this store)")
    if as_of is None:
        as_of = dates[-1]
    elif as_of not in dates:
        known = sorted({d for (d,) in eng.table("segment").select("as_of").unique().collect().rows()})
        if as_of not in known:
            raise ExplainError(f"no segments as of {as_of}; the store has {', '.join(map(str, known))}")
        raise ExplainError(f"that person is not in the population on {as_of}")
    stored = mine.filter(nw.col("as_of") == nw.lit(as_of)).collect().rows(named=True)[0]

    definitions = load_definitions(codelists)
    chosen = [d for d in definitions.values() if d.kind in REGISTER_KINDS]
    subsegments = catalogue(rules, chosen)
    tables = {
        name: eng.table(name).filter((nw.col("person_id") == nw.lit(person_id)) & (nw.col("as_of") == nw.lit(as_of)))
        if eng.has_table(name)
        else None
        for name in ("population", "register", "measure", "risk", "activity")
    }
    wide, env = wide_frame(tables, rules, subsegments, {d.id for d in chosen}, (as_of,), eng.frame)
    flags = tuple(s for s in subsegments if stored.get(s))
    tier = next(t for t in rules.need_tiers if t.tier == stored["need_tier"])

    roots: list[tuple[str, Condition]] = []  # (the flag or tier it supports, a condition that can set it)
    for ident in flags:
        s = subsegments[ident]
        roots += [(ident, arm) for arm in [Register(d, s.within_days) for d in s.registers] + list(s.also)]
        if s.requires is not None:
            roots.append((ident, s.requires))
    if tier.when is not None:
        roots.append((f"need tier {tier.tier}", tier.when))
    values = _evaluate(wide, env, list(dict.fromkeys(n for _, root in roots for n in walk(root))))

    def reasons(condition: Condition) -> list[Condition]:
        """The atoms that made ``condition`` hold: all of an ``all``, the holding ones of an ``any``."""
        if not values[condition][0]:
            return []
        if isinstance(condition, All | AnyOf):
            return [atom for item in condition.items for atom in reasons(item)]
        return [condition]

    atoms = [(supports, atom) for supports, root in roots for atom in reasons(root)]
    # An ``after`` holds on two registers' codes: shown as those two codes (the later one first).
    atoms = [
        (supports, part)
        for supports, atom in atoms
        for part in ((Register(atom.then), Register(atom.first)) if isinstance(atom, After) else (atom,))
    ]
    register_facts = _register_facts(
        eng, person_id, as_of, definitions, {a.definition for _, a in atoms if isinstance(a, Register)}, codelists
    )
    facts: list[Fact] = []
    for supports, atom in atoms:
        if isinstance(atom, Register):
            fact = register_facts.get(atom.definition)
            facts.append(
                Fact(supports, definitions[atom.definition].name, *fact)
                if fact
                else Fact(supports, definitions[atom.definition].name)
            )
        else:
            facts.append(Fact(supports, describe(atom), value=values[atom][1]))
    return Explanation(
        person_id=person_id,
        as_of=as_of,
        segment=stored["segment"],
        flags=flags,
        condition_count=stored["condition_count"],
        cms=stored["cms"],
        need_tier=stored["need_tier"],
        need_tier_name=tier.name,
        need_band=stored["need_band"],
        acg_png=stored["acg_png"],
        facts=tuple(dict.fromkeys(facts)),
        not_available=tuple(sorted(env.missing)),
    )


def _evaluate(wide: nw.LazyFrame, env: Env, conditions: list[Condition]) -> dict[Condition, tuple[bool, str | None]]:
    """For each condition: whether it holds for the one row, and the value it read (for column comparisons)."""
    exprs = [env.expr(c).fill_null(False).alias(f"held_{i}") for i, c in enumerate(conditions)]
    for i, c in enumerate(conditions):
        if isinstance(c, Compare):
            name = "condition_count" if c.table == "segment" else f"{c.table}__{c.column}"
            value = nw.col(name) if name in env.columns else nw.lit(None, dtype=nw.String)
            exprs.append(value.cast(nw.String).alias(f"value_{i}"))
    rows = wide.select(*exprs).collect().rows(named=True) if exprs else []
    row = rows[0] if rows else {}
    return {c: (bool(row.get(f"held_{i}")), row.get(f"value_{i}")) for i, c in enumerate(conditions)}


def _register_facts(
    eng: Engine,
    person_id: str,
    as_of: date,
    definitions: dict[str, Definition],
    wanted: set[str],
    codelists: Path | None,
) -> dict[str, tuple[str, str | None, str, date, str]]:
    """Per definition: (code, term, system, date, setting) of the latest diagnosis code on or before as_of.

    The person's coded events come from the register stage's own helper; matching the few of one person is
    done here, in Python, because the answer needs the code as recorded, which the engine-side match drops.
    """
    chosen = [definitions[d] for d in sorted(wanted) if d in definitions]
    tables: dict[str, nw.LazyFrame | None] = {}
    for name in SOURCES:
        if not eng.has_table(name):
            tables[name] = None
        elif "person_id" in eng.table(name).collect_schema().names():
            tables[name] = eng.table(name).filter(nw.col("person_id") == nw.lit(person_id))
        else:
            tables[name] = eng.table(name)  # diagnoses and procedures: restricted through their episode
    events = coded_events(tables, {system for d in chosen for system in d.codelists})
    if events is None:
        return {}
    rows = events.filter(nw.col("date") <= nw.lit(as_of)).collect().rows(named=True)
    out: dict[str, tuple[str, str | None, str, date, str]] = {}
    for d in chosen:
        hits = [
            (r["date"], r["code"], r["system"], r["setting"], listed)
            for r in rows
            if (codelist := d.codelists.get(r["system"])) is not None
            and (listed := _listed(codelist, r["code"])) is not None
        ]
        if hits:
            when, code, system, setting, listed = max(hits)
            out[d.id] = (code, _terms(codelists, d.id, system).get(listed), system, when, setting)
    return out


def _listed(codelist: Codelist, code: str) -> str | None:
    """The listed code that ``code`` matches (itself, or for prefix systems its longest listed prefix)."""
    if code in codelist.codes:
        return code
    if codelist.system.prefix:
        for length in sorted(codelist.prefix_lengths(), reverse=True):
            if code[:length] in codelist.codes:
                return code[:length]
    return None


def _terms(codelists: Path | None, definition: str, system: str) -> dict[str, str]:
    """code -> term from the definition's ``code,term`` file for ``system`` (empty when it has no terms)."""
    root = codelists if codelists is not None else content_path("codelists")
    folder = root.joinpath(definition)
    manifest_path = folder.joinpath("manifest.yaml")
    if not manifest_path.is_file():
        return {}
    entry = next((f for f in read_manifest(folder).files if f.system == system), None)
    if entry is None:
        return {}
    return {
        SYSTEMS[system].normalise_code(r["code"]): r.get("term") or ""
        for r in csv_rows(folder.joinpath(entry.file))
        if r.get("code")
    }
