"""Delivery names: local Stockholm time, safe municipality part, next free minute (spec §8, §10)."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from autosynk.errors import ConfigError, DeliveryError
from autosynk.unikum.naming import MAX_TRIES, delivery_stem, municipality_part, next_free_stem

UTC = dt.UTC
STHLM = ZoneInfo("Europe/Stockholm")


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        # summer time, UTC+2
        (dt.datetime(2025, 6, 15, 20, 30, tzinfo=UTC), "Malmö_20250615_2230"),
        # winter time, UTC+1: 23:30 UTC is already the next local day
        (dt.datetime(2025, 1, 15, 23, 30, tzinfo=UTC), "Malmö_20250116_0030"),
        (dt.datetime(2025, 12, 31, 23, 5, tzinfo=UTC), "Malmö_20260101_0005"),
        # spring forward 2025-03-30: 01:59 CET, then 03:00 CEST
        (dt.datetime(2025, 3, 30, 0, 59, tzinfo=UTC), "Malmö_20250330_0159"),
        (dt.datetime(2025, 3, 30, 1, 0, tzinfo=UTC), "Malmö_20250330_0300"),
        # fall back 2025-10-26: 02:30 happens twice
        (dt.datetime(2025, 10, 26, 0, 30, tzinfo=UTC), "Malmö_20251026_0230"),
        (dt.datetime(2025, 10, 26, 1, 30, tzinfo=UTC), "Malmö_20251026_0230"),
        (dt.datetime(2025, 10, 26, 2, 0, tzinfo=UTC), "Malmö_20251026_0300"),
        # already local; seconds are dropped, not rounded
        (dt.datetime(2025, 6, 15, 22, 45, 59, tzinfo=STHLM), "Malmö_20250615_2245"),
        (
            dt.datetime(2025, 6, 15, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=-4))),
            "Malmö_20250615_1800",
        ),
    ],
)
def test_delivery_stem_is_stockholm_time(when, expected):
    assert delivery_stem("Malmö", when) == expected


@pytest.mark.parametrize(
    ("municipality", "ascii_only", "expected"),
    [
        ("Malmö", False, "Malmö"),
        ("Malmö", True, "Malmo"),
        ("Håbo", True, "Habo"),
        ("Åre", True, "Are"),
        ("Öckerö kommun", True, "Ockero-kommun"),
        ("Upplands Väsby", False, "Upplands-Väsby"),
        ("Upplands Väsby", True, "Upplands-Vasby"),
        ("Malung-Sälen", False, "Malung-Sälen"),
        ("  Lilla \t Edet ", False, "Lilla-Edet"),
        ("Skövde_test", False, "Skövde-test"),
        ('A/B\\C:D*E?F"G<H>I|J', False, "ABCDEFGHIJ"),
        ("..dold", False, "dold"),
        ("Kommun (test) 2", False, "Kommun-test-2"),
        ("Ærø", True, "AEro"),
        ("Łódź", False, "Łódź"),
        ("Łódź", True, "Lodz"),
        ("Ha\u030abo", False, "Håbo"),  # decomposed å is one letter in the name
        ("Örebro - Test", False, "Örebro-Test"),
    ],
)
def test_municipality_part(municipality, ascii_only, expected):
    assert municipality_part(municipality, ascii_only=ascii_only) == expected


def test_ascii_stem():
    when = dt.datetime(2025, 6, 15, 20, 30, tzinfo=UTC)
    assert delivery_stem("Upplands Väsby", when, ascii_only=True) == "Upplands-Vasby_20250615_2230"


@pytest.mark.parametrize(
    ("municipality", "ascii_only"), [("", False), ("///", False), ("李", True)]
)
def test_unusable_municipality_names(municipality, ascii_only):
    with pytest.raises(ConfigError, match="municipality"):
        municipality_part(municipality, ascii_only=ascii_only)


def test_naive_time_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        delivery_stem("Malmö", dt.datetime(2025, 6, 15, 22, 30))


@pytest.mark.parametrize(
    ("when", "taken", "expected"),
    [
        (dt.datetime(2025, 6, 15, 20, 30, tzinfo=UTC), set(), "Malmö_20250615_2230"),
        (
            dt.datetime(2025, 6, 15, 20, 30, tzinfo=UTC),
            {"Malmö_20250615_2230", "Malmö_20250615_2231"},
            "Malmö_20250615_2232",
        ),
        # over midnight into the next local day
        (
            dt.datetime(2025, 6, 15, 21, 59, tzinfo=UTC),
            {"Malmö_20250615_2359"},
            "Malmö_20250616_0000",
        ),
        # over the spring gap: 01:59 CET is followed by 03:00 CEST
        (
            dt.datetime(2025, 3, 30, 0, 59, tzinfo=UTC),
            {"Malmö_20250330_0159"},
            "Malmö_20250330_0300",
        ),
        # into the repeated autumn hour: 02:59 CEST is followed by 02:00 CET
        (
            dt.datetime(2025, 10, 26, 0, 59, tzinfo=UTC),
            {"Malmö_20251026_0259"},
            "Malmö_20251026_0200",
        ),
    ],
)
def test_next_free_stem(when, taken, expected):
    assert next_free_stem("Malmö", when, taken.__contains__) == expected


def test_next_free_stem_in_ascii():
    when = dt.datetime(2025, 6, 15, 20, 30, tzinfo=UTC)
    taken = {"Malmo_20250615_2230"}
    assert next_free_stem("Malmö", when, taken.__contains__, ascii_only=True) == (
        "Malmo_20250615_2231"
    )


def test_next_free_stem_gives_up_after_a_bounded_number_of_minutes():
    asked: list[str] = []

    def everything_taken(stem: str) -> bool:
        asked.append(stem)
        return True

    when = dt.datetime(2025, 6, 15, 20, 30, tzinfo=UTC)
    with pytest.raises(DeliveryError, match="no free file name within 60 minutes"):
        next_free_stem("Malmö", when, everything_taken)
    assert len(asked) == MAX_TRIES == 60
    assert asked[0] == "Malmö_20250615_2230"
    assert asked[-1] == "Malmö_20250615_2329"
    assert len(set(asked)) == len(asked)
