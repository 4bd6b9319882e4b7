"""Reading a practice's list for re-identification: the shapes GP systems export, Modulus 11 checked against an
outside implementation (the ``nhs-number`` package), and problems that never quote the file."""

from __future__ import annotations

import random

import nhs_number
import pytest

from openphm.errors import InputError
from openphm.reidentify import check_purpose, read_list


def test_invalid_numbers_are_counted_as_the_nhs_number_package_counts_them() -> None:
    rng = random.Random(19)
    # from 4000000000 up: the package also refuses Scottish CHI numbers (below 3200000000) that are not a date
    values = [f"{rng.randrange(4 * 10**9, 10**10)}" for _ in range(2000)]
    parsed = read_list(("nhs_number\n" + "\n".join(values) + "\n").encode())
    valid = [v for v in values if nhs_number.is_valid(v)]
    assert 100 < len(valid) < 2000
    assert parsed.submitted == 2000 and parsed.invalid == 2000 - len(valid)
    assert parsed.numbers == tuple(dict.fromkeys(valid))
    assert not any(v in repr(parsed) for v in values)  # the repr carries counts only


@pytest.mark.parametrize(
    "text",
    [
        "nhs_number\n943 476 5919\n",
        "Name,NHS Number,Age\nA,9434765919,3\n",
        "NHS number\r\n9434765919\r\n\r\n",
        "\ufeff9434765919\n",  # no header, a byte-order mark
        "9434765919",
    ],
)
def test_the_shapes_a_gp_system_exports(text: str) -> None:
    parsed = read_list(text.encode())
    assert parsed.numbers == ("9434765919",) and parsed.invalid == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the list is empty"),
        (b"\xff\xfe9434765919", "not UTF-8"),
        (b"a,b\n9434765919,1\n", "none is named 'nhs_number'"),
        (b"x" * 200_000, "not a readable CSV"),
    ],
)
def test_a_bad_list_is_one_line_without_its_content(data: bytes, message: str) -> None:
    with pytest.raises(InputError) as raised:
        read_list(data)
    assert message in str(raised.value) and "9434765919" not in str(raised.value)


def test_a_purpose_may_not_carry_an_identifier() -> None:
    assert check_purpose("  Frailty clinic invitations ") == "Frailty clinic invitations"
    for bad in ("short", "Call 943 476 5919 today", "x" * 501):
        with pytest.raises(InputError) as raised:
            check_purpose(bad)
        assert "943" not in str(raised.value)
