"""Incremental refresh: recompute the latest snapshot only, keeping the earlier snapshots' rows of a previous run.

A new monthly extract changes the latest snapshot (and the monthly series); recomputing every earlier year for
it costs three quarters of a run for rows that a full run would give again. ``phm run --refresh latest``
runs the stages declared ``per_snapshot`` on the latest as_of only and appends the earlier snapshots' rows
of a previous run; the stages that need every snapshot (transitions, the admission model, cohorts, analytics)
run whole on the merged tables.

Where the earlier rows come from, in this order:

- a run on this store since its ingest (a refresh after a full run on the same extract): its own tables;
- otherwise the tables the ingest carried from the store it replaced, named ``previous_<table>``. An ingest
  carries the person x as_of tables of the previous store's last run only when that store was made with the
  same pseudonymisation key and purpose, and only the rows of people who are in the new extract: someone who
  opted out since the last extract loses their earlier rows too. Its run log names the run they came from.

A refresh refuses, with one line, when there is neither, when the earlier run used other definitions (code
lists, rules, costs, cohorts, settings, model file or openphm version: :func:`definitions_digest`), or when
it lacks a snapshot the refresh keeps. Every run drops the ``previous_`` tables once its own tables hold
their rows. The design and what a refresh does not redo are in docs/architecture.md ("Refresh").
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path
from typing import Literal

import narwhals as nw

from openphm import __version__
from openphm.engine import Engine, count, open_store
from openphm.errors import StoreError
from openphm.options import RunOptions
from openphm.pipeline.runlog import TABLE as RUN_LOG
from openphm.pipeline.runlog import RunLog

Refresh = Literal["latest"]
"""What a refresh recomputes: only the latest snapshot for now."""
PREVIOUS = "previous_"
"""Prefix of the tables an ingest carries from the store it replaced: never read as run outputs."""
STEP = "refresh"
"""The run_log step of the carry and refresh facts."""
CONTENT = Path(__file__).resolve().parents[1] / "content"
"""The shipped definitions (code lists, rules, costs, cohorts, settings): part of every run's digest."""
NOT_DEFINITIONS = {"people_per_slice"}
"""Run options that change memory, not results, so not the digest."""
_KEY_CHECK = b"openphm key check"


def key_check(key: bytes) -> str:
    """A check value of the pseudonymisation key: equal for one key, unrelated for two, revealing nothing of it.

    An HMAC of a fixed text under the key (as pseudonyms are HMACs of NHS numbers): recorded by every ingest,
    it lets the next ingest tell whether the previous store's pseudonyms are the same people's.
    """
    return hmac.new(key, _KEY_CHECK, hashlib.sha256).hexdigest()[:16]


def _hash_path(digest: hashlib._Hash, path: Path) -> None:
    files = (
        sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts) if path.is_dir() else [path]
    )
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode() + b"\0")
        digest.update(file.read_bytes() if file.exists() else b"<absent>")


def definitions_digest(options: RunOptions) -> str:
    """A hash of everything besides the data that decides a run's rows: the openphm version, the shipped
    content and every run option (the content of each file or folder given), except memory settings."""
    digest = hashlib.sha256(__version__.encode())
    _hash_path(digest, CONTENT)
    for field in fields(options):
        if field.name in NOT_DEFINITIONS:
            continue
        value = getattr(options, field.name)
        digest.update(f"\0{field.name}=".encode())
        if isinstance(value, Path):
            _hash_path(digest, value)
        else:
            digest.update(str(value).encode())
    return digest.hexdigest()[:16]


def _facts(log: nw.LazyFrame, command: str) -> tuple[str, dict[tuple[str, str], str]] | None:
    """The last run of ``command`` in a run log: its id and its (item, metric) -> detail facts."""
    runs = (
        log.filter(nw.col("command") == command)
        .group_by("run_id")
        .agg(nw.col("recorded_at").max())
        .collect()
        .sort("recorded_at")
        .rows()
    )
    if not runs:
        return None
    run_id = runs[-1][0]
    rows = log.filter(nw.col("run_id") == run_id).select("item", "metric", "detail").collect().rows()
    return run_id, {(item, metric): detail for item, metric, detail in rows}


def _dates(text: str | None) -> tuple[date, ...]:
    return tuple(date.fromisoformat(d) for d in (text or "").split(",") if d)


def carry_previous(store: Path, engine: str, eng: Engine, log: RunLog, key: bytes, tables: Iterable[str]) -> None:
    """Copy the previous store's last-run ``tables`` into the store being ingested as ``previous_<table>``.

    Only when the previous store was ingested with the same key and purpose and has a run since, and only the
    rows of people in the new ``person`` table (call it after the load). Whatever the outcome, ``log`` says so;
    a previous store that cannot be read costs the carry, never the ingest.
    """
    reason = _carry(store, engine, eng, log, key, tuple(tables))
    if reason is not None:
        log.add(STEP, "previous_run", "not_carried", detail=reason)


