"""The one way aggregates leave the store: every table through disclosure control, the same for every output.

`published_tables` reads the `agg_*` tables (small: aggregates only) and protects every count under a policy
with :func:`openphm.disclosure.suppress`. The same count often appears in several places - a segment's
people in `agg_population` and as the numerator of its prevalence in `agg_inequality`, a practice's cell inside
its PCN's - so cells are identified by what they count (a key), shared between tables, and protected together:

- lines within a table: every breakdown row with its total over one dimension (`agg_population`), every row and
  column of a transition matrix with its margins, every group of a group type with the whole area
  (`agg_inequality`);
- lines across areas: the cells of the areas within a parent area with the parent's cell, for every pair of
  levels, wherever they add up exactly (people of unknown area make a remainder that is never published, so
  such a line cannot reveal a cell).

Counts are then rounded; rates and percentages are recomputed from the rounded counts. Policy `none` returns
the exact tables: the caller decides whether that is allowed (`phm export` asks for direct care or an override).
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import combinations
from pathlib import Path

import narwhals as nw
import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa

from openphm.analytics import AGG_TABLES
from openphm.analytics.aggregates import (
    CODE_COLUMNS,
    COSTS,
    COUNTS,
    DIMENSIONS,
    FLAG_COUNTS,
    LEVELS,
    NATIONAL_CODE,
    RATES,
    WEEKS,
    breakdown_name,
)
from openphm.disclosure import POLICIES, Policy, round_counts, suppress
from openphm.disclosure.control import sorted_unique
from openphm.engine import open_store
from openphm.errors import OpenPHMError

TABLES = AGG_TABLES


class PolicyError(OpenPHMError):
    """An unknown disclosure policy, or an unprotected export that was not allowed."""


def published_tables(
    store: Path, engine: str = "duckdb", policy: str = "nhs", level: str | None = None, code: str | None = None
) -> dict[str, pa.Table]:
    """The store's aggregate tables as they may leave it: protected under ``policy``.

    ``level`` keeps the rows of one geography level; ``code`` keeps the area with that code and every area within
    it (e.g. an ICB and its sub-ICBs, PCNs and practices). Both filters apply after protection, so a filtered
    output shows exactly the values of the full one. Tables absent from the store are absent here.
    """
    if policy not in POLICIES:
        raise PolicyError(f"policy: '{policy}' is not one of {', '.join(POLICIES)}")
    if level is not None and level not in LEVELS:
        raise PolicyError(f"level: '{level}' is not one of {', '.join(LEVELS)}")
    eng = open_store(store, engine)
    try:
        tables = {name: _polars(eng.table(name)) for name in TABLES if eng.has_table(name)}
        practice = _polars(eng.table("practice")) if eng.has_table("practice") else None
    finally:
        eng.close()
    ancestry = _ancestry(practice, tables.values())
    protected = tables if POLICIES[policy].is_none else protect_tables(tables, ancestry, POLICIES[policy])
    return {name: _filtered(frame, ancestry, level, code).to_arrow() for name, frame in protected.items()}


def _polars(frame: nw.LazyFrame) -> pl.DataFrame:
    """A table in one fixed row order: secondary suppression picks among equal cells by order, and the same
    store must publish the same cells whichever engine wrote it."""
    native: pl.DataFrame = nw.to_native(frame.collect(backend="polars"))
    return native.sort(native.columns, nulls_last=True)


# -- geography -----------------------------------------------------------------------------------------------------


def _ancestry(practice: pl.DataFrame | None, tables: Iterable[pl.DataFrame]) -> pl.DataFrame:
    """(level, area_code, ancestor_level, ancestor_code): every area's enclosing areas, from the practice table."""
    pairs = []
    if practice is not None:
        levels = LEVELS[1:]
        hierarchy = practice.select([CODE_COLUMNS[level] for level in levels]).unique()
        for parent, child in combinations(levels, 2):  # LEVELS runs from the top down
            pairs.append(
                hierarchy.select(
                    pl.lit(child).alias("level"),
                    pl.col(CODE_COLUMNS[child]).alias("area_code"),
                    pl.lit(parent).alias("ancestor_level"),
                    pl.col(CODE_COLUMNS[parent]).alias("ancestor_code"),
                ).filter(pl.col("area_code").is_not_null() & pl.col("ancestor_code").is_not_null())
            )
    areas = [t.select("level", "area_code") for t in tables if "level" in t.columns]
    if areas:
        pairs.append(
            pl.concat(areas)
            .unique()
            .filter(pl.col("level") != "national")
            .with_columns(pl.lit("national").alias("ancestor_level"), pl.lit(NATIONAL_CODE).alias("ancestor_code"))
        )
    schema = {"level": pl.String, "area_code": pl.String, "ancestor_level": pl.String, "ancestor_code": pl.String}
    if not pairs:
        return pl.DataFrame(schema=schema)
    return pl.concat([p.cast(schema) for p in pairs]).unique()  # type: ignore[arg-type]


