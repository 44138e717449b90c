"""Values and lines as Unikum can read them: no separators inside a value, faithful Latin-1.

Unikum's files have no quoting (spec §1), so a tab, CR, LF or other control character inside
a value would break a row: :func:`clean_value` turns each run of them into one space.
Municipalities on ISO-8859-1 get :func:`to_latin1`: characters Latin-1 has stay exactly as
they are (å ä ö é ü ß Ø Æ); others are transliterated one character at a time (so
"Nguyễn" becomes "Nguyen", never "Nguy?n"), and a character with no faithful form (CJK,
emoji, Cyrillic) raises :class:`Untransliterable` so the caller quarantines the record.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from autosynk.errors import PackagingError

Encoding = Literal["utf-8", "iso-8859-1"]
LineEnding = Literal["\n", "\r\n"]

# C0 and C1 controls, DEL, and the Unicode line/paragraph separators (U+0085 is in C1).
_CONTROL_CLASS = "\x00-\x1f\x7f-\x9f\u2028\u2029"
# a run of control characters, with the ordinary whitespace around it, becomes one space
_CONTROL_RUN = re.compile(rf"\s*[{_CONTROL_CLASS}][{_CONTROL_CLASS}\s]*")
_TRAILING_CONTROL = re.compile(rf"[{_CONTROL_CLASS}]\s*\Z")

# Letters and signs NFKD does not decompose into Latin-1, with their customary spelling.
_EXPLICIT: dict[str, str] = {
    "Ł": "L",
    "ł": "l",
    "Đ": "D",
    "đ": "d",
    "Ħ": "H",
    "ħ": "h",
    "Ŧ": "T",
    "ŧ": "t",
    "Ŋ": "N",
    "ŋ": "n",
    "Œ": "OE",
    "œ": "oe",
    "ı": "i",
    "ȷ": "j",
    "ſ": "s",
    "ẞ": "SS",
    "ƒ": "f",
    "Ə": "E",
    "ə": "e",
    # apostrophes and quotes
    "ʼ": "'",
    "ʻ": "'",
    "ʹ": "'",
    "‘": "'",
    "’": "'",
    "‚": "'",
    "‛": "'",
    "′": "'",
    "“": '"',
    "”": '"',
    "„": '"',
    "‟": '"',
    "″": '"',
    "‹": "<",
    "›": ">",
    # dashes, minus, bullets, slashes
    "‐": "-",
    "‒": "-",
    "–": "-",
    "—": "-",
    "―": "-",
    "−": "-",
    "•": "*",
    "⁄": "/",
    "∕": "/",
    # currency
    "€": "EUR",
}


class Untransliterable(ValueError):
    """A character with no faithful ISO-8859-1 form; names the character, not the value."""

    def __init__(self, character: str) -> None:
        self.character = character
        name = unicodedata.name(character, "unnamed character")
        super().__init__(f"U+{ord(character):04X} {name}")


def clean_value(text: str) -> tuple[str, bool]:
    """Replace runs of control characters (tab, CR, LF, C0/C1, U+2028/9) by one space.

    Whitespace next to a replaced run is folded into that one space, and a run at either
    end disappears. Values without control characters are returned untouched (trimming
    ordinary spaces is the mapping's ``trim`` option, not a repair to report).
    """
    cleaned, count = _CONTROL_RUN.subn(" ", text)
    if not count:
        return text, False
    # only the ends a replacement produced are stripped
    if _CONTROL_RUN.match(text):
        cleaned = cleaned.lstrip(" ")
    if _TRAILING_CONTROL.search(text):
        cleaned = cleaned.rstrip(" ")
    return cleaned, True


def _is_latin1(character: str) -> bool:
    return ord(character) <= 0xFF


def _transliterate(character: str) -> str:
    if character in _EXPLICIT:
        return _EXPLICIT[character]
    category = unicodedata.category(character)
    if category in ("Mn", "Mc", "Me", "Cf"):
        # a stray combining mark loses its accent; invisible format marks (zero-width
        # space, joiners, BOM) carry nothing to keep
        return ""
    out = []
    for part in unicodedata.normalize("NFKD", character):
        if unicodedata.combining(part):
            continue
        if _is_latin1(part):
            out.append(part)
        elif part in _EXPLICIT:
            out.append(_EXPLICIT[part])
        else:
            raise Untransliterable(character)
    if not out:
        raise Untransliterable(character)
    return "".join(out)


def to_latin1(text: str) -> tuple[str, bool]:
    """``text`` made encodable in ISO-8859-1, and whether anything had to change.

    Raises :class:`Untransliterable` naming the first character with no faithful form.
    """
    # compose first: "e" + COMBINING DIAERESIS is the Latin-1 "ë" and must stay one
    composed = unicodedata.normalize("NFC", text)
    out = [ch if _is_latin1(ch) else _transliterate(ch) for ch in composed]
    result = "".join(out)
    return result, result != text


def _check_format(encoding: str, line_ending: str) -> None:
    if encoding not in ("utf-8", "iso-8859-1"):
        raise PackagingError(f"unsupported encoding {encoding!r}: use utf-8 or iso-8859-1")
    if line_ending not in ("\n", "\r\n"):
        raise PackagingError(f"unsupported line ending {line_ending!r}")


def encode_column(
    lines: pa.Array | pa.ChunkedArray,
    encoding: Encoding,
    line_ending: LineEnding,
    *,
    first_line: int = 1,
) -> bytes:
    """:func:`encode_lines` for an Arrow array of lines, in bulk (millions of lines).

    The lines, each with its ending, are joined by Arrow into one UTF-8 buffer, which is the
    file (UTF-8) or is recoded in one call (ISO-8859-1). A line with a line break in a value
    or a character the encoding lacks is found by :func:`encode_lines`, which names it
    (numbered from ``first_line``: a batch of a longer file says where in the file).
    """
    _check_format(encoding, line_ending)
    if len(lines) == 0:
        return b""
    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    lines = lines.cast(pa.large_string())
    if lines.null_count or pc.any(pc.match_substring_regex(lines, "[\r\n]")).as_py():
        return encode_lines(lines.to_pylist(), encoding, line_ending, first_line=first_line)
    ended = pc.binary_join_element_wise(
        lines, pa.scalar("", pa.large_string()), pa.scalar(line_ending, pa.large_string())
    )
    offsets = np.frombuffer(ended.buffers()[1], dtype=np.int64)
    first, last = int(offsets[ended.offset]), int(offsets[ended.offset + len(ended)])
    data = ended.buffers()[2].slice(first, last - first).to_pybytes()
    if encoding == "utf-8":
        return data
    try:
        return data.decode("utf-8").encode(encoding)
    except UnicodeEncodeError:
        return encode_lines(lines.to_pylist(), encoding, line_ending, first_line=first_line)


def encode_lines(
    lines: Iterable[str], encoding: Encoding, line_ending: LineEnding, *, first_line: int = 1
) -> bytes:
    """Join ``lines`` with ``line_ending`` after each, in ``encoding``, without a BOM.

    A line that cannot be written is named by its number, counted from ``first_line``."""
    _check_format(encoding, line_ending)
    chunks = []
    for number, line in enumerate(lines, start=first_line):
        if "\n" in line or "\r" in line:
            raise PackagingError(f"line {number} holds a line break inside a value")
        try:
            chunks.append((line + line_ending).encode(encoding))
        except UnicodeEncodeError as exc:
            bad = line[exc.start]
            raise PackagingError(
                f"line {number} cannot be written in {encoding}: U+{ord(bad):04X} "
                f"{unicodedata.name(bad, 'unnamed character')}"
            ) from None
    return b"".join(chunks)
