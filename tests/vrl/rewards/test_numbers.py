"""One number out of an answer: separators, percent, fractions, words; ambiguity reads as none."""

from fractions import Fraction

import pytest

from vrl.rewards.numbers import parse_number, parse_readings, round2


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


@pytest.mark.parametrize(
    ("text", "value"),
    [
        # scientific notation
        ("1e3", 1000),
        ("1.5E-3", Fraction(3, 2000)),
        ("10^3", 1000),
        ("10**3", 1000),
        ("10^{-3}", Fraction(1, 1000)),
        ("7.2 \\times 10^{6}", 7200000),
        ("$7.2 \\times 10^{6}$", 7200000),
        ("7.2 \\cdot 10^6", 7200000),
        ("7.2 × 10⁶", 7200000),
        ("7.2*10**6", 7200000),
        ("3 x 10^-2", Fraction(3, 100)),
        ("2^{10}", 1024),
        # units after the number, with exponents and slashes
        ("2.83 cm^2", Fraction(283, 100)),
        ("2.83 cm²", Fraction(283, 100)),
        ("8.4 m/s^2", Fraction(42, 5)),
        ("8.4 m/s^{2}", Fraction(42, 5)),
        ("5 m·s⁻²", 5),
        ("12 km/h", 12),
        ("The speed is 8.4 m/s^2.", Fraction(42, 5)),
        ("(2.83 cm)^2", Fraction(283, 100)),
        # \text{…} around the number and the unit
        ("\\text{2.83 cm}^2", Fraction(283, 100)),
        ("2.83\\,\\text{cm}^{2}", Fraction(283, 100)),
        ("\\text{5 m/s}^2", 5),
        ("\\mathrm{12}\\,\\mathrm{kg}", 12),
        ("\\text{5}", 5),
        # thousands separators
        ("1,234,567", 1234567),
        ("$1,000", 1000),
        ("1{,}234", 1234),
        ("12,000 people", 12000),
        # percentages, as written
        ("45\\%", 45),
        ("45 percent", 45),
        ("0.45, i.e. 45%", Fraction(45, 100)),  # the mentions agree on 0.45
    ],
)
def test_parses_scientific_units_and_latex(text, value):
    assert parse_number(text) == value


@pytest.mark.parametrize("text", ["x^2", "e^{2}", "9^{999}", "9^{9^{9^{9}}}", "2.83 or 3 cm^2", "45% or 50%"])
def test_no_single_number_in_powers_and_ambiguity(text):
    assert parse_number(text) is None


def test_percent_has_two_readings():
    assert parse_readings("45%") == (45, Fraction(45, 100))
    assert parse_readings("45") == (45,)
    assert parse_readings("45, i.e. 45%") == (45,)
    assert parse_readings("0%") == (0,)
    assert parse_readings("50% of 10") is None
