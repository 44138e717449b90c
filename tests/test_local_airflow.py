"""The pieces of `make airflow-up` that a whole deployment does not show on its own."""

from __future__ import annotations

import json
import os
import shutil
import socket
import uuid
from pathlib import Path

import psycopg
import pytest

from scripts.local_airflow import (
    DEMO_TENANTS,
    Deployment,
    DeploymentError,
    Settings,
    _redis_answers,
    _without_driver,
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql+psycopg2://postgres@127.0.0.1:5432/af",
            "postgresql://postgres@127.0.0.1:5432/af",
        ),
        ("postgresql://u:p@db/af", "postgresql://u:p@db/af"),
        ("postgresql+psycopg://u@h/af?sslmode=require", "postgresql://u@h/af?sslmode=require"),
    ],
)
def test_without_driver(url: str, expected: str) -> None:
    assert _without_driver(url) == expected


def test_settings_from_the_environment(tmp_path: Path) -> None:
    defaults = Settings.from_environment({"AUTOSYNK_AIRFLOW_HOME": str(tmp_path)})
    assert defaults.port == 8080 and defaults.workers == 1
    assert defaults.tenants_dir == DEMO_TENANTS
    assert defaults.admin_password is None
    assert defaults.redis_url == "redis://127.0.0.1:6379/0"
    given = Settings.from_environment(
        {
            "AUTOSYNK_AIRFLOW_HOME": str(tmp_path),
            "AUTOSYNK_AIRFLOW_PORT": "18080",
            "AUTOSYNK_CELERY_WORKERS": "3",
            "AUTOSYNK_TENANTS_DIR": str(tmp_path / "tenants"),
            "AIRFLOW_ADMIN_PASSWORD": "s3cret",
            "AUTOSYNK_POOL_SFTP_UPLOADS": "1",
            "UNRELATED": "x",
        }
    )
    assert given.base_url == "http://127.0.0.1:18080"
    deployment = Deployment(given)
    assert deployment.workers == ["worker-1", "worker-2", "worker-3"]
    env = deployment.environment()
    assert env["AUTOSYNK_TENANTS_DIR"] == str(tmp_path / "tenants")
    assert env["AUTOSYNK_POOL_SFTP_UPLOADS"] == "1"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18080/execution/"
    assert "UNRELATED" not in env
    # only the first worker serves log files: two cannot listen on one port
    assert "--skip-serve-logs" not in deployment.command("worker-1")
    assert "--skip-serve-logs" in deployment.command("worker-2")


def test_the_admin_password_is_given_kept_or_generated(tmp_path: Path) -> None:
    generated, origin = Deployment(Settings(home=tmp_path)).admin_password()
    assert origin == "generated" and len(generated) >= 20
    stored = tmp_path / "simple_auth_manager_passwords.json"
    assert json.loads(stored.read_text()) == {"admin": generated}
    assert stored.stat().st_mode & 0o777 == 0o600
    assert Deployment(Settings(home=tmp_path)).admin_password() == (generated, "kept from before")
    given = Deployment(Settings(home=tmp_path, admin_password="from-env")).admin_password()
    assert given == ("from-env", "from AIRFLOW_ADMIN_PASSWORD")
    assert json.loads(stored.read_text()) == {"admin": "from-env"}


def test_secrets_are_made_once_and_kept(tmp_path: Path) -> None:
    first = Deployment(Settings(home=tmp_path)).environment()
    again = Deployment(Settings(home=tmp_path)).environment()
    for key in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET"):
        assert first[key] == again[key]  # restarts keep reading what they wrote


@pytest.mark.postgres
def test_the_metadata_database_is_created_when_missing(tmp_path: Path) -> None:
    prefix = os.environ.get("AUTOSYNK_TEST_DB_PREFIX", "autosynk_test_")
    name = f"{prefix}meta_{uuid.uuid4().hex[:8]}"
    url = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    deployment = Deployment(Settings(home=tmp_path, metadata_db=url))
    try:
        deployment.ensure_database()
        deployment.ensure_database()  # there already: fine
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{name}") as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        with psycopg.connect(
            "postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def test_an_unreachable_database_is_one_clear_error(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql+psycopg2://postgres@127.0.0.1:{port}/x"
    with pytest.raises(DeploymentError, match=rf"PostgreSQL at 127.0.0.1:{port} is not usable"):
        Deployment(Settings(home=tmp_path, metadata_db=url)).ensure_database()


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
def test_a_redis_is_started_when_none_answers_and_stopped_by_down(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    deployment = Deployment(Settings(home=tmp_path, redis_url=f"redis://127.0.0.1:{port}/3"))
    deployment.logs.mkdir(parents=True)
    deployment.pids.mkdir()
    assert not _redis_answers("127.0.0.1", port)
    try:
        deployment.ensure_redis()
        assert _redis_answers("127.0.0.1", port)
        pid = deployment.pid("redis")
        assert pid is not None
        deployment.ensure_redis()  # answers now: nothing more is started
        assert deployment.pid("redis") == pid
    finally:
        assert deployment.down() == ["redis"]
    assert not _redis_answers("127.0.0.1", port)
    assert deployment.pid("redis") is None


def test_a_remote_redis_that_does_not_answer_is_not_started_here(tmp_path: Path) -> None:
    deployment = Deployment(Settings(home=tmp_path, redis_url="redis://192.0.2.1:6379/0"))
    with pytest.raises(DeploymentError, match=r"no Redis answers at 192.0.2.1:6379"):
        deployment.ensure_redis()
