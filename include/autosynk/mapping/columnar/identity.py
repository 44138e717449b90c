"""Identity numbers over arrays: the common written forms checked with numpy at once.

``YYYYMMDD-NNNC`` and ``YYYYMMDDNNNC`` (spaces ignored) with a real date (or a
coordination day, +60), a serial other than 000 and a right Luhn digit are valid
personnummer or samordningsnummer and need no further look; every other value, and every
value that fails a check, goes through :func:`autosynk.identity.normalise` once per
distinct value, which gives the normalised number or the reason. The result is the same
as calling ``normalise`` on each value.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from autosynk.identity import InvalidIdentity, normalise

_LUHN_DOUBLED = np.array([0, 2, 4, 6, 8, 1, 3, 5, 7, 9], dtype=np.int64)
_TWELVE = r"^[0-9]{8}-?[0-9]{4}$"
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def _fast_valid(digits: np.ndarray) -> np.ndarray:
    """Rows of 12 digits (an ``(n, 12)`` array of 0-9) that are valid as written."""
    d = digits.astype(np.int64)
    luhn = (
        _LUHN_DOUBLED[d[:, 2]]
        + d[:, 3]
        + _LUHN_DOUBLED[d[:, 4]]
        + d[:, 5]
        + _LUHN_DOUBLED[d[:, 6]]
        + d[:, 7]
        + _LUHN_DOUBLED[d[:, 8]]
        + d[:, 9]
        + _LUHN_DOUBLED[d[:, 10]]
    )
    check_ok = (10 - luhn % 10) % 10 == d[:, 11]
    serial_ok = (d[:, 8] + d[:, 9] + d[:, 10]) > 0
    year = d[:, 0] * 1000 + d[:, 1] * 100 + d[:, 2] * 10 + d[:, 3]
    month = d[:, 4] * 10 + d[:, 5]
    day = d[:, 6] * 10 + d[:, 7]
    day = np.where(day > 60, day - 60, day)
    month_ok = (month >= 1) & (month <= 12)
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    days = _MONTH_DAYS[np.where(month_ok, month, 0)] + ((month == 2) & leap)
    date_ok = (year >= 1) & month_ok & (day >= 1) & (day <= days)
    return check_ok & serial_ok & date_ok


def identity_numbers(values: Sequence[str] | pa.Array) -> tuple[list[str | None], list[str]]:
    """Each value's normalised identity number (None when invalid) and why it is invalid.

    ``values`` are register texts (already stripped). Same results as
    ``normalise(value).value`` / ``str(InvalidIdentity)`` value by value.
    """
    array = values if isinstance(values, pa.Array) else pa.array(values, pa.string())
    array = array.cast(pa.string())
    n = len(array)
    numbers: list[str | None] = [None] * n
    reasons: list[str] = [""] * n
    if n == 0:
        return numbers, reasons
    compact = pc.replace_substring(array, " ", "")
    shaped = pc.fill_null(pc.match_substring_regex(compact, _TWELVE), False)
    shaped_at = np.flatnonzero(shaped.to_numpy(zero_copy_only=False))
    fast_ok = np.zeros(n, dtype=bool)
    if len(shaped_at):
        plain = pc.replace_substring(compact.take(pa.array(shaped_at)), "-", "")
        joined = "".join(plain.to_pylist()).encode("ascii")
        digits = np.frombuffer(joined, dtype=np.uint8).reshape(len(shaped_at), 12) - ord("0")
        valid = _fast_valid(digits)
        good_at = shaped_at[valid]
        fast_ok[good_at] = True
        good = pc.binary_join_element_wise(
            pc.utf8_slice_codeunits(plain.filter(pa.array(valid)), 0, 8),
            pc.utf8_slice_codeunits(plain.filter(pa.array(valid)), 8, 12),
            "-",
        ).to_pylist()
        for at, number in zip(good_at.tolist(), good, strict=True):
            numbers[at] = number
    rest = np.flatnonzero(~fast_ok)
    if len(rest):
        raw = array.take(pa.array(rest)).to_pylist()
        judged: dict[str | None, tuple[str | None, str]] = {}
        for at, value in zip(rest.tolist(), raw, strict=True):
            outcome = judged.get(value)
            if outcome is None:
                try:
                    outcome = (normalise(value).value, "")
                except InvalidIdentity as exc:
                    outcome = (None, str(exc))
                judged[value] = outcome
            numbers[at], reasons[at] = outcome
    return numbers, reasons
