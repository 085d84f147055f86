"""One number out of an answer: separators, percent, fractions, words; ambiguity reads as none."""

from fractions import Fraction

import pytest

from vrl.rewards.numbers import parse_number, round2


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("42", 42),
        ("1,234.5", Fraction(24690, 20)),
        ("1,234,567", 1234567),
        ("45%", 45),
        ("-3", -3),
        ("\u22122.5", Fraction(-5, 2)),
        (".5", Fraction(1, 2)),
        ("1e3", 1000),
        ("3/4", Fraction(3, 4)),
        ("\\frac{3}{4}", Fraction(3, 4)),
        ("\\dfrac{1}{8}", Fraction(1, 8)),
        ("1\\,000", 1000),
        ("The answer is 12.97 m.", Fraction(1297, 100)),
        ("$7$", 7),
        ("twenty-five", 25),
        ("one hundred and five", 105),
        ("two thousand three hundred", 2300),
        ("nineteen hundred", 1900),
        ("zero", 0),
        ("There are four people.", 4),
        ("45, i.e. 45%", 45),
    ],
)
def test_parses(text, value):
    assert parse_number(text) == value


@pytest.mark.parametrize(
    "text",
    ["", "no number", "5 or 6", "1,23", "two three", "3/0", "1" * 100, "x2", "3-5", "1 000", None],
)
def test_no_single_number(text):
    assert parse_number(text) is None


def test_round2_is_half_away_from_zero_and_exact():
    assert round2(Fraction("2.675")) == Fraction("2.68")
    assert round2(Fraction("-2.675")) == Fraction("-2.68")
    assert round2(Fraction(1, 3)) == Fraction("0.33")
