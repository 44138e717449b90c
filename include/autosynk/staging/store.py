"""Reading and advancing the staging state.

The delivered state changes in exactly one place, :meth:`Staging.commit`, in one
transaction, and only for a run whose delivery was verified. A run that fails anywhere
before that leaves the delivered state as it was, so the next run computes the right delta.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine, ExceptionContext

from autosynk.errors import LockError, StagingUnreachable, StateError
from autosynk.staging import history as key_history
from autosynk.staging import schema

LOCK_NAME = "staging"
#: run statuses of a plan that waits for a person's approval
AWAITING_APPROVAL = ("refused", "awaiting-approval")
_BATCH = 20_000
_BULK = 200_000
#: rows of a frame of changes held as Python values at a time (~50 MB of them)
_FRAME_ROWS = 50_000
#: a Parquet file is read through a buffer of this size (bytes), not a row group at once
_READ_BUFFER = 2**20
#: delivered rows read from the database at a time
_DELIVERED_BATCH = 2**17


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


#: a frame of changes: a pandas frame, an Arrow table, or a Parquet file on a local disk
ChangeFrame: TypeAlias = pd.DataFrame | pa.Table | Path


@dataclass
class Changes:
    """One run's pending changes (as written by the delta stage; read batch by batch)."""

    principal_upserts: ChangeFrame  # kind, key, source_id, hash, row
    principal_deletes: ChangeFrame  # kind, key, op (delete | forget)
    relation_adds: ChangeFrame  # type, a, b
    relation_removes: ChangeFrame  # type, a, b, op (remove | forget)


def frame_rows(frame: ChangeFrame) -> int:
    """The rows of a frame of changes (a Parquet file's from its footer)."""
    if isinstance(frame, Path):
        return int(pq.ParquetFile(frame).metadata.num_rows)
    return len(frame)


