"""A fresh PostgreSQL database per test, on the server at 127.0.0.1:5432 (trust auth)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest

PG_HOST = os.environ.get("AUTOSYNK_TEST_PG_HOST", "127.0.0.1")
PG_USER = os.environ.get("AUTOSYNK_TEST_PG_USER", "postgres")


def _admin() -> psycopg.Connection:
    return psycopg.connect(
        host=PG_HOST, user=PG_USER, dbname="postgres", autocommit=True, connect_timeout=5
    )


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A SQLAlchemy URL of a new, empty database, dropped after the test."""
    name = f"autosynk_test_{uuid.uuid4().hex[:12]}"
    try:
        with _admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:  # pragma: no cover - CI starts PostgreSQL
        pytest.fail(f"PostgreSQL at {PG_HOST}:5432 is not reachable: {exc}")
    yield f"postgresql+psycopg://{PG_USER}@{PG_HOST}:5432/{name}"
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def staging_url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    """Run the same test against SQLite and PostgreSQL staging."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/state/staging.db"
    return str(request.getfixturevalue("postgres_url"))
