"""Small pure transforms the mapping applies to single values (table-tested)."""

from __future__ import annotations

import re

_PHONE_JUNK = re.compile(r"[\s\-().\/]")


def name_case(value: str, casing: str) -> str:
    """``keep`` leaves names alone; ``title`` fixes ALL CAPS and all lower.

    "ANNA-KARIN" -> "Anna-Karin"; mixed case ("McDonald") is kept.
    """
    if casing != "title" or not value:
        return value
    if value != value.upper() and value != value.lower():
        return value  # mixed case is deliberate ("McDonald", "af Klint")
    return re.sub(r"[^\s\-']+", lambda m: m.group(0)[:1].upper() + m.group(0)[1:].lower(), value)


def normalise_phone(value: str) -> str:
    """Drop spaces, dashes, dots and brackets; keep a leading ``+``; ``0046`` -> ``+46``."""
    compact = _PHONE_JUNK.sub("", value)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    return compact


def normalise_email(value: str, lowercase: bool) -> str:
    value = value.strip()
    return value.lower() if lowercase else value


def school_year_of(today: str, starts: str = "07-01") -> int:
    """The calendar year a school year starts in: 2026-11-28 -> 2026, 2027-03-01 -> 2026.

    ``starts`` is the school year's first day (``MM-DD``, the mapping's
    ``school_year_starts``).
    """
    year = int(today[:4])
    return year if today[5:10] >= starts else year - 1