def frame_batches(
    frame: ChangeFrame, columns: list[str], size: int | None = None
) -> Iterator[list[list[Any]]]:
    """``columns`` of a frame as Python lists, ``size`` rows at a time (default
    :data:`_FRAME_ROWS`): memory stays at a batch whatever the frame's size (a Parquet file
    is read page by page, never a whole row group at once)."""
    size = size or _FRAME_ROWS
    if isinstance(frame, pd.DataFrame):
        for start in range(0, len(frame), size):
            part = frame.iloc[start : start + size]
            yield [part[c].tolist() for c in columns]
        return
    batches: Iterable[pa.RecordBatch]
    if isinstance(frame, Path):
        reader = pq.ParquetFile(frame, pre_buffer=False, buffer_size=_READ_BUFFER)
        batches = reader.iter_batches(batch_size=size, columns=columns)
    else:
        batches = frame.select(columns).to_batches(max_chunksize=size)
    for batch in batches:
        if batch.num_rows:
            yield [batch.column(c).to_pylist() for c in columns]


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
                sa.event.listen(self._engine, "connect", _sqlite_pragmas)
            else:
                self._engine = sa.create_engine(self.url, pool_pre_ping=True)
            sa.event.listen(self._engine, "handle_error", self._unreachable)
        return self._engine

    def describe(self) -> str:
        """The database's URL with any password masked, to name it in messages."""
        return describe_url(self.url)

    def _unreachable(self, context: ExceptionContext) -> None:
        """A connection that cannot be made, or was lost: one line naming the database."""
        if context.is_pre_ping:
            return  # the pool connects afresh, and that attempt reports
        if context.connection is not None and not context.is_disconnect:
            return  # an error in a statement, not in reaching the database
        raise StagingUnreachable(
            f"staging database {self.describe()} cannot be reached: "
            f"{_one_line(context.original_exception)}"
        )

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
                raise LockError(self._locked_message(holder.run_id, holder.acquired_at))
            time.sleep(min(5.0, max(0.1, deadline - time.monotonic())))

    def _locked_message(self, holder: str, since: Any) -> str:
        """Who holds the lock and what it is doing, so the operator knows what to do."""
        run = self.get_run(holder)
        status = run["status"] if run else None
        if run is not None and status in AWAITING_APPROVAL:
            plan = run["plan_id"]
            how = (
                f"`autosynk school-year apply --plan {plan}` or `autosynk school-year reject "
                f"--plan {plan}`"
                if run["kind"] == "school-year"
                else f"`autosynk run --approve {plan}`"
            )
            return (
                f"staging is locked by run {holder} ({run['kind']}, waiting for approval of "
                f"plan {plan}, since {since}); runs never overlap. Approve or reject that plan "
                f"first ({how}, or in Airflow the run's approval task); if that run is dead, "
                f"release it with `autosynk unlock {holder}`"
            )
        if status == "approved":
            return (
                f"staging is locked by run {holder} (delivering its approved plan, since "
                f"{since}); runs never overlap: try again when it has finished"
            )
        return (
            f"staging is locked by run {holder} (since {since}); runs never overlap. If that "
            f"run is no longer running, release it with `autosynk unlock {holder}`"
        )

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
        return _decoded(dict(row))

    def run_by_plan(self, plan_id: str) -> dict[str, Any] | None:
        table = schema.run
        with self.engine.connect() as conn:
            row = (
                conn.execute(sa.select(table).where(table.c.plan_id == plan_id)).mappings().first()
            )
        return None if row is None else _decoded(dict(row))

    def record_stage(
        self, run_id: str, stage: str, seconds: float, amount: tuple[int, str] | None
    ) -> None:
        """Keep a stage's time and rows in the run ledger (a retry replaces them)."""
        table = schema.run
        with self.engine.begin() as conn:
            found = conn.execute(sa.select(table.c.stages).where(table.c.run_id == run_id)).first()
            if found is None:
                return
            stages = json.loads(found.stages) if found.stages else {}
            stages[stage] = {
                "seconds": round(seconds, 3),
                "count": None if amount is None else amount[0],
                "unit": None if amount is None else amount[1],
            }
            conn.execute(
                table.update().where(table.c.run_id == run_id).values(stages=json.dumps(stages))
            )

    def update_run(self, run_id: str, **values: Any) -> None:
        for field in _JSON_FIELDS:
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
        """The last ``limit`` runs, newest first, with their plans and counts."""
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
                    table.c.plan,
                    table.c.counts,
                )
                .order_by(table.c.started_at.desc())
                .limit(limit)
            ).mappings()
            return [_decoded(dict(r)) for r in rows]

    # -- delivered state ---------------------------------------------------------------

    def delivered_tables(self) -> tuple[pa.Table, pa.Table]:
        """The delivered state in Arrow: principals (kind, key, source_id, hash) and
        relations (type, a, b)."""
        return self._table(*self._principals_query()), self._table(*self._relations_query())

    def delivered_rows(self, kinds: tuple[str, ...]) -> pa.Table:
        """The delivered principals of ``kinds`` with their rows (kind, key, row)."""
        t = schema.delivered_principal
        query = sa.select(t.c.kind, t.c.key, t.c.row).where(t.c.kind.in_(kinds))
        return self._table(query, ["kind", "key", "row"])

    def latest_effective_date(self) -> str | None:
        """The effective date of the last applied school-year change (None: none applied)."""
        table = schema.run
        with self.engine.connect() as conn:
            found = conn.execute(
                sa.select(sa.func.max(table.c.evaluation_date)).where(
                    table.c.kind == "school-year", table.c.status == "committed"
                )
            ).scalar_one_or_none()
        return str(found) if found else None

    def delivered_principals(self) -> pd.DataFrame:
        return _frame(self._table(*self._principals_query()))

    def delivered_relations(self) -> pd.DataFrame:
        return _frame(self._table(*self._relations_query()))

    @staticmethod
    def _principals_query() -> tuple[sa.Select[Any], list[str]]:
        t = schema.delivered_principal
        query = sa.select(t.c.kind, t.c.key, t.c.source_id, t.c.hash)
        return query, ["kind", "key", "source_id", "hash"]

    @staticmethod
    def _relations_query() -> tuple[sa.Select[Any], list[str]]:
        t = schema.delivered_relation
        return sa.select(t.c.rel_type, t.c.a, t.c.b), ["type", "a", "b"]

    def delivered_batches(
        self, which: str, rows: int = _DELIVERED_BATCH
    ) -> Iterator[pa.RecordBatch]:
        """The delivered ``principals`` (kind, key, source_id, hash) or ``relations`` (type,
        a, b), ``rows`` at a time: memory stays at a batch however large the state."""
        query, columns = (
            self._principals_query() if which == "principals" else self._relations_query()
        )
        return self._batches(query, columns, rows)

    def _table(self, query: sa.Select[Any], columns: list[str]) -> pa.Table:
        schema = pa.schema([(c, pa.string()) for c in columns])
        return pa.Table.from_batches(list(self._batches(query, columns)), schema)

    def _batches(
        self, query: sa.Select[Any], columns: list[str], rows: int = _DELIVERED_BATCH
    ) -> Iterator[pa.RecordBatch]:
        # plain tuples, column by column: SQLAlchemy Row objects cost more than the query
        # itself at millions of rows
        with self.engine.connect() as conn:
            # constants only (row kinds): bound into the text
            sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
            dbapi = conn.connection.dbapi_connection
            # PostgreSQL sends a plain cursor's whole result at once: a named (server-side)
            # cursor sends it as it is fetched
            named = conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg"
            cursor = dbapi.cursor(name="autosynk_delivered") if named else dbapi.cursor()  # type: ignore[union-attr]
            try:
                cursor.execute(sql)
                while found := cursor.fetchmany(rows):
                    arrays = [
                        pa.array([r[i] for r in found], pa.string()) for i in range(len(columns))
                    ]
                    yield pa.RecordBatch.from_arrays(arrays, names=columns)
            finally:
                cursor.close()

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
        """Apply the changes and their history rows (bulk: a first night is millions).

        History rows are written only for what the delivered state cannot show once it has
        moved on: a changed principal (op ``change``), a principal deleted or forgotten, a
        relation removed or forgotten, each with ``since_run``, the run that had added it.
        A new principal key (``added_run``) and an added relation (``run_id``) are recorded
        by the delivered row itself, so a night writes history in proportion to its changes
        and removals, and a first night (all adds) writes none.
        """
        principal = schema.delivered_principal
        relation = schema.delivered_relation
        # history rows go in the order changes happen: deletes, changes, removes
        columns = ["run_id", "scope", "op", "kind", "a", "b", "since_run"]

        def history(rows: Iterable[tuple[str | None, ...]]) -> None:
            _bulk_insert(conn, schema.change, columns, rows)

        # batch by batch: memory stays at a batch, however many millions a night changes
        for kinds, keys, ops in frame_batches(changes.principal_deletes, ["kind", "key", "op"]):
            added = _added_runs(conn, keys)
            for chunk in _chunks(keys):
                conn.execute(principal.delete().where(principal.c.key.in_(chunk)))
            since = [added.get(k) for k in keys]
            history(_history(run_id, "principal", ops, kinds, keys, None, since))

        # nothing to replace on an empty state (a first night): skip the reads
        empty = conn.execute(sa.select(principal.c.key).limit(1)).first() is None
        upsert_columns = ["kind", "key", "source_id", "hash", "row"]
        for batch in frame_batches(changes.principal_upserts, upsert_columns):
            keys = batch[1]
            added = {} if empty else _added_runs(conn, keys)
            for chunk in _chunks(list(added)):
                conn.execute(principal.delete().where(principal.c.key.in_(chunk)))
            # a changed key keeps the run that first delivered it
            first_runs = (
                _repeat(run_id, len(keys)) if empty else (added.get(k, run_id) for k in keys)
            )
            _bulk_insert(
                conn,
                principal,
                [*upsert_columns, "run_id", "added_run"],
                zip(*batch, _repeat(run_id, len(keys)), first_runs, strict=True),
            )
            if added:
                changed = [i for i, k in enumerate(keys) if k in added]
                history(
                    _history(
                        run_id,
                        "principal",
                        "change",
                        [batch[0][i] for i in changed],
                        [keys[i] for i in changed],
                        None,
                        [added[keys[i]] for i in changed],
                    )
                )

        for types, firsts, seconds, ops in frame_batches(
            changes.relation_removes, ["type", "a", "b", "op"]
        ):
            triples = list(zip(types, firsts, seconds, strict=True))
            added_by = _relation_runs(conn, triples)
            for chunk in _chunks(triples):
                conn.execute(
                    relation.delete().where(
                        relation.c.rel_type == sa.bindparam("t"),
                        relation.c.a == sa.bindparam("x"),
                        relation.c.b == sa.bindparam("y"),
                    ),
                    [{"t": t, "x": a, "y": b} for t, a, b in chunk],
                )
            since = [added_by.get(t) for t in triples]
            history(_history(run_id, "relation", ops, types, firsts, seconds, since))

        adds = frame_batches(changes.relation_adds, ["type", "a", "b"])
        _bulk_insert(
            conn,
            relation,
            ["rel_type", "a", "b", "run_id"],
            itertools.chain.from_iterable(
                zip(*batch, _repeat(run_id, len(batch[0])), strict=True) for batch in adds
            ),
        )

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
        """Every committed event naming ``key`` (as object or either party), oldest first.

        Read from the history rows naming the key and completed from the delivered state
        (the rule: :mod:`autosynk.staging.history`). The delivered relations have no index
        on ``a`` or ``b`` (it would slow every night's inserts): an operator's question
        scans them once.
        """
        change, runs = schema.change, schema.run
        principal, relation = schema.delivered_principal, schema.delivered_relation
        with self.engine.connect() as conn:
            recorded = conn.execute(
                sa.select(
                    change.c.run_id,
                    change.c.scope,
                    change.c.op,
                    change.c.kind,
                    change.c.a,
                    change.c.b,
                    change.c.since_run,
                )
                .where(sa.or_(change.c.a == key, change.c.b == key))
                .order_by(change.c.id)
            ).all()
            current = conn.execute(
                sa.select(principal.c.kind, principal.c.added_run, principal.c.run_id).where(
                    principal.c.key == key
                )
            ).first()
            relations = conn.execute(
                sa.select(relation.c.run_id, relation.c.rel_type, relation.c.a, relation.c.b).where(
                    sa.or_(relation.c.a == key, relation.c.b == key)
                )
            ).all()
            found = key_history.events(
                key,
                [r._tuple() for r in recorded],
                None if current is None else (current.kind, current.added_run, current.run_id),
                [r._tuple() for r in relations],
            )
            committed = conn.execute(
                sa.select(runs.c.run_id, runs.c.committed_at).where(
                    runs.c.run_id.in_({e[0] for e in found})
                )
            ).all()
        return key_history.ordered(found, {run_id: at for run_id, at in committed})


