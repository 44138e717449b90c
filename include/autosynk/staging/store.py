"""Reading and advancing the staging state.

The delivered state changes in exactly one place, :meth:`Staging.commit`, in one
transaction, and only for a run whose delivery was verified. A run that fails anywhere
before that leaves the delivered state as it was, so the next run computes the right delta.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from autosynk.errors import LockError, StateError
from autosynk.staging import schema

LOCK_NAME = "staging"
_BATCH = 20_000


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Changes:
    """One run's pending changes (frames as written by the delta stage)."""

    principal_upserts: pd.DataFrame  # kind, key, source_id, hash, row
    principal_deletes: pd.DataFrame  # kind, key, op (delete | forget)
    relation_adds: pd.DataFrame  # type, a, b
    relation_removes: pd.DataFrame  # type, a, b, op (remove | forget)


def _alembic_config() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    return cfg


class Staging:
    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            if self.url.startswith("sqlite:///"):
                _private_sqlite_file(Path(self.url[len("sqlite:///") :]))
                self._engine = sa.create_engine(
                    self.url, connect_args={"timeout": 60}, poolclass=sa.pool.NullPool
                )
            else:
                self._engine = sa.create_engine(self.url, pool_pre_ping=True)
        return self._engine

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    # -- schema ------------------------------------------------------------------------

    def upgrade(self) -> str:
        """Bring the database up to the newest migration; returns the revision."""
        cfg = _alembic_config()
        try:
            with self.engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except sa.exc.OperationalError as exc:
            raise StateError(f"staging database unreachable: {_one_line(exc)}") from None
        return self.revision() or ""

    def revision(self) -> str | None:
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def require_current(self) -> None:
        head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
        try:
            current = self.revision()
        except sa.exc.OperationalError as exc:
            raise StateError(f"staging database unreachable: {_one_line(exc)}") from None
        if current != head:
            raise StateError(
                f"staging database is at revision {current or 'none'}, expected {head}: "
                "run `autosynk db upgrade`"
            )

    # -- the run lock ------------------------------------------------------------------

    def acquire(self, run_id: str, wait_seconds: float = 0.0) -> None:
        """Take the lock for ``run_id`` (taking it again is fine); wait, then fail clearly."""
        deadline = time.monotonic() + wait_seconds
        table = schema.run_lock
        while True:
            with self.engine.begin() as conn:
                result = conn.execute(
                    table.update()
                    .where(table.c.name == LOCK_NAME)
                    .where(sa.or_(table.c.run_id.is_(None), table.c.run_id == run_id))
                    .values(run_id=run_id, acquired_at=_now())
                )
                if result.rowcount == 1:
                    return
                holder = conn.execute(
                    sa.select(table.c.run_id, table.c.acquired_at).where(table.c.name == LOCK_NAME)
                ).one()
            if time.monotonic() >= deadline:
                raise LockError(
                    f"staging is locked by run {holder.run_id} (since {holder.acquired_at}); "
                    "runs never overlap. If that run is no longer running, release it with "
                    f"`autosynk unlock {holder.run_id}`"
                )
            time.sleep(min(5.0, max(0.1, deadline - time.monotonic())))

    def release(self, run_id: str) -> bool:
        table = schema.run_lock
        with self.engine.begin() as conn:
            result = conn.execute(
                table.update()
                .where(table.c.name == LOCK_NAME)
                .where(table.c.run_id == run_id)
                .values(run_id=None, acquired_at=None)
            )
            return result.rowcount == 1

    def lock_holder(self) -> str | None:
        table = schema.run_lock
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(table.c.run_id).where(table.c.name == LOCK_NAME)
            ).scalar_one_or_none()

    @contextmanager
    def locked(self, run_id: str, wait_seconds: float = 0.0) -> Iterator[None]:
        """Hold the lock for the duration of a stage (the run keeps it until it reports)."""
        self.acquire(run_id, wait_seconds)
        yield

    # -- the run ledger ----------------------------------------------------------------

    def start_run(self, run_id: str, kind: str, dag_run_id: str | None = None) -> None:
        table = schema.run
        with self.engine.begin() as conn:
            exists = conn.execute(sa.select(table.c.run_id).where(table.c.run_id == run_id)).first()
            if exists is None:
                conn.execute(
                    table.insert().values(
                        run_id=run_id,
                        dag_run_id=dag_run_id,
                        kind=kind,
                        status="running",
                        started_at=_now(),
                    )
                )

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        table = schema.run
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(table).where(table.c.run_id == run_id)).mappings().first()
        if row is None:
            return None
        out = dict(row)
        for field in ("package", "counts"):
            out[field] = json.loads(out[field]) if out[field] else None
        return out

    def update_run(self, run_id: str, **values: Any) -> None:
        for field in ("package", "counts"):
            if field in values and not isinstance(values[field], str | None):
                values[field] = json.dumps(values[field], sort_keys=True)
        table = schema.run
        with self.engine.begin() as conn:
            conn.execute(table.update().where(table.c.run_id == run_id).values(**values))

    def last_committed_run(self, conn: Connection | None = None) -> str | None:
        table = schema.run
        query = (
            sa.select(table.c.run_id)
            .where(table.c.status == "committed")
            .order_by(table.c.committed_at.desc())
            .limit(1)
        )
        if conn is not None:
            return conn.execute(query).scalar_one_or_none()
        with self.engine.connect() as own:
            return own.execute(query).scalar_one_or_none()

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        table = schema.run
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    table.c.run_id,
                    table.c.kind,
                    table.c.status,
                    table.c.started_at,
                    table.c.committed_at,
                    table.c.message,
                )
                .order_by(table.c.started_at.desc())
                .limit(limit)
            ).mappings()
            return [dict(r) for r in rows]

    # -- delivered state ---------------------------------------------------------------

    def delivered_principals(self) -> pd.DataFrame:
        t = schema.delivered_principal
        return self._frame(
            sa.select(t.c.kind, t.c.key, t.c.source_id, t.c.hash),
            ["kind", "key", "source_id", "hash"],
        )

    def delivered_relations(self) -> pd.DataFrame:
        t = schema.delivered_relation
        return self._frame(sa.select(t.c.rel_type, t.c.a, t.c.b), ["type", "a", "b"])

    def delivered_rows(self) -> pd.DataFrame:
        """Every delivered principals row in full (for a re-baseline total)."""
        t = schema.delivered_principal
        return self._frame(
            sa.select(t.c.kind, t.c.key, t.c.source_id, t.c.hash, t.c.row),
            ["kind", "key", "source_id", "hash", "row"],
        )

    def _frame(self, query: sa.Select[Any], columns: list[str]) -> pd.DataFrame:
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        frame = pd.DataFrame.from_records(rows, columns=columns)
        return frame.astype({c: "str" for c in columns})

    # -- commit ------------------------------------------------------------------------

    def commit(self, run_id: str, changes: Changes) -> bool:
        """Make a delivered run's changes the delivered state, in one transaction.

        Returns False when the run was already committed (a retry). Refuses a run whose
        delta was computed against a state another run has since advanced.
        """
        runs = schema.run
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(runs.c.status, runs.c.base_run).where(runs.c.run_id == run_id)
            ).first()
            if row is None:
                raise StateError(f"run {run_id} is not in the run ledger")
            if row.status == "committed":
                return False
            if row.status != "delivered":
                raise StateError(
                    f"run {run_id} is {row.status}: only a verified delivery is committed"
                )
            latest = self.last_committed_run(conn)
            if latest != row.base_run:
                raise StateError(
                    f"run {run_id} computed its delta against {row.base_run or 'an empty state'}, "
                    f"but {latest} has committed since; rerun it to compute a fresh delta"
                )
            self._apply(conn, run_id, changes)
            conn.execute(
                runs.update()
                .where(runs.c.run_id == run_id)
                .values(status="committed", committed_at=_now())
            )
        return True

    def _apply(self, conn: Connection, run_id: str, changes: Changes) -> None:
        principal = schema.delivered_principal
        relation = schema.delivered_relation
        history: list[dict[str, str]] = []

        deletes = changes.principal_deletes
        for chunk in _chunks(deletes["key"].tolist()):
            conn.execute(principal.delete().where(principal.c.key.in_(chunk)))
        history += [
            {"run_id": run_id, "scope": "principal", "op": op, "kind": kind, "a": key, "b": ""}
            for kind, key, op in deletes[["kind", "key", "op"]].itertuples(index=False)
        ]

        upserts = changes.principal_upserts
        if len(upserts):
            keys = upserts["key"].tolist()
            for chunk in _chunks(keys):
                conn.execute(principal.delete().where(principal.c.key.in_(chunk)))
            records = [
                {"kind": k, "key": key, "source_id": s, "hash": h, "row": r, "run_id": run_id}
                for k, key, s, h, r in upserts[
                    ["kind", "key", "source_id", "hash", "row"]
                ].itertuples(index=False)
            ]
            for batch in _chunks(records):
                conn.execute(principal.insert(), batch)
            history += [
                {
                    "run_id": run_id,
                    "scope": "principal",
                    "op": "upsert",
                    "kind": k,
                    "a": key,
                    "b": "",
                }
                for k, key in upserts[["kind", "key"]].itertuples(index=False)
            ]

        removes = changes.relation_removes
        if len(removes):
            triples = list(removes[["type", "a", "b"]].itertuples(index=False, name=None))
            for batch in _chunks(triples):
                conn.execute(
                    relation.delete().where(
                        relation.c.rel_type == sa.bindparam("t"),
                        relation.c.a == sa.bindparam("x"),
                        relation.c.b == sa.bindparam("y"),
                    ),
                    [{"t": t, "x": a, "y": b} for t, a, b in batch],
                )
            history += [
                {"run_id": run_id, "scope": "relation", "op": op, "kind": t, "a": a, "b": b}
                for t, a, b, op in removes[["type", "a", "b", "op"]].itertuples(index=False)
            ]

        adds = changes.relation_adds
        if len(adds):
            records = [
                {"rel_type": t, "a": a, "b": b, "run_id": run_id}
                for t, a, b in adds[["type", "a", "b"]].itertuples(index=False)
            ]
            for batch in _chunks(records):
                conn.execute(relation.insert(), batch)
            history += [
                {"run_id": run_id, "scope": "relation", "op": "add", "kind": t, "a": a, "b": b}
                for t, a, b in adds[["type", "a", "b"]].itertuples(index=False)
            ]

        for batch in _chunks(history):
            conn.execute(schema.change.insert(), batch)

    # -- ledgers -----------------------------------------------------------------------

    def record_quarantine(self, run_id: str, entries: Iterable[dict[str, str]]) -> int:
        table = schema.quarantine
        rows = [{"run_id": run_id, **e} for e in entries]
        with self.engine.begin() as conn:
            conn.execute(table.delete().where(table.c.run_id == run_id))
            for batch in _chunks(rows):
                conn.execute(table.insert(), batch)
        return len(rows)

    def record_deliveries(self, run_id: str, records: Iterable[dict[str, Any]]) -> None:
        table = schema.delivery
        with self.engine.begin() as conn:
            conn.execute(table.delete().where(table.c.run_id == run_id))
            rows = [{"run_id": run_id, **r} for r in records]
            if rows:
                conn.execute(table.insert(), rows)

    def deliveries(self, run_id: str) -> list[dict[str, Any]]:
        table = schema.delivery
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(table).where(table.c.run_id == run_id).order_by(table.c.id)
            ).mappings()
            return [dict(r) for r in rows]

    def history(self, key: str) -> list[dict[str, Any]]:
        """Every committed change naming ``key`` (as object or either party), oldest first."""
        change, runs = schema.change, schema.run
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    change.c.run_id,
                    runs.c.committed_at,
                    change.c.scope,
                    change.c.op,
                    change.c.kind,
                    change.c.a,
                    change.c.b,
                )
                .join(runs, runs.c.run_id == change.c.run_id)
                .where(sa.or_(change.c.a == key, change.c.b == key))
                .order_by(change.c.id)
            ).mappings()
            return [dict(r) for r in rows]


def _private_sqlite_file(path: Path) -> None:
    """The embedded staging database holds personal data: create it 0600 (SQLite's journal
    files take the database file's mode)."""
    if str(path) == ":memory:":
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    os.chmod(path, 0o600)  # noqa: PTH101 - same call for new and existing files


def _chunks(items: list[Any], size: int = _BATCH) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _one_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
