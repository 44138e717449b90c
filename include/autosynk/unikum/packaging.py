"""Package a delivery: plain files, one zip, or the zip OpenPGP-encrypted and signed (spec §8).

- ``zip``: ``<stem>.zip`` is deterministic (members in the order given, timestamps from the
  stem's local time, mode 0600, deflate level 9), so the same files give the same bytes.
- ``zip+pgp``: ``<stem>.zip.gpg``, the zip encrypted to ``pgp.recipient`` and signed by
  ``pgp.signer`` in one binary OpenPGP message (binary, not ASCII armour: a third smaller,
  and nothing on Unikum's side reads it as text). Keys come from configuration only: a
  configured ``gnupghome``, or a throw-away home into which ``recipient_key_file`` and
  ``signer_key_file`` are imported. Those keys are trusted as configured (``--trust-model
  always``); gpg never looks keys up on the network.

Encryption happens once per run (spec §10): ``<stem>.manifest.json`` beside the package
records the sha256 of the inputs and outputs. A second build with the same inputs returns
the existing package untouched; one with different inputs is refused rather than
overwriting what may already be on its way to Unikum.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

import gnupg

from autosynk.config import Pgp
from autosynk.errors import PackagingError
from autosynk.workspace import PRIVATE, copy_private, write_private

Mode = Literal["plain", "zip", "zip+pgp"]
MANIFEST_SUFFIX = ".manifest.json"

_STEM_TIME = re.compile(r"_(\d{8})_(\d{4})$")
# keyring-only lookups, no pinentry window: a missing passphrase fails instead of hanging
_GPG_OPTIONS = ["--no-auto-key-locate", "--no-auto-key-retrieve", "--pinentry-mode", "loopback"]
# status keywords that explain a failure; their free-text tail (user ids) is never shown
_FAILURE_KEYWORDS = (
    "KEYEXPIRED",
    "KEYREVOKED",
    "INV_RECP",
    "INV_SGNR",
    "NO_PUBKEY",
    "NO_SECKEY",
    "BAD_PASSPHRASE",
    "MISSING_PASSPHRASE",
    "DECRYPTION_FAILED",
    "NODATA",
    "FAILURE",
    "ERROR",
)
# gpg-error codes seen in FAILURE/ERROR lines
_ERROR_CODES = {
    9: "no public key",
    11: "bad passphrase",
    17: "no secret key",
    53: "unusable public key",
    54: "unusable secret key",
    58: "no data",
    152: "decryption failed",
    177: "missing passphrase",
}
# the reason at the end of a gpg message ("...failed: Bad passphrase"); never a user id
_GPG_REASON = re.compile(r"(?:failed|Fatal|error)[^:]*: ([A-Za-z][A-Za-z ,:'-]*)$")
_INVALID_KEY_REASONS = {
    "0": "no specific reason",
    "1": "not found",
    "2": "ambiguous",
    "3": "wrong key usage",
    "4": "revoked",
    "5": "expired",
    "9": "not a secret key",
    "10": "not trusted",
    "13": "disabled",
}


#: bytes read or written at a time: packaging holds a chunk, never a whole file
CHUNK = 8 * 2**20


@dataclass(frozen=True)
class _File:
    """A file to package or packaged: its name, where it is, its size and sha256."""

    name: str
    path: Path
    size: int
    sha256: str


def file_digest(path: Path) -> tuple[int, str]:
    """Size and sha256 of a file, read chunk by chunk."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


# --- zip ------------------------------------------------------------------------------------


def _stem_time(stem: str) -> tuple[int, int, int, int, int, int]:
    match = _STEM_TIME.search(stem)
    if not match:
        raise PackagingError(f"package name {stem!r} does not end in _YYYYMMDD_HHMM")
    try:
        moment = dt.datetime.strptime(match[1] + match[2], "%Y%m%d%H%M")
    except ValueError:
        raise PackagingError(f"package name {stem!r} holds an impossible time") from None
    return (moment.year, moment.month, moment.day, moment.hour, moment.minute, 0)


