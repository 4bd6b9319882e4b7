"""Statistical process control: NHS "Making Data Count" XmR charts of a monthly measure.

An XmR (individuals) chart asks whether the latest months differ from the process's own past: the centre is
the mean, the process limits sit at mean +/- 2.66 x the mean moving range (3 / d2, d2 = 1.128 for ranges of
two points), and four rules flag special-cause variation:

1. a point beyond a process limit;
2. a shift: ``shift_points`` (7) consecutive points on one side of the mean (a point on the mean breaks it);
3. a trend: ``trend_points`` (7) consecutive points each higher (or each lower) than the one before
   (a tie breaks it);
4. two of three consecutive points beyond two sigma (mean +/- 2/3 x 2.66 x mean moving range), all three on
   the same side of the mean.

Where rules overlap a point takes the first of: beyond a limit, trend, two in three, shift. Its direction
(high or low) is then read against the measure's improvement direction (increase, decrease or neutral).

Two rule profiles are offered because the two reference tools differ (see ``docs/analytics.md``):

- ``nhsr``: NHSRplotthedots 0.2.2, the R package the tests are checked against. Moving ranges of 3.267 x
  their mean or more are screened out before the limits are computed, and the two-in-three rule counts only
  points between two and three sigma.
- ``mdc_excel``: NHS England's Making Data Count Excel tool: no screening, and since November 2023 the
  two-in-three rule counts points beyond three sigma too.

The series are a few dozen months of one area, so this works on plain sequences in NumPy; the monthly
counts it reads have already passed disclosure control.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

LIMIT = 2.66
"""3 / d2 with d2 = 1.128, the bias constant for moving ranges of two points."""
NEAR_LIMIT = 2 * LIMIT / 3
"""Two sigma: the band of the two-in-three rule."""
SCREEN = 3.267
"""D4 for ranges of two points: a moving range of this many times the mean is screened out (``nhsr``)."""
MINIMUM_POINTS = 13
"""Fewer points than this give limits too unstable to judge: both reference tools warn or show none."""

Improvement = Literal["increase", "decrease", "neutral"]
SpecialCause = Literal[
    "common_cause",
    "above_upper_limit",
    "below_lower_limit",
    "trend_increasing",
    "trend_decreasing",
    "two_in_three_above",
    "two_in_three_below",
    "shift_above",
    "shift_below",
]
PointType = Literal[
    "common_cause",
    "special_cause_improvement",
    "special_cause_concern",
    "special_cause_neutral_high",
    "special_cause_neutral_low",
]
Assurance = Literal["consistent_pass", "consistent_fail", "inconsistent"]


@dataclass(frozen=True)
class Rules:
    """A rule profile: how limits are computed and which points the rules count."""

    name: str
    screen_outliers: bool
    """Drop moving ranges of at least ``SCREEN`` x their mean before computing the limits."""
    two_in_three_beyond_limits: bool
    """Count points beyond three sigma in the two-in-three rule (Making Data Count since November 2023)."""
    shift_points: int = 7
    trend_points: int = 7


PROFILES = {
    "nhsr": Rules("nhsr", screen_outliers=True, two_in_three_beyond_limits=False),
    "mdc_excel": Rules("mdc_excel", screen_outliers=False, two_in_three_beyond_limits=True),
}


@dataclass(frozen=True)
class XmRChart:
    """One XmR chart: the limits, a special cause and a point type for every point, the icons' states."""

    values: tuple[float, ...]
    mean: float
    lower_limit: float
    upper_limit: float
    lower_near: float
    upper_near: float
    special_cause: tuple[SpecialCause, ...]
    point_type: tuple[PointType, ...]
    variation: PointType
    """The variation icon: the last point's type."""
    assurance: Assurance | None
    """The assurance icon: where the target sits against the limits (None without a target or direction)."""
    enough_points: bool
    """At least ``MINIMUM_POINTS`` points: with fewer, show the points but not the limits or icons."""
    rules: str


