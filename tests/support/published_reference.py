"""The rule of :mod:`openphm.analytics.published` as first written, cell by cell in Python: the oracle that
holds the columnar version to the same published values (tests/test_disclosure_published.py).

Every key is a Python tuple and every cell is enrolled in a loop; at ten million people this held 12.8 GB.
The code below is the old module's, unchanged but for this docstring and its imports.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import polars as pl

from openphm.analytics.aggregates import COSTS, COUNTS, DIMENSIONS, FLAG_COUNTS, RATES, WEEKS, breakdown_name
from openphm.disclosure import Policy, round_counts, suppress

# -- cells and lines -----------------------------------------------------------------------------------------------


@dataclass
class Cells:
    """The counts of one family (e.g. people) across tables, each identified by a key and published once."""

    keys: dict[tuple[object, ...], int] = field(default_factory=dict)
    values: list[int] = field(default_factory=list)
    choosable: list[bool] = field(default_factory=list)
    hidden: list[bool] = field(default_factory=list)
    line_totals: list[npt.NDArray[np.int64]] = field(default_factory=list)
    line_children: list[npt.NDArray[np.int64]] = field(default_factory=list)
    line_tags: list[npt.NDArray[np.int64]] = field(default_factory=list)

    def add(
        self,
        keys: list[tuple[object, ...]],
        values: npt.ArrayLike,
        *,
        published: bool = True,
        hidden: npt.ArrayLike | None = None,
    ) -> npt.NDArray[np.int64]:
        """The cell id of each key; a key seen before with the same value is the same cell."""
        counts = np.asarray(values, dtype=np.int64)
        force = np.zeros(len(keys), dtype=bool) if hidden is None else np.asarray(hidden, dtype=bool)
        ids = np.empty(len(keys), dtype=np.int64)
        for i, (key, value) in enumerate(zip(keys, counts.tolist(), strict=True)):
            known = self.keys.get(key)
            if known is None or self.values[known] != value:
                known = len(self.values)
                if key not in self.keys:
                    self.keys[key] = known
                self.values.append(value)
                self.choosable.append(published)
                self.hidden.append(False)
            self.hidden[known] = self.hidden[known] or bool(force[i])
            ids[i] = known
        return ids

    def published(self, key: tuple[object, ...], value: int) -> bool:
        """Whether ``key`` is already a published cell holding ``value``."""
        known = self.keys.get(key)
        return known is not None and self.values[known] == value and self.choosable[known]

    def lines(self, totals: npt.ArrayLike, children: npt.ArrayLike, tags: npt.ArrayLike) -> None:
        """Add lines: each (total, tag) with its children; kept only where the children add up to the total."""
        self.line_totals.append(np.asarray(totals, dtype=np.int64))
        self.line_children.append(np.asarray(children, dtype=np.int64))
        self.line_tags.append(np.asarray(tags, dtype=np.int64))

    def redacted(self, policy: Policy) -> npt.NDArray[np.bool_]:
        values = np.asarray(self.values, dtype=np.int64)
        if not self.line_totals:
            return suppress(values, [], [], policy, hidden=self.hidden, choosable=self.choosable)
        edges = pl.DataFrame(
            {
                "total": np.concatenate(self.line_totals),
                "child": np.concatenate(self.line_children),
                "tag": np.concatenate(self.line_tags),
            }
        ).unique()
        edges = edges.with_columns(pl.Series("v", values[edges["child"].to_numpy()]))
        sums = edges.group_by("total", "tag").agg(pl.col("v").sum().alias("sum"))
        sums = sums.with_columns(pl.Series("t", values[sums["total"].to_numpy()]))
        exact = sums.filter(pl.col("sum") == pl.col("t")).sort("total", "tag").with_row_index("line")
        members = edges.join(exact.select("total", "tag", "line"), on=["total", "tag"], how="inner")
        line_ids = np.concatenate([members["line"].to_numpy(), exact["line"].to_numpy()])
        cells = np.concatenate([members["child"].to_numpy(), exact["total"].to_numpy()])
        return suppress(values, line_ids, cells, policy, hidden=self.hidden, choosable=self.choosable)


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
    """(total, child, tag): each area's cells with the same cell of every enclosing area."""
    children = frame.join(ancestry, on=["level", "area_code"], how="inner")
    parents = frame.select(
        pl.col("level").alias("ancestor_level"), pl.col("area_code").alias("ancestor_code"), *keys, "_id"
    )
    joined = children.select("level", "ancestor_level", "ancestor_code", *keys, pl.col("_id").alias("child")).join(
        parents.rename({"_id": "total"}), on=["ancestor_level", "ancestor_code", *keys], how="inner", nulls_equal=True
    )
    names = joined.select(pl.concat_str(pl.lit("geo:"), "level", pl.lit(">"), "ancestor_level").alias("name"))["name"]
    tags = {name: _tag(name) for name in names.unique().to_list()}
    return joined.select("total", "child", names.replace_strict(tags, return_dtype=pl.Int64).alias("tag"))