def _zip_member(
    name: str, stamp: tuple[int, int, int, int, int, int], size: int
) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=stamp)
    info.create_system = 3  # Unix, so the mode bits below mean what they say
    info.external_attr = (0o100000 | PRIVATE) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    # as ZipFile.writestr(info, data, compresslevel=9) sets them before it writes
    setattr(info, "_compresslevel", 9)  # noqa: B010 - what writestr sets; no public setter
    info.file_size = size
    return info


def _write_zip(files: list[_File], stem: str, handle: BinaryIO) -> None:
    """A zip of ``files`` whose bytes depend only on them and the stem's time, written
    chunk by chunk (the bytes ``ZipFile.writestr`` gives with the same member info)."""
    stamp = _stem_time(stem)
    with zipfile.ZipFile(handle, "w") as archive:
        for item in files:
            member_info = _zip_member(item.name, stamp, item.size)
            with archive.open(member_info, "w") as member, item.path.open("rb") as reading:
                while chunk := reading.read(CHUNK):
                    member.write(chunk)


# --- gpg ------------------------------------------------------------------------------------


def _status_summary(stderr: str) -> str:
    """gpg's telling status lines, without user ids or other free text."""
    found: list[str] = []
    for line in stderr.splitlines():
        if not line.startswith("[GNUPG:] "):
            continue
        keyword, *args = line[len("[GNUPG:] ") :].split()
        if keyword not in _FAILURE_KEYWORDS:
            continue
        if keyword in ("INV_RECP", "INV_SGNR") and args:
            reason = _INVALID_KEY_REASONS.get(args[0], "see gpg's documentation")
            text = f"{keyword} {args[0]} ({reason})"
        elif keyword in ("ERROR", "FAILURE") and len(args) >= 2 and args[1].isdigit():
            code = int(args[1]) & 0xFFFF  # gpg-error: the low 16 bits are the error code
            text = f"{keyword} {args[0]} {args[1]} ({_ERROR_CODES.get(code, 'gpg error')})"
        elif keyword in ("NO_PUBKEY", "NO_SECKEY", "KEYEXPIRED", "KEYREVOKED") and args:
            text = f"{keyword} {args[0]}"  # a key id or a date, never a name
        else:
            text = keyword
        if text not in found:
            found.append(text)
    if found:
        return "; ".join(found)
    # some failures (a damaged package) leave no status line: gpg's own reason then
    for line in reversed(stderr.splitlines()):
        match = _GPG_REASON.search(line)
        if line.startswith("gpg: ") and match:
            return f"gpg: {match[1]}"
    if "NEED_PASSPHRASE" in stderr:
        return "the secret key needs a passphrase and none was given"
    return "gpg gave no reason"


def _gpg(home: Path) -> gnupg.GPG:
    try:
        return gnupg.GPG(gnupghome=str(home), options=list(_GPG_OPTIONS))
    except (OSError, ValueError) as exc:
        raise PackagingError(f"gpg cannot be started with home {home}: {exc}") from None


def _stop_agent(home: Path) -> None:
    # a throw-away home leaves a gpg-agent behind; stop exactly that one
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(
            ["gpgconf", "--homedir", str(home), "--kill", "all"],
            check=False,
            capture_output=True,
            timeout=30,
        )


@contextlib.contextmanager
def _pgp_home(pgp: Pgp) -> Iterator[gnupg.GPG]:
    if pgp.gnupghome is not None:
        if not pgp.gnupghome.is_dir():
            raise PackagingError(f"pgp.gnupghome {pgp.gnupghome} is not a directory")
        yield _gpg(pgp.gnupghome)
        return
    if pgp.recipient_key_file is None or pgp.signer_key_file is None:
        raise PackagingError("pgp needs gnupghome, or both recipient_key_file and signer_key_file")
    home = Path(tempfile.mkdtemp(prefix="autosynk-gpg-"))
    try:
        gpg = _gpg(home)
        for what, key_file in (
            ("recipient_key_file", pgp.recipient_key_file),
            ("signer_key_file", pgp.signer_key_file),
        ):
            if not key_file.is_file():
                raise PackagingError(f"pgp.{what} {key_file} does not exist")
            imported = gpg.import_keys_file(str(key_file))
            if not imported.fingerprints:
                raise PackagingError(
                    f"pgp.{what} {key_file} holds no OpenPGP key "
                    f"({_status_summary(imported.stderr)})"
                )
        yield gpg
    finally:
        _stop_agent(home)
        shutil.rmtree(home, ignore_errors=True)


