"""XmR charts against the worked examples of NHSRplotthedots 0.2.2 (MIT; nhs-r-community, commit 050b07d).

The limits come from its snapshot tests (tests/testthat/_snaps/ptd_spc_standard.md and ptd_spc.md): R's
``set.seed(123); rnorm(20)``, written out below, with and without a planted outlier, whole and in two facets
of ten. The rule cases are its unit cases for each rule (tests/testthat/test-ptd_calculate_point_type.R),
turned into series that trigger the rule on the points it marks.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openphm.analytics.spc import MINIMUM_POINTS, xmr

# R 4.x: set.seed(123); rnorm(20)
RNORM_123 = [
    -0.56047565, -0.23017749, 1.55870831, 0.07050839, 0.12928774, 1.71506499, 0.46091621, -1.26506123,
    -0.68685285, -0.44566197, 1.22408180, 0.35981383, 0.40077145, 0.11068272, -0.55584113, 1.78691314,
    0.49785048, -1.96661716, 0.70135590, -0.47279141,
]  # fmt: skip


def test_limits_match_the_reference_with_screening() -> None:
    chart = xmr(RNORM_123, rules="nhsr", improvement="increase")
    assert chart.mean == pytest.approx(0.1416238, abs=1e-7)
    assert chart.lower_limit == pytest.approx(-3.01138, abs=1e-5)
    assert chart.upper_limit == pytest.approx(3.294627, abs=1e-6)
    assert set(chart.point_type) == {"common_cause"}  # the summary's 20 common-cause points
    assert chart.variation == "common_cause"


def test_an_outlier_is_screened_out_of_the_limits_only_under_the_nhsr_rules() -> None:
    planted = list(RNORM_123)
    planted[14] = 10.0  # R's data$y[15] <- 10
    screened = xmr(planted, rules="nhsr")
    assert screened.mean == pytest.approx(0.6694159, abs=1e-7)
    assert (screened.lower_limit, screened.upper_limit) == (
        pytest.approx(-2.383666, abs=1e-6),
        pytest.approx(3.722497, abs=1e-6),
    )
    unscreened = xmr(planted, rules="mdc_excel")
    assert (unscreened.lower_limit, unscreened.upper_limit) == (
        pytest.approx(-4.596625, abs=1e-6),
        pytest.approx(5.935457, abs=1e-6),
    )
    assert screened.special_cause[14] == unscreened.special_cause[14] == "above_upper_limit"


@pytest.mark.parametrize(
    ("facet", "mean", "lower", "upper"),
    [(slice(0, 10), 0.0746, -2.60, 2.75), (slice(10, 20), 0.209, -3.28, 3.70)],
)
def test_each_facet_gets_its_own_limits(facet: slice, mean: float, lower: float, upper: float) -> None:
    chart = xmr(RNORM_123[facet], rules="nhsr")
    assert (round(chart.mean, 4 if mean < 0.1 else 3), round(chart.lower_limit, 2), round(chart.upper_limit, 2)) == (
        mean,
        lower,
        upper,
    )
    assert not chart.enough_points  # 10 points: the reference warns; we show no limits or icons


def test_two_close_points_on_opposite_sides_are_common_cause() -> None:
    """The reference's own regression case: alternating data with +5.5 and -5.5 at the end."""
    data = [1.0, -1.0] * 8
    data[14], data[15] = 5.5, -5.5
    chart = xmr(data, improvement="increase")
    assert chart.point_type[-2:] == ("common_cause", "common_cause")


def _flat(n: int) -> list[float]:
    """A series that sits on its mean with moving ranges wide enough to keep every rule quiet."""
    return [10.0 + (1.0 if i % 2 else -1.0) for i in range(n)]


def test_seven_points_on_one_side_is_a_shift_and_six_is_not() -> None:
    base = _flat(20)
    seven = base[:7] + [10.5] * 7 + base[14:]
    six = base[:7] + [10.5] * 6 + [9.0] + base[14:]
    assert xmr(seven).special_cause[7:14] == ("shift_above",) * 7
    assert "shift_above" not in xmr(six).special_cause


def test_a_point_on_the_mean_breaks_a_shift() -> None:
    values = [9.0] * 3 + [11.0] * 3 + [10.0] + [11.0] * 3 + [9.0] * 3
    chart = xmr(values)
    assert chart.mean == 10.0
    assert not any(c.startswith("shift") for c in chart.special_cause)


@pytest.mark.parametrize(
    ("segment", "marked"),
    [
        ([1, 2, 3, 4, 5, 6, 7], list(range(7))),  # 1:7
        ([2, 1, 2, 3, 4, 5, 6, 7, 3], list(range(1, 8))),  # c(2, 1:7, 3)
        ([1, 2, 3, 3, 4, 5, 6], []),  # c(1:3, 3:6): a tie breaks the trend
        ([1, 2, 3, 4, 5, 6], []),  # 1:6
    ],
)
def test_seven_point_trends(segment: list[int], marked: list[int]) -> None:
    """Each case sits between wide alternating padding, so no limit or shift rule fires on it."""
    pad = [-1.0, 9.0] * 5
    values = [*pad, *(float(v) for v in segment), *pad]
    rising = xmr(values, rules="nhsr").special_cause
    assert [i - len(pad) for i, c in enumerate(rising) if c == "trend_increasing"] == marked
    assert "trend_decreasing" not in rising
    falling = xmr([-v for v in values], rules="nhsr").special_cause
    assert [i - len(pad) for i, c in enumerate(falling) if c == "trend_decreasing"] == marked


