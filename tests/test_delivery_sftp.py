"""SFTP delivery against a real OpenSSH sshd (tests/services/sshd.py): verified or nothing."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from autosynk.config import SftpTarget
from autosynk.delivery.sftp import connect, deliver_sftp, is_late, upload_verified
from autosynk.errors import ConfigError, DeliveryError
from tests.services.sshd import Sshd

pytestmark = pytest.mark.sshd

PRINCIPALS = b"user\t19121212-1212\tTolvan\tTolvansson\n" * 40
RELATIONS = b"add\tstudent_class\t19121212-1212\tklass-7a\n" * 40


def make_files(folder: Path, contents: dict[str, bytes]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in contents.items():
        path = folder / name
        path.write_bytes(data)
        paths.append(path)
    return paths


def night(tmp_path: Path) -> list[Path]:
    return make_files(
        tmp_path / "out", {"exempelby.principals": PRINCIPALS, "exempelby.relations": RELATIONS}
    )


def target(sshd: Sshd, remote_dir: str, **overrides: Any) -> SftpTarget:
    return SftpTarget.model_validate(sshd.target_fields(remote_dir, **overrides))


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def temporaries(folder: Path) -> list[str]:
    return [name for name in listing(folder) if name.endswith(".part")]


def fingerprint(public_key_file: Path) -> str:
    """OpenSSH's own SHA256 fingerprint of a public key file."""
    out = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(public_key_file)], check=True, capture_output=True
    )
    return out.stdout.decode().split()[1]


# --- the happy path and retries ------------------------------------------------------------


def test_delivers_every_file_verified_under_its_final_name(sshd, sftp_dir, tmp_path):
    local, remote = sftp_dir
    files = night(tmp_path)

    records = deliver_sftp(target(sshd, remote), files)

    assert listing(local) == ["exempelby.principals", "exempelby.relations"]
    assert (local / "exempelby.principals").read_bytes() == PRINCIPALS
    assert (local / "exempelby.relations").read_bytes() == RELATIONS
    assert (local / "exempelby.principals").stat().st_mode & 0o777 == 0o600
    assert [r.name for r in records] == ["exempelby.principals", "exempelby.relations"]
    first = records[0]
    assert first.remote_path == f"{remote}/exempelby.principals"
    assert first.size == len(PRINCIPALS)
    assert first.sha256 == hashlib.sha256(PRINCIPALS).hexdigest()
    assert first.already_there is False
    assert datetime.fromisoformat(first.delivered_at).utcoffset() is not None


def test_delivered_at_is_stockholm_time(sshd, sftp_dir, tmp_path):
    _, remote = sftp_dir
    files = night(tmp_path)
    with connect(target(sshd, remote)) as sftp:
        records = upload_verified(
            sftp, files, remote, now=lambda: datetime(2025, 6, 15, 21, 30, tzinfo=UTC)
        )
    assert {r.delivered_at for r in records} == {"2025-06-15T23:30:00+02:00"}


def test_retry_after_success_finds_the_files_and_does_not_upload_again(sshd, sftp_dir, tmp_path):
    local, remote = sftp_dir
    files = night(tmp_path)
    deliver_sftp(target(sshd, remote), files)
    before = {n: (local / n).stat() for n in listing(local)}
    time.sleep(0.02)  # an upload now would show in mtime_ns

    records = deliver_sftp(target(sshd, remote), files)

    assert [r.already_there for r in records] == [True, True]
    assert [r.sha256 for r in records] == [
        hashlib.sha256(PRINCIPALS).hexdigest(),
        hashlib.sha256(RELATIONS).hexdigest(),
    ]
    after = {n: (local / n).stat() for n in listing(local)}
    assert {n: (s.st_ino, s.st_mtime_ns) for n, s in after.items()} == {
        n: (s.st_ino, s.st_mtime_ns) for n, s in before.items()
    }


def test_different_content_under_a_final_name_is_refused_and_nothing_is_delivered(
    sshd, sftp_dir, tmp_path
):
    local, remote = sftp_dir
    (local / "exempelby.relations").write_bytes(b"someone else's file\n")
    files = night(tmp_path)

    with pytest.raises(DeliveryError, match="already exists on the server with different content"):
        deliver_sftp(target(sshd, remote), files)

    assert (local / "exempelby.relations").read_bytes() == b"someone else's file\n"
    # the whole night is refused: the principals do not arrive without their relations
    assert listing(local) == ["exempelby.relations"]