def encrypt_and_sign(source: Path, target: Path, pgp: Pgp, passphrase: str | None) -> None:
    """``source`` encrypted to ``pgp.recipient`` and signed by ``pgp.signer`` (binary), as
    ``target``: gpg reads and writes the files itself, so memory does not grow with them."""
    if passphrase is not None and ("\n" in passphrase or "\r" in passphrase):
        raise PackagingError("the pgp passphrase must not contain a line break")
    with _pgp_home(pgp) as gpg, source.open("rb") as reading:
        result = gpg.encrypt_file(
            reading,
            [pgp.recipient],
            sign=pgp.signer,
            passphrase=passphrase or None,
            armor=False,
            always_trust=True,
            output=str(target),
        )
        if not result.ok or not target.is_file() or not target.stat().st_size:
            raise PackagingError(
                f"gpg could not encrypt and sign the package: {_status_summary(result.stderr)}"
            )


def verify_package(path: Path, *, gnupghome: Path, passphrase: str | None = None) -> dict[str, Any]:
    """Decrypt ``path`` with a key in ``gnupghome`` and check its signature.

    Returns ``valid`` (a good signature by a key in that home), ``signer_fingerprint``
    (the signing key's primary key, when valid), ``signer_key_id``, ``status`` and the
    zip's ``members``. A package
    that cannot be decrypted (wrong recipient, damaged bytes) raises PackagingError.
    """
    gpg = _gpg(gnupghome)
    result = gpg.decrypt(path.read_bytes(), passphrase=passphrase or None, always_trust=True)
    if not result.ok:
        raise PackagingError(f"{path.name} cannot be decrypted: {_status_summary(result.stderr)}")
    try:
        with zipfile.ZipFile(io.BytesIO(bytes(result.data))) as archive:
            broken = archive.testzip()
            members = archive.namelist()
    except zipfile.BadZipFile:
        raise PackagingError(f"{path.name} does not hold a zip") from None
    if broken is not None:
        raise PackagingError(f"{path.name}: zip member {broken} is damaged")
    return {
        "valid": bool(result.valid),
        # only a verified signature names its signer; otherwise the key id is the clue
        "signer_fingerprint": (result.pubkey_fingerprint or result.fingerprint)
        if result.valid
        else None,
        "signer_key_id": result.key_id,
        "status": result.status,
        "members": members,
    }


# --- the package, built once ----------------------------------------------------------------


def _manifest_path(out_dir: Path, stem: str) -> Path:
    return out_dir / f"{stem}{MANIFEST_SUFFIX}"