_JSON_FIELDS = ("package", "counts", "plan", "stages")


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    for field in _JSON_FIELDS:
        if field in row:
            row[field] = json.loads(row[field]) if row[field] else None
    return row


def _frame(table: pa.Table) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(table[c], dtype="str") for c in table.column_names})


def _private_sqlite_file(path: Path) -> None:
    """The embedded staging database holds personal data: create it 0600 (SQLite's journal
    files take the database file's mode)."""
    if str(path) == ":memory:":
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    os.chmod(path, 0o600)  # noqa: PTH101 - same call for new and existing files


#: SQLite's page cache per connection (KiB): a first night's commit inserts 3 M rows into
#: tables whose keys are not in insertion order; with the default 2 MB cache most of its
#: time went to reading and writing index pages again (commit 44 -> 19 s on a busy hour)
SQLITE_CACHE_KIB = 128 * 1024


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Per connection: a page cache large enough for bulk commits (taken only as used)."""
    dbapi_connection.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")


def _repeat(value: str, count: int) -> Iterator[str]:
    return itertools.repeat(value, count)


def _history(
    run_id: str,
    scope: str,
    op: str | list[str],
    kinds: list[str],
    a: list[str],
    b: list[str] | None,
    since: list[str | None],
) -> Iterator[tuple[str | None, ...]]:
    """History rows for changes; ``op`` is the ops column or the op itself."""
    count = len(kinds)
    return zip(
        _repeat(run_id, count),
        _repeat(scope, count),
        _repeat(op, count) if isinstance(op, str) else op,
        kinds,
        a,
        _repeat("", count) if b is None else b,
        since,
        strict=True,
    )


def _added_runs(conn: Connection, keys: list[str]) -> dict[str, str]:
    """The delivered keys among ``keys``, each with the run that first delivered it."""
    t = schema.delivered_principal
    found: dict[str, str] = {}
    for chunk in _chunks(keys):
        rows = conn.execute(sa.select(t.c.key, t.c.added_run).where(t.c.key.in_(chunk)))
        found.update((key, added_run) for key, added_run in rows)
    return found


def _relation_runs(
    conn: Connection, triples: list[tuple[str, str, str]]
) -> dict[tuple[str, str, str], str]:
    """The delivered relations among ``triples``, each with the run that added it.

    Read by type and first party, the primary key's prefix, and matched here: SQLite scans
    the whole table for a row-value ``IN`` list (seconds at millions of relations), and a
    party has only a few relations of one type (a mentor's pupils at most: some dozens).
    """
    t = schema.delivered_relation
    wanted = set(triples)
    parties: dict[str, set[str]] = {}
    for rel_type, a, _ in triples:
        parties.setdefault(rel_type, set()).add(a)
    found: dict[tuple[str, str, str], str] = {}
    for rel_type, firsts in parties.items():
        for chunk in _chunks(sorted(firsts)):
            rows = conn.execute(
                sa.select(t.c.a, t.c.b, t.c.run_id).where(
                    t.c.rel_type == rel_type, t.c.a.in_(chunk)
                )
            )
            found.update(
                ((rel_type, a, b), run_id) for a, b, run_id in rows if (rel_type, a, b) in wanted
            )
    return found


def _bulk_insert(
    conn: Connection, table: sa.Table, columns: list[str], rows: Iterable[tuple[Any, ...]]
) -> None:
    """Insert many rows in the connection's transaction, by the fastest path the driver has.

    PostgreSQL (psycopg): ``COPY ... FROM STDIN``. SQLite: the driver's ``executemany``
    on plain tuples. Anything else: SQLAlchemy's executemany. All three stay inside the
    caller's transaction, so a failure still rolls back the whole commit.
    """
    dialect = conn.dialect.name
    names = ", ".join(f'"{c}"' for c in columns)
    if dialect == "postgresql" and conn.dialect.driver == "psycopg":
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(row)
        return
    if dialect == "sqlite":
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        marks = ", ".join("?" for _ in columns)
        sql = f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})'  # noqa: S608
        batch = list(itertools.islice(rows, _BULK))
        while batch:
            cursor.executemany(sql, batch)
            batch = list(itertools.islice(rows, _BULK))
        return
    iterator = iter(rows)  # pragma: no cover - other databases
    while batch := list(itertools.islice(iterator, _BATCH)):  # pragma: no cover
        conn.execute(table.insert(), [dict(zip(columns, r, strict=True)) for r in batch])


def _chunks(items: list[Any], size: int = _BATCH) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def describe_url(url: str) -> str:
    """A database URL with its password masked (``***``)."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(an unreadable database URL)"


def _one_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
