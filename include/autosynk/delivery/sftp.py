"""Delivery over SFTP: a night arrives whole and verified, or not at all.

``upload_verified`` is the one implementation behind the CLI (``deliver_sftp``) and the
Airflow adapter (``autosynk_airflow.sftp_delivery``). For a list of files it

1. refuses the whole delivery if any final name already holds different bytes
   (a final name is never overwritten), and skips files whose final name already holds the
   same bytes (a retry after success uploads nothing);
2. removes temporaries left by interrupted attempts (``.<name>.<12 hex>.part`` only);
3. uploads every remaining file under a fresh temporary name, fsyncs it where the server
   supports ``fsync@openssh.com``, checks its size and reads it back to compare sha256;
4. only when every file is verified, renames each temporary to its final name
   (``posix-rename@openssh.com``, atomic on the server's file system).

So an interrupted night leaves at most temporaries, which the next attempt removes.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import hashlib
import posixpath
import re
import secrets
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from autosynk.config import SftpTarget, secret
from autosynk.delivery import DeliveryRecord
from autosynk.errors import ConfigError, DeliveryError

STOCKHOLM = ZoneInfo("Europe/Stockholm")
#: a delivery after the deadline but before this local time belongs to the night just gone
MORNING_CUTOFF = time(5, 0)
_CHUNK = 32768
_TOKEN_HEX = 12


def temp_name(name: str, token: str) -> str:
    """The temporary name of ``name`` for one attempt (hidden, so importers skip it)."""
    return f".{name}.{token}.part"


def _leftover_pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"\.{re.escape(name)}\.[0-9a-f]{{{_TOKEN_HEX}}}\.part")


# --- when is a night late ----------------------------------------------------------------


def _clock(value: str) -> time:
    match = re.fullmatch(r"(\d{2}):(\d{2})", value)
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise ConfigError(f"deadline {value!r} is not a local time HH:MM")
    return time(int(match[1]), int(match[2]))


def is_late(delivered_at: datetime, deadline: str = "23:00", tz: str = "Europe/Stockholm") -> bool:
    """Whether a delivery missed the night's deadline (local time in ``tz``).

    Late means after ``deadline`` and before 05:00 the next morning: Unikum imports in the
    night, so 23:30 and 01:00 both miss a 23:00 deadline. A naive ``delivered_at`` is read
    as local time in ``tz``.
    """
    zone = ZoneInfo(tz)
    local = delivered_at.replace(tzinfo=zone) if delivered_at.tzinfo is None else delivered_at
    clock = local.astimezone(zone).time().replace(tzinfo=None)
    limit = _clock(deadline)
    if limit < MORNING_CUTOFF:  # a deadline after midnight: late only until the cutoff
        return limit < clock < MORNING_CUTOFF
    return clock > limit or clock < MORNING_CUTOFF


# --- errors ------------------------------------------------------------------------------


class _UnknownHostKey(paramiko.SSHException):
    def __init__(self, hostname: str, key: paramiko.PKey) -> None:
        super().__init__(f"no pinned host key for {hostname}")
        self.hostname = hostname
        self.key = key


class PinnedKeysOnly(paramiko.RejectPolicy):
    """RejectPolicy that keeps the presented key, so the error can name its fingerprint."""

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: Any) -> None:
        raise _UnknownHostKey(hostname, key)


def _dropped(sftp: paramiko.SFTPClient) -> bool:
    channel = sftp.get_channel()
    if channel is None or channel.closed:
        return True
    transport = channel.get_transport()
    return transport is None or not transport.is_active()


def connection_error(exc: BaseException, where: str) -> DeliveryError:
    """A one-line DeliveryError for a failure to reach or log in to an SFTP server."""
    if isinstance(exc, paramiko.BadHostKeyException):
        return DeliveryError(
            f"{where}: host key mismatch: the server presented {exc.key.get_name()} "
            f"{exc.key.fingerprint}, expected {exc.expected_key.get_name()} "
            f"{exc.expected_key.fingerprint}; refusing to connect"
        )
    if isinstance(exc, _UnknownHostKey):
        return DeliveryError(
            f"{where}: unknown host key: the server presented {exc.key.get_name()} "
            f"{exc.key.fingerprint}, expected none (no pinned key for {exc.hostname}); "
            "refusing to connect"
        )
    if isinstance(exc, paramiko.AuthenticationException):
        return DeliveryError(f"{where}: authentication refused ({exc})")
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError | ConnectionRefusedError):
        return DeliveryError(f"{where}: connection refused (is the SFTP server running?)")
    # under load paramiko may report a banner that never came as "No existing session"
    if isinstance(exc, TimeoutError) or any(
        text in str(exc) for text in ("protocol banner", "No existing session")
    ):
        return DeliveryError(f"{where}: timed out waiting for the server")
    if isinstance(exc, socket.gaierror):
        return DeliveryError(f"{where}: host name not found ({exc.strerror})")
    if isinstance(exc, EOFError | ConnectionError):
        return DeliveryError(f"{where}: the server closed the connection")
    text = str(exc) or type(exc).__name__
    return DeliveryError(f"{where}: {text}".replace("\n", " "))


def _transfer_error(exc: BaseException, sftp: paramiko.SFTPClient, step: str) -> DeliveryError:
    if _dropped(sftp) or isinstance(exc, EOFError | paramiko.SSHException | ConnectionError):
        return DeliveryError(f"connection to the SFTP server lost while {step}")
    if isinstance(exc, TimeoutError):
        return DeliveryError(f"SFTP server timed out while {step}")
    code = getattr(exc, "errno", None)
    if code == errno.ENOENT:
        return DeliveryError(f"{step}: no such file or directory on the server")
    if code == errno.EACCES:
        return DeliveryError(f"{step}: permission denied on the server")
    text = (getattr(exc, "strerror", None) or str(exc) or type(exc).__name__).replace("\n", " ")
    if text == "Failure":  # OpenSSH's answer to ENOSPC, EDQUOT, EIO, ...
        text = "the server reported a failure (disk full or quota exceeded?)"
    return DeliveryError(f"{step}: {text}")


@contextlib.contextmanager
def _step(sftp: paramiko.SFTPClient, step: str) -> Iterator[None]:
    try:
        yield
    except (OSError, EOFError, paramiko.SSHException) as exc:
        raise _transfer_error(exc, sftp, step) from exc


# --- the upload --------------------------------------------------------------------------


def _sha256_local(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _sha256_remote(sftp: paramiko.SFTPClient, path: str, size: int) -> str:
    digest = hashlib.sha256()
    with sftp.open(path, "rb") as handle:
        handle.prefetch(size)
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _remote_size(sftp: paramiko.SFTPClient, path: str) -> int | None:
    try:
        return int(sftp.stat(path).st_size or 0)
    except FileNotFoundError:
        return None


def _fsync(sftp: paramiko.SFTPClient, handle: paramiko.SFTPFile) -> None:
    """Flush a file to the server's disk, where the server offers fsync@openssh.com."""
    try:
        sftp._request(paramiko.sftp.CMD_EXTENDED, "fsync@openssh.com", handle.handle)
    except OSError as exc:
        if "unsupported" not in str(exc).lower():
            raise


