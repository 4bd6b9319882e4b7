"""Statistical disclosure control: the one function every published count passes through.

The NHS convention (as for HES and ECDS, and OpenSAFELY's outputs): counts of 1-7 are redacted and every
other count is rounded to the nearest 5; percentages and rates are computed from the rounded counts. A
redacted cell must not be recoverable by subtraction from a published total, so when a row or column of a
table would hold exactly one redacted entry, the next smallest entry of that line is redacted too
(secondary suppression), repeated until no line holds a lone redaction.

This works on aggregates (a few thousand cells at most), never on person-level data, so plain NumPy is the
right tool here rather than an engine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Policy:
    """A disclosure rule: redact counts from 1 to ``redact_up_to``; round the rest to ``round_to``."""

    name: str
    redact_up_to: int
    round_to: int

    @property
    def is_none(self) -> bool:
        return self.redact_up_to == 0 and self.round_to == 1


POLICIES = {
    "nhs": Policy("nhs", 7, 5),
    "ons10": Policy("ons10", 9, 5),
    "none": Policy("none", 0, 1),
}
"""``nhs`` is the default. ``ons10`` redacts counts under 10 (the ONS threshold). ``none`` publishes exact
counts and is allowed only for direct care or with an explicit, logged override (enforced by the caller)."""


@dataclass(frozen=True)
class Protected:
    """A protected two-way table: NaN marks a redacted value; the rest are rounded counts."""

    cells: npt.NDArray[np.float64]
    row_totals: npt.NDArray[np.float64]
    column_totals: npt.NDArray[np.float64]
    total: float

    def percent_of_rows(self) -> npt.NDArray[np.float64]:
        """Each cell as a percentage of its (rounded) row total; NaN where either is redacted or zero."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.row_totals[:, None] > 0, 100.0 * self.cells / self.row_totals[:, None], np.nan)


def _round(values: npt.NDArray[np.int64], base: int) -> npt.NDArray[np.float64]:
    """Round half up to the nearest multiple of ``base`` (2.5 -> 5, not banker's rounding to 0)."""
    return (np.floor(values / base + 0.5) * base).astype(np.float64)


def _secondary(hidden: npt.NDArray[np.bool_], values: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """Extend ``hidden`` (over the table with its margins) until no line has exactly one hidden entry."""
    hidden = hidden.copy()
    changed = True
    while changed:
        changed = False
        for lines, axis in ((hidden, 1), (hidden.T, 0)):
            singles = np.flatnonzero(lines.sum(axis=1) == 1)
            for index in singles:
                line = hidden[index] if axis == 1 else hidden[:, index]
                line_values = values[index] if axis == 1 else values[:, index]
                candidates = np.flatnonzero(~line)
                # The smallest published entry goes; zeros first only when nothing else is left, because
                # a zero carries no information about anyone.
                order = sorted(candidates, key=lambda j: (line_values[j] == 0, line_values[j]))
                target = order[0]
                if axis == 1:
                    hidden[index, target] = True
                else:
                    hidden[target, index] = True
                changed = True
                break
            if changed:
                break
    return hidden


def protect(counts: npt.ArrayLike, policy: Policy | str = "nhs") -> Protected:
    """Protect a two-way table of counts (rows x columns) and its margins under ``policy``."""
    rule = POLICIES[policy] if isinstance(policy, str) else policy
    cells = np.asarray(counts, dtype=np.int64)
    if cells.ndim == 1:
        cells = cells[None, :]
    if (cells < 0).any():
        raise ValueError("counts cannot be negative")
    # The full table with margins: last column = row totals, last row = column totals and the grand total.
    full = np.zeros((cells.shape[0] + 1, cells.shape[1] + 1), dtype=np.int64)
    full[:-1, :-1] = cells
    full[:-1, -1] = cells.sum(axis=1)
    full[-1, :-1] = cells.sum(axis=0)
    full[-1, -1] = cells.sum()
    if rule.is_none:
        published = full.astype(np.float64)
    else:
        hidden = _secondary((full >= 1) & (full <= rule.redact_up_to), full)
        published = np.where(hidden, np.nan, _round(full, rule.round_to))
    return Protected(published[:-1, :-1], published[:-1, -1], published[-1, :-1], float(published[-1, -1]))
