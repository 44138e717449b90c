"""Read an SS 12000 list file (``{"data": [...]}``) in batches, memory bounded by the batch.

A national ``persons.json`` is 5.5 GB: read whole, its bytes alone take a quarter of the
machine and its records the rest. This reader holds one batch of records (and the bytes
they came from) at a time:

* a small incremental scanner reads the file in chunks and finds, outside strings, the
  top-level ``data`` key's array and where its entries end. The scan is vectorised with
  numpy over each chunk: quotes (one after an odd run of backslashes is escaped), the
  brackets outside strings (by the parity of the quotes before them), and the nesting
  depth (a running sum of opening minus closing brackets). An entry ends where a bracket
  brings the depth back to the array's;
* the bytes of ``batch_size`` entries go to msgspec in one piece, decoded straight into
  the entity's typed record (:data:`autosynk.records.RECORD_TYPES`);
* a batch whose entries break the typed shape is decoded generically and converted record
  by record (:func:`autosynk.records.to_records`): the whole-file reader's tolerance;
* or (:func:`iter_lines`) a batch's entries are handed out as they came, one a line
  (:class:`Lines`), for a reader that parses them itself (e.g. ``pyarrow.json``);
* the document around the array (other top-level keys, before or after ``data``) is kept
  and decoded with the array left out, so that a file which is not JSON, not of the form
  ``{"data": [...]}`` or holds entries that are not objects is the same
  :class:`SourceError` as :func:`autosynk.records.read_typed_snapshot` raises.

A fault is raised when the scan reaches it: a truncated file yields its complete batches
first. A consumer takes the list as read only once the iterator ends without raising.

Beyond the whole-file reader: a second top-level ``data`` key after a list was read is
refused (the whole-file reader silently keeps the last), and the document outside the
array may hold at most :data:`ENVELOPE_LIMIT` bytes (a register's holds a page token or a
little ``meta``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import msgspec
import numpy as np

from autosynk.errors import SourceError

log = logging.getLogger(__name__)

#: bytes read from the file at a time
CHUNK_BYTES = 8 * 2**20
#: the document outside the data array may be at most this large
ENVELOPE_LIMIT = 64 * 2**20
#: the quick scan finding no entry's end for this long scans exactly
_NO_END = 2 * CHUNK_BYTES

_QUOTE, _BACKSLASH, _COMMA, _COLON = 0x22, 0x5C, 0x2C, 0x3A
_OPEN_BRACKET, _CLOSE_BRACKET = 0x5B, 0x5D
_WHITESPACE = b" \t\r\n"
_STEP = np.zeros(256, dtype=np.int64)
_STEP[list(b"{[")] = 1
_STEP[list(b"}]")] = -1
_BYTE_OFFSET = re.compile(r"\(byte (\d+)\)")

_TOP, _DATA, _AFTER = "top", "data", "after"  # where the scan is


class _Scanner:
    """Brackets (and, ``full``, commas and colons) chunk after chunk, with the depth.

    ``exact``: only those outside strings. Otherwise every bracket counts, strings or not:
    a third of the work, and right for any register whose texts hold no brackets. Each
    batch cut so is checked by decoding it (a cut misplaced by a bracket in a text ends
    the batch inside a string or inside a record, which no decoder accepts), and on the
    first doubt the reader scans exactly from the last good cut (see :class:`_ListReader`).
    """

    def __init__(self) -> None:
        self.exact = False
        self.in_string = False
        self.depth = 0
        self.backslashes = 0  # the run of backslashes the last scanned piece ended with

    def reset(self, depth: int) -> None:
        """The state just after a bracket: outside a string, at ``depth``."""
        self.in_string, self.depth, self.backslashes = False, depth, 0

    def scan(self, piece: bytes, *, full: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Positions in ``piece``, characters, and the depth after each."""
        exact = self.exact or full
        arr = np.frombuffer(piece, dtype=np.uint8)
        folded = arr | 0x20  # "[" -> "{", "]" -> "}"
        mask = folded == 0x7B
        mask |= folded == 0x7D
        del folded
        if exact:
            mask |= arr == _QUOTE
        if full:
            mask |= arr == _COMMA
            mask |= arr == _COLON
        events = np.flatnonzero(mask)
        del mask
        chars = arr[events]
        if exact:
            events, chars = self._outside_strings(piece, events, chars)
        depth = self.depth + np.cumsum(_STEP[chars])
        if len(depth):
            self.depth = int(depth[-1])
        return events, chars, depth

    def _outside_strings(
        self, piece: bytes, events: np.ndarray, chars: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        quote = chars == _QUOTE
        if (b"\\" in piece and piece.find(b'\\"') >= 0) or (
            piece[:1] == b'"' and self.backslashes % 2
        ):
            for i in np.flatnonzero(quote).tolist():
                if self._escaped(piece, int(events[i])):
                    quote[i] = False
                    chars[i] = 0  # an escaped quote is no event at all
        quotes_before = np.cumsum(quote, dtype=np.int64)
        outside = (chars != _QUOTE) & (chars != 0) & ((quotes_before + self.in_string) % 2 == 0)
        if len(quotes_before):
            self.in_string = bool((int(quotes_before[-1]) + self.in_string) % 2)
        run = len(piece) - len(piece.rstrip(b"\\"))
        self.backslashes = run if run < len(piece) else self.backslashes + run
        return events[outside], chars[outside]

    def _escaped(self, piece: bytes, at: int) -> bool:
        i = at - 1
        while i >= 0 and piece[i] == _BACKSLASH:
            i -= 1
        run = at - 1 - i + (self.backslashes if i < 0 else 0)
        return run % 2 == 1


class _Doubt(Exception):
    """The quick scan's cut did not hold: scan exactly from the last good cut."""


class _ListReader:
    """One list file read in batches; see the module docstring."""

    def __init__(self, path: Path, name: str, batch_size: int, kind: type | None) -> None:
        #: a batch that breaks the typed shape is converted record by record
        self.convert = kind is None
        if kind is None:
            from autosynk.records import RECORD_TYPES

            kind = RECORD_TYPES[name]
        self.path = path
        self.name = name
        self.kind = kind
        self.batch_size = max(1, batch_size)
        entry = msgspec.Raw if kind is Lines else kind
        self.typed = msgspec.json.Decoder(list[entry])  # type: ignore[valid-type]
        self.generic = msgspec.json.Decoder(list[Any])
        self.scanner = _Scanner()
        self.phase = _TOP
        self.buf = bytearray()  # the file's bytes from offset ``base`` on
        self.base = 0
        self.prefix = b""  # the document up to and including the data array's "["
        self.suffix = bytearray()  # the document from the data array's "]" on
        self.data_start = -1  # file offset just after the "["
        self.data_end = -1  # file offset of the "]"
        self.data_key = -1  # file offset of a top-level colon after the key "data"
        self.batch_start = -1  # file offset where the next batch's bytes begin
        self.separator_due = False  # a comma must come before the next entry
        self.pending = 0  # entries ended since batch_start
        self.last_end = 0  # file offset where the last entry seen ended
        self.not_objects = 0
        self.fell_back = False

    # errors ----------------------------------------------------------------------------------

    def _error(self, text: str) -> SourceError:
        return SourceError(f"{self.name}: {self.path.name} {text}")

    def _not_json(self, detail: str) -> SourceError:
        return self._error(f"is not valid JSON ({detail})")

    def _malformed(self, exc: msgspec.DecodeError, where: Callable[[int], int]) -> SourceError:
        """msgspec's words, each ``(byte N)`` moved to its offset in the file."""
        text = _BYTE_OFFSET.sub(lambda m: f"(byte {where(int(m.group(1)))})", str(exc))
        return self._not_json(text)

    def _data_error(self, fallback: str) -> SourceError:
        """A fault in the data array, in the words msgspec has for the whole file.

        Everything before ``batch_start`` was read whole, so the bytes from there on,
        decoded in the state the array is in at that point, meet the same first fault.
        """
        lead = b"[0" if self.separator_due else b"["
        try:
            msgspec.json.decode(lead + bytes(self.buf[self.batch_start - self.base :]))
        except msgspec.DecodeError as exc:
            if "truncated" not in str(exc) or "truncated" in fallback:
                return self._malformed(exc, lambda n: n - len(lead) + self.batch_start)
        return self._not_json(fallback)

    def _not_the_form(self) -> SourceError:
        return self._error('is not of the form {"data": [...]}')

    # reading ---------------------------------------------------------------------------------

    def batches(self) -> Iterator[list[Any]]:
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            raise SourceError(
                f"{self.name}: file {self.path.name} is missing from the snapshot"
            ) from None
        with handle:
            yield from self._read(handle)
        if self.not_objects:
            raise self._error(f"holds {self.not_objects} entries that are not objects")

    def _read(self, handle: BinaryIO) -> Iterator[list[Any]]:
        offset = 0
        while chunk := handle.read(CHUNK_BYTES):
            self.buf += chunk
            yield from self._checked(chunk, offset)
            offset += len(chunk)
            held = len(self.buf) if self.phase == _TOP else len(self.prefix) + len(self.suffix)
            if self.phase != _DATA and held > ENVELOPE_LIMIT:
                raise self._not_the_form()
            if self.phase == _DATA and offset - max(self.last_end, self.batch_start) > _NO_END:
                yield from self._rescan()  # no entry ended for a long stretch: count exactly
        if self.phase == _DATA:
            yield from self._rescan()
            if self.phase == _DATA:
                raise self._data_error("Input data was truncated")
        self._finish()

    def _checked(self, piece: bytes, offset: int) -> Iterator[list[Any]]:
        try:
            yield from self._feed(piece, offset)
        except _Doubt:
            yield from self._rescan()

    def _rescan(self) -> Iterator[list[Any]]:
        """Scan exactly from the last good cut what the quick scan may have misread."""
        if self.scanner.exact or self.phase != _DATA:
            return
        log.info(
            "%s: a cut after byte %d did not hold (a bracket inside a text, or a fault); "
            "scanning exactly from there",
            self.path.name,
            self.batch_start,
        )
        self.scanner.exact = True
        self.scanner.reset(depth=2)
        self.pending = 0
        self.last_end = self.batch_start
        yield from self._feed(bytes(self.buf[self.batch_start - self.base :]), self.batch_start)

    def _feed(self, chunk: bytes, offset: int) -> Iterator[list[Any]]:
        start = 0
        while start < len(chunk):
            piece = chunk[start:] if start else chunk
            if self.phase == _DATA:
                positions, chars, depth = self.scanner.scan(piece, full=False)
                closed = yield from self._entries(positions, chars, depth, offset + start)
            else:
                positions, chars, depth = self.scanner.scan(piece, full=True)
                closed = self._envelope(positions, chars, depth, offset + start)
            if closed < 0:
                return
            start = closed + 1 - offset

    # the envelope: find the data key, keep the document -------------------------------------

    def _envelope(
        self, positions: np.ndarray, chars: np.ndarray, depth: np.ndarray, at: int
    ) -> int:
        """Top-level events; the file offset of the data array's "[" once found, else -1."""
        if self.phase == _AFTER:
            self._keep_suffix()
        before = depth - _STEP[chars]
        for j in np.flatnonzero(before <= 1).tolist():
            here = at + int(positions[j])
            char = int(chars[j])
            if self.data_key >= 0:
                colon, self.data_key = self.data_key, -1
                between = self._span(colon + 1, here)
                if char == _OPEN_BRACKET and not between.strip(_WHITESPACE):
                    if self.phase == _AFTER:
                        raise self._error("holds the top-level key data twice")
                    self._open_data(here)
                    return here
            if char == _COLON and int(before[j]) == 1 and self._key_before(here) == "data":
                self.data_key = here
        return -1

    def _span(self, start: int, end: int) -> bytes:
        if self.phase == _AFTER:
            return bytes(self.suffix[start - self.data_end : end - self.data_end])
        return bytes(self.buf[start - self.base : end - self.base])

    def _key_before(self, colon: int) -> str | None:
        """The string that ends just before the colon at file offset ``colon``."""
        if self.phase == _AFTER:
            text, origin = bytes(self.suffix), self.data_end
        else:
            text, origin = bytes(self.buf), self.base
        end = len(text[: colon - origin].rstrip(_WHITESPACE))
        if end < 2 or text[end - 1] != _QUOTE:
            return None
        i = end - 2
        while i >= 0:
            if text[i] == _QUOTE and (i - len(text[:i].rstrip(b"\\"))) % 2 == 0:
                break
            i -= 1
        try:
            key = msgspec.json.decode(text[max(i, 0) : end])
        except msgspec.DecodeError:
            return None
        return key if isinstance(key, str) else None

    def _open_data(self, bracket: int) -> None:
        self.prefix = bytes(self.buf[: bracket + 1 - self.base])
        try:  # the document before the array, checked as the whole-file reader would
            msgspec.json.decode(self.prefix + b"]}")
        except msgspec.DecodeError as exc:
            raise self._malformed(exc, lambda n: n) from None
        self.phase = _DATA
        self.data_start = self.batch_start = bracket + 1
        self._drop_before(bracket)  # (the "[" stays: a batch is decoded in place)
        self.scanner.reset(depth=2)

    def _drop_before(self, offset: int) -> None:
        if offset > self.base:
            del self.buf[: offset - self.base]
            self.base = offset

    def _keep_suffix(self) -> None:
        self.suffix += self.buf
        self.base += len(self.buf)
        self.buf.clear()

    # the data array --------------------------------------------------------------------------

    def _entries(
        self, positions: np.ndarray, chars: np.ndarray, depth: np.ndarray, at: int
    ) -> Generator[list[Any], None, int]:
        """Cut batches where entries end; the file offset of the array's "]" if seen, else -1."""
        closing = np.flatnonzero(depth <= 1)
        stop = int(closing[0]) if len(closing) else len(positions)
        ends = np.flatnonzero((depth[:stop] == 2) & ((chars[:stop] | 0x20) == 0x7D))
        if len(ends):
            self.last_end = at + int(positions[ends[-1]])
        counted = 0
        for k in range(self.batch_size - self.pending - 1, len(ends), self.batch_size):
            self.pending += k + 1 - counted
            counted = k + 1
            yield from self._batch(at + int(positions[ends[k]]) + 1)
        self.pending += len(ends) - counted
        if stop == len(positions):
            return -1
        end = at + int(positions[stop])
        if int(chars[stop]) != _CLOSE_BRACKET:
            self._doubt()
            raise self._data_error(f"JSON is malformed: expected ',' or ']' (byte {end})")
        yield from self._batch(end, last=True)
        self.phase = _AFTER
        self.data_end = end
        self._drop_before(end)
        self.scanner.reset(depth=1)
        return end

    def _doubt(self) -> None:
        """The quick scan may have misread: scan exactly (see :class:`_Scanner`)."""
        if not self.scanner.exact:
            raise _Doubt

    def _batch(self, end: int, *, last: bool = False) -> Iterator[list[Any]]:
        """Decode the entries between ``batch_start`` and the file offset ``end``."""
        start = self._after_separator(end, last=last)
        try:
            records, bad = ([], 0) if start is None else self._decode_in_place(start, end)
        except msgspec.DecodeError as exc:
            self._doubt()
            raise self._data_error(str(exc)) from None
        if len(records) != self.pending:  # brackets in texts that happened to even out
            self._doubt()
        self.not_objects += bad
        self.batch_start, self.separator_due, self.pending = end, True, 0
        self._drop_before(end)
        if records and not self.not_objects:
            yield records

    def _after_separator(self, end: int, *, last: bool) -> int | None:
        """Where the batch's first entry begins, past the comma before it; None: no entry."""
        i = self.batch_start - self.base
        stop = end - self.base
        while i < stop and self.buf[i] in _WHITESPACE:
            i += 1
        if self.separator_due:
            if i == stop and last:
                return None  # the array ends right after the last batch
            if i == stop or self.buf[i] != _COMMA:
                self._doubt()
                raise self._data_error(
                    f"JSON is malformed: expected ',' or ']' (byte {self.base + i})"
                )
            i += 1
            rest = bytes(self.buf[i:stop]).strip(_WHITESPACE) if last else b"x"
            if not rest:
                self._doubt()
                raise self._data_error(f"JSON is malformed: trailing comma in array (byte {end})")
        elif i == stop:
            return None  # an empty array
        return self.base + i

    def _decode_in_place(self, start: int, end: int) -> tuple[list[Any], int]:
        """Decode ``[`` + the bytes from ``start`` to ``end`` + ``]`` without copying them.

        The byte before ``start`` (the comma, or the array's own ``[``) is lent for the
        ``[``, the byte at ``end`` for the ``]``; both are put back (a doubted cut is read
        again).
        """
        low, high = start - 1 - self.base, end - self.base
        lent = high == len(self.buf)
        if lent:
            self.buf.append(_CLOSE_BRACKET)
        kept = self.buf[low], self.buf[high]
        self.buf[low], self.buf[high] = _OPEN_BRACKET, _CLOSE_BRACKET
        document = memoryview(self.buf)[low : high + 1]
        try:
            return self._decode(document, start)
        except UnicodeDecodeError:  # msgspec's own words name no place in the file
            raise self._error(
                f"holds text that is not UTF-8 in the entries from byte {start} on"
            ) from None
        finally:
            document.release()
            self.buf[low], self.buf[high] = kept
            if lent:
                del self.buf[-1]

    def _decode(self, document: memoryview, start: int) -> tuple[list[Any], int]:
        """The entries, and how many of them are not objects."""
        if not self.not_objects and self.kind is Lines:
            lines = _lines(self.typed.decode(document))  # (its entries let go here)
            if lines is not None:
                return lines, 0  # type: ignore[return-value]
        elif not self.not_objects:
            try:
                return self.typed.decode(document), 0
            except msgspec.ValidationError as exc:
                if not self.fell_back:
                    log.info("%s: %s; reading it record by record", self.path.name, exc)
                    self.fell_back = True
        items: list[Any] = self.generic.decode(document)
        bad = sum(1 for item in items if not isinstance(item, dict))
        if bad or self.not_objects or not self.convert:
            return items, bad
        from autosynk.records import to_records

        return to_records(self.name, items), 0

    # the end ---------------------------------------------------------------------------------

    def _finish(self) -> None:
        if self.phase == _AFTER:
            self._keep_suffix()
            envelope = self.prefix + bytes(self.suffix)
            cut, gap = len(self.prefix), self.data_end - self.data_start
        else:
            envelope, cut, gap = bytes(self.buf), 0, 0
        try:
            document = msgspec.json.decode(envelope)
        except msgspec.DecodeError as exc:
            raise self._malformed(exc, lambda n: n if n < cut else n + gap) from None
        if self.phase == _TOP or not isinstance(document, dict) or document.get("data") != []:
            # (a data list below the top level is no envelope; a later data key wins)
            raise self._not_the_form()


def iter_records(path: Path, entity: str, batch_size: int = 50_000) -> Iterator[list[Any]]:
    """The entity's typed records from ``path``, in batches of at most ``batch_size``.

    Joined, the batches are exactly what :func:`autosynk.records.read_typed_snapshot` reads
    for the same file; a broken file is the same :class:`SourceError`, raised once the scan
    reaches the fault (batches before it have been yielded by then).
    """
    return _ListReader(path, entity, batch_size, None).batches()


def iter_objects(path: Path, name: str, batch_size: int = 50_000) -> Iterator[list[Any]]:
    """As :func:`iter_records`, each entry a plain dict: any ``{"data": [...]}`` file."""
    return _ListReader(path, name, batch_size, dict).batches()


class Lines:
    """A batch's entries as they came, newline-delimited: one entry a line.

    Raw newlines in JSON can only be whitespace (inside a string they must be escaped),
    so each entry's own are made spaces; ``data`` holds ``count`` lines, each an object.
    """

    __slots__ = ("count", "data")

    def __init__(self, data: bytes, count: int) -> None:
        self.data = data
        self.count = count

    def __len__(self) -> int:
        return self.count

    def document(self) -> bytes:
        """The entries as a JSON array."""
        return b"[" + self.data.replace(b"\n", b",") + b"]"


#: entries joined by NUL (never in valid JSON), newlines -> spaces, NUL -> newline
_TO_LINES = bytes.maketrans(b"\n\r\0", b"  \n")
_OPEN_BRACE = 0x7B


def _lines(entries: list[msgspec.Raw]) -> Lines | None:
    """The entries one a line; None when some entry is not an object."""
    data = b"\n".join(entries)
    if data.count(b"\n") >= len(entries) or data.find(b"\r") >= 0:  # (newlines inside)
        data = b"\0".join(entries).translate(_TO_LINES)
    lengths = np.fromiter(map(len, entries), dtype=np.int64, count=len(entries))
    starts = np.cumsum(lengths + 1) - (lengths + 1)
    firsts = np.frombuffer(data, dtype=np.uint8)[starts]
    return Lines(data, len(entries)) if bool((firsts == _OPEN_BRACE).all()) else None


def iter_lines(path: Path, entity: str, batch_size: int = 50_000) -> Iterator[Lines]:
    """As :func:`iter_records`, each batch its entries' own bytes (:class:`Lines`), checked
    as :func:`count_entries` checks them (JSON, the form, objects) but not decoded."""
    return _ListReader(path, entity, batch_size, Lines).batches()  # type: ignore[return-value]


class _Entry(msgspec.Struct):
    """Any object, its fields skipped (decoded as fast as a check can be)."""


def count_entries(path: Path, name: str, batch_size: int = 50_000) -> int:
    """Check a list file as :func:`iter_records` does (JSON, the form, objects) and count
    its entries, keeping none of their fields."""
    return sum(len(batch) for batch in _ListReader(path, name, batch_size, _Entry).batches())