def _await_writes(sftp: paramiko.SFTPClient, handle: paramiko.SFTPFile) -> None:
    """Wait for the server's answer to every pipelined write, raising the first error.

    paramiko drops those answers otherwise (close() does not report them), so a full disk
    would only show as a short file. The size and sha256 checks catch that anyway; this
    names the cause.
    """
    handle.flush()
    requests = getattr(handle, "_reqs", None)
    while requests:
        sftp._read_response(requests.popleft())


@dataclass
class _Pending:
    local: Path
    name: str
    final: str
    size: int
    sha256: str
    temp: str = ""


def _upload_one(sftp: paramiko.SFTPClient, item: _Pending) -> None:
    """Upload under a fresh temporary name and verify size and sha256 there."""
    item.temp = posixpath.join(posixpath.dirname(item.final), temp_name(item.name, _token()))
    # "x": a name that exists is never written into; close() waits for every write's answer
    with _step(sftp, f"uploading {item.name} to {item.temp}"), sftp.open(item.temp, "wbx") as out:
        with contextlib.suppress(OSError):  # some servers refuse SETSTAT; not fatal
            out.chmod(0o600)
        out.set_pipelined(True)
        with open(item.local, "rb") as source:
            while chunk := source.read(_CHUNK):
                out.write(chunk)
        _await_writes(sftp, out)
    with _step(sftp, f"verifying {item.temp}"):
        with sftp.open(item.temp, "rb") as back:
            _fsync(sftp, back)
            size = int(back.stat().st_size or 0)
        if size != item.size:
            raise DeliveryError(
                f"{item.name}: {size} bytes arrived on the server, {item.size} were sent"
            )
        arrived = _sha256_remote(sftp, item.temp, item.size)
        if arrived != item.sha256:
            raise DeliveryError(f"{item.name}: sha256 on the server differs from the file sent")