def test_same_size_different_bytes_is_refused(sshd, sftp_dir, tmp_path):
    local, remote = sftp_dir
    (local / "exempelby.principals").write_bytes(PRINCIPALS.replace(b"Tolvan", b"Tolvar"))
    with pytest.raises(DeliveryError, match="different content"):
        deliver_sftp(target(sshd, remote), night(tmp_path)[:1])


def test_leftover_temporaries_of_our_scheme_are_removed_and_others_kept(sshd, sftp_dir, tmp_path):
    local, remote = sftp_dir
    for name in (".exempelby.principals.0123456789ab.part", ".exempelby.principals.mine.part"):
        (local / name).write_bytes(b"half a file")
    (local / "notes.txt").write_bytes(b"not ours")

    deliver_sftp(target(sshd, remote), night(tmp_path))

    assert listing(local) == [
        ".exempelby.principals.mine.part",
        "exempelby.principals",
        "exempelby.relations",
        "notes.txt",
    ]


# --- faults ------------------------------------------------------------------------------


def test_connection_dropped_mid_upload_leaves_no_final_name_and_a_retry_delivers_once(
    sshd, sftp_dir, tmp_path
):
    local, remote = sftp_dir
    big = os.urandom(48 * 1024 * 1024)
    files = make_files(tmp_path / "out", {"exempelby.principals": big})
    killed = threading.Event()

    def drop_when_upload_starts() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            parts = [p for p in local.iterdir() if p.name.endswith(".part")]
            if parts and parts[0].stat().st_size > 0:
                if sshd.kill_sessions():
                    killed.set()
                return
            time.sleep(0.002)

    watcher = threading.Thread(target=drop_when_upload_starts)
    watcher.start()
    try:
        with pytest.raises(DeliveryError, match="connection to the SFTP server lost"):
            deliver_sftp(target(sshd, remote), files)
    finally:
        watcher.join()
    assert killed.is_set()
    assert "exempelby.principals" not in listing(local)
    assert len(temporaries(local)) == 1  # the server side died: the partial temp stays

    records = deliver_sftp(target(sshd, remote), files)

    assert listing(local) == ["exempelby.principals"]  # temp cleaned, one final file
    assert (local / "exempelby.principals").read_bytes() == big
    assert records[0].already_there is False


def test_server_down_is_a_clear_delivery_error(sshd, sftp_dir, tmp_path):
    local, remote = sftp_dir
    sshd.stop()
    try:
        with pytest.raises(DeliveryError, match=r"connection refused \(is the SFTP server"):
            deliver_sftp(target(sshd, remote), night(tmp_path))
    finally:
        sshd.start()
    assert listing(local) == []


def test_a_server_that_never_answers_times_out(sshd, tmp_path):
    with socket.socket() as silent:  # the kernel accepts; nobody ever says SSH-2.0
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        fields = sshd.target_fields("/upload", port=silent.getsockname()[1], timeout_seconds=1)
        started = time.monotonic()
        with pytest.raises(DeliveryError, match="timed out waiting for the server"):
            deliver_sftp(SftpTarget.model_validate(fields), night(tmp_path))
    assert time.monotonic() - started < 10


def test_changed_host_key_is_refused_naming_both_fingerprints(sshd, sftp_dir, tmp_path):
    local, remote = sftp_dir
    other = sshd.other_keys["other_host"]
    pinned = " ".join(other.with_suffix(".pub").read_text().split()[:2])

    with pytest.raises(DeliveryError) as caught:
        deliver_sftp(target(sshd, remote, host_key=pinned), night(tmp_path))

    message = str(caught.value)
    presented = fingerprint(sshd.keys / "host_ed25519.pub")
    assert "host key mismatch" in message
    assert f"presented ssh-ed25519 {presented}" in message
    assert f"expected ssh-ed25519 {fingerprint(other.with_suffix('.pub'))}" in message
    assert "\n" not in message
    assert listing(local) == []


def test_unknown_host_key_is_refused_naming_the_presented_fingerprint(sshd, sftp_dir, tmp_path):
    local, remote = sftp_dir
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port + 1} {sshd.host_key}\n")  # another server only

    with pytest.raises(DeliveryError, match="unknown host key") as caught:
        deliver_sftp(target(sshd, remote, host_key=None, known_hosts=known), night(tmp_path))

    assert fingerprint(sshd.keys / "host_ed25519.pub") in str(caught.value)
    assert listing(local) == []


