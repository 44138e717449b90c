"""Read a delivery the way a strict importer would: files, packages, bytes, lines.

Deliberately independent of the writer (``autosynk.unikum``): this module reads the bytes
from scratch, so a mistake in the writer cannot hide itself here. It turns paths into
deliveries (a ``.principals`` and a ``.relations`` of the same stem, loose, zipped or
inside an OpenPGP package) and each file into numbered lines, reporting what is wrong with
the bytes themselves (encoding, BOM, line endings, empty lines, stray CR).
"""

from __future__ import annotations

import codecs
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from autosynk.identity import mask_shaped

PRINCIPALS = ".principals"
RELATIONS = ".relations"
ZIP = ".zip"
PGP_SUFFIXES = (".pgp", ".gpg", ".asc")
_BOM = codecs.BOM_UTF8

LineEnding = Literal["lf", "crlf"]


@dataclass(frozen=True)
class Violation:
    """One thing wrong with a delivery; ``line``/``field`` are 1-based (None: whole file)."""

    file: str
    line: int | None
    field: int | None
    code: str
    message: str

    def __post_init__(self) -> None:
        # Messages quote values from the files: never let a full identity number through.
        object.__setattr__(self, "message", mask_shaped(self.message))

    def __str__(self) -> str:
        place = self.file
        if self.line is not None:
            place += f":{self.line}"
            if self.field is not None:
                place += f":{self.field}"
        return f"{place}: {self.code}: {self.message}"


@dataclass(frozen=True)
class RawFile:
    """The bytes of one data file and the name to report it under."""

    name: str
    data: bytes


@dataclass
class Delivery:
    """The files of one delivery: the same stem, at most one of each kind."""

    stem: str
    principals: RawFile | None = None
    relations: RawFile | None = None


@dataclass(frozen=True)
class Line:
    number: int
    text: str


@dataclass
class TextFile:
    """A decoded file: its lines (terminators removed, empty lines dropped)."""

    name: str
    encoding: str
    ascii_only: bool = True
    lines: list[Line] = field(default_factory=list)


def stem_of(name: str) -> str:
    """``X_20261128_0130.zip.pgp`` -> ``X_20261128_0130``."""
    for suffix in (*PGP_SUFFIXES, ZIP, PRINCIPALS, RELATIONS):
        if name.endswith(suffix):
            return stem_of(name[: -len(suffix)])
    return name


def collect_deliveries(
    paths: list[Path],
    *,
    gnupghome: Path | None,
    passphrase: str | None,
    expected_signer: str | None,
) -> tuple[list[Delivery], list[Violation]]:
    """Group the given files into deliveries by stem, unpacking zips and OpenPGP packages."""
    deliveries: dict[str, Delivery] = {}
    problems: list[Violation] = []
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError as exc:
            problems.append(Violation(path.name, None, None, "unreadable", exc.strerror or "?"))
            continue
        for raw in _unpack(path.name, data, gnupghome, passphrase, expected_signer, problems):
            delivery = deliveries.setdefault(stem_of(raw.name), Delivery(stem_of(raw.name)))
            slot = "principals" if raw.name.endswith(PRINCIPALS) else "relations"
            if getattr(delivery, slot) is not None:
                problems.append(
                    Violation(raw.name, None, None, "duplicate-file", "given more than once")
                )
                continue
            setattr(delivery, slot, raw)
    return list(deliveries.values()), problems


def _unpack(
    name: str,
    data: bytes,
    gnupghome: Path | None,
    passphrase: str | None,
    expected_signer: str | None,
    problems: list[Violation],
) -> list[RawFile]:
    if name.endswith(PGP_SUFFIXES):
        plain = _decrypt(name, data, gnupghome, passphrase, expected_signer, problems)
        if plain is None:
            return []
        inner = name.rsplit(".", 1)[0]
        if plain.startswith(b"PK\x03\x04") and not inner.endswith(ZIP):
            inner = stem_of(inner) + ZIP
        return _unpack(inner, plain, gnupghome, passphrase, expected_signer, problems)
    if name.endswith(ZIP):
        return _unzip(name, data, problems)
    if name.endswith((PRINCIPALS, RELATIONS)):
        return [RawFile(name, data)]
    problems.append(
        Violation(
            name,
            None,
            None,
            "unknown-file-type",
            "expected .principals, .relations, .zip or an OpenPGP package (.pgp, .gpg, .asc)",
        )
    )
    return []


def _unzip(name: str, data: bytes, problems: list[Violation]) -> list[RawFile]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [info for info in archive.infolist() if not info.is_dir()]
        wanted = {stem_of(name) + PRINCIPALS, stem_of(name) + RELATIONS}
        found = []
        for info in members:
            if info.filename not in wanted:
                problems.append(
                    Violation(
                        name,
                        None,
                        None,
                        "zip-content",
                        f"unexpected member {info.filename!r}; a delivery zip holds "
                        f"only {' and '.join(sorted(wanted))}",
                    )
                )
                continue
            found.append(RawFile(info.filename, archive.read(info)))
        if not found:
            problems.append(Violation(name, None, None, "zip-content", "no data file inside"))
        return found
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        problems.append(Violation(name, None, None, "bad-zip", f"not a readable zip: {exc}"))
        return []


