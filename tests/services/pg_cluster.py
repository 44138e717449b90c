"""A private PostgreSQL cluster on a high loopback port, which a test may stop and start.

Outage tests stop their database: never the shared server at 127.0.0.1:5432, always a
cluster of their own, made with ``initdb`` in a temporary folder. PostgreSQL refuses to run
as root, so as root its programs run as the ``postgres`` user.

Fixture ``private_postgres``: a started :class:`PrivateCluster` with an empty database
``autosynk``; ``url`` reaches it (with a password, which trust authentication ignores, so
tests can see it masked); ``stop()`` and ``start()`` make the outage.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

PASSWORD = "pg-s3cret"


def _bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not found:  # pragma: no cover - scripts/setup-system.sh installs PostgreSQL
        pytest.fail("PostgreSQL's programs are not installed under /usr/lib/postgresql")
    return found[-1].parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivateCluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.port = _free_port()
        self.url = f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:{self.port}/autosynk"
        self.running = False

    def _run(self, *args: str) -> None:
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*as_postgres, *args], check=True, capture_output=True, timeout=60)

    def init(self) -> None:
        self._run(
            str(_bin() / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-N"
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.root} -c fsync=off"
        )
        log = str(self.root / "postgres.log")
        self._run(
            str(_bin() / "pg_ctl"), "-D", str(self.data), "-l", log, "-o", options, "-w", "start"
        )
        self.running = True

    def stop(self) -> None:
        self._run(str(_bin() / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        self.running = False


@pytest.fixture
def private_postgres() -> Iterator[PrivateCluster]:
    root = Path(tempfile.mkdtemp(prefix="autosynk-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    cluster = PrivateCluster(root)
    try:
        cluster.init()
        cluster.start()
        with psycopg.connect(
            host="127.0.0.1", port=cluster.port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute("CREATE DATABASE autosynk")
        yield cluster
    finally:
        if cluster.running:
            cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