def test_host_key_pinned_by_known_hosts_file(sshd, sftp_dir, tmp_path):
    local, remote = sftp_dir
    deliver_sftp(target(sshd, remote, host_key=None, known_hosts=sshd.known_hosts), night(tmp_path))
    assert listing(local) == ["exempelby.principals", "exempelby.relations"]


def test_no_pinned_host_key_is_a_config_error(sshd, sftp_dir, tmp_path):
    _, remote = sftp_dir
    with pytest.raises(ConfigError, match="pin the server's host key"):
        deliver_sftp(target(sshd, remote, host_key=None), night(tmp_path))


@pytest.mark.parametrize(
    ("host_key", "message"),
    [("ssh-ed25519", "expected 'TYPE BASE64'"), ("ssh-ed25519 not*base64", "TYPE BASE64")],
)
def test_malformed_host_key_is_a_config_error(sshd, sftp_dir, tmp_path, host_key, message):
    _, remote = sftp_dir
    with pytest.raises(ConfigError, match=message):
        deliver_sftp(target(sshd, remote, host_key=host_key), night(tmp_path))


def test_refused_authentication_is_a_delivery_error(sshd, sftp_dir, tmp_path):
    local, remote = sftp_dir
    wrong = sshd.other_keys["wrong_client"]
    with pytest.raises(DeliveryError, match="authentication refused"):
        deliver_sftp(target(sshd, remote, private_key_file=wrong), night(tmp_path))
    assert listing(local) == []


@pytest.mark.parametrize("kind", ["rsa", "ecdsa", "encrypted"])
def test_private_key_types_log_in(sshd, sftp_dir, tmp_path, monkeypatch, kind):
    local, remote = sftp_dir
    monkeypatch.setenv("AUTOSYNK_TEST_KEY_PASSPHRASE", "correct horse")
    fields: dict[str, Any] = {"private_key_file": sshd.other_keys[kind]}
    if kind == "encrypted":
        fields["private_key_passphrase_env"] = "AUTOSYNK_TEST_KEY_PASSPHRASE"
    deliver_sftp(target(sshd, remote, **fields), night(tmp_path))
    assert listing(local) == ["exempelby.principals", "exempelby.relations"]


def test_encrypted_key_without_passphrase_is_a_config_error(sshd, sftp_dir, tmp_path):
    _, remote = sftp_dir
    key = sshd.other_keys["encrypted"]
    with pytest.raises(ConfigError, match="passphrase"):
        deliver_sftp(target(sshd, remote, private_key_file=key), night(tmp_path))


def test_missing_remote_directory_is_a_delivery_error(sshd, sftp_dir, tmp_path):
    local, remote = sftp_dir
    with pytest.raises(DeliveryError, match="no such file or directory on the server"):
        deliver_sftp(target(sshd, f"{remote}/not-there"), night(tmp_path))
    assert listing(local) == []


def test_read_only_remote_directory_is_a_delivery_error(sshd, sftp_dir, tmp_path):
    local, remote = sftp_dir
    local.chmod(0o555)
    with pytest.raises(DeliveryError, match="permission denied on the server"):
        deliver_sftp(target(sshd, remote), night(tmp_path))
    assert listing(local) == []


def test_full_remote_disk_is_a_delivery_error_and_leaves_nothing(sshd, sftp_dir, tmp_path):
    local, remote = sftp_dir
    options = f"size=64k,mode=0755,uid={sshd.uid},gid={sshd.gid}"
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(local)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tiny tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        files = make_files(tmp_path / "out", {"exempelby.principals": os.urandom(256 * 1024)})
        with pytest.raises(DeliveryError, match="disk full"):
            deliver_sftp(target(sshd, remote), files)
        assert listing(local) == []  # the temporary was removed after the failed write
    finally:
        subprocess.run(["umount", str(local)], check=True)


# --- the Airflow adapter (same sshd, connection from AIRFLOW_CONN_<ID>) ------------------


def airflow_connection(monkeypatch, sshd: Sshd, **extra: Any) -> str:
    fields = {"key_file": str(sshd.private_key), "host_key": sshd.host_key, **extra}
    conn = {
        "conn_type": "sftp",
        "host": sshd.host,
        "port": sshd.port,
        "login": sshd.username,
        "extra": {k: v for k, v in fields.items() if v is not None},
    }
    monkeypatch.setenv("AIRFLOW_CONN_AUTOSYNK_SFTP_TEST", json.dumps(conn))
    return "autosynk_sftp_test"