def xmr(
    values: Sequence[float],
    *,
    improvement: Improvement = "neutral",
    rules: str = "nhsr",
    fix_after: int | None = None,
    target: float | None = None,
) -> XmRChart:
    """The XmR chart of ``values`` in time order.

    ``fix_after`` computes the mean and limits from the first n points only (a baseline; at least 12), as both
    reference tools allow. ``target`` adds the assurance icon. Every value must be a finite number: a month
    whose count was suppressed has no place on a chart of its area.
    """
    if rules not in PROFILES:
        raise ValueError(f"unknown SPC rules {rules!r}: use one of {', '.join(PROFILES)}")
    if improvement not in ("increase", "decrease", "neutral"):
        raise ValueError(f"improvement must be increase, decrease or neutral, not {improvement!r}")
    if fix_after is not None and fix_after < 12:
        raise ValueError("fix_after must be at least 12 points")
    profile = PROFILES[rules]
    y = np.asarray(values, dtype=float)
    if y.ndim != 1 or not np.isfinite(y).all():
        raise ValueError("an XmR chart needs a sequence of finite numbers")
    if y.size == 0:
        raise ValueError("an XmR chart needs at least one point")

    baseline = y if fix_after is None else y[:fix_after]
    mean = float(baseline.mean())
    ranges = np.abs(np.diff(baseline))
    mean_range = float(ranges.mean()) if ranges.size else 0.0
    if profile.screen_outliers and ranges.size:
        kept = ranges[ranges < SCREEN * mean_range]
        mean_range = float(kept.mean()) if kept.size else 0.0
    lower, upper = mean - LIMIT * mean_range, mean + LIMIT * mean_range
    lower_near, upper_near = mean - NEAR_LIMIT * mean_range, mean + NEAR_LIMIT * mean_range

    side = np.sign(y - mean).astype(int)
    outside = (y > upper) | (y < lower)
    near = (y > upper_near) | (y < lower_near)
    if not profile.two_in_three_beyond_limits:
        near &= ~outside
    special = _special_causes(y, side, outside, near, profile)
    direction = {"increase": 1, "decrease": -1, "neutral": 0}[improvement]
    types = tuple(_point_type(cause, direction) for cause in special)
    return XmRChart(
        values=tuple(float(v) for v in y),
        mean=mean,
        lower_limit=lower,
        upper_limit=upper,
        lower_near=lower_near,
        upper_near=upper_near,
        special_cause=special,
        point_type=types,
        variation=types[-1],
        assurance=_assurance(target, lower, upper, direction),
        enough_points=y.size >= MINIMUM_POINTS,
        rules=profile.name,
    )


def _runs(flags: npt.NDArray[np.bool_], length: int) -> npt.NDArray[np.bool_]:
    """Mark every point that belongs to a window of ``length`` consecutive points all flagged."""
    n = flags.size
    member = np.zeros(n, dtype=bool)
    if n < length:
        return member
    windows = np.lib.stride_tricks.sliding_window_view(flags, length).all(axis=1)
    for start in np.flatnonzero(windows):
        member[start : start + length] = True
    return member


def _special_causes(
    y: npt.NDArray[np.float64],
    side: npt.NDArray[np.int_],
    outside: npt.NDArray[np.bool_],
    near: npt.NDArray[np.bool_],
    rules: Rules,
) -> tuple[SpecialCause, ...]:
    n = y.size
    steps = np.sign(np.diff(y)).astype(int)
    # A trend of k points is k - 1 steps of one sign; every one of the k points belongs to it.
    trend = np.zeros(n, dtype=bool)
    k = rules.trend_points
    if n >= k:
        window = np.lib.stride_tricks.sliding_window_view(steps, k - 1)
        for start in np.flatnonzero((window > 0).all(axis=1) | (window < 0).all(axis=1)):
            trend[start : start + k] = True
    # A point inside a trend takes the direction of the step after it; the last point of one, the step before.
    after = np.concatenate([steps, [0]])
    before = np.concatenate([[0], steps])
    rising = np.where(trend & np.concatenate([trend[1:], [False]]), after, before) > 0
    shift = _runs(side > 0, rules.shift_points) | _runs(side < 0, rules.shift_points)
    two = _two_in_three(near & (side > 0), side > 0) | _two_in_three(near & (side < 0), side < 0)

    causes: list[SpecialCause] = []
    for i in range(n):
        high = side[i] > 0
        if outside[i]:
            causes.append("above_upper_limit" if high else "below_lower_limit")
        elif trend[i]:
            causes.append("trend_increasing" if rising[i] else "trend_decreasing")
        elif two[i]:
            causes.append("two_in_three_above" if high else "two_in_three_below")
        elif shift[i]:
            causes.append("shift_above" if high else "shift_below")
        else:
            causes.append("common_cause")
    return tuple(causes)


def _two_in_three(near_side: npt.NDArray[np.bool_], on_side: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """Points beyond two sigma that are two of a window of three, all three on that side of the mean."""
    n = near_side.size
    hit = np.zeros(n, dtype=bool)
    if n < 3:
        return hit
    counts = np.lib.stride_tricks.sliding_window_view(near_side, 3).sum(axis=1)
    same = np.lib.stride_tricks.sliding_window_view(on_side, 3).all(axis=1)
    for start in np.flatnonzero((counts >= 2) & same):
        hit[start : start + 3] |= near_side[start : start + 3]
    return hit


def _point_type(cause: SpecialCause, direction: int) -> PointType:
    if cause == "common_cause":
        return "common_cause"
    high = cause in ("above_upper_limit", "trend_increasing", "two_in_three_above", "shift_above")
    if direction == 0:
        return "special_cause_neutral_high" if high else "special_cause_neutral_low"
    return "special_cause_improvement" if (1 if high else -1) * direction > 0 else "special_cause_concern"


def _assurance(target: float | None, lower: float, upper: float, direction: int) -> Assurance | None:
    """Will the process meet the target? Only when the whole band between the limits is on one side of it."""
    if target is None or direction == 0:
        return None
    if target > upper:
        return "consistent_fail" if direction > 0 else "consistent_pass"
    if target < lower:
        return "consistent_pass" if direction > 0 else "consistent_fail"
    return "inconsistent"