def _token() -> str:
    return secrets.token_hex(_TOKEN_HEX // 2)


def _stockholm_now(now: Callable[[], datetime] | None) -> str:
    moment = now() if now is not None else datetime.now(STOCKHOLM)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=STOCKHOLM)
    return moment.astimezone(STOCKHOLM).isoformat(timespec="seconds")


def upload_verified(
    sftp: paramiko.SFTPClient,
    files: list[Path],
    remote_dir: str,
    *,
    now: Callable[[], datetime] | None = None,
) -> list[DeliveryRecord]:
    """Deliver ``files`` into ``remote_dir``: all verified under their final names, or none new.

    Raises DeliveryError (one line) on any failure; no final name is ever written unless its
    bytes were verified, and an existing final name with other bytes is never replaced.
    """
    names = [path.name for path in files]
    if len(set(names)) != len(names):
        raise DeliveryError(f"two files to deliver share a name: {sorted(names)}")
    with _step(sftp, f"listing remote directory {remote_dir!r}"):
        present = set(sftp.listdir(remote_dir or "."))

    pending: list[_Pending] = []
    records: dict[str, DeliveryRecord] = {}
    for path in files:
        try:
            size, digest = _sha256_local(path)
        except OSError as exc:
            raise DeliveryError(f"cannot read {path} to deliver it: {exc.strerror}") from exc
        item = _Pending(path, path.name, posixpath.join(remote_dir, path.name), size, digest)
        if item.name in present:
            records[item.name] = _already_there(sftp, item, now)
        else:
            pending.append(item)

    with _step(sftp, "removing temporaries of interrupted attempts"):
        for item in pending:
            leftover = _leftover_pattern(item.name)
            for entry in sorted(present):
                if leftover.fullmatch(entry):
                    sftp.remove(posixpath.join(remote_dir, entry))

    try:
        for item in pending:
            _upload_one(sftp, item)
        for item in pending:
            with _step(sftp, f"renaming {item.temp} to {item.final}"):
                _rename(sftp, item.temp, item.final)
            item.temp = ""
            records[item.name] = DeliveryRecord(
                name=item.name,
                remote_path=item.final,
                size=item.size,
                sha256=item.sha256,
                delivered_at=_stockholm_now(now),
            )
    except BaseException as exc:
        if not isinstance(exc.__cause__, TimeoutError):  # a timed-out session is out of step
            _remove_temporaries(sftp, pending)
        raise
    return [records[name] for name in names]


def _rename(sftp: paramiko.SFTPClient, temp: str, final: str) -> None:
    try:
        sftp.posix_rename(temp, final)
    except OSError as exc:
        if "unsupported" not in str(exc).lower():
            raise
        # a server without posix-rename@openssh.com: SFTPv3 rename, which never replaces
        sftp.rename(temp, final)


def _already_there(
    sftp: paramiko.SFTPClient, item: _Pending, now: Callable[[], datetime] | None
) -> DeliveryRecord:
    refusal = DeliveryError(
        f"{item.final} already exists on the server with different content; "
        "refusing to overwrite a delivered file"
    )
    with _step(sftp, f"checking existing {item.final}"):
        size = _remote_size(sftp, item.final)
        if size != item.size:
            raise refusal
        if _sha256_remote(sftp, item.final, item.size) != item.sha256:
            raise refusal
    return DeliveryRecord(
        name=item.name,
        remote_path=item.final,
        size=item.size,
        sha256=item.sha256,
        delivered_at=_stockholm_now(now),
        already_there=True,
    )


def _remove_temporaries(sftp: paramiko.SFTPClient, pending: list[_Pending]) -> None:
    """Best effort after a failure: a lost connection leaves them for the next attempt."""
    for item in pending:
        if item.temp and not _dropped(sftp):
            with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
                sftp.remove(item.temp)


# --- connecting (CLI) --------------------------------------------------------------------