def _decrypt(
    name: str,
    data: bytes,
    gnupghome: Path | None,
    passphrase: str | None,
    expected_signer: str | None,
    problems: list[Violation],
) -> bytes | None:
    import gnupg  # python-gnupg; only needed for encrypted packages

    gpg = gnupg.GPG(gnupghome=str(gnupghome) if gnupghome else None)
    result = gpg.decrypt(data, passphrase=passphrase)
    if not result.ok:
        problems.append(
            Violation(name, None, None, "decrypt", f"could not decrypt: {result.status}")
        )
        return None
    if not result.valid:
        # No signature at all, a bad one, or one made by a key this keyring does not hold.
        reason = _signature_trouble(str(result.stderr or ""))
        problems.append(Violation(name, None, None, "signature", reason))
    elif expected_signer and not _signer_matches(result, expected_signer):
        problems.append(
            Violation(
                name,
                None,
                None,
                "signature",
                f"signed by {result.username or result.fingerprint}, expected {expected_signer}",
            )
        )
    return bytes(result.data)


_SIG_STATUS = {
    "BADSIG": "bad signature: the package was changed or the signature is forged",
    "NO_PUBKEY": "signed by a key this keyring does not hold (key {key})",
    "ERRSIG": "the signature could not be checked (key {key})",
    "EXPKEYSIG": "signed with an expired key (key {key})",
    "REVKEYSIG": "signed with a revoked key (key {key})",
    "EXPSIG": "the signature has expired (key {key})",
}


def _signature_trouble(stderr: str) -> str:
    """Why a decrypted package has no valid signature, from gpg's status lines."""
    seen: dict[str, str] = {}
    for line in stderr.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "[GNUPG:]" and parts[1] in _SIG_STATUS:
            seen.setdefault(parts[1], parts[2] if len(parts) > 2 else "?")
    for status, reason in _SIG_STATUS.items():  # the most telling status first
        if status in seen:
            return reason.format(key=seen[status])
    return "the package is not signed"


def _signer_matches(result: object, expected: str) -> bool:
    wanted = expected.replace(" ", "").upper()
    candidates = [
        str(getattr(result, attr, "") or "")
        for attr in ("fingerprint", "pubkey_fingerprint", "key_id", "username")
    ]
    return any(
        wanted and (c.upper().endswith(wanted) or expected.lower() in c.lower())
        for c in candidates
        if c
    )


def decode(
    raw: RawFile, encoding: str | None, line_ending: LineEnding | None
) -> tuple[TextFile, list[Violation]]:
    """Decode ``raw`` and split it into lines, reporting byte- and line-level problems."""
    problems: list[Violation] = []
    data = raw.data
    if data.startswith(_BOM):
        problems.append(Violation(raw.name, 1, None, "bom", "file starts with a UTF-8 BOM"))
        data = data[len(_BOM) :]
    name = _decide_encoding(raw.name, data, encoding, problems)
    text = data.decode(name, errors="replace")
    result = TextFile(raw.name, name, ascii_only=data.isascii())
    pieces = text.split("\n")
    tail = pieces.pop()  # text after the last LF: empty when the file ends with a newline
    endings: list[LineEnding] = []
    for number, piece in enumerate(pieces, start=1):
        ending: LineEnding = "crlf" if piece.endswith("\r") else "lf"
        endings.append(ending)
        _add_line(result, number, piece[:-1] if ending == "crlf" else piece, problems)
    problems += _line_ending_problems(raw.name, endings, line_ending)
    if tail:
        _add_line(result, len(pieces) + 1, tail, problems)
    return result, problems


def _line_ending_problems(
    name: str, endings: list[LineEnding], wanted: LineEnding | None
) -> list[Violation]:
    """One violation per file, at the first line that breaks the rule (counting the rest)."""
    expected = wanted or (endings[0] if endings else None)
    wrong = [number for number, ending in enumerate(endings, start=1) if ending != expected]
    if not wrong or expected is None:
        return []
    found = endings[wrong[0] - 1].upper()
    more = f" ({len(wrong) - 1} more line(s) like it)" if len(wrong) > 1 else ""
    if wanted:
        code, message = "wrong-line-ending", f"line ends with {found}, {wanted.upper()} expected"
    else:
        code, message = (
            "mixed-line-endings",
            f"line ends with {found}, line 1 with {expected.upper()}",
        )
    return [Violation(name, wrong[0], None, code, message + more)]


def _add_line(result: TextFile, number: int, content: str, problems: list[Violation]) -> None:
    if not content.strip():
        problems.append(Violation(result.name, number, None, "empty-line", "empty line"))
        return
    for index, value in enumerate(content.split("\t"), start=1):
        if "\r" in value:
            problems.append(
                Violation(result.name, number, index, "cr-in-line", "carriage return in a value")
            )
        elif any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
            problems.append(
                Violation(
                    result.name, number, index, "control-char", "control character in a value"
                )
            )
    result.lines.append(Line(number, content))


def _decide_encoding(
    name: str, data: bytes, encoding: str | None, problems: list[Violation]
) -> str:
    if encoding is None:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return "iso8859-1"
        return "utf-8"
    wanted = codecs.lookup(encoding).name
    try:
        data.decode(wanted)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        problems.append(
            Violation(name, line, None, "encoding", f"bytes not valid {wanted}: {exc.reason}")
        )
        return wanted
    if wanted != "utf-8" and not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return wanted
        # Valid UTF-8 with non-ASCII bytes read as Latin-1 turns "å" into "Ã¥".
        problems.append(
            Violation(name, 1, None, "encoding", f"bytes are UTF-8, but {wanted} was expected")
        )
    return wanted
