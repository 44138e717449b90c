"""A real OpenSSH sshd on loopback for the SFTP delivery tests.

``sshd`` (session): ``/usr/sbin/sshd -D -e -f <own config>`` on a free high port of
127.0.0.1 with its own ed25519 host key, and a key-only system user ``autosynk-sftp``
chrooted (internal-sftp) under ``/srv/autosynk-sftp-test-<pid>``; the user's writable
directory is ``/upload`` inside the chroot. ``sftp_dir`` (function): a fresh directory
under it for one test. Needs root and openssh-server; otherwise the tests skip, saying so.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

SSHD = Path("/usr/sbin/sshd")
USER = "autosynk-sftp"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _keygen(path: Path, kind: str = "ed25519", passphrase: str = "") -> str:
    """Make a key pair; return the public key as 'TYPE BASE64'."""
    bits = ["-b", "2048"] if kind == "rsa" else (["-b", "256"] if kind == "ecdsa" else [])
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, *bits, "-N", passphrase, "-C", "", "-f", str(path)],
        check=True,
    )
    return " ".join(path.with_suffix(".pub").read_text().split()[:2])


def _system_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER],
            check=True,
        )
    # a locked account ('!') is refused when UsePAM is off; '*' has no password but logs in
    subprocess.run(["usermod", "-p", "*", USER], check=True)
    return pwd.getpwnam(USER)


@dataclass
class Sshd:
    """A running sshd and everything a test needs to talk to it."""

    host: str
    port: int
    username: str
    private_key: Path
    host_key: str  # "ssh-ed25519 AAAA..."
    known_hosts: Path
    upload_dir: Path  # local path of the chroot's /upload
    chroot: Path
    config: Path
    keys: Path  # the folder with the extra keys below
    log: Path
    uid: int
    gid: int
    other_keys: dict[str, Path] = field(default_factory=dict)
    _process: subprocess.Popen[bytes] | None = None

    remote_upload_dir = "/upload"

    def start(self) -> None:
        if self._process is not None and self._process.poll() is None:
            return
        with open(self.log, "ab") as log:
            self._process = subprocess.Popen(
                [str(SSHD), "-D", "-e", "-f", str(self.config)], stdout=log, stderr=log
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"sshd exited at start; see {self.log}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.host, self.port), 0.2),
            ):
                return
            time.sleep(0.05)
        raise RuntimeError(f"sshd did not listen on {self.host}:{self.port}; see {self.log}")

    def stop(self) -> None:
        """Stop the listener and drop every open session (a server gone down)."""
        self.kill_sessions()
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            self._process.wait(10)
        self._process = None

    def kill_sessions(self) -> int:
        """SIGKILL every per-connection sshd process (a dropped connection); return count."""
        if self._process is None:
            return 0
        # sshd's per-connection children (they start process groups of their own)
        victims = [p.pid for p in psutil.Process(self._process.pid).children(recursive=True)]
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return len(victims)

    def user_dir(self, name: str) -> tuple[Path, str]:
        """A new directory the SFTP user owns: (local path, remote path)."""
        local = self.upload_dir / name
        local.mkdir()
        os.chown(local, self.uid, self.gid)
        return local, f"{self.remote_upload_dir}/{name}"

    def target_fields(self, remote_dir: str, **overrides: Any) -> dict[str, Any]:
        """Fields of an ``SftpTarget`` for this server (CLI credentials)."""
        fields: dict[str, Any] = {
            "kind": "sftp",
            "host": self.host,
            "port": self.port,
            "username": self.username,
            "private_key_file": self.private_key,
            "host_key": self.host_key,
            "remote_dir": remote_dir,
            "timeout_seconds": 5,
        }
        fields.update(overrides)
        return fields


def _config(
    port: int, host_key: Path, keys_dir: Path, chroot: Path, pid_file: Path, extra: str
) -> str:
    return f"""\
Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {pid_file}
AuthorizedKeysFile {keys_dir}/%u
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
UsePAM no
StrictModes no
UseDNS no
AllowUsers {USER}
{extra}Subsystem sftp internal-sftp
Match User {USER}
    ChrootDirectory {chroot}
    ForceCommand internal-sftp
    AllowTcpForwarding no
    X11Forwarding no