def _filtered(frame: pl.DataFrame, ancestry: pl.DataFrame, level: str | None, code: str | None) -> pl.DataFrame:
    if level is not None:
        frame = frame.filter(pl.col("level") == level)
    if code is not None:
        inside = ancestry.filter(pl.col("ancestor_code") == code).select("level", "area_code")
        frame = frame.filter(pl.col("area_code") == code).vstack(
            frame.join(inside, on=["level", "area_code"], how="semi")
        )
    return frame


# -- cells and lines -----------------------------------------------------------------------------------------------


KEY: dict[str, pl.DataType] = {
    "kind": pl.String(),  # what is counted: a count column of agg_population, or the table
    "column": pl.String(),  # which column of agg_inequality; which side of a transition margin
    "level": pl.String(),
    "area_code": pl.String(),
    "as_of": pl.Date(),  # a transition's from_as_of
    "to_as_of": pl.Date(),
    "breakdown": pl.String(),
    **{d: (pl.Int64() if d in ("need_tier", "imd_quintile") else pl.String()) for d in DIMENSIONS},  # segment: from
    "to_segment": pl.String(),
    "month": pl.Date(),
    "item": pl.String(),  # a register's definition, a cohort, a measure
    "group_type": pl.String(),
    "group": pl.String(),
}
"""The columns of a cell's key: what it counts, where and when. One schema for every table, so that a count two
tables show (a segment's people in `agg_population` and in `agg_inequality`) has one key; a kind leaves the
columns it does not use null."""


def _keys(frame: pl.DataFrame, **columns: pl.Expr) -> pl.DataFrame:
    """Keys of ``frame``'s rows: the given key columns, every other one null."""
    return frame.select(columns.get(name, pl.lit(None)).cast(dtype).alias(name) for name, dtype in KEY.items())