@pytest.mark.airflow
def test_airflow_hook_delivers_and_a_retry_finds_the_files(sshd, sftp_dir, tmp_path, monkeypatch):
    from autosynk_airflow.sftp_delivery import deliver_with_sftp_hook

    local, remote = sftp_dir
    conn_id = airflow_connection(monkeypatch, sshd)
    files = night(tmp_path)

    first = deliver_with_sftp_hook(conn_id, files, remote)
    inode = (local / "exempelby.principals").stat().st_ino
    again = deliver_with_sftp_hook(conn_id, files, remote)

    assert [r.already_there for r in first] == [False, False]
    assert [r.already_there for r in again] == [True, True]
    assert (local / "exempelby.principals").read_bytes() == PRINCIPALS
    assert (local / "exempelby.principals").stat().st_ino == inode


@pytest.mark.airflow
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"host_key": None}, "has no host_key in its extra"),
        ({"host_key": None, "no_host_key_check": "true"}, "no_host_key_check"),
    ],
)
def test_airflow_connection_without_pinned_host_key_is_refused(
    sshd, sftp_dir, tmp_path, monkeypatch, extra, message
):
    from autosynk_airflow.sftp_delivery import deliver_with_sftp_hook

    local, remote = sftp_dir
    conn_id = airflow_connection(monkeypatch, sshd, **extra)
    with pytest.raises(ConfigError, match=message):
        deliver_with_sftp_hook(conn_id, night(tmp_path), remote, conn_retry_attempts=1)
    assert listing(local) == []


@pytest.mark.airflow
def test_airflow_connection_with_wrong_host_key_is_refused(sshd, sftp_dir, tmp_path, monkeypatch):
    from autosynk_airflow.sftp_delivery import deliver_with_sftp_hook

    local, remote = sftp_dir
    other = " ".join(sshd.other_keys["other_host"].with_suffix(".pub").read_text().split()[:2])
    conn_id = airflow_connection(monkeypatch, sshd, host_key=other)
    with pytest.raises(DeliveryError, match="host key mismatch") as caught:
        deliver_with_sftp_hook(conn_id, night(tmp_path), remote, conn_retry_attempts=1)
    assert fingerprint(sshd.keys / "host_ed25519.pub") in str(caught.value)
    assert listing(local) == []


@pytest.mark.airflow
def test_airflow_delivery_to_a_missing_directory_fails_cleanly(
    sshd, sftp_dir, tmp_path, monkeypatch
):
    from autosynk_airflow.sftp_delivery import deliver_with_sftp_hook

    _, remote = sftp_dir
    conn_id = airflow_connection(monkeypatch, sshd)
    with pytest.raises(DeliveryError, match="no such file or directory"):
        deliver_with_sftp_hook(conn_id, night(tmp_path), f"{remote}/nope", conn_retry_attempts=1)


# --- is_late -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delivered_at", "deadline", "late"),
    [
        ("2025-01-15T22:59:59+01:00", "23:00", False),
        ("2025-01-15T23:00:00+01:00", "23:00", False),  # on the minute is in time
        ("2025-01-15T23:00:01+01:00", "23:00", True),
        ("2025-01-16T00:30:00+01:00", "23:00", True),  # after midnight: still that night
        ("2025-01-16T04:59:00+01:00", "23:00", True),
        ("2025-01-16T05:00:00+01:00", "23:00", False),  # the next day's work begins
        ("2025-01-15T12:00:00+01:00", "23:00", False),
        ("2025-06-15T21:30:00+00:00", "23:00", True),  # 23:30 CEST
        ("2025-01-15T21:30:00+00:00", "23:00", False),  # 22:30 CET
        ("2025-01-15T22:30:00", "23:00", False),  # naive: read as Stockholm time
        ("2025-01-15T21:30:00+01:00", "21:00", True),
        ("2025-01-16T01:30:00+01:00", "02:00", False),  # a deadline after midnight
        ("2025-01-16T02:30:00+01:00", "02:00", True),
        ("2025-01-15T23:30:00+01:00", "02:00", False),
    ],
)
def test_is_late(delivered_at, deadline, late):
    assert is_late(datetime.fromisoformat(delivered_at), deadline) is late


@pytest.mark.parametrize("deadline", ["24:00", "7pm", "23:60"])
def test_is_late_rejects_a_bad_deadline(deadline):
    with pytest.raises(ConfigError, match="HH:MM"):
        is_late(datetime(2025, 1, 15, 22, 0, tzinfo=UTC), deadline)
