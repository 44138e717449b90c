"""``autosynk verify``: an independent, strict reader of Unikum import files.

It shares no code with the writer (``autosynk.unikum``) nor the mapping, so it cannot share
their mistakes: the contract is re-read from the spec in :mod:`autosynk.verify.checks`.
Every violation names file, line and field; identity numbers in messages are masked.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import cast

from autosynk.errors import AutosynkError, ConfigError
from autosynk.verify.checks import (
    RELATION_COLUMNS,
    KnownState,
    PrincipalIndex,
    check_principals,
    check_relations,
    load_known_state,
)
from autosynk.verify.reader import (
    LineEnding,
    TextFile,
    Violation,
    collect_deliveries,
    decode,
)

__all__ = ["Violation", "main_verify", "verify_paths"]


def verify_paths(
    paths: list[Path],
    *,
    known_state: Path | None = None,
    encoding: str | None = None,
    gnupghome: Path | None = None,
    passphrase: str | None = None,
    relation_columns: tuple[str, str, str, str] = RELATION_COLUMNS,
    line_ending: str | None = None,
    removes_after_adds: bool = True,
    expected_signer: str | None = None,
) -> list[Violation]:
    """Check every delivery found in ``paths``; an empty list means all is well.

    Files of the same stem form one delivery (relations may name that delivery's
    principals). ``encoding`` None detects (valid UTF-8, else ISO-8859-1); ``line_ending``
    ``"lf"``/``"crlf"``, None accepts either as long as a file does not mix them.
    ``expected_signer`` (fingerprint, key id or user id) also checks who signed a package.
    Raises :class:`ConfigError` for a bad option or an unreadable known-state file.
    """
    if sorted(relation_columns) != sorted(RELATION_COLUMNS):
        raise ConfigError(f"relation columns must be an order of {', '.join(RELATION_COLUMNS)}")
    if line_ending not in (None, "lf", "crlf"):
        raise ConfigError(f"line ending must be lf or crlf, not {line_ending!r}")
    if encoding is not None:
        try:
            "".encode(encoding)
        except LookupError:
            raise ConfigError(f"unknown encoding {encoding!r}") from None
    known: KnownState | None = load_known_state(known_state) if known_state else None
    deliveries, violations = collect_deliveries(
        paths, gnupghome=gnupghome, passphrase=passphrase, expected_signer=expected_signer
    )
    ending = cast("LineEnding | None", line_ending)
    for delivery in deliveries:
        index = PrincipalIndex()
        texts: list[TextFile] = []
        if delivery.principals is not None:
            text, problems = decode(delivery.principals, encoding, ending)
            violations += problems + check_principals(text, index)
            texts.append(text)
        if delivery.relations is not None:
            text, problems = decode(delivery.relations, encoding, ending)
            violations += problems
            violations += check_relations(
                text,
                index,
                known,
                columns=relation_columns,
                removes_after_adds=removes_after_adds,
            )
            texts.append(text)
        # Pure ASCII reads the same in every encoding: only the others can disagree.
        texts = [t for t in texts if not t.ascii_only]
        if len({t.encoding for t in texts}) > 1:
            violations.append(
                Violation(
                    delivery.stem,
                    None,
                    None,
                    "encoding-mismatch",
                    "the files of one delivery use different encodings: "
                    + ", ".join(f"{t.name} {t.encoding}" for t in texts),
                )
            )
    return sorted(violations, key=lambda v: (v.file, v.line or 0, v.field or 0, v.code))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autosynk verify",
        description="Check Unikum import files (.principals, .relations, .zip, .pgp) strictly.",
    )
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--known-state", type=Path, help="JSON of objects/relations Unikum has")
    parser.add_argument("--encoding", help="utf-8 or iso-8859-1 (default: detect)")
    parser.add_argument("--line-ending", choices=["lf", "crlf"], help="default: either")
    parser.add_argument("--gnupghome", type=Path, help="GnuPG home holding the keys")
    parser.add_argument("--passphrase-file", type=Path, help="passphrase of the secret key")
    parser.add_argument("--signer", help="fingerprint or user id that must have signed")
    parser.add_argument(
        "--relation-columns",
        default=",".join(RELATION_COLUMNS),
        help="column order of relations rows (default: operation,type,first,second)",
    )
    parser.add_argument(
        "--removes-first",
        action="store_true",
        help="the delivery writes removes before adds (removes_after_adds=false)",
    )
    return parser


def main_verify(argv: list[str]) -> int:
    """CLI: one line per violation and a summary; 1 on any violation, 0 if clean, 2 on error."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as stop:  # --help or a usage error, already printed by argparse
        return int(stop.code or 0)
    try:
        columns = tuple(part.strip() for part in args.relation_columns.split(","))
        if len(columns) != len(RELATION_COLUMNS):
            raise ConfigError("--relation-columns needs four names")
        passphrase = None
        if args.passphrase_file:
            try:
                passphrase = args.passphrase_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"passphrase file: {exc.strerror}") from None
        violations = verify_paths(
            list(args.files),
            known_state=args.known_state,
            encoding=args.encoding,
            gnupghome=args.gnupghome,
            passphrase=passphrase,
            relation_columns=cast("tuple[str, str, str, str]", columns),
            line_ending=args.line_ending,
            removes_after_adds=not args.removes_first,
            expected_signer=args.signer,
        )
    except AutosynkError as exc:
        print(f"error: {exc}")
        return 2
    for violation in violations:
        print(violation)
    files = len(args.files)
    if violations:
        print(f"{len(violations)} violation(s) in {files} file(s) checked")
        return 1
    print(f"ok: {files} file(s) checked, no violations")
    return 0
