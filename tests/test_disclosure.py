"""Disclosure control: properties that must hold for every table, and hand-worked cases."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from openphm.analytics.disclosure import Protected, protect

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