def _carry(store: Path, engine: str, eng: Engine, log: RunLog, key: bytes, tables: tuple[str, ...]) -> str | None:
    if not store.exists():
        return "no previous store"
    try:
        old = open_store(store, engine)
    except Exception as exc:  # an unreadable old store must not stop a new ingest; the reason is logged
        return f"previous store unreadable ({type(exc).__name__})"
    try:
        if not old.has_table(RUN_LOG):
            return "the previous store has no run log"
        ingested, ran = _facts(old.table(RUN_LOG), "ingest"), _facts(old.table(RUN_LOG), "run")
        present = set(old.tables())
    finally:
        old.close()
    if ingested is None or ran is None or ("definitions", "definitions") not in ran[1]:
        return "the previous store has no run since its ingest (by this version of openphm)"
    if ingested[1].get(("purpose", "purpose")) != log.purpose:
        return "the previous store was ingested for another purpose"
    if ingested[1].get(("key", "key_check")) != key_check(key):
        return "the previous store was pseudonymised with another key (or by an openphm without a key check)"
    missing = [t for t in tables if t not in present]
    if missing:
        return f"the previous run has no table '{missing[0]}'"
    people = eng.table("person").select("person_id")
    for table in tables:
        kept = eng.table_of(store, table).join(people, on="person_id", how="semi")
        eng.write(PREVIOUS + table, kept)
        log.add(STEP, table, "carried_rows", count(eng.table(PREVIOUS + table)))
    run_id, facts = ran
    log.add(STEP, "previous_run", "carried", detail=run_id)
    log.add(STEP, "previous_run", "as_of", detail=facts.get(("as_of", "as_of")))
    log.add(STEP, "previous_run", "definitions", detail=facts.get(("definitions", "definitions")))
    return None


@dataclass(frozen=True)
class Kept:
    """The earlier snapshots a refresh keeps, and where their rows are."""

    refreshed: date
    earlier: tuple[date, ...]
    run_id: str
    """The run that computed the kept rows."""

    def rows(self, eng: Engine, table: str) -> nw.LazyFrame | None:
        """The kept rows of ``table``: the previous run's rows at the earlier snapshots (None without any)."""
        if not self.earlier:
            return None
        return eng.table(PREVIOUS + table).filter(nw.col("as_of").is_in(self.earlier))

    def restrict(self, frame: nw.LazyFrame) -> nw.LazyFrame:
        """A run table as a per-snapshot stage reads it: the refreshed snapshot's rows only."""
        if "as_of" not in frame.collect_schema().names():
            return frame
        return frame.filter(nw.col("as_of") == nw.lit(self.refreshed))


def prepare(eng: Engine, dates: tuple[date, ...], digest: str, tables: Iterable[str], log: RunLog) -> Kept:
    """Check that a refresh of ``dates[-1]`` may keep the earlier snapshots, and put their rows in place.

    The rows are a run's on this store since its ingest (renamed ``previous_<table>``, no copy) or else those
    the ingest carried. Raises StoreError with one line when they are missing or were made otherwise.
    """
    again = "run 'phm run' without --refresh first"
    ran = _facts(eng.table(RUN_LOG), "run")
    carried: dict[tuple[str, str], str] = {}
    ingested = _facts(eng.table(RUN_LOG), "ingest")
    if ingested is not None:
        carried = {key: detail for key, detail in ingested[1].items() if key[0] == "previous_run"}
    tables = tuple(tables)
    if ran is not None:
        run_id, facts = ran
        previous_as_of, previous_digest = facts.get(("as_of", "as_of")), facts.get(("definitions", "definitions"))
        for table in tables:
            if not eng.has_table(table):
                raise StoreError(f"refresh: the store's last run wrote no table '{table}'; {again}")
            eng.drop(PREVIOUS + table)
            eng.rename(table, PREVIOUS + table)
        source = "this store's last run"
    elif ("previous_run", "carried") in carried:
        run_id = carried[("previous_run", "carried")]
        previous_as_of, previous_digest = (
            carried.get(("previous_run", "as_of")),
            carried.get(("previous_run", "definitions")),
        )
        source = "the run carried by the ingest"
        for table in tables:
            if not eng.has_table(PREVIOUS + table):
                raise StoreError(f"refresh: the ingest carried no table '{table}'; {again}")
    else:
        why = carried.get(("previous_run", "not_carried"))
        detail = f" (the ingest carried none: {why})" if why else ""
        raise StoreError(f"refresh: the store has no earlier run to keep snapshots from{detail}; {again}")
    if previous_digest != digest:
        raise StoreError(
            f"refresh: the earlier snapshots ({source}) were computed with other definitions or another openphm "
            f"version (code lists, rules, costs, cohorts, settings or model file); {again}"
        )
    kept = Kept(dates[-1], dates[:-1], run_id)
    have = set(_dates(previous_as_of))
    missing = [d for d in kept.earlier if d not in have]
    if missing:
        raise StoreError(f"refresh: {source} has no snapshot at {missing[0].isoformat()}; {again}")
    log.add(STEP, "refreshed", "as_of", detail=kept.refreshed.isoformat())
    log.add(STEP, "kept", "as_of", detail=",".join(d.isoformat() for d in kept.earlier))
    log.add(STEP, "kept", "from_run", detail=run_id)
    return kept


def drop_previous(eng: Engine) -> None:
    """Remove the carried ``previous_`` tables: a finished run's own tables now hold every row worth keeping."""
    for name in eng.tables():
        if name.startswith(PREVIOUS):
            eng.drop(name)
