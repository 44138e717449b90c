"""Pure value transforms of the mapping: literal inputs, expected outputs."""

import pytest

from autosynk.mapping.values import name_case, normalise_email, normalise_phone, school_year_of


@pytest.mark.parametrize(
    ("value", "casing", "expected"),
    [
        ("ANNA-KARIN", "title", "Anna-Karin"),
        ("åsa öberg", "title", "Åsa Öberg"),
        ("McDonald", "title", "McDonald"),
        ("ANNA", "keep", "ANNA"),
        ("", "title", ""),
    ],
)
def test_name_case(value, casing, expected):
    assert name_case(value, casing) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("070-123 45 67", "0701234567"),
        ("+46 (0)70 123 45 67", "+460701234567"),
        ("0046 70 123 45 67", "+46701234567"),
        ("08.123.456", "08123456"),
    ],
)
def test_normalise_phone(value, expected):
    assert normalise_phone(value) == expected


@pytest.mark.parametrize(
    ("value", "lower", "expected"),
    [(" Anna@Example.SE ", True, "anna@example.se"), ("Anna@Example.SE", False, "Anna@Example.SE")],
)
def test_normalise_email(value, lower, expected):
    assert normalise_email(value, lower) == expected


@pytest.mark.parametrize(
    ("today", "year"),
    [("2026-11-28", 2026), ("2027-03-01", 2026), ("2027-06-30", 2026), ("2027-07-01", 2027)],
)
def test_school_year_of(today, year):
    assert school_year_of(today) == year
