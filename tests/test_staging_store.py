"""The staging store on real SQLite and PostgreSQL: migrations, lock, commit rules."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pandas as pd
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from autosynk.errors import LockError, StateError
from autosynk.staging import schema, store
from autosynk.staging.store import Changes, Staging, _alembic_config


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
    assert store.upgrade() == "0003"
    assert store.upgrade() == "0003"
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


def test_the_schema_module_matches_the_migrated_database(staging):
    with staging.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, schema.metadata) == []


# -- history rows in proportion to the change ------------------------------------------


def pupil(n: int, version: str = "h1") -> tuple[str, str, str, str, str]:
    return ("pupil", f"p{n}", f"p{n}", version, f"row {version}")


def in_class(n: int, group: str = "7a") -> tuple[str, str, str]:
    return ("student_in_class", f"p{n}", group)


def rows(staging: Staging, table: sa.Table, *columns: str) -> set[tuple[str, ...]]:
    with staging.engine.connect() as conn:
        return {tuple(r) for r in conn.execute(sa.select(*(table.c[c] for c in columns)))}


def history_rows(staging: Staging) -> list[tuple[str | None, ...]]:
    c = schema.change
    with staging.engine.connect() as conn:
        query = sa.select(c.c.run_id, c.c.op, c.c.a, c.c.b, c.c.since_run).order_by(c.c.id)
        return [tuple(r) for r in conn.execute(query)]


@pytest.mark.parametrize(
    ("new", "changed", "deleted", "forgotten", "added", "removed"),
    [
        (0, 0, 0, 0, 0, 0),  # a quiet night writes no history
        (7, 0, 0, 0, 9, 0),  # only adds: the delivered rows record them
        (0, 5, 0, 0, 0, 0),
        (0, 0, 4, 0, 0, 0),
        (0, 0, 0, 0, 0, 6),
        (3, 5, 4, 2, 9, 6),
    ],
)
@pytest.mark.parametrize("form", ["frames", "files", "small batches"])
def test_a_night_writes_history_only_for_changes_deletes_and_removes(
    staging, new, changed, deleted, forgotten, added, removed, form, tmp_path, monkeypatch
):
    """Changes as frames, as the Parquet files the pipeline passes, and read in batches of
    three rows (history rows then come batch by batch: still in the order of the change)."""

    def commit(run_id: str, night: Changes) -> None:
        if form == "files":
            for field in dataclasses.fields(night):
                path = tmp_path / f"{run_id}-{field.name}.parquet"
                getattr(night, field.name).to_parquet(path, index=False)
                setattr(night, field.name, path)
        staging.commit(run_id, night)

    if form == "small batches":
        monkeypatch.setattr(store, "_FRAME_ROWS", 3)
    size = 40
    deliver(staging, "n1", base=None)
    commit(
        "n1",
        changes(upserts=[pupil(i) for i in range(size)], adds=[in_class(i) for i in range(size)]),
    )
    assert history_rows(staging) == []  # a first night is all adds: no history rows

    # pupils 0.. change, the next ones are deleted, then forgotten (with their relation);
    # relations of the last pupils are removed; new pupils join with new relations
    changed_ids = range(changed)
    deleted_ids = range(changed, changed + deleted)
    forgotten_ids = range(changed + deleted, changed + deleted + forgotten)
    removed_ids = range(size - removed, size)
    deliver(staging, "n2", base="n1")
    commit(
        "n2",
        changes(
            upserts=[pupil(i, "h2") for i in changed_ids] + [pupil(size + i) for i in range(new)],
            deletes=[("pupil", f"p{i}", "delete") for i in deleted_ids]
            + [("pupil", f"p{i}", "forget") for i in forgotten_ids],
            adds=[in_class(i, "7b") for i in range(added)],
            removes=[(*in_class(i), "remove") for i in removed_ids]
            + [(*in_class(i), "forget") for i in forgotten_ids],
        ),
    )

    written = history_rows(staging)
    assert len(written) == changed + deleted + 2 * forgotten + removed
    # in the order changes happen: principal deletes, changes, relation removes
    assert [op for _, op, _, b, _ in written] == (
        ["delete"] * deleted
        + ["forget"] * forgotten
        + ["change"] * changed
        + ["remove"] * removed
        + ["forget"] * forgotten
    )
    assert sorted(written) == sorted(
        [("n2", "change", f"p{i}", "", "n1") for i in changed_ids]
        + [("n2", "delete", f"p{i}", "", "n1") for i in deleted_ids]
        + [("n2", "forget", f"p{i}", "", "n1") for i in forgotten_ids]
        + [("n2", "remove", f"p{i}", "7a", "n1") for i in removed_ids]
        + [("n2", "forget", f"p{i}", "7a", "n1") for i in forgotten_ids]
    )
    gone = {*deleted_ids, *forgotten_ids}
    principal = schema.delivered_principal
    assert rows(staging, principal, "key", "added_run", "run_id", "hash") == (
        {(f"p{i}", "n1", "n2", "h2") for i in changed_ids}
        | {(f"p{size + i}", "n2", "n2", "h1") for i in range(new)}
        | {(f"p{i}", "n1", "n1", "h1") for i in range(size) if i not in {*gone, *changed_ids}}
    )
    assert rows(staging, schema.delivered_relation, "a", "b", "run_id") == (
        {(f"p{i}", "7a", "n1") for i in range(size) if i not in {*removed_ids, *forgotten_ids}}
        | {(f"p{i}", "7b", "n2") for i in range(added)}
    )


# each night: (run_id, changes); then the key and the history it must read
P, REL = ("pupil", "p1", "p1"), ("student_in_class", "p1", "7a")
HISTORIES = {
    "relation added, removed, re-added": (
        [
            ("A", changes(adds=[REL])),
            ("B", changes(removes=[(*REL, "remove")])),
            ("C", changes(adds=[REL])),
        ],
        [("A", "add"), ("B", "remove"), ("C", "add")],
    ),
    "relation re-added, then forgotten": (
        [
            ("A", changes(adds=[REL])),
            ("B", changes(removes=[(*REL, "remove")])),
            ("C", changes(adds=[REL])),
            ("D", changes(removes=[(*REL, "forget")])),
        ],
        [("A", "add"), ("B", "remove"), ("C", "add"), ("D", "forget")],
    ),
    "principal added, changed, deleted": (
        [
            ("A", changes(upserts=[(*P, "h1", "r1")])),
            ("B", changes(upserts=[(*P, "h2", "r2")])),
            ("C", changes(upserts=[("pupil", "p2", "p2", "h1", "r1")])),  # another key
            ("D", changes(deletes=[("pupil", "p1", "delete")])),
        ],
        [("A", "upsert"), ("B", "change"), ("D", "delete")],
    ),
    "principal changed twice, still delivered": (
        [
            ("A", changes(upserts=[(*P, "h1", "r1")])),
            ("B", changes(upserts=[(*P, "h2", "r2")])),
            ("C", changes(upserts=[(*P, "h3", "r3")])),
        ],
        [("A", "upsert"), ("B", "change"), ("C", "change")],
    ),
    "principal deleted, added again, changed": (
        [
            ("A", changes(upserts=[(*P, "h1", "r1")])),
            ("B", changes(deletes=[("pupil", "p1", "delete")])),
            ("C", changes(upserts=[(*P, "h1", "r1")])),
            ("D", changes(upserts=[(*P, "h2", "r2")])),
        ],
        [("A", "upsert"), ("B", "delete"), ("C", "upsert"), ("D", "change")],
    ),
    "principal and relation in the same nights, in commit order": (
        [
            ("A", changes(upserts=[(*P, "h1", "r1")], adds=[REL])),
            (
                "B",
                changes(deletes=[("pupil", "p1", "forget")], removes=[(*REL, "forget")]),
            ),
        ],
        [("A", "upsert"), ("A", "add"), ("B", "forget"), ("B", "forget")],
    ),
}


@pytest.mark.parametrize("case", HISTORIES)
def test_history_reads_the_adds_from_the_delivered_state(staging, case):
    nights, expected = HISTORIES[case]
    base = None
    for run_id, night in nights:
        deliver(staging, run_id, base)
        assert staging.commit(run_id, night)
        base = run_id
    history = staging.history("p1")
    assert [(h["run_id"], h["op"]) for h in history] == expected
    assert [h["committed_at"] for h in history] == sorted(h["committed_at"] for h in history)
    assert staging.history("7a") == [h for h in history if h["b"] == "7a"]


def at_revision_0001(url: str) -> Staging:
    store = Staging(url)
    cfg = _alembic_config()
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    return store


def test_a_0001_database_upgrades_with_its_history_readable(staging_url):
    store = at_revision_0001(staging_url)
    # what revision 0001's commits wrote for: A adds p1 in 7a and 7b, B changes p1 and
    # removes it from 7b (a change was an upsert, every add a history row)
    old_history = [
        ("A", "principal", "upsert", "pupil", "p1", ""),
        ("A", "relation", "add", "student_in_class", "p1", "7a"),
        ("A", "relation", "add", "student_in_class", "p1", "7b"),
        ("B", "principal", "upsert", "pupil", "p1", ""),
        ("B", "relation", "remove", "student_in_class", "p1", "7b"),
    ]
    with store.engine.begin() as conn:
        for day, run_id in enumerate(("A", "B"), start=1):
            at = dt.datetime(2024, 1, day, tzinfo=dt.UTC)
            conn.execute(
                schema.run.insert().values(
                    run_id=run_id,
                    kind="nightly",
                    status="committed",
                    started_at=at,
                    committed_at=at,
                )
            )
        conn.execute(
            sa.text(
                "INSERT INTO delivered_principal (key, kind, source_id, hash, row, run_id) "
                "VALUES ('p1', 'pupil', 'p1', 'h2', 'r2', 'B')"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO delivered_relation (rel_type, a, b, run_id) "
                "VALUES ('student_in_class', 'p1', '7a', 'A')"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO change (run_id, scope, op, kind, a, b) VALUES (:r, :s, :o, :k, :a, :b)"
            ),
            [dict(zip("rsokab", row, strict=True)) for row in old_history],
        )

    assert store.upgrade() == "0003"
    assert rows(store, schema.delivered_principal, "key", "added_run", "run_id") == {
        ("p1", "B", "B")
    }
    fields = ("run_id", "scope", "op", "kind", "a", "b")
    assert [tuple(h[f] for f in fields) for h in store.history("p1")] == old_history

    # a night after the upgrade: its history joins the old rows without repeating them
    deliver(store, "C", base="B")
    store.commit(
        "C",
        changes(
            upserts=[("pupil", "p1", "p1", "h3", "r3")],
            removes=[("student_in_class", "p1", "7a", "remove")],
            adds=[("student_in_class", "p1", "7c")],
        ),
    )
    assert [(h["run_id"], h["op"], h["b"]) for h in store.history("p1")] == [
        ("A", "upsert", ""),
        ("A", "add", "7a"),
        ("A", "add", "7b"),
        ("B", "upsert", ""),
        ("B", "remove", "7b"),
        ("C", "change", ""),
        ("C", "remove", "7a"),
        ("C", "add", "7c"),
    ]
    assert rows(store, schema.delivered_principal, "key", "added_run", "run_id") == {
        ("p1", "B", "C")
    }

    # and back: revision 0001's history rows are written for what only 0002 derived
    with store.engine.begin() as conn:
        cfg = _alembic_config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
        restored = conn.execute(
            sa.text("SELECT run_id, op, b FROM change WHERE a = 'p1' ORDER BY id")
        ).all()
    assert [tuple(r) for r in restored] == [
        ("A", "upsert", ""),
        ("A", "add", "7a"),
        ("A", "add", "7b"),
        ("B", "upsert", ""),
        ("B", "remove", "7b"),
        ("C", "upsert", ""),
        ("C", "remove", "7a"),
        ("C", "add", "7c"),
    ]
    assert store.upgrade() == "0003"
    store.dispose()


def test_sqlite_connections_get_a_page_cache_for_bulk_commits(tmp_path):
    from autosynk.staging.store import SQLITE_CACHE_KIB

    st = Staging(f"sqlite:///{tmp_path / 'staging.db'}")
    with st.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -SQLITE_CACHE_KIB
    st.dispose()