def _host_keys(client: paramiko.SSHClient, target: SftpTarget) -> None:
    if not target.host_key and not target.known_hosts:
        raise ConfigError(
            "target.sftp: pin the server's host key with host_key or known_hosts; "
            "unverified host keys are never accepted"
        )
    if target.known_hosts:
        try:
            client.load_host_keys(str(target.known_hosts))
        except OSError as exc:
            raise ConfigError(f"target.known_hosts: cannot read {target.known_hosts}") from exc
    if target.host_key:
        parts = target.host_key.split()
        try:
            key = paramiko.PKey.from_type_string(parts[0], _b64(parts[1]))
        except (IndexError, ValueError, paramiko.SSHException) as exc:
            raise ConfigError(
                "target.host_key: expected 'TYPE BASE64' as in known_hosts, "
                "e.g. 'ssh-ed25519 AAAAC3Nza...'"
            ) from exc
        name = target.host if target.port == 22 else f"[{target.host}]:{target.port}"
        client.get_host_keys().add(name, key.get_name(), key)
    client.set_missing_host_key_policy(PinnedKeysOnly())


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError("not base64") from exc


def _private_key(path: Path, password: bytes | None) -> paramiko.PKey:
    """Load an ed25519, ECDSA or RSA private key (OpenSSH or PEM format)."""
    data = path.read_bytes()
    try:
        loaded: Any = serialization.load_ssh_private_key(data, password)
    except ValueError:
        loaded = serialization.load_pem_private_key(data, password)
    # paramiko's own OpenSSH-format ECDSA parser fails on some valid keys (paramiko#2445):
    # hand it the key cryptography already parsed
    if isinstance(loaded, ec.EllipticCurvePrivateKey):
        return paramiko.ECDSAKey(vals=(loaded, loaded.public_key()))
    if isinstance(loaded, rsa.RSAPrivateKey):
        return paramiko.RSAKey(key=loaded)
    return paramiko.PKey.from_path(path, password)


def _credentials(target: SftpTarget) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if target.private_key_file:
        passphrase = secret(None, target.private_key_passphrase_env, "target.sftp passphrase")
        password = passphrase.encode() if passphrase is not None else None
        try:
            found["pkey"] = _private_key(target.private_key_file, password)
        except OSError as exc:
            raise ConfigError(
                f"target.private_key_file: cannot read {target.private_key_file}"
            ) from exc
        except TypeError as exc:  # cryptography: passphrase missing, or given needlessly
            hint = (
                "is encrypted; name its passphrase with private_key_passphrase_env"
                if password is None
                else "is not encrypted; drop private_key_passphrase_env"
            )
            raise ConfigError(f"target.private_key_file: {target.private_key_file} {hint}") from exc
        except (ValueError, paramiko.SSHException) as exc:
            raise ConfigError(
                f"target.private_key_file: {target.private_key_file} is not a usable "
                "ed25519, ECDSA or RSA private key (or the passphrase is wrong)"
            ) from exc
    if target.password_env:
        found["password"] = secret(None, target.password_env, "target.sftp password")
    if not found:
        raise ConfigError("target.sftp: set private_key_file (or password_env) to log in")
    return found


@contextlib.contextmanager
def connect(target: SftpTarget) -> Iterator[paramiko.SFTPClient]:
    """An SFTP session with the host key pinned and only the configured credentials."""
    where = f"SFTP {target.username}@{target.host}:{target.port}"
    client = paramiko.SSHClient()
    try:
        _host_keys(client, target)
        credentials = _credentials(target)
        try:
            client.connect(
                hostname=target.host,
                port=target.port,
                username=target.username,
                timeout=target.timeout_seconds,
                banner_timeout=target.timeout_seconds,
                auth_timeout=target.timeout_seconds,
                look_for_keys=False,
                allow_agent=False,
                **credentials,
            )
            sftp = client.open_sftp()
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise connection_error(exc, where) from exc
        channel = sftp.get_channel()
        if channel is not None:  # a hung server fails the night instead of stalling it
            channel.settimeout(max(target.timeout_seconds, 1.0) * 4)
        try:
            yield sftp
        finally:
            with contextlib.suppress(Exception):
                sftp.close()
    finally:
        client.close()


def deliver_sftp(target: SftpTarget, files: list[Path]) -> list[DeliveryRecord]:
    """Connect (CLI credentials) and deliver ``files`` into ``target.remote_dir``."""
    with connect(target) as sftp:
        return upload_verified(sftp, files, target.remote_dir)


__all__ = [
    "MORNING_CUTOFF",
    "PinnedKeysOnly",
    "connect",
    "connection_error",
    "deliver_sftp",
    "is_late",
    "temp_name",
    "upload_verified",
]
