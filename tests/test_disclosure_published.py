"""Disclosure control of whole aggregate tables: linked breakdowns and nested areas, on random populations.

A redacted cell must not be recoverable from any published total: not from its breakdown's total over one
dimension (the rows of `agg_population` form a lattice of breakdowns) and not from its parent area (practices
within a PCN, PCNs within a sub-ICB, ...). The tables are built by the stage's own aggregation code.
"""

from __future__ import annotations

import itertools
from datetime import date
from pathlib import Path

import narwhals as nw
import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openphm.analytics.aggregates import COSTS, COUNTS, DIMENSIONS, FLAG_COUNTS, breakdown_name, population_aggregates
from openphm.analytics.published import _ancestry, protect_tables
from openphm.disclosure import POLICIES
from tests.support import published_reference as reference
from tests.support.analytics import run_stage

AS_OF = date(2025, 3, 31)
PRACTICES = {"G1": "P1", "G2": "P1", "G3": "P2"}
CELLS = list(itertools.product(PRACTICES, ("healthy", "long_term_conditions"), ("F", "M"), ("00-04", "70-74"), (1, 5)))


class _Unpersisted:
    """The one engine method the aggregation uses; plain polars frames need no materialising here."""

    def persist(self, frame: nw.LazyFrame) -> nw.LazyFrame:
        return frame


small_or_large = st.one_of(st.integers(0, 9), st.integers(0, 60))