"""


@pytest.fixture(scope="session")
def sshd() -> Iterator[Sshd]:
    with running_sshd() as server:
        yield server


@contextlib.contextmanager
def running_sshd(tag: str = "") -> Iterator[Sshd]:
    """A started sshd of its own (host key, client keys, chroot); stopped and removed after."""
    if os.geteuid() != 0:
        pytest.skip("sshd tests need root (a system user and a root-owned chroot under /srv)")
    if not SSHD.exists() or shutil.which("ssh-keygen") is None:
        pytest.skip("sshd tests need openssh-server: apt-get install -y openssh-server")
    user = _system_user()
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)

    # sshd reads authorized keys as the user: this folder must be readable by it
    work = Path(tempfile.mkdtemp(prefix="autosynk-sshd-"))
    work.chmod(0o755)
    chroot = Path(f"/srv/autosynk-sftp-test-{os.getpid()}{'-' + tag if tag else ''}")
    try:
        host_key = _keygen(work / "host_ed25519")
        client_pub = _keygen(work / "client_ed25519")
        others = {"wrong_client": work / "wrong_client_ed25519", "other_host": work / "other_host"}
        _keygen(others["wrong_client"])
        _keygen(others["other_host"])
        authorized = [client_pub]
        for kind in ("rsa", "ecdsa"):
            others[kind] = work / f"client_{kind}"
            authorized.append(_keygen(others[kind], kind))
        others["encrypted"] = work / "client_encrypted"
        authorized.append(_keygen(others["encrypted"], passphrase="correct horse"))
        keys_dir = work / "authorized"
        keys_dir.mkdir(mode=0o755)
        (keys_dir / USER).write_text("".join(f"{line}\n" for line in authorized))
        (keys_dir / USER).chmod(0o644)

        # the chroot must be root-owned and closed to others in every component
        chroot.mkdir(mode=0o755)
        upload = chroot / "upload"
        upload.mkdir(mode=0o755)
        os.chown(upload, user.pw_uid, user.pw_gid)

        port = _free_port()
        known_hosts = work / "known_hosts"
        known_hosts.write_text(f"[127.0.0.1]:{port} {host_key}\n")
        config = work / "sshd_config"
        args = (port, work / "host_ed25519", keys_dir, chroot, work / "sshd.pid")
        config.write_text(_config(*args, extra=""))
        # OpenSSH >= 9.8 penalises a source address after failed logins; tests fail logins
        probe = subprocess.run(
            [str(SSHD), "-t", "-f", str(config), "-o", "PerSourcePenalties=no"],
            capture_output=True,
        )
        if probe.returncode == 0:
            config.write_text(_config(*args, extra="PerSourcePenalties no\n"))
        subprocess.run([str(SSHD), "-t", "-f", str(config)], check=True)

        server = Sshd(
            host="127.0.0.1",
            port=port,
            username=USER,
            private_key=work / "client_ed25519",
            host_key=host_key,
            known_hosts=known_hosts,
            upload_dir=upload,
            chroot=chroot,
            config=config,
            keys=work,
            log=work / "sshd.log",
            uid=user.pw_uid,
            gid=user.pw_gid,
            other_keys=others,
        )
        server.start()
        try:
            yield server
        finally:
            server.stop()
    finally:
        _unmount_below(chroot)
        shutil.rmtree(chroot, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def _unmount_below(root: Path) -> None:
    """Unmount anything a test mounted inside the chroot (never leave mounts behind)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            point = line.split()[1]
            if point.startswith(f"{root}/"):
                subprocess.run(["umount", "-l", point], check=False)


@pytest.fixture
def sftp_dir(sshd: Sshd, request: pytest.FixtureRequest) -> tuple[Path, str]:
    """A fresh upload directory for one test: (local path, remote path in the chroot)."""
    sshd.start()  # a test that stopped the server must not take the next one down with it
    name = "".join(c if c.isalnum() else "-" for c in request.node.name)[:80]
    local = sshd.upload_dir / name
    if local.exists():
        shutil.rmtree(local)
    return sshd.user_dir(name)
