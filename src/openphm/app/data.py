"""What the application reads from the store: areas, published aggregates, cohorts and their members.

The store is opened read-only, once per version, and its connection shared under a lock. Aggregates are the output of
:func:`openphm.analytics.published.published_tables` - the one disclosure-controlled path every export takes -
computed once per store version and kept; a new version (``phm run`` swaps the store file or folder atomically)
has a new inode and modification time, so the next request sees it without a restart. Only the first request
after a publish builds the snapshot (the others wait on the lock for it); the rest read the kept snapshot
without taking the lock, so a slow store query never queues the pages behind it.

Person-level rows are read only through :meth:`StoreReader.members`, which takes the caller's scopes and puts them
in the query itself (and :meth:`StoreReader.direct_care` runs :mod:`openphm.reidentify`'s functions - a practice's
own matched list, one person's view - after the direct-care routes checked the scope). The query runs on a cohort's
rows of one store version, read from the store once and kept (every cohort at its latest ``as_of`` in one pass, an
older ``as_of`` when first asked for): a store version never changes, and joining ``cohort_member`` to three person
tables of a large store for every list was most of the application's time under load (``docs/performance.md``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import narwhals as nw
import polars as pl

from openphm.analytics import AGG_TABLES
from openphm.analytics.aggregates import CODE_COLUMNS, NATIONAL_CODE, NATIONAL_NAME
from openphm.analytics.published import published_tables
from openphm.app.accounts import Scope
from openphm.app.roles import LEVELS
from openphm.engine import Engine, open_store
from openphm.ingest.policy import PurposeError, check_output_purpose, store_governance

T = TypeVar("T")

KEPT_MEMBER_FRAMES = 64
"""How many (cohort, as_of) member frames one store version keeps: every cohort at its latest as_of, and the
older ones asked for most recently (bounded, as every as_of of every cohort of a large store is too much memory)."""

POLICY = "nhs"  # the disclosure policy of everything the application shows (counts 1-7 redacted, rounded to 5)

MEMBER_COLUMNS = (
    "person_id",
    "practice_code",
    "as_of",
    "segment",
    "maternal",
    "need_tier",
    "admission_risk",
    "risk_centile",
    "efi_category",
    "qrisk3",
    "reasons",
)
"""A cohort member's row: the pseudonym, where and when, and what a case-finding list needs to sort by (maternal
health is a flag beside the segment, shown whatever the segment)."""


@dataclass(frozen=True)
class Snapshot:
    """What one version of the store publishes."""

    version: tuple[int, int]
    aggregates: dict[str, pl.DataFrame]
    areas: pl.DataFrame  # level, code, name, parent
    practices: dict[str, dict[str, str | None]]  # practice code -> {level: code} for itself and its ancestors
    cohorts: list[str]
    as_of: list[date]
    tables: frozenset[str]
    refused: str | None = None
    """Why the aggregates are withheld: the store was not ingested for planning (its opt-outs were not applied)."""
    by_area: dict[str, dict[tuple[str, str], pl.DataFrame]] = field(default_factory=dict)
    """Each aggregate table with level and area_code columns, split by (level, area_code) once per version: a
    request looks its area up instead of filtering the whole table (most of an aggregates request's time)."""

    def area_rows(self, table: str, level: str, area_code: str) -> pl.DataFrame:
        """The rows of ``table`` (one with level and area columns) for one area; none for an unknown area."""
        rows = self.by_area[table].get((level, area_code))
        return rows if rows is not None else self.aggregates[table].clear()


class StoreReader:
    def __init__(self, store: Path, engine: str = "duckdb", *, allow_purpose_mismatch: bool = False) -> None:
        self.store, self.engine = store, engine
        self.allow_purpose_mismatch = allow_purpose_mismatch
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._engine: Engine | None = None
        self._derived: dict[tuple[str, tuple[int, int]], Any] = {}
        self._members: tuple[tuple[int, int] | None, dict[tuple[str, date | None], pl.DataFrame]] = (None, {})
        """(store version, a cohort's members at one as_of (None: its latest) with every area code): one tuple, so
        a request without the lock never pairs one version's frames with another's version."""

    def _version(self) -> tuple[int, int]:
        stat = self.store.stat()
        return stat.st_ino, stat.st_mtime_ns

    def snapshot(self) -> Snapshot:
        """The current store's published content, rebuilt when the store was replaced.

        The kept snapshot is read without the lock (one attribute read, atomic): the lock is for building it."""
        kept = self._snapshot
        if kept is not None and kept.version == self._version():
            return kept
        with self._lock:
            return self._current()[0]

    def _current(self) -> tuple[Snapshot, Engine]:
        """The snapshot and open engine of the store's current version (call with the lock held)."""
        version = self._version()
        if self._snapshot is None or self._engine is None or self._snapshot.version != version:
            if self._engine is not None:
                self._engine.close()
                self._engine = None
            self._engine = open_store(self.store, self.engine)
            self._snapshot = self._load(version, self._engine)
        return self._snapshot, self._engine

    def _load(self, version: tuple[int, int], eng: Engine) -> Snapshot:
        # The application's aggregates are planning outputs: a store whose ingest did not apply the planning
        # opt-outs (direct care, risk stratification) serves none, as the exports and the report refuse it.
        refused = None
        try:
            check_output_purpose(store_governance(eng), "planning", self.allow_purpose_mismatch)
        except PurposeError as error:
            refused = str(error).replace("--allow-purpose-mismatch", "phm serve --allow-purpose-mismatch")
        aggregates = (
            {}
            if refused
            else {
                name: pl.DataFrame(table)
                for name, table in published_tables(self.store, self.engine, POLICY).items()
                if name in AGG_TABLES
            }
        )
        practice = (
            pl.DataFrame(nw.to_native(eng.table("practice").collect(backend="polars")))
            if eng.has_table("practice")
            else None
        )
        attrition = (
            eng.table("cohort_attrition").select("cohort").unique().collect(backend="polars")["cohort"].to_list()
            if eng.has_table("cohort_attrition")
            else []
        )
        population = aggregates.get("agg_population")
        as_of = sorted(population["as_of"].unique().to_list()) if population is not None else []
        cohorts = sorted(
            set(attrition) | set(aggregates["agg_cohort"]["cohort"].to_list() if "agg_cohort" in aggregates else [])
        )
        areas = _areas(practice, population)
        by_area = {
            name: {
                (str(level), str(code)): rows
                for (level, code), rows in frame.partition_by(["level", "area_code"], as_dict=True).items()
            }
            for name, frame in aggregates.items()
            if {"level", "area_code"} <= set(frame.columns)
        }
        return Snapshot(
            version, aggregates, areas, _practices(practice), cohorts, as_of, frozenset(eng.tables()), refused, by_area
        )

    def derived(self, name: str, build: Callable[[Engine], T]) -> T:
        """``build(engine)`` of the current store version, computed once and kept until the store is replaced
        (e.g. the data page's run log and quality summary, an overview page's figures: small, and already
        disclosure-controlled by ``build``). A value already built is returned without taking the lock."""
        kept, derived = self._snapshot, self._derived
        if kept is not None and (name, kept.version) in derived and kept.version == self._version():
            found: T = derived[(name, kept.version)]
            return found
        with self._lock:
            snapshot, eng = self._current()
            key = (name, snapshot.version)
            if key not in self._derived:
                self._derived = {k: v for k, v in self._derived.items() if k[1] == snapshot.version}
                self._derived[key] = build(eng)
            value: T = self._derived[key]
            return value

    def direct_care(self, read: Callable[[Engine], T]) -> T:
        """``read`` on the current store's engine, under the lock (the shared connection is not thread-safe)."""
        with self._lock:
            return read(self._current()[1])

    def members(
        self, cohort: str, scopes: tuple[Scope, ...], practice_code: str | None, as_of: date | None
    ) -> pl.DataFrame:
        """The pseudonymised members of ``cohort`` at ``as_of`` (default the latest) registered within ``scopes``
        (and at ``practice_code`` when given), by admission risk, highest first. No scope, no rows."""
        if not scopes:
            return pl.DataFrame(schema=dict.fromkeys(MEMBER_COLUMNS, pl.String))
        frame = nw.from_native(self._cohort(cohort, as_of))
        if not any(scope.level == "national" for scope in scopes):
            frame = frame.filter(_in_scopes(scopes))
        if practice_code is not None:
            frame = frame.filter(nw.col("practice_code") == practice_code)
        native: pl.DataFrame = nw.to_native(frame.select(*MEMBER_COLUMNS))
        return native

    def _cohort(self, cohort: str, as_of: date | None) -> pl.DataFrame:
        """Every member of ``cohort`` at ``as_of`` (None: the latest) with its area codes, sorted; kept per
        store version. The first list asked for reads every cohort's latest members in one query, so fifty
        people opening lists at once after a publish wait for one read of the store, not one each."""
        version, frames = self._members
        kept = frames.get((cohort, as_of))
        if kept is not None and version == self._version():
            return kept
        with self._lock:
            snapshot, eng = self._current()
            if self._members[0] != snapshot.version:
                self._members = (snapshot.version, self._read_members(eng, snapshot, None))
            frames = self._members[1]
            if (cohort, as_of) not in frames:
                if len(frames) >= KEPT_MEMBER_FRAMES + len(snapshot.cohorts):
                    del frames[next((key for key in frames if key[1] is not None), next(iter(frames)))]
                read = self._read_members(eng, snapshot, (cohort, as_of)) if as_of is not None else {}
                frames[(cohort, as_of)] = read.get((cohort, as_of), _no_members())
            return frames[(cohort, as_of)]

    @staticmethod
    def _read_members(
        eng: Engine, snapshot: Snapshot, wanted: tuple[str, date] | None
    ) -> dict[tuple[str, date | None], pl.DataFrame]:
        """The members of one (cohort, as_of), or with None of every cohort at its own latest as_of (keyed
        (cohort, None)), joined to their area codes and what a case-finding list sorts by."""
        if not eng.has_table("cohort_member"):
            return {}
        members = eng.table("cohort_member").select("cohort", "person_id", "as_of", "reasons")
        if wanted is None:
            latest = members.group_by("cohort").agg(nw.col("as_of").max())
            members = members.join(latest, on=["cohort", "as_of"], how="inner")
        else:
            members = members.filter((nw.col("cohort") == wanted[0]) & (nw.col("as_of") == wanted[1]))
        population = eng.table("population").select("person_id", "as_of", *CODE_COLUMNS.values())
        frame = members.join(population, on=["person_id", "as_of"], how="left")
        for table, columns in (
            ("segment", ("segment", "maternal", "need_tier")),
            ("admission_risk", ("admission_risk", "risk_centile")),
            ("risk", ("efi_category", "qrisk3")),
        ):
            if table in snapshot.tables:
                frame = frame.join(
                    eng.table(table).select("person_id", "as_of", *columns), on=["person_id", "as_of"], how="left"
                )
            else:
                frame = frame.with_columns(nw.lit(None).alias(c) for c in columns)
        codes = [c for c in CODE_COLUMNS.values() if c != "practice_code"]
        native: pl.DataFrame = nw.to_native(frame.select("cohort", *MEMBER_COLUMNS, *codes).collect(backend="polars"))
        ordered = native.sort(["admission_risk", "person_id"], descending=[True, False], nulls_last=True)
        return {
            (str(name), None if wanted is None else wanted[1]): part.drop("cohort")
            for (name,), part in ordered.partition_by("cohort", as_dict=True, maintain_order=True).items()
        }


def _no_members() -> pl.DataFrame:
    columns = [*MEMBER_COLUMNS, *(c for c in CODE_COLUMNS.values() if c != "practice_code")]
    return pl.DataFrame(schema=dict.fromkeys(columns, pl.String))


def _in_scopes(scopes: tuple[Scope, ...]) -> nw.Expr:
    """The row filter of a set of sub-national scopes: a person is in where any contains their practice's area."""
    conditions = [nw.col(CODE_COLUMNS[scope.level]) == scope.code for scope in scopes]
    return nw.any_horizontal(*conditions, ignore_nulls=True)


def _practices(practice: pl.DataFrame | None) -> dict[str, dict[str, str | None]]:
    if practice is None:
        return {}
    columns = [CODE_COLUMNS[level] for level in LEVELS[1:]]
    return {
        row["practice_code"]: {"national": NATIONAL_CODE, **{c.removesuffix("_code"): row[c] for c in columns}}
        for row in practice.select(columns).iter_rows(named=True)
    }


def _areas(practice: pl.DataFrame | None, population: pl.DataFrame | None) -> pl.DataFrame:
    """Every area with its name and its parent's code: from the practice table, and agg_population's names."""
    rows: list[dict[str, str | None]] = [
        {"level": "national", "code": NATIONAL_CODE, "name": NATIONAL_NAME, "parent": None}
    ]
    if practice is not None:
        levels = LEVELS[1:]
        for i, level in enumerate(levels):
            parent = pl.col(CODE_COLUMNS[levels[i - 1]]) if i else pl.lit(NATIONAL_CODE)
            name = f"{level}_name"
            rows.extend(
                practice.select(
                    pl.lit(level).alias("level"),
                    pl.col(CODE_COLUMNS[level]).alias("code"),
                    (pl.col(name) if name in practice.columns else pl.col(CODE_COLUMNS[level])).alias("name"),
                    parent.alias("parent"),
                )
                .filter(pl.col("code").is_not_null())
                .unique()
                .to_dicts()
            )
    frame = pl.DataFrame(rows, schema={"level": pl.String, "code": pl.String, "name": pl.String, "parent": pl.String})
    if population is not None:  # areas that have statistics but no practice row (e.g. a store without practice.csv)
        seen = population.select("level", pl.col("area_code").alias("code"), pl.col("area_name").alias("name")).unique()
        frame = pl.concat(
            [frame, seen.join(frame, on=["level", "code"], how="anti").with_columns(parent=pl.lit(None, pl.String))],
            how="diagonal_relaxed",
        )
    order = {level: i for i, level in enumerate(LEVELS)}
    return frame.unique(["level", "code"]).sort(pl.col("level").replace_strict(order), "code")