def _read_manifest(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _inputs(files: list[Path]) -> list[_File]:
    members: list[_File] = []
    for path in files:
        try:
            size, digest = file_digest(path)
        except OSError as exc:
            raise PackagingError(f"cannot read {path.name}: {exc.strerror}") from None
        members.append(_File(path.name, path, size, digest))
    names = [member.name for member in members]
    if len(set(names)) != len(names):
        raise PackagingError(f"two input files share a name: {sorted(names)}")
    if not members:
        raise PackagingError("nothing to package: no files given")
    return members


def _identity(stem: str, mode: Mode, members: list[_File], pgp: Pgp | None) -> dict[str, Any]:
    """What makes two builds the same build (no personal data: names and checksums)."""
    return {
        "stem": stem,
        "mode": mode,
        "inputs": [{"name": member.name, "sha256": member.sha256} for member in members],
        "recipient": pgp.recipient if pgp else None,
        "signer": pgp.signer if pgp else None,
    }


def _differs(path: Path, item: _File) -> bool:
    """Does a file already in the way hold other bytes than ``item``?"""
    if not path.exists():
        return False
    return path.stat().st_size != item.size or file_digest(path)[1] != item.sha256


def _existing(
    out_dir: Path, identity: dict[str, Any], outputs: list[_File] | None
) -> list[Path] | None:
    """The encrypted package already built from these inputs, or None if there is none.

    ``outputs`` are the files a deterministic mode (plain, zip) would write: a file
    already there with those bytes is the same build. Encryption is not deterministic, so
    a ``.zip.gpg`` (``outputs`` None) counts only with a manifest naming these inputs.
    """
    if outputs is not None:
        for item in outputs:
            if _differs(out_dir / item.name, item):
                raise PackagingError(
                    f"refusing to overwrite {item.name} in {out_dir}: it holds other bytes"
                )
        return None  # writing the same bytes again is harmless and restores 0600
    name = f"{identity['stem']}.zip.gpg"
    path = out_dir / name
    if not path.exists():
        return None
    manifest = _read_manifest(_manifest_path(out_dir, identity["stem"]))
    same_build = (
        manifest is not None
        and {key: manifest.get(key) for key in identity} == identity
        and [o.get("sha256") for o in manifest.get("outputs", []) if isinstance(o, dict)]
        == [file_digest(path)[1]]
    )
    if not same_build:
        raise PackagingError(
            f"refusing to overwrite {name} in {out_dir}: it was built from other inputs "
            "(or its manifest is missing or does not match)"
        )
    return [path]


def _built(name: str, path: Path) -> _File:
    size, digest = file_digest(path)
    return _File(name, path, size, digest)


def build_package(
    files: list[Path],
    stem: str,
    mode: Mode,
    out_dir: Path,
    *,
    pgp: Pgp | None = None,
    passphrase: str | None = None,
) -> list[Path]:
    """Package ``files`` as ``mode`` into ``out_dir``; return the files to deliver.

    Built once: identical inputs return the package already in ``out_dir``; different
    inputs for a package already there raise PackagingError. All outputs are 0600. Files
    are streamed (read, zipped, encrypted and copied chunk by chunk), whatever their size.
    """
    if mode not in ("plain", "zip", "zip+pgp"):
        raise PackagingError(f"unknown packaging {mode!r}: use plain, zip or zip+pgp")
    if mode == "zip+pgp" and pgp is None:
        raise PackagingError("packaging zip+pgp needs a pgp configuration")
    members = _inputs(files)
    identity = _identity(stem, mode, members, pgp if mode == "zip+pgp" else None)
    out_dir.mkdir(parents=True, exist_ok=True)
    if mode == "zip+pgp":
        assert pgp is not None
        existing = _existing(out_dir, identity, None)
        if existing is not None:
            return existing
    elif mode == "plain":
        _existing(out_dir, identity, members)
    # a private folder beside the outputs for what is built before it is published
    with tempfile.TemporaryDirectory(prefix=".build-", dir=out_dir) as private:
        work = Path(private)
        if mode == "plain":
            outputs = members
        else:
            zipped = work / f"{stem}.zip"
            with _private_file(zipped) as handle:
                _write_zip(members, stem, handle)
            if mode == "zip":
                outputs = [_built(zipped.name, zipped)]
                _existing(out_dir, identity, outputs)
            else:
                assert pgp is not None
                sealed = work / f"{stem}.zip.gpg"
                encrypt_and_sign(zipped, sealed, pgp, passphrase)
                sealed.chmod(PRIVATE)
                outputs = [_built(sealed.name, sealed)]
        # the manifest goes first: a package without a matching manifest is never trusted
        manifest = {
            **identity,
            "outputs": [
                {"name": item.name, "sha256": item.sha256, "size": item.size} for item in outputs
            ],
        }
        write_private(
            _manifest_path(out_dir, stem),
            json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n",
        )
        built = []
        for item in outputs:
            target = out_dir / item.name
            if item.path.parent == work:
                _fsync(item.path)
                item.path.replace(target)
            else:
                copy_private(item.path, target, CHUNK)
            built.append(target)
    return built


def _fsync(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


@contextlib.contextmanager
def _private_file(path: Path) -> Iterator[BinaryIO]:
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, PRIVATE)
    with os.fdopen(fd, "wb") as handle:
        yield handle
