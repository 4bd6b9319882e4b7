"""The Modulus 11 check, as an engine expression, against the nhs-number package as outside reference."""

from __future__ import annotations

import random

import narwhals as nw
import nhs_number
import polars as pl
import pytest

from openphm.ingest.rules import nhs_number_valid
from tests.support.sources import ALICE


def _valid(values: list[str | None]) -> list[bool]:
    frame = nw.from_native(pl.DataFrame({"n": values}, schema={"n": pl.String}).lazy())
    return frame.select(nhs_number_valid(nw.col("n")).alias("ok")).collect()["ok"].to_list()


def test_published_examples() -> None:
    # 943 476 5919 is the example NHS number used in NHS Digital's documentation; 943 476 5910 breaks its check.
    assert _valid(["9434765919", "9434765910", ALICE]) == [True, False, True]


def test_shapes_that_are_never_valid() -> None:
    assert _valid(["943476591", "94347659190", "943476591X", "943 476 5919", "", None]) == [False] * 6


def test_agrees_with_nhs_number_package_on_random_numbers() -> None:
    # The package also rejects Scottish CHI numbers whose first six digits are not a DDMMYY date; the
    # contract asks for the Modulus 11 rule only, so the comparison leaves the CHI range out.
    rng = random.Random(7)
    numbers = [f"{rng.randrange(10**10):010d}" for _ in range(40_000)]
    numbers = [n for n in numbers if not nhs_number.REGION_SCOTLAND.contains_number(n)]
    expected = [nhs_number.is_valid(n) for n in numbers]
    assert sum(expected) > 1000  # the sample holds plenty of valid numbers, so the comparison means something
    assert _valid(numbers) == expected


@pytest.mark.parametrize("check_digit_ten", ["0000000060"])
def test_check_digit_ten_is_invalid(check_digit_ten: str) -> None:
    # 0*10+...+6*2 = 12; 11 - (12 % 11) = 10, which no NHS number may have.
    assert _valid([check_digit_ten]) == [nhs_number.is_valid(check_digit_ten)] == [False]


def test_calendar_date_pattern_agrees_with_python_calendar() -> None:
    """Every string YYYY-MM-DD over 1896-2404 (leap centuries included) against datetime.date."""
    from datetime import date

    from openphm.ingest.rules import parse_date

    texts, expected = [], []
    for year in (1896, 1900, 1999, 2000, 2023, 2024, 2100, 2400, 2404):
        for month in range(0, 14):
            for day in range(0, 33):
                text = f"{year:04d}-{month:02d}-{day:02d}"
                try:
                    value = date(year, month, day)
                except ValueError:
                    value = None
                texts.append(text)
                expected.append(value)
    frame = nw.from_native(pl.DataFrame({"d": texts}).lazy())
    assert frame.select(parse_date("d")).collect()["d"].to_list() == expected
