"""Delivery into a local (or mounted) folder, with the same promises as SFTP delivery.

Every file is copied under a hidden temporary name (0600), fsynced, read back and compared
(size and sha256), and only when all files are verified renamed to their final names with
``os.replace``. A final name holding the same bytes counts as already delivered; one
holding other bytes is never replaced.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from autosynk.delivery import DeliveryRecord
from autosynk.errors import DeliveryError
from autosynk.workspace import PRIVATE

_CHUNK = 1 << 20
_TOKEN_HEX = 12


def _sha256(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _now() -> str:
    return datetime.now(ZoneInfo("Europe/Stockholm")).isoformat(timespec="seconds")


@dataclass
class _Pending:
    local: Path
    final: Path
    size: int
    sha256: str
    temp: Path | None = None


def _copy_verified(item: _Pending) -> None:
    temp = item.final.with_name(f".{item.final.name}.{secrets.token_hex(_TOKEN_HEX // 2)}.part")
    item.temp = temp
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE)
    with os.fdopen(fd, "wb") as out, open(item.local, "rb") as source:
        while chunk := source.read(_CHUNK):
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    if _sha256(temp) != (item.size, item.sha256):
        raise DeliveryError(f"{item.final.name}: the copy in {temp.parent} does not verify")


def _fsync_dir(folder: Path) -> None:
    """Make the renames themselves durable (a crash must not undo a delivery)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def deliver_directory(target_dir: Path, files: list[Path]) -> list[DeliveryRecord]:
    """Deliver ``files`` into ``target_dir``: all verified under their final names, or none new."""
    names = [path.name for path in files]
    if len(set(names)) != len(names):
        raise DeliveryError(f"two files to deliver share a name: {sorted(names)}")
    try:
        target_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DeliveryError(f"cannot create target folder {target_dir}: {exc.strerror}") from exc

    records: dict[str, DeliveryRecord] = {}
    pending: list[_Pending] = []
    for path in files:
        try:
            size, digest = _sha256(path)
        except OSError as exc:
            raise DeliveryError(f"cannot read {path} to deliver it: {exc.strerror}") from exc
        item = _Pending(path, target_dir / path.name, size, digest)
        if item.final.exists():
            if _sha256(item.final) != (size, digest):
                raise DeliveryError(
                    f"{item.final} already exists with different content; "
                    "refusing to overwrite a delivered file"
                )
            records[path.name] = _record(item, already_there=True)
        else:
            pending.append(item)

    try:
        for entry in target_dir.iterdir():  # temporaries of interrupted attempts
            if any(_leftover(item.final.name).fullmatch(entry.name) for item in pending):
                entry.unlink()
        for item in pending:
            _copy_verified(item)
        for item in pending:
            assert item.temp is not None
            item.temp.replace(item.final)  # os.replace: atomic within the folder
            item.temp = None
            records[item.final.name] = _record(item, already_there=False)
        if pending:
            _fsync_dir(target_dir)
    except OSError as exc:
        raise DeliveryError(f"delivering into {target_dir} failed: {exc.strerror or exc}") from exc
    finally:
        for item in pending:
            if item.temp is not None:
                with contextlib.suppress(OSError):
                    item.temp.unlink()
    return [records[name] for name in names]


def _leftover(name: str) -> re.Pattern[str]:
    return re.compile(rf"\.{re.escape(name)}\.[0-9a-f]{{{_TOKEN_HEX}}}\.part")


def _record(item: _Pending, *, already_there: bool) -> DeliveryRecord:
    return DeliveryRecord(
        name=item.final.name,
        remote_path=str(item.final),
        size=item.size,
        sha256=item.sha256,
        delivered_at=_now(),
        already_there=already_there,
    )
