"""Swedish identity numbers: normalise, classify, validate and mask (spec §6).

Civic numbers (personnummer) and coordination numbers (samordningsnummer) go through the
``personnummer`` package, which knows the Luhn check, the +60 day offset, 10 -> 12 digit
normalisation and the ``+`` (100 years or older) rule. TF numbers (``YYYYMMDD-TFNN``,
reserve numbers for people without a Swedish number) are not covered by it and are handled
here.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal

from personnummer import personnummer as _pnr

IdKind = Literal["personnummer", "samordningsnummer", "tf"]

_TF = re.compile(r"^(\d{8})-?TF(\d{2})$", re.IGNORECASE)
_MASKABLE = re.compile(r"(?<!\d)(\d{6}|\d{8})([-+]?)(\d{4}|TF\d{2})(?!\d)", re.IGNORECASE)


@dataclass(frozen=True)
class Identity:
    """A valid, normalised identity number: ``YYYYMMDD-NNNN`` or ``YYYYMMDD-TFNN``."""

    value: str
    kind: IdKind


class InvalidIdentity(ValueError):
    """The value is not a valid identity number; the message never contains the number."""


def normalise(raw: object, today: dt.date | None = None) -> Identity:
    """Return the 12-digit hyphenated form of a civic, coordination or TF number.

    Raises :class:`InvalidIdentity` with a reason that is safe to log.
    """
    if raw is None:
        raise InvalidIdentity("no identity number")
    text = str(raw).strip().replace(" ", "")
    if not text:
        raise InvalidIdentity("no identity number")
    tf = _TF.match(text)
    if tf:
        date_part, serial = tf.groups()
        try:
            dt.datetime.strptime(date_part, "%Y%m%d")
        except ValueError:
            raise InvalidIdentity("TF number with an impossible date") from None
        return Identity(f"{date_part}-TF{serial}", "tf")
    try:
        parsed = _pnr.Personnummer(text)
    except _pnr.PersonnummerParseException:
        raise InvalidIdentity("not a personnummer, samordningsnummer or TF number") from None
    except _pnr.PersonnummerException:
        raise InvalidIdentity("personnummer check digit or date is wrong") from None
    digits = parsed.format(True)
    kind: IdKind = "samordningsnummer" if parsed.is_coordination_number() else "personnummer"
    return Identity(f"{digits[:8]}-{digits[8:]}", kind)


def mask(value: object) -> str:
    """Mask the last four characters of every identity number inside ``value``.

    ``19900101-0017`` -> ``19900101-****``; works on free text such as log lines too.
    A run of digits is masked only when it is an identity number: a civic or coordination
    number with a valid date and check digit, or a TF number with a valid date. Run ids,
    plan ids, checksums, timestamps and file names that merely hold ten or twelve digits
    pass unchanged, so a command quoted in a message can still be pasted.
    """
    text = "" if value is None else str(value)
    return _MASKABLE.sub(_mask_match, text)


def mask_shaped(value: object) -> str:
    """Mask everything shaped like an identity number, valid or not.

    For text that quotes the identity-number fields of Unikum files (the checker of those
    files): a number there with a wrong check digit is most likely a real one mistyped.
    """
    text = "" if value is None else str(value)
    return _MASKABLE.sub(lambda m: f"{m.group(1)}{m.group(2)}****", text)


def _mask_match(match: re.Match[str]) -> str:
    date_part, sign, tail = match.groups()
    if _is_identity(date_part, sign, tail):
        return f"{date_part}{sign}****"
    return match.group(0)


def _is_identity(date_part: str, sign: str, tail: str) -> bool:
    if tail[:2].upper() == "TF":
        return _valid_tf_date(date_part)
    return bool(_pnr.valid(f"{date_part}{sign}{tail}"))


def _valid_tf_date(date_part: str) -> bool:
    fmt = "%Y%m%d" if len(date_part) == 8 else "%y%m%d"
    try:
        dt.datetime.strptime(date_part, fmt)
    except ValueError:
        return False
    return True