def _population(counts: list[int], admissions: list[int]) -> pl.DataFrame:
    """`agg_population` of a micro cube with the given people and admission counts per cell."""
    practice, segment, sex, band, quintile = (list(c) for c in zip(*CELLS, strict=True))
    n = len(CELLS)
    cube = pl.DataFrame(
        {
            "as_of": [AS_OF] * n,
            "region_code": ["R1"] * n,
            "icb_code": ["I1"] * n,
            "sub_icb_code": ["S1"] * n,
            "pcn_code": [PRACTICES[p] for p in practice],
            "practice_code": practice,
            "segment": segment,
            "need_tier": [4] * n,
            "age_band": band,
            "sex": sex,
            "imd_quintile": quintile,
            "ethnic_group": ["White" if q == 1 else "Asian" for q in quintile],
            "imd_decile": [2 * q for q in quintile],
            "people": counts,
            **{
                c: [min(a, p) if c == "emergency_admissions" else 0 for a, p in zip(admissions, counts, strict=True)]
                for c in COUNTS
            },
            "maternal": [p // 3 for p in counts],
            "social_care_weeks": [0.5 * p for p in counts],
            **{c: [10.0 * p for p in counts] for c in COSTS},
        }
    ).filter(pl.col("people") > 0)
    names = nw.from_native(
        pl.DataFrame({"level": ["national"], "area_code": ["E92000001"], "area_name": ["England"]}).lazy()
    )
    frame = population_aggregates(_Unpersisted(), nw.from_native(cube.lazy()), names, True, True)  # type: ignore[arg-type]
    return nw.to_native(frame.collect(backend="polars"))


PRACTICE_TABLE = pl.DataFrame(
    {
        "practice_code": list(PRACTICES),
        "pcn_code": list(PRACTICES.values()),
        "sub_icb_code": ["S1"] * 3,
        "icb_code": ["I1"] * 3,
        "region_code": ["R1"] * 3,
    }
)


def _lines(exact: pl.DataFrame) -> list[list[int]]:
    """Row numbers of every line: a breakdown row's children over one dimension with it; areas within a parent."""
    frame = exact.with_row_index("_i")
    lines: list[list[int]] = []
    for name in frame["breakdown"].unique():
        dims = [] if name == "total" else name.split("+")
        for d in dims:
            rest = [x for x in dims if x != d]
            parents = frame.filter(pl.col("breakdown") == breakdown_name(rest))
            children = frame.filter(pl.col("breakdown") == name)
            for parent in parents.iter_rows(named=True):
                match = children.filter(pl.col("level") == parent["level"], pl.col("area_code") == parent["area_code"])
                for r in rest:
                    match = match.filter(pl.col(r) == parent[r])
                lines.append([parent["_i"], *match["_i"]])
    parent_of = {("practice", p): ("pcn", c) for p, c in PRACTICES.items()} | {
        ("pcn", "P1"): ("sub_icb", "S1"),
        ("pcn", "P2"): ("sub_icb", "S1"),
    }
    keyed = {
        (r["level"], r["area_code"], r["breakdown"], *(r[d] for d in DIMENSIONS)): r["_i"]
        for r in frame.iter_rows(named=True)
    }
    groups: dict[tuple[object, ...], list[int]] = {}
    for key, index in keyed.items():
        if (key[0], key[1]) in parent_of:
            parent = (*parent_of[(key[0], key[1])], *key[2:])
            groups.setdefault(parent, []).append(index)
    lines += [[keyed[parent], *children] for parent, children in groups.items() if parent in keyed]
    return lines


@settings(max_examples=25, deadline=None)
@given(
    st.lists(small_or_large, min_size=len(CELLS), max_size=len(CELLS)),
    st.lists(st.integers(0, 9), min_size=len(CELLS), max_size=len(CELLS)),
    st.sampled_from(["nhs", "ons10"]),
)
def test_published_aggregates_hide_small_counts_round_the_rest_and_leave_nothing_recoverable(
    counts: list[int], admissions: list[int], policy: str
) -> None:
    exact = _population(counts, admissions)
    protected = protect_tables({"agg_population": exact}, _ancestry(PRACTICE_TABLE, [exact]), POLICIES[policy])[
        "agg_population"
    ]
    assert protected.select("level", "area_code", "breakdown").equals(exact.select("level", "area_code", "breakdown"))
    threshold = POLICIES[policy].redact_up_to
    for column in ("people", "emergency_admissions"):
        shown = protected[column].drop_nulls().to_numpy()
        assert not ((shown >= 1) & (shown <= threshold)).any(), column
        assert (shown % 5 == 0).all(), column
        true = exact[column].to_numpy()
        assert protected[column].is_null().to_numpy()[(true >= 1) & (true <= threshold)].all(), column
        hidden = protected[column].is_null().to_numpy()
        for line in _lines(exact):
            assert hidden[line].sum() != 1, (column, line)
    # Costs, rates and cost per head are never shown where the people count is hidden.
    people_hidden = protected["people"].is_null()
    assert protected.filter(people_hidden)["cost_total"].null_count() == int(people_hidden.sum())
    rates = protected.filter(~people_hidden & protected["emergency_admissions"].is_not_null())
    expected = 1000 * rates["emergency_admissions"] / rates["people"]
    assert np.allclose(rates["emergency_admissions_per_1000"].to_numpy(), expected.to_numpy(), equal_nan=True)


def test_every_table_of_a_run_is_protected_and_transition_margins_are_linked(tmp_path: Path) -> None:
    """All tables of the stage on hand-made data: no count of 1-7 anywhere; a transition row or column never
    holds a lone redaction when its margin (a segment's people in agg_population) is published."""
    exact = {name: frame for name, frame in run_stage(tmp_path, "polars").items() if name.startswith("agg_")}
    out = protect_tables(exact, _ancestry(PRACTICE_TABLE, exact.values()), POLICIES["nhs"])
    assert sorted(out) == sorted(exact)
    for name, frame in out.items():
        assert frame.height == exact[name].height, name
        for column in ("people", "events", "population", *COUNTS, *FLAG_COUNTS):
            if column in frame.columns and not (name == "agg_inequality" and column == "events"):
                shown = frame[column].drop_nulls().cast(pl.Float64).to_numpy()
                assert not ((shown >= 1) & (shown <= 7)).any(), (name, column)
                assert (shown % 5 == 0).all(), (name, column)
    counted = out["agg_inequality"].filter(pl.col("measure_kind") != "cost")["events"].drop_nulls().to_numpy()
    assert not ((counted >= 1) & (counted <= 7)).any()
    segments = (
        out["agg_population"]
        .filter(breakdown="segment")
        .select("level", "area_code", "as_of", "segment", pl.col("people").alias("margin"))
    )
    moves = out["agg_transition"]
    for own, when in (("from_segment", "from_as_of"), ("to_segment", "to_as_of")):
        lines = moves.group_by("level", "area_code", "from_as_of", "to_as_of", own).agg(
            pl.col("people").is_null().sum().alias("hidden")
        )
        lines = lines.join(
            segments.rename({"as_of": when, "segment": own}), on=["level", "area_code", when, own], how="inner"
        )
        lonely = lines.filter((pl.col("hidden") + pl.col("margin").is_null().cast(pl.UInt32)) == 1)
        assert lonely.height == 0, lonely
    # One count, one published value, whichever table shows it.
    inequality = out["agg_inequality"]
    totals = out["agg_population"].filter(breakdown="total").select("level", "area_code", "as_of", "people")
    whole = inequality.filter(group_type="all").select("level", "area_code", "as_of", "people").unique()
    linked = whole.join(totals, on=["level", "area_code", "as_of"], suffix="_population")
    assert linked.height > 0 and linked.filter(~pl.col("people").eq_missing(pl.col("people_population"))).height == 0
    prevalence = inequality.filter(group_type="all").filter(
        pl.col("measure").is_in(["register:diabetes", "register:epilepsy"])
    )
    prevalence = prevalence.select(
        "level", "area_code", "as_of", pl.col("measure").str.slice(9).alias("definition"), "events"
    )
    register = out["agg_register"].select("level", "area_code", "as_of", "definition", "people")
    linked = prevalence.join(register, on=["level", "area_code", "as_of", "definition"])
    assert linked.height > 0 and linked["events"].null_count() > 0  # a rare register has hidden cells
    assert linked.filter(~pl.col("events").eq_missing(pl.col("people").cast(pl.Float64))).height == 0
    # Costs and standardised rates are never shown for a hidden group.
    assert inequality.filter(pl.col("people").is_null() & pl.col("dsr").is_not_null()).height == 0
    assert inequality.filter(~pl.col("reliable") & pl.col("dsr").is_not_null()).height == 0


def test_a_count_shown_in_two_tables_is_one_cell(tmp_path: Path) -> None:
    """The keys that make a count one cell: a group's people in agg_inequality is the agg_population cell of the
    same breakdown; a segment's or register's numerator is the agg_population / agg_register count."""
    from openphm.analytics.published import KEY, _inequality_keys, _population_keys, _table_keys

    exact = run_stage(tmp_path, "polars")
    population = exact["agg_population"]
    cells = _population_keys(population, "people").with_columns(population["people"].alias("_shown"))
    register = exact["agg_register"]
    registers = _table_keys(register, "agg_register", "definition").with_columns(register["people"].alias("_shown"))
    known = pl.concat(
        [cells.with_columns(_table=pl.lit("population")), registers.with_columns(_table=pl.lit("register"))]
    )
    assert known.select(list(KEY)).is_unique().all()
    inequality = exact["agg_inequality"].filter(pl.col("measure_kind") == "people")
    linked = {"people": 0, "segment": 0, "register": 0}
    for column in ("people", "events"):
        keys = _inequality_keys(inequality, column).with_columns(
            inequality[column].cast(pl.Int64).alias("_count"),
            inequality["group_type"].alias("_group_type"),
            inequality["measure"].alias("_measure"),
        )
        matched = keys.join(known, on=list(KEY), how="left", nulls_equal=True)
        assert matched.height == keys.height
        found = matched.filter(pl.col("_table").is_not_null())
        assert found.filter(pl.col("_shown") != pl.col("_count")).height == 0  # the same count, so one cell
        counts = found["_table"].value_counts()
        for table, n in counts.iter_rows():
            linked["register" if table == "register" else "people" if column == "people" else "segment"] += n
        # Otherwise counts only this table shows, or a zero that no other table lists.
        alone = matched.filter(pl.col("_table").is_null())
        own = (pl.col("kind") == "inequality") & pl.col("_group_type").is_in(["imd_decile", "core20"])
        assert alone.filter(
            ~own & (pl.col("_count") != 0) & ~pl.col("_measure").str.starts_with("register:")
        ).is_empty()
    assert all(n > 0 for n in linked.values()), linked


def _same(new: dict[str, pl.DataFrame], old: dict[str, pl.DataFrame]) -> None:
    """The same tables, value for value (nulls and NaNs where the other has them)."""
    assert sorted(new) == sorted(old)
    for name, frame in new.items():
        assert frame.schema == old[name].schema, name
        assert frame.equals(old[name], null_equal=True), name


@settings(max_examples=40, deadline=None)
@given(
    st.lists(small_or_large, min_size=len(CELLS), max_size=len(CELLS)),
    st.lists(st.integers(0, 9), min_size=len(CELLS), max_size=len(CELLS)),
    st.sampled_from(["nhs", "ons10"]),
)
def test_columnar_cells_publish_what_the_cell_by_cell_rule_published(
    counts: list[int], admissions: list[int], policy: str
) -> None:
    """The columnar cells and keys against the rule as first written (tuples and a loop per cell)."""
    exact = {"agg_population": _population(counts, admissions)}
    ancestry = _ancestry(PRACTICE_TABLE, exact.values())
    _same(
        protect_tables(exact, ancestry, POLICIES[policy]), reference.protect_tables(exact, ancestry, POLICIES[policy])
    )


@pytest.fixture(scope="module")
def stage_tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pl.DataFrame]:
    tables = run_stage(tmp_path_factory.mktemp("stage"), "polars")
    return {name: frame for name, frame in tables.items() if name.startswith("agg_")}


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([0.0, 0.05, 0.3]), st.sampled_from(["nhs", "ons10"]))
def test_every_table_publishes_what_the_cell_by_cell_rule_published(
    stage_tables: dict[str, pl.DataFrame], seed: int, share: float, policy: str
) -> None:
    """Every table of a run, with a random share of its counts replaced by small ones: totals that no longer add
    up, a count two tables share that now differs (two cells under one key), many lone small cells."""
    rng = np.random.default_rng(seed)
    exact = {}
    for name, frame in stage_tables.items():
        changed = []
        for column in ("people", "events", "value", *COUNTS, *FLAG_COUNTS):
            if column in frame.columns:
                hit = pl.Series(rng.random(frame.height) < share)
                small = pl.Series(rng.integers(0, 12, frame.height))
                changed.append(
                    pl.when(hit).then(small).otherwise(pl.col(column)).cast(frame[column].dtype).alias(column)
                )
        exact[name] = frame.with_columns(changed)
    ancestry = _ancestry(PRACTICE_TABLE, exact.values())
    _same(
        protect_tables(exact, ancestry, POLICIES[policy]), reference.protect_tables(exact, ancestry, POLICIES[policy])
    )