def _with_close_points(close: list[int], sides: list[int]) -> list[float]:
    """A 12-point baseline (mean 10, limits 10 +/- 5.32, two sigma 10 +/- 3.55), then points beyond two sigma
    (``close``) or just off the mean, on the given sides."""
    base = [9.0, 11.0] * 6
    return base + [10.0 + s * (4.5 if c else 0.5) for c, s in zip(close, sides, strict=True)]


@pytest.mark.parametrize(
    ("close", "sides", "marked"),
    [
        ([1, 0, 1], [1, 1, 1], [1, 0, 1]),
        ([0, 1, 1], [1, 1, 1], [0, 1, 1]),
        ([0, 0, 1, 0, 1, 0, 0], [1] * 7, [0, 0, 1, 0, 1, 0, 0]),
        ([1, 0, 0, 1], [1] * 4, [0, 0, 0, 0]),
        ([1, 0, 0, 1, 1], [1] * 5, [0, 0, 0, 1, 1]),
        ([1, 0, 1], [1, -1, 1], [0, 0, 0]),  # all three must be on one side
    ],
)
def test_two_in_three_beyond_two_sigma(close: list[int], sides: list[int], marked: list[int]) -> None:
    values = _with_close_points(close, sides)
    chart = xmr(values, rules="nhsr", fix_after=12)
    tail = values[-len(close) :]
    for value, c, s in zip(tail, close, sides, strict=True):  # the case is what it says
        assert (value > chart.mean) == (s > 0)
        band = chart.upper_near < value < chart.upper_limit or chart.lower_limit < value < chart.lower_near
        assert band == bool(c)
    causes = chart.special_cause[-len(close) :]
    assert [int(t.startswith("two_in_three")) for t in causes] == marked


def test_point_types_follow_the_improvement_direction() -> None:
    values = [*_flat(19), 30.0]
    assert xmr(values, improvement="increase").variation == "special_cause_improvement"
    assert xmr(values, improvement="decrease").variation == "special_cause_concern"
    assert xmr(values, improvement="neutral").variation == "special_cause_neutral_high"


def test_precedence_outside_then_trend_then_two_in_three_then_shift() -> None:
    rising = [10.0, 9.0, 11.0, 9.5, 10.5, 9.0, 11.0, 9.5, 10.5, 10.0, 10.1, 10.2, 10.3, 10.4, 10.5, 10.6, 40.0]
    chart = xmr(rising)
    assert chart.special_cause[-1] == "above_upper_limit"
    assert chart.special_cause[-7:-1] == ("trend_increasing",) * 6


def test_assurance_compares_the_target_with_the_limits() -> None:
    values = _flat(20)
    assert xmr(values, improvement="increase", target=20.0).assurance == "consistent_fail"
    assert xmr(values, improvement="decrease", target=20.0).assurance == "consistent_pass"
    assert xmr(values, improvement="increase", target=0.0).assurance == "consistent_pass"
    assert xmr(values, improvement="increase", target=10.0).assurance == "inconsistent"
    assert xmr(values, improvement="neutral", target=10.0).assurance is None
    assert xmr(values, improvement="increase").assurance is None


def test_a_baseline_fixes_the_limits_on_the_first_points() -> None:
    values = _flat(12) + [20.0] * 8
    fixed = xmr(values, fix_after=12)
    assert fixed.mean == 10.0
    assert fixed.special_cause[12:] == ("above_upper_limit",) * 8
    assert xmr(values).mean > 10.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"values": [1.0, float("nan")]}, "finite"),
        ({"values": []}, "at least one"),
        ({"values": [1.0], "rules": "excel"}, "unknown SPC rules"),
        ({"values": [1.0] * 20, "fix_after": 5}, "at least 12"),
        ({"values": [1.0], "improvement": "up"}, "improvement"),
    ],
)
def test_bad_arguments_say_what_is_wrong(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        xmr(**kwargs)  # type: ignore[arg-type]  # deliberately wrong types


@given(st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=1, max_size=60))
def test_every_point_gets_one_cause_and_the_limits_straddle_the_mean(values: list[float]) -> None:
    chart = xmr(values, improvement="increase")
    assert len(chart.special_cause) == len(chart.point_type) == len(values)
    assert chart.lower_limit <= chart.lower_near <= chart.mean <= chart.upper_near <= chart.upper_limit
    outside = [v > chart.upper_limit or v < chart.lower_limit for v in values]
    assert [c in ("above_upper_limit", "below_lower_limit") for c in chart.special_cause] == outside
    assert chart.enough_points == (len(values) >= MINIMUM_POINTS)