def _row_lines(name: str, frame: pl.DataFrame, ancestry: pl.DataFrame) -> pl.DataFrame:
    """The lines of a table in row numbers (`_id`): within the table and across areas."""
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
    return pl.concat([p.cast(empty.schema) for p in parts])


# -- protection ----------------------------------------------------------------------------------------------------


def _population_rows(frame: pl.DataFrame) -> list[tuple[object, ...]]:
    """The key columns of each `agg_population` row: read once, since every count column is keyed by them."""
    return frame.select("level", "area_code", "as_of", "breakdown", *DIMENSIONS).rows()


def _population_keys(rows: list[tuple[object, ...]], column: str) -> list[tuple[object, ...]]:
    return [(column, *row) for row in rows]


def _inequality_keys(frame: pl.DataFrame, column: str) -> list[tuple[object, ...]]:
    """Keys of `agg_inequality` counts; where the same count is a cell of `agg_population`/`agg_register`, its key."""
    keys: list[tuple[object, ...]] = []
    blank = dict.fromkeys(DIMENSIONS)
    for level, area, as_of, measure, group_type, group in frame.select(
        "level", "area_code", "as_of", "measure", "group_type", "group"
    ).iter_rows():
        dims = dict(blank)
        if group_type == "imd_quintile":
            dims["imd_quintile"] = int(group)
        elif group_type == "ethnic_group":
            dims["ethnic_group"] = group
        linked = group_type in ("all", "imd_quintile", "ethnic_group")
        if column == "people" and linked:
            keys.append(_population_key("people", level, area, as_of, dims))
        elif column == "events" and measure.startswith("segment:") and linked:
            dims["segment"] = measure.split(":", 1)[1]
            keys.append(_population_key("people", level, area, as_of, dims))
        elif column == "events" and measure.startswith("register:") and group_type == "all":
            keys.append(_table_key("agg_register", level, area, as_of, measure.split(":", 1)[1]))
        elif column == "events" and measure in COUNTS and linked:
            keys.append(_population_key(measure, level, area, as_of, dims))
        else:
            keys.append(
                ("inequality", column, level, area, as_of, measure if column == "events" else "", group_type, group)
            )
    return keys


def _table_key(table: str, level: str, area: str, as_of: object, item: str) -> tuple[object, ...]:
    """The key of a count of `agg_register` (item: a definition) or `agg_cohort` (a cohort)."""
    return (table, level, area, as_of, item)


def _population_key(column: str, level: str, area: str, as_of: object, dims: dict[str, object]) -> tuple[object, ...]:
    present = [d for d in DIMENSIONS if dims[d] is not None]
    return (column, level, area, as_of, breakdown_name(present), *(dims[d] for d in DIMENSIONS))


