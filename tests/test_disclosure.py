"""Disclosure control: properties that must hold for every table, and hand-worked cases."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from openphm.disclosure import POLICIES, Protected, protect, suppress
from openphm.disclosure.control import sorted_unique

counts = st.one_of(st.integers(0, 12), st.integers(0, 2000))
tables = st.tuples(st.integers(1, 6), st.integers(1, 6)).flatmap(lambda shape: arrays(np.int64, shape, elements=counts))


def _full(p: Protected) -> np.ndarray:
    """The protected table with its margins, as one array."""
    top = np.column_stack([p.cells, p.row_totals])
    return np.vstack([top, np.append(p.column_totals, p.total)])


@settings(max_examples=400, deadline=None)
@given(tables)
def test_no_published_count_is_1_to_7_and_every_count_is_a_multiple_of_5(table: np.ndarray) -> None:
    published = _full(protect(table))
    shown = published[~np.isnan(published)]
    assert not ((shown >= 1) & (shown <= 7)).any()
    assert (shown % 5 == 0).all()


@settings(max_examples=400, deadline=None)
@given(tables)
def test_no_redacted_cell_is_alone_in_its_row_or_column(table: np.ndarray) -> None:
    """A lone redaction in a line with its total published could be recovered by subtraction."""
    hidden = np.isnan(_full(protect(table)))
    assert not (hidden.sum(axis=1) == 1).any()
    assert not (hidden.sum(axis=0) == 1).any()


@settings(max_examples=200, deadline=None)
@given(tables)
def test_every_small_true_count_is_redacted(table: np.ndarray) -> None:
    p = protect(table)
    small = (table >= 1) & (table <= 7)
    assert np.isnan(p.cells[small]).all()


def test_hand_worked_table() -> None:
    p = protect([[3, 40, 57], [20, 22, 100]])
    # 3 is redacted; its row would then hold one redaction, so the next smallest (40) goes too; the column of 3
    # would hold one, so its smallest other entry (20) goes; that row then needs a second: 22.
    assert np.isnan(p.cells).tolist() == [[True, True, False], [True, True, False]]
    assert p.cells[0, 2] == 55 and p.cells[1, 2] == 100
    assert p.row_totals.tolist() == [100.0, 140.0] and p.total == 240.0
    assert p.column_totals.tolist() == [25.0, 60.0, 155.0]


def test_rounding_is_half_up_and_percentages_use_rounded_counts() -> None:
    p = protect([[12, 13, 30]])
    assert p.cells.tolist() == [[10.0, 15.0, 30.0]] and p.row_totals.tolist() == [55.0]
    assert np.allclose(p.percent_of_rows(), [[100 * 10 / 55, 100 * 15 / 55, 100 * 30 / 55]])


def test_presets() -> None:
    assert np.isnan(protect([[9, 100]], "ons10").cells[0, 0])
    assert protect([[9, 100]], "nhs").cells[0, 0] == 10.0
    assert protect([[3, 4]], "none").cells.tolist() == [[3.0, 4.0]]


def _suppress_by_rounds(values, lines, cells, hidden, may) -> np.ndarray:  # type: ignore[no-untyped-def]
    """The rule as first written: every round recounts every line (the oracle for the incremental version)."""
    rule = POLICIES["nhs"]
    value = np.asarray(values, dtype=np.int64)
    redact = hidden.copy() | ((value >= 1) & (value <= rule.redact_up_to))
    order = np.lexsort((cells, value[cells], value[cells] == 0, lines))
    lines, cells = lines[order], cells[order]
    while True:
        per_line = np.bincount(lines, weights=redact[cells], minlength=int(lines.max()) + 1)
        lone = (per_line[lines] == 1) & ~redact[cells] & may[cells]
        if not lone.any():
            return redact
        _, first = np.unique(lines[lone], return_index=True)
        redact[cells[np.flatnonzero(lone)[first]]] = True


@st.composite
def line_sets(draw: st.DrawFn) -> tuple[np.ndarray, ...]:
    """Random cells and random overlapping lines (members may repeat), with hidden and unchoosable cells."""
    n = draw(st.integers(1, 40))
    values = np.array(draw(st.lists(counts, min_size=n, max_size=n)), dtype=np.int64)
    members = draw(st.lists(st.tuples(st.integers(0, 15), st.integers(0, n - 1)), min_size=1, max_size=120))
    lines = np.array([line for line, _ in members], dtype=np.int64)
    cells = np.array([cell for _, cell in members], dtype=np.int64)
    hidden = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool) & (values % 3 == 0)
    may = ~(np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool) & (values % 4 == 0))
    return values, lines, cells, hidden, may


@settings(max_examples=500, deadline=None)
@given(line_sets())
def test_secondary_suppression_redacts_exactly_what_recounting_every_line_each_round_does(
    case: tuple[np.ndarray, ...],
) -> None:
    values, lines, cells, hidden, may = case
    expected = _suppress_by_rounds(values, lines, cells, hidden, may)
    got = suppress(values, lines, cells, "nhs", hidden=hidden, choosable=may)
    assert np.array_equal(got, expected)


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        arrays(np.int64, st.integers(0, 300), elements=st.integers(-(2**63), 2**63 - 1)),
        arrays(np.int64, st.integers(0, 300), elements=st.integers(-3, 3)),
        arrays(np.uint64, st.integers(0, 300), elements=st.integers(0, 2**64 - 1)),
    )
)
def test_sorted_unique_is_numpys_unique(values: np.ndarray) -> None:
    """The sort-based distinct values that disclosure control uses instead of np.unique (for speed) are np.unique's."""
    got = sorted_unique(values)
    assert got.dtype == values.dtype
    assert np.array_equal(got, np.unique(values))