class Cells:
    """The counts of one family (e.g. people) across tables, each identified by a key and published once.

    Columnar, because at ten million people a family holds millions of cells: the keys are rows of a frame (the
    first cell of each key), values and flags NumPy arrays kept in the chunks each table added. Cell ids follow
    the order the cells were added in, which breaks ties in secondary suppression.
    """

    def __init__(self) -> None:
        self.index = pl.DataFrame(schema={**KEY, "_cell": pl.Int64(), "_known": pl.Int64()})
        self.size = 0
        self.values: list[npt.NDArray[np.int64]] = []
        self.choosable: list[npt.NDArray[np.bool_]] = []
        self.hidden: list[npt.NDArray[np.int64]] = []  # ids of cells to redact whatever their value
        self.edges: list[npt.NDArray[np.uint64]] = []  # lines as packed (total, tag, child), each sorted unique

    def _known(self, keys: pl.DataFrame) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """The first cell of each key and its value; -1 for a key not seen before."""
        if self.index.is_empty():
            missing = np.full(keys.height, -1, dtype=np.int64)
            return missing, missing
        found = (
            keys.with_row_index("_row")
            .join(self.index, on=list(KEY), how="left", nulls_equal=True)
            .sort("_row")
            .select(pl.col("_cell", "_known").fill_null(-1))
        )
        return found["_cell"].to_numpy(), found["_known"].to_numpy()

    def add(
        self, keys: pl.DataFrame, values: npt.ArrayLike, *, published: bool = True, hidden: npt.ArrayLike | None = None
    ) -> npt.NDArray[np.int64]:
        """The cell id of each key (a frame of :data:`KEY`); a key seen before with the same value is the same cell.

        A key seen before with another value is a new cell every time (two counts under one key are not one
        count), and the key keeps naming its first cell.
        """
        counts = np.asarray(values, dtype=np.int64)
        n = counts.size
        cell, known = self._known(keys)
        row = np.arange(n, dtype=np.int64)
        # Each row's first row of the same key in this batch (null keys are equal, as None is in a tuple).
        firsts = keys.with_row_index("_row").select(pl.col("_row").min().over(list(KEY)).cast(pl.Int64))
        first_row = firsts.to_series().to_numpy()
        same = (cell >= 0) & (known == counts)
        lead = (cell < 0) & (first_row == row)
        follows = (cell < 0) & ~lead & (counts == counts[first_row])
        new = ~(same | follows)
        ids = np.empty(n, dtype=np.int64)
        ids[same] = cell[same]
        ids[new] = self.size + np.arange(int(new.sum()), dtype=np.int64)
        ids[follows] = ids[first_row[follows]]
        self.size += int(new.sum())
        self.values.append(counts[new])
        self.choosable.append(np.full(int(new.sum()), published))
        if hidden is not None:
            self.hidden.append(ids[np.asarray(hidden, dtype=bool)])
        if lead.any():
            leads = keys.filter(pl.Series(lead)).with_columns(
                pl.Series("_cell", ids[lead]), pl.Series("_known", counts[lead])
            )
            self.index = pl.concat([self.index, leads])
        return ids

    def published(self, keys: pl.DataFrame, values: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        """Whether each key is already a published cell holding its value."""
        cell, known = self._known(keys)
        choosable = np.concatenate([np.zeros(0, dtype=bool), *self.choosable])
        found = cell >= 0
        out = found & (known == np.asarray(values, dtype=np.int64))
        out[found] &= choosable[cell[found]]
        return out

    def lines(self, totals: npt.ArrayLike, children: npt.ArrayLike, tags: npt.ArrayLike) -> None:
        """Add lines: each (total, tag) with its children; kept only where the children add up to the total."""
        self.edges.append(_pack(totals, children, tags))

    def table_lines(self, cell: npt.NDArray[np.int64], rows: npt.NDArray[np.uint64]) -> None:
        """Add a table's lines, given in its row numbers (packed), for the rows whose cell ids are ``cell``.

        A table added first to a family has cell id = row number, so its lines are taken as they are: sorting the
        lines of millions of rows once per family, for every count column, was the report's largest cost.
        """
        if np.array_equal(cell, np.arange(cell.size)):
            self.edges.append(rows)
        else:
            total, tag, child = _unpack(rows)
            self.lines(cell[total], cell[child], tag)

    def counts(self) -> npt.NDArray[np.int64]:
        """Every cell's value, by cell id."""
        return np.concatenate([np.zeros(0, dtype=np.int64), *self.values])

    def redacted(self, policy: Policy) -> npt.NDArray[np.bool_]:
        """Which cells to redact, over the lines whose children add up exactly to their total."""
        values = self.counts()
        choosable = np.concatenate([np.zeros(0, dtype=bool), *self.choosable])
        hidden = np.zeros(self.size, dtype=bool)
        for ids in self.hidden:
            hidden[ids] = True
        edges = _union(self.edges)
        # Sorted, so each line's members are one run: sums by run, no hash table over every member.
        group = edges >> _CHILD_BITS
        child = (edges & _CHILD_MASK).astype(np.int64)
        start = np.flatnonzero(np.concatenate([[True], group[1:] != group[:-1]])) if edges.size else child
        totals = (group[start] >> _TAG_BITS).astype(np.int64)
        exact = np.add.reduceat(values[child], start) == values[totals] if edges.size else start.astype(bool)
        line = np.repeat(np.arange(start.size), np.diff(np.append(start, edges.size)))
        member = exact[line]
        line_ids = np.concatenate([line[member], np.flatnonzero(exact)])
        cells = np.concatenate([child[member], totals[exact]])
        return suppress(values, line_ids, cells, policy, hidden=hidden, choosable=choosable)


_CHILD_BITS, _TAG_BITS = 26, 12
_CHILD_MASK = np.uint64((1 << _CHILD_BITS) - 1)


def _pack(totals: npt.ArrayLike, children: npt.ArrayLike, tags: npt.ArrayLike) -> npt.NDArray[np.uint64]:
    """Lines as one sorted array of unique (total, tag, child) packed in 64 bits: sorting and merging one integer
    column is cheaper than hashing rows of three."""
    total, child, tag = (np.asarray(a, dtype=np.int64) for a in (totals, children, tags))
    limit = 1 << _CHILD_BITS
    if total.size and (max(int(total.max()), int(child.max())) >= limit or int(tag.max()) >= 1 << _TAG_BITS):
        raise ValueError(f"disclosure control handles at most {limit:,} cells of one kind")
    packed = np.asarray(
        (total.astype(np.uint64) << np.uint64(_CHILD_BITS + _TAG_BITS))
        | (tag.astype(np.uint64) << np.uint64(_CHILD_BITS))
        | child.astype(np.uint64),
        dtype=np.uint64,
    )
    return sorted_unique(packed)


def _unpack(
    packed: npt.NDArray[np.uint64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(total, tag, child) of packed lines."""
    group = packed >> np.uint64(_CHILD_BITS)
    return (
        (group >> np.uint64(_TAG_BITS)).astype(np.int64),
        (group & np.uint64((1 << _TAG_BITS) - 1)).astype(np.int64),
        (packed & _CHILD_MASK).astype(np.int64),
    )


def _union(blocks: list[npt.NDArray[np.uint64]]) -> npt.NDArray[np.uint64]:
    """The sorted union of sorted unique blocks: the small ones merged into the largest without sorting it."""
    if not blocks:
        return np.zeros(0, dtype=np.uint64)
    ordered = sorted(blocks, key=len, reverse=True)
    largest, rest = ordered[0], sorted_unique(np.concatenate([np.zeros(0, dtype=np.uint64), *ordered[1:]]))
    at = np.searchsorted(largest, rest)
    new = rest[(at == largest.size) | (largest[np.minimum(at, largest.size - 1)] != rest)] if largest.size else rest
    return np.insert(largest, np.searchsorted(largest, new), new)


_TAGS: dict[str, int] = {}


def _tag(name: str) -> int:
    """A small integer for a line's tag (which dimension or level it runs over)."""
    return _TAGS.setdefault(name, len(_TAGS))


def _pairs(children: pl.DataFrame, parents: pl.DataFrame, on: list[str], tag: str) -> pl.DataFrame:
    """(total, child, tag) of children joined to their parent rows (nulls match nulls: 'Unknown' is a value)."""
    joined = children.select(*on, pl.col("_id").alias("child")).join(
        parents.select(*on, pl.col("_id").alias("total")), on=on, how="inner", nulls_equal=True
    )
    return joined.select("total", "child", pl.lit(_tag(tag), dtype=pl.Int64).alias("tag"))


def _geography(frame: pl.DataFrame, ancestry: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """(total, child, tag): each area's cells with the same cell of every enclosing area.

    Only the key columns are joined: a row meets each of its areas' ancestors, so the whole table joined was
    the largest frame disclosure control made."""
    children = frame.select("level", "area_code", *keys, "_id").join(ancestry, on=["level", "area_code"], how="inner")
    parents = frame.select(
        pl.col("level").alias("ancestor_level"), pl.col("area_code").alias("ancestor_code"), *keys, "_id"
    )
    joined = children.select("level", "ancestor_level", "ancestor_code", *keys, pl.col("_id").alias("child")).join(
        parents.rename({"_id": "total"}), on=["ancestor_level", "ancestor_code", *keys], how="inner", nulls_equal=True
    )
    names = joined.select(pl.concat_str(pl.lit("geo:"), "level", pl.lit(">"), "ancestor_level").alias("name"))["name"]
    tags = {name: _tag(name) for name in names.unique().to_list()}
    return joined.select("total", "child", names.replace_strict(tags, return_dtype=pl.Int64).alias("tag"))


def _row_lines(name: str, frame: pl.DataFrame, ancestry: pl.DataFrame) -> npt.NDArray[np.uint64]:
    """The lines of a table in row numbers (`_id`), packed: within the table and across areas."""
    empty = pl.DataFrame(schema={"total": pl.Int64, "child": pl.Int64, "tag": pl.Int64})
    parts = [empty]
    if name == "agg_population":
        for dims in frame["breakdown"].unique().to_list():
            present = [] if dims == "total" else dims.split("+")
            for d in present:
                rest = [x for x in present if x != d]
                children = frame.filter(pl.col("breakdown") == dims)
                parents = frame.filter(pl.col("breakdown") == breakdown_name(rest))
                parts.append(_pairs(children, parents, ["level", "area_code", "as_of", *rest], f"dim:{d}"))
        parts.append(_geography(frame, ancestry, ["as_of", "breakdown", *DIMENSIONS]))
    elif name == "agg_register":
        parts.append(_geography(frame, ancestry, ["as_of", "definition"]))
    elif name == "agg_cohort":
        parts.append(_geography(frame, ancestry, ["as_of", "cohort"]))
    elif name == "agg_inequality":
        for group_type in ("imd_quintile", "imd_decile", "ethnic_group", "core20"):
            children = frame.filter(pl.col("group_type") == group_type)
            parents = frame.filter(pl.col("group_type") == "all")
            parts.append(_pairs(children, parents, ["level", "area_code", "as_of", "measure"], f"group:{group_type}"))
        parts.append(_geography(frame, ancestry, ["as_of", "measure", "group_type", "group"]))
    elif name == "agg_monthly":
        children, parents = frame.filter(pl.col("segment") != "all"), frame.filter(pl.col("segment") == "all")
        parts.append(_pairs(children, parents, ["level", "area_code", "as_of", "month", "measure"], "segment"))
        parts.append(_geography(frame, ancestry, ["as_of", "month", "segment", "measure"]))
    lines = pl.concat([p.cast(empty.schema) for p in parts])
    return _pack(lines["total"].to_numpy(), lines["child"].to_numpy(), lines["tag"].to_numpy())


# -- protection ----------------------------------------------------------------------------------------------------


def _population_keys(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    """The keys of an `agg_population` count column: the row's area, date and breakdown."""
    return _keys(
        frame,
        kind=pl.lit(column),
        level=pl.col("level"),
        area_code=pl.col("area_code"),
        as_of=pl.col("as_of"),
        breakdown=pl.col("breakdown"),
        **{d: pl.col(d) for d in DIMENSIONS},
    )


def _table_keys(frame: pl.DataFrame, table: str, item: str) -> pl.DataFrame:
    """The keys of the counts of `agg_register` (item: its definition) or `agg_cohort` (its cohort)."""
    return _keys(
        frame,
        kind=pl.lit(table),
        level=pl.col("level"),
        area_code=pl.col("area_code"),
        as_of=pl.col("as_of"),
        item=pl.col(item),
    )


def _inequality_keys(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    """Keys of `agg_inequality` counts; where the same count is a cell of `agg_population`/`agg_register`, its key.

    A group's people (whole area, IMD quintile, ethnic group) is the `agg_population` cell of that breakdown;
    a segment's people, a register's people and an activity count, likewise, are the counts those tables show.
    """
    group_type, measure = pl.col("group_type"), pl.col("measure")
    linked = group_type.is_in(["all", "imd_quintile", "ethnic_group"])
    dims = {
        "segment": pl.lit(None, dtype=pl.String),
        "imd_quintile": pl.when(group_type == "imd_quintile").then(pl.col("group").cast(pl.Int64, strict=False)),
        "ethnic_group": pl.when(group_type == "ethnic_group").then(pl.col("group")),
    }
    if column == "people":
        population, register, kind = linked, pl.lit(False), pl.lit("people")
    else:
        segment = measure.str.starts_with("segment:") & linked
        register = measure.str.starts_with("register:") & (group_type == "all")
        population = segment | (measure.is_in(list(COUNTS)) & linked)
        dims["segment"] = pl.when(segment).then(measure.str.slice(len("segment:")))
        kind = pl.when(segment).then(pl.lit("people")).otherwise(measure)
    present = [pl.when(value.is_not_null()).then(pl.lit(name)) for name, value in dims.items()]
    breakdown = pl.concat_str(present, separator="+", ignore_nulls=True)  # in the order of DIMENSIONS
    own = ~population & ~register
    return _keys(
        frame,
        kind=pl.when(population).then(kind).when(register).then(pl.lit("agg_register")).otherwise(pl.lit("inequality")),
        column=pl.when(own).then(pl.lit(column)),
        level=pl.col("level"),
        area_code=pl.col("area_code"),
        as_of=pl.col("as_of"),
        breakdown=pl.when(population).then(pl.when(breakdown == "").then(pl.lit("total")).otherwise(breakdown)),
        **{name: pl.when(population).then(value) for name, value in dims.items()},
        item=pl.when(register)
        .then(measure.str.slice(len("register:")))
        .when(own)
        .then(measure if column == "events" else pl.lit("")),
        group_type=pl.when(own).then(group_type),
        group=pl.when(own).then(pl.col("group")),
    )


def _indexed(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame with `_id`, its row number: lines refer to rows by it."""
    return frame.drop("_id", strict=False).with_row_index("_id").with_columns(pl.col("_id").cast(pl.Int64))


def _enrol(
    family: Cells,
    frame: pl.DataFrame,
    column: str,
    keys: pl.DataFrame,
    rows: npt.NDArray[np.uint64],
    hidden: npt.ArrayLike | None = None,
) -> npt.NDArray[np.int64]:
    """Add a table column's counts to ``family`` with the table's lines (packed); the cell id of each row."""
    values = frame[column].fill_null(0).cast(pl.Float64).round(0).cast(pl.Int64).to_numpy()
    cell = family.add(keys, values, hidden=hidden)
    family.table_lines(cell, rows)
    return cell


def protect_tables(tables: dict[str, pl.DataFrame], ancestry: pl.DataFrame, policy: Policy) -> dict[str, pl.DataFrame]:
    """Every count of every aggregate table redacted or rounded under ``policy``; rates from rounded counts."""
    frames = {name: _indexed(frame) for name, frame in tables.items()}
    lines = {name: _row_lines(name, frame, ancestry) for name, frame in frames.items()}
    people = Cells()
    cells: dict[str, npt.NDArray[np.int64]] = {}
    if "agg_population" in frames:
        frame = frames["agg_population"]
        cells["agg_population"] = _enrol(
            people, frame, "people", _population_keys(frame, "people"), lines["agg_population"]
        )
    for name, key in (("agg_register", "definition"), ("agg_cohort", "cohort")):
        if name in frames:
            frame = frames[name]
            cells[name] = _enrol(people, frame, "people", _table_keys(frame, name, key), lines[name])
    if "agg_transition" in frames:
        cells["agg_transition"] = _transition_cells(people, frames["agg_transition"])
    inequality = frames.get("agg_inequality")
    if inequality is not None:
        cells["agg_inequality"] = _enrol(
            people, inequality, "people", _inequality_keys(inequality, "people"), lines["agg_inequality"]
        )
        counted = _indexed(inequality.filter(pl.col("measure_kind") == "people"))
        cells["inequality_events"] = _enrol(
            people,
            counted,
            "events",
            _inequality_keys(counted, "events"),
            _row_lines("agg_inequality", counted, ancestry),
        )
    hidden = people.redacted(policy)
    shown = round_counts(people.counts(), hidden, policy)
    del people  # its keys are the largest thing held here
    activity, events = _activity_counts(frames, lines, cells, hidden, policy, ancestry)

    out: dict[str, pl.DataFrame] = {}
    if "agg_population" in frames:
        row = cells["agg_population"]
        out["agg_population"] = _protect_population(frames["agg_population"], shown[row], hidden[row], activity)
    if "agg_register" in frames:
        frame = frames["agg_register"].with_columns(_counts(shown[cells["agg_register"]]))
        frame = _with_population(frame, out.get("agg_population"))
        out["agg_register"] = frame.with_columns(
            (100.0 * pl.col("people") / pl.col("population")).alias("prevalence_pct")
        )
    for name in ("agg_cohort", "agg_transition"):
        if name in frames:
            out[name] = frames[name].with_columns(_counts(shown[cells[name]]))
    if inequality is not None:
        row = cells["agg_inequality"]
        kind = inequality["measure_kind"].to_numpy()
        events[kind == "people"] = shown[cells["inequality_events"]]
        out["agg_inequality"] = _protect_inequality(inequality, shown[row], hidden[row], events)
    if "agg_inequality_index" in frames:
        out["agg_inequality_index"] = frames["agg_inequality_index"]
    if "agg_forecast" in frames:
        out["agg_forecast"] = _protect_forecast(frames["agg_forecast"], policy)
    if "agg_monthly" in frames:
        out["agg_monthly"] = _protect_monthly(frames["agg_monthly"], lines["agg_monthly"], policy)
    return {name: frame.drop("_id", strict=False) for name, frame in out.items()}


def _activity_counts(
    frames: dict[str, pl.DataFrame],
    lines: dict[str, npt.NDArray[np.uint64]],
    cells: dict[str, npt.NDArray[np.int64]],
    hidden: npt.NDArray[np.bool_],
    policy: Policy,
    ancestry: pl.DataFrame,
) -> tuple[dict[str, npt.NDArray[np.float64]], npt.NDArray[np.float64]]:
    """Each activity count (and flag count) as a family of its own, redacted also wherever the people count of its
    row is.

    Returns the published values of each count column of `agg_population`, and the event counts of
    `agg_inequality` (NaN on rows of other kinds), protected together where they are the same cells.
    """
    population, inequality = frames.get("agg_population"), frames.get("agg_inequality")
    events = np.full(0 if inequality is None else inequality.height, np.nan)
    activity: dict[str, npt.NDArray[np.float64]] = {}
    for column in (*COUNTS, *FLAG_COUNTS):
        family = Cells()
        population_ids = inequality_ids = None
        if population is not None and population[column].null_count() < population.height:
            population_ids = _enrol(
                family,
                population,
                column,
                _population_keys(population, column),
                lines["agg_population"],
                hidden=hidden[cells["agg_population"]],
            )
        rows = np.array([], dtype=np.int64)
        if inequality is not None:
            rows = np.flatnonzero(
                ((inequality["measure"] == column) & (inequality["measure_kind"] == "events")).to_numpy()
            )
        if rows.size:
            sub = _indexed(inequality[rows])  # type: ignore[index]
            inequality_ids = _enrol(
                family,
                sub,
                "events",
                _inequality_keys(sub, "events"),
                _row_lines("agg_inequality", sub, ancestry),
                hidden=hidden[cells["agg_inequality"]][rows],
            )
        if population_ids is None and inequality_ids is None:
            continue
        published = round_counts(family.counts(), family.redacted(policy), policy)
        if population_ids is not None:
            activity[column] = published[population_ids]
        if inequality_ids is not None:
            events[rows] = published[inequality_ids]
    return activity, events


def _protect_monthly(frame: pl.DataFrame, rows: npt.NDArray[np.uint64], policy: Policy) -> pl.DataFrame:
    """Monthly event counts: a family of their own (events, not people), protected along the segment lines of
    each month and across areas, then rounded; a redacted month is null."""
    family = Cells()
    keys = _keys(
        frame,
        kind=pl.lit("monthly"),
        level=pl.col("level"),
        area_code=pl.col("area_code"),
        as_of=pl.col("as_of"),
        month=pl.col("month"),
        segment=pl.col("segment"),
        item=pl.col("measure"),
    )
    cell = _enrol(family, frame, "value", keys, rows)
    shown = round_counts(family.counts(), family.redacted(policy), policy)
    return frame.with_columns(_counts(shown[cell], "value"))


def _transition_cells(people: Cells, frame: pl.DataFrame) -> npt.NDArray[np.int64]:
    """Transition counts with their margins: a real segment's margin is its cell of `agg_population`."""
    area = {"level": pl.col("level"), "area_code": pl.col("area_code")}
    keys = _keys(
        frame,
        kind=pl.lit("transition"),
        **area,
        as_of=pl.col("from_as_of"),
        to_as_of=pl.col("to_as_of"),
        segment=pl.col("from_segment"),
        to_segment=pl.col("to_segment"),
    )
    cell = people.add(keys, frame["people"].to_numpy())
    for side, (own, when) in enumerate((("from_segment", "from_as_of"), ("to_segment", "to_as_of"))):
        margins = frame.group_by("level", "area_code", "from_as_of", "to_as_of", own, maintain_order=True).agg(
            pl.col("people").sum(), pl.col("_id")
        )
        values = margins["people"].to_numpy()
        segment = _keys(
            margins, kind=pl.lit("people"), **area, as_of=pl.col(when), breakdown=pl.lit("segment"), segment=pl.col(own)
        )
        unlisted = _keys(
            margins,
            kind=pl.lit("transition_margin"),
            column=pl.lit(str(side)),
            **area,
            as_of=pl.col("from_as_of"),
            to_as_of=pl.col("to_as_of"),
            segment=pl.col(own),
        )
        # A segment's margin is its published agg_population cell; any other margin is never published but
        # treated as known (never chosen to hide).
        shown = pl.Series(people.published(segment, values))
        chosen = pl.DataFrame([segment[c].zip_with(shown, unlisted[c]) for c in KEY])
        margin_ids = people.add(chosen, values, published=False)
        exploded = margins.with_columns(pl.Series("_margin", margin_ids)).explode("_id")
        people.lines(
            exploded["_margin"].to_numpy(),
            cell[exploded["_id"].to_numpy()],
            np.full(exploded.height, _tag(f"transition:{own}")),
        )
    return cell


def _counts(values: npt.NDArray[np.float64], name: str = "people") -> pl.Series:
    """Published counts as integers, null where redacted."""
    return pl.Series(name, values, dtype=pl.Float64).fill_nan(None).cast(pl.Int64)


def _protect_population(
    frame: pl.DataFrame,
    people: npt.NDArray[np.float64],
    people_hidden: npt.NDArray[np.bool_],
    activity: dict[str, npt.NDArray[np.float64]],
) -> pl.DataFrame:
    """Published people and counts; costs (to the pound) only where people is shown; rates from rounded counts."""
    columns = {"people": people, **activity}
    out = frame.with_columns(_counts(values, name) for name, values in columns.items())
    out = out.with_columns(
        pl.when(pl.Series(people_hidden)).then(None).otherwise(pl.col(c).round(0)).alias(c) for c in (WEEKS, *COSTS)
    )
    return out.with_columns(
        *((1000.0 * pl.col(c) / pl.col("people")).alias(f"{c}_per_1000") for c in RATES),
        (pl.col("cost_total") / pl.col("people")).alias("cost_per_head"),
    )


def _with_population(frame: pl.DataFrame, population: pl.DataFrame | None) -> pl.DataFrame:
    """The denominator as published in `agg_population` (its total row), so both tables show one number."""
    if population is None:
        return frame.with_columns(pl.lit(None, dtype=pl.Float64).alias("population"))
    totals = population.filter(pl.col("breakdown") == "total").select(
        "level", "area_code", "as_of", pl.col("people").alias("_published")
    )
    return (
        frame.join(totals, on=["level", "area_code", "as_of"], how="left")
        .with_columns(pl.col("_published").alias("population"))
        .drop("_published")
    )


def _protect_inequality(
    frame: pl.DataFrame,
    people: npt.NDArray[np.float64],
    people_hidden: npt.NDArray[np.bool_],
    events: npt.NDArray[np.float64],
) -> pl.DataFrame:
    """Counts as protected; costs (to the pound) where people is shown; crude rates from rounded counts;
    a standardised rate only where it is reliable and its counts are shown."""
    cost = (frame["measure_kind"] == "cost").to_numpy()
    events = events.copy()
    events[cost] = np.where(people_hidden[cost], np.nan, np.round(frame["events"].to_numpy()[cost]))
    rate_shown = ~np.isnan(events) & ~np.isnan(people) & frame["reliable"].to_numpy()
    out = frame.with_columns(_counts(people), pl.Series("events", events).fill_nan(None)).with_columns(
        (pl.col("per") * pl.col("events") / pl.col("people")).alias("crude_rate")
    )
    return out.with_columns(
        pl.when(pl.Series(rate_shown)).then(pl.col(c)).otherwise(None).alias(c)
        for c in ("dsr", "dsr_lower", "dsr_upper")
    )


def _protect_forecast(frame: pl.DataFrame, policy: Policy) -> pl.DataFrame:
    """Projected counts rounded to the policy's base; those that would round into the redacted range are null."""
    base = float(policy.round_to)
    counts = pl.col("measure") != "cost_total"

    def rounded(column: str) -> pl.Expr:
        value = (pl.col(column) / base + 0.5).floor() * base
        small = (value >= 1) & (value <= policy.redact_up_to)
        return (
            pl.when(counts & small).then(None).when(counts).then(value).otherwise(pl.col(column).round(0)).alias(column)
        )

    return frame.with_columns(rounded("value"), rounded("lower"), rounded("upper"))