def _indexed(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame with `_id`, its row number: lines refer to rows by it."""
    return frame.drop("_id", strict=False).with_row_index("_id").with_columns(pl.col("_id").cast(pl.Int64))


def _enrol(
    family: Cells,
    frame: pl.DataFrame,
    column: str,
    keys: list[tuple[object, ...]],
    rows: pl.DataFrame,
    hidden: npt.ArrayLike | None = None,
) -> npt.NDArray[np.int64]:
    """Add a table column's counts to ``family`` with the table's lines; the cell id of each row."""
    values = frame[column].fill_null(0).cast(pl.Float64).round(0).cast(pl.Int64).to_numpy()
    cell = family.add(keys, values, hidden=hidden)
    family.lines(cell[rows["total"].to_numpy()], cell[rows["child"].to_numpy()], rows["tag"].to_numpy())
    return cell


def protect_tables(tables: dict[str, pl.DataFrame], ancestry: pl.DataFrame, policy: Policy) -> dict[str, pl.DataFrame]:
    """Every count of every aggregate table redacted or rounded under ``policy``; rates from rounded counts."""
    frames = {name: _indexed(frame) for name, frame in tables.items()}
    lines = {name: _row_lines(name, frame, ancestry) for name, frame in frames.items()}
    people = Cells()
    cells: dict[str, npt.NDArray[np.int64]] = {}
    rows = _population_rows(frames["agg_population"]) if "agg_population" in frames else []
    if "agg_population" in frames:
        frame = frames["agg_population"]
        cells["agg_population"] = _enrol(
            people, frame, "people", _population_keys(rows, "people"), lines["agg_population"]
        )
    for name, key in (("agg_register", "definition"), ("agg_cohort", "cohort")):
        if name in frames:
            frame = frames[name]
            keys = [_table_key(name, *row) for row in frame.select("level", "area_code", "as_of", key).iter_rows()]
            cells[name] = _enrol(people, frame, "people", keys, lines[name])
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
    shown = round_counts(people.values, hidden, policy)
    activity, events = _activity_counts(frames, rows, lines, cells, hidden, policy, ancestry)

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
    population_rows: list[tuple[object, ...]],
    lines: dict[str, pl.DataFrame],
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
                _population_keys(population_rows, column),
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
        published = round_counts(family.values, family.redacted(policy), policy)
        if population_ids is not None:
            activity[column] = published[population_ids]
        if inequality_ids is not None:
            events[rows] = published[inequality_ids]
    return activity, events


def _protect_monthly(frame: pl.DataFrame, rows: pl.DataFrame, policy: Policy) -> pl.DataFrame:
    """Monthly event counts: a family of their own (events, not people), protected along the segment lines of
    each month and across areas, then rounded; a redacted month is null."""
    family = Cells()
    keys = [
        ("monthly", *row)
        for row in frame.select("level", "area_code", "as_of", "month", "segment", "measure").iter_rows()
    ]
    cell = _enrol(family, frame, "value", keys, rows)
    shown = round_counts(family.values, family.redacted(policy), policy)
    return frame.with_columns(_counts(shown[cell], "value"))


def _transition_cells(people: Cells, frame: pl.DataFrame) -> npt.NDArray[np.int64]:
    """Transition counts with their margins: a real segment's margin is its cell of `agg_population`."""
    keys = [
        ("transition", *row)
        for row in frame.select(
            "level", "area_code", "from_as_of", "to_as_of", "from_segment", "to_segment"
        ).iter_rows()
    ]
    cell = people.add(keys, frame["people"].to_numpy())
    for side, (own, when) in enumerate((("from_segment", "from_as_of"), ("to_segment", "to_as_of"))):
        margins = frame.group_by("level", "area_code", "from_as_of", "to_as_of", own).agg(
            pl.col("people").sum(), pl.col("_id")
        )
        values = margins["people"].to_numpy()
        margin_ids = np.empty(margins.height, dtype=np.int64)
        for i, (level, area, from_as_of, to_as_of, segment, _count, _rows) in enumerate(margins.iter_rows()):
            dims = dict.fromkeys(DIMENSIONS)
            dims["segment"] = segment
            day = from_as_of if when == "from_as_of" else to_as_of
            key = _population_key("people", level, area, day, dims)
            # A segment's margin is its published agg_population cell; any other margin is never published but
            # treated as known (never chosen to hide).
            if not people.published(key, int(values[i])):
                key = ("transition_margin", side, level, area, from_as_of, to_as_of, segment)
            margin_ids[i] = people.add([key], values[i : i + 1], published=people.published(key, int(values[i])))[0]
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
