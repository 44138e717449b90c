"""The staging store on real SQLite and PostgreSQL: migrations, lock, commit rules."""

from __future__ import annotations

import pandas as pd
import pytest

from autosynk.errors import LockError, StateError
from autosynk.staging.store import Changes, Staging


def changes(adds=(), removes=(), upserts=(), deletes=()) -> Changes:
    return Changes(
        principal_upserts=pd.DataFrame(
            list(upserts), columns=["kind", "key", "source_id", "hash", "row"]
        ),
        principal_deletes=pd.DataFrame(list(deletes), columns=["kind", "key", "op"]),
        relation_adds=pd.DataFrame(list(adds), columns=["type", "a", "b"]),
        relation_removes=pd.DataFrame(list(removes), columns=["type", "a", "b", "op"]),
    )


@pytest.fixture
def staging(staging_url) -> Staging:
    store = Staging(staging_url)
    store.upgrade()
    yield store
    store.dispose()


def deliver(staging: Staging, run_id: str, base: str | None) -> None:
    staging.start_run(run_id, "nightly")
    staging.update_run(run_id, status="delivered", base_run=base)


def test_upgrade_is_idempotent_and_required(staging_url):
    store = Staging(staging_url)
    with pytest.raises(StateError, match="autosynk db upgrade"):
        store.require_current()
    assert store.upgrade() == "0001"
    assert store.upgrade() == "0001"
    store.require_current()


def test_lock_is_exclusive_and_reentrant(staging):
    staging.acquire("night-1")
    staging.acquire("night-1")
    with pytest.raises(LockError, match="locked by run night-1"):
        staging.acquire("night-2", wait_seconds=0.2)
    assert staging.release("night-2") is False
    assert staging.release("night-1") is True
    staging.acquire("night-2")
    assert staging.lock_holder() == "night-2"


def test_commit_only_after_delivery_once_and_against_the_right_base(staging):
    staging.start_run("n1", "nightly")
    with pytest.raises(StateError, match="only a verified delivery is committed"):
        staging.commit("n1", changes(adds=[("school_in_org", "u1", "org")]))
    staging.update_run("n1", status="delivered", base_run=None)
    assert staging.commit(
        "n1",
        changes(
            adds=[("school_in_org", "u1", "org")],
            upserts=[("school", "u1", "u1", "h1", "row")],
        ),
    )
    assert staging.commit("n1", changes(adds=[("school_in_org", "u1", "org")])) is False
    assert len(staging.delivered_relations()) == 1

    deliver(staging, "n2", base="n1")
    deliver(staging, "stale", base=None)  # computed before n1 committed
    assert staging.commit("n2", changes(removes=[("school_in_org", "u1", "org", "remove")]))
    with pytest.raises(StateError, match="rerun it to compute a fresh delta"):
        staging.commit("stale", changes(adds=[("school_in_org", "u9", "org")]))
    assert len(staging.delivered_relations()) == 0
    history = staging.history("u1")
    assert [(h["run_id"], h["op"]) for h in history] == [
        ("n1", "upsert"),
        ("n1", "add"),
        ("n2", "remove"),
    ]


def test_a_failing_commit_changes_nothing(staging):
    deliver(staging, "n1", base=None)
    duplicate = [("school_in_org", "u1", "org"), ("school_in_org", "u1", "org")]
    with pytest.raises(Exception):
        staging.commit("n1", changes(adds=duplicate, upserts=[("school", "u1", "u1", "h", "r")]))
    assert len(staging.delivered_relations()) == 0
    assert len(staging.delivered_principals()) == 0
    assert staging.get_run("n1")["status"] == "delivered"


def test_embedded_staging_file_is_private(tmp_path):
    store = Staging(f"sqlite:///{tmp_path}/state/staging.db")
    store.upgrade()
    assert (tmp_path / "state" / "staging.db").stat().st_mode & 0o777 == 0o600
