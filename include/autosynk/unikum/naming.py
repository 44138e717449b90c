"""Delivery file names: ``<Municipality>_<YYYYMMDD>_<HHMM>`` in Europe/Stockholm (spec §8, §10).

The municipality part keeps letters (å ä ö included), digits and hyphens. Whitespace and
underscores become a hyphen (the underscore separates the name from the time), and
everything else is dropped: ``/ \\ : * ? " < > |``, dots (a leading dot hides a file),
quotes, brackets. ``ascii_only`` also spells letters in ASCII (Å→A, ö→o, é→e, Æ→AE, ß→ss)
for servers that reject å ä ö.

A name already taken on the target is never overwritten: :func:`next_free_stem` moves on
minute by minute in real time, so around a DST switch every name is a real local time.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable
from zoneinfo import ZoneInfo

from autosynk.errors import ConfigError, DeliveryError
from autosynk.unikum.encoding import Untransliterable, to_latin1

STOCKHOLM = "Europe/Stockholm"
#: how many minutes after the first choice a free name is looked for
MAX_TRIES = 60

# Latin-1 letters that do not decompose to ASCII
_ASCII_LETTERS = {
    "Æ": "AE",
    "æ": "ae",
    "Ø": "O",
    "ø": "o",
    "ß": "ss",
    "Þ": "TH",
    "þ": "th",
    "Ð": "D",
    "ð": "d",
}
_SEPARATORS = re.compile(r"[\s_]+")
_HYPHENS = re.compile(r"-{2,}")


def _ascii(name: str) -> str:
    try:
        latin1, _ = to_latin1(name)
    except Untransliterable as exc:
        raise ConfigError(f"municipality name has no ASCII form ({exc})") from None
    out = []
    for ch in latin1:
        ch = _ASCII_LETTERS.get(ch, ch)
        out.append("".join(p for p in unicodedata.normalize("NFKD", ch) if p.isascii()))
    return "".join(out)


def municipality_part(municipality: str, *, ascii_only: bool = False) -> str:
    """The municipality as it appears in file names (see the module docstring)."""
    name = unicodedata.normalize("NFC", municipality)
    if ascii_only:
        name = _ascii(name)
    name = _SEPARATORS.sub("-", name)
    name = "".join(ch for ch in name if ch == "-" or ch.isalnum())
    name = _HYPHENS.sub("-", name).strip("-")
    if not name:
        raise ConfigError(
            f"municipality {municipality!r} has no letters or digits usable in a file name"
        )
    return name


def _local(when: dt.datetime, timezone: str) -> dt.datetime:
    if when.tzinfo is None:
        # a naive time could be UTC or local: guessing would shift a name by hours
        raise ValueError("delivery time must be timezone-aware")
    return when.astimezone(ZoneInfo(timezone))


def delivery_stem(
    municipality: str,
    when: dt.datetime,
    *,
    ascii_only: bool = False,
    timezone: str = STOCKHOLM,
) -> str:
    """``<Municipality>_<YYYYMMDD>_<HHMM>`` for ``when`` (timezone-aware) in local time."""
    local = _local(when, timezone)
    return f"{municipality_part(municipality, ascii_only=ascii_only)}_{local:%Y%m%d_%H%M}"


def next_free_stem(
    municipality: str,
    when: dt.datetime,
    taken: Callable[[str], bool],
    *,
    ascii_only: bool = False,
    timezone: str = STOCKHOLM,
) -> str:
    """The first stem at or after ``when`` (by whole minutes) that ``taken`` says is free."""
    # aware arithmetic in a named zone is wall-clock arithmetic: step in UTC instead
    start = _local(when, timezone).astimezone(dt.UTC).replace(second=0, microsecond=0)
    seen: set[str] = set()
    for minute in range(MAX_TRIES):
        # in absolute time, the autumn's repeated hour and the spring's missing hour give
        # real local times; a name seen twice (repeated hour) is not asked about again
        stem = delivery_stem(
            municipality,
            start + dt.timedelta(minutes=minute),
            ascii_only=ascii_only,
            timezone=timezone,
        )
        if stem in seen:
            continue
        seen.add(stem)
        if not taken(stem):
            return stem
    first = delivery_stem(municipality, start, ascii_only=ascii_only, timezone=timezone)
    raise DeliveryError(
        f"no free file name within {MAX_TRIES} minutes of {first} on the target; "
        "clear old deliveries there or try later"
    )
