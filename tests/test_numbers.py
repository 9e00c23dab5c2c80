"""policies.numbers: what counts as a number sent from outside."""

import pytest

from policies.numbers import ascii_digits, whole_number


@pytest.mark.parametrize("text", ["0", "7", "0042", "65535"])
def test_ascii_digits_are_numbers(text):
    assert ascii_digits(text)
    assert whole_number(text, 5) == int(text)


@pytest.mark.parametrize(
    "text",
    ["", "²", "１２", "١٢", "-1", "+1", " 1", "1 ", "1.0", "1e3", "0x1f", "1_000", "½"],
)
def test_anything_else_is_not(text):
    assert not ascii_digits(text)
    assert whole_number(text, 5) is None


def test_a_number_longer_than_allowed_is_refused_before_it_is_read():
    assert whole_number("9" * 5, 5) == 99999
    assert whole_number("9" * 6, 5) is None
    assert whole_number("9" * 50_000, 12) is None
    assert whole_number(None, 5) is None
