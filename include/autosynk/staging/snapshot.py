"""A Parquet copy of the delivered state, kept for the delta stage.

Reading 3 M delivered rows out of the staging database takes seconds; the same rows in
Parquet take a fraction of one. The copy lives in the work base, the one place every task
of a run shares (``<work_base>/_delivered-state/``; a run directory never starts with
``_``), and is written when a run commits: the committed run's changes applied to the
copy of the state they were computed against.

The database stays authoritative. ``state.json`` names the committed run the copy
belongs to (run id and commit time); the delta stage uses the copy only when that is the
database's last committed run, and otherwise reads the database, says so in the log, and
writes a fresh copy for the commit to advance. A copy that cannot be written is only
logged: the next delta then reads the database.
"""

from __future__ import annotations

import contextlib
import io
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from autosynk.delta import (
    DELIVERED_PRINCIPAL_COLUMNS,
    RELATION_COLUMNS,
    Source,
    arrow_table,
    connection,
    store,
    view,
)
from autosynk.identity import mask
from autosynk.staging.store import ChangeFrame, Changes, Staging, frame_rows
from autosynk.workspace import RunWorkspace, private_path

log = logging.getLogger("autosynk")

FOLDER = "_delivered-state"
MANIFEST = "state.json"
#: DuckDB reads row groups in parallel: one group of a million rows would take one core
ROW_GROUP = 2**17

# the delivered state after a run's changes, as ``Staging._apply`` leaves the tables:
# deleted and upserted keys replaced, removed relations gone, added ones there
_PRINCIPALS_AFTER = """
    SELECT * FROM old_p
    WHERE key NOT IN (SELECT key FROM deletes) AND key NOT IN (SELECT key FROM upserts)
    UNION ALL SELECT * FROM upserts
"""
_RELATIONS_AFTER = """
    SELECT * FROM old_r ANTI JOIN removes r
        ON old_r.type = r.type AND old_r.a = r.a AND old_r.b = r.b
    UNION ALL SELECT * FROM adds
"""


@dataclass(frozen=True)
class StateTag:
    """Which committed run a delivered state is the result of (None: nothing committed)."""

    run_id: str | None
    committed_at: str | None

    @classmethod
    def of(cls, st: Staging, run_id: str | None) -> StateTag:
        if run_id is None:
            return cls(None, None)
        run = st.get_run(run_id)
        committed = run.get("committed_at") if run else None
        return cls(run_id, None if committed is None else str(committed))


def delivered_state(
    work_base: str, st: Staging, base_run: str | None, run_id: str
) -> tuple[Source, Source]:
    """The delivered state after ``base_run``: the copy when it is that state, else staging's.

    Read from staging, it is written as the copy for the commit to advance.
    """
    tag = StateTag.of(st, base_run)
    copy = DeliveredCopy(work_base)
    found = copy.sources(tag)
    if found is not None:
        log.info("run %s: delivered state read from its copy (%s)", run_id, base_run or "empty")
        return found
    log.info(
        "run %s: no copy of the delivered state of %s in the work base; reading staging",
        run_id,
        base_run or "(nothing committed)",
    )
    if copy.folder.is_local:
        # streamed from the database into the copy, which the delta then reads where it is
        try:
            written = copy.write_from(tag, st)
        except Exception as exc:  # the copy is a shortcut, never a reason to fail
            log.warning("run %s: could not write the delivered-state copy: %s", run_id, mask(exc))
        else:
            if written is not None:
                return written
        return st.delivered_tables()
    principals, relations = st.delivered_tables()
    try:
        copy.write(tag, principals, relations)
    except Exception as exc:  # the copy is a shortcut, never a reason to fail
        log.warning("run %s: could not write the delivered-state copy: %s", run_id, mask(exc))
    return principals, relations


def follow_commit(
    work_base: str,
    st: Staging,
    run: dict[str, Any],
    ws: RunWorkspace,
    changes: Callable[[], Changes],
) -> None:
    """After ``run`` committed ``changes()``: advance the copy to the database's new state."""
    run_id = run["run_id"]
    if st.last_committed_run() != run_id:  # a later run has committed since
        return
    copy = DeliveredCopy(work_base)
    new = StateTag.of(st, run_id)
    try:
        if copy.holds(new):
            return
        if not copy.advance(StateTag.of(st, run["base_run"]), new, changes(), ws):
            log.info(
                "run %s: no copy of the state its delta was computed against; "
                "the next delta reads staging",
                run_id,
            )
    except Exception as exc:  # committed already: the copy is only a shortcut
        log.warning(
            "run %s: could not advance the delivered-state copy (%s); next delta reads staging",
            run_id,
            mask(exc),
        )


class DeliveredCopy:
    """The copy of the delivered state in one work base."""

    def __init__(self, work_base: str) -> None:
        # written like a run's work directory: 0600 files on a local disk, always through
        # a temporary name and a rename
        self.folder = RunWorkspace(work_base, FOLDER, directory=FOLDER)

    def manifest(self) -> dict[str, Any] | None:
        try:
            found = self.folder.read_json(MANIFEST)
        except (FileNotFoundError, ValueError):
            return None
        return found if isinstance(found, dict) else None

    def holds(self, tag: StateTag) -> bool:
        manifest = self.manifest()
        return manifest is not None and manifest.get("tag") == asdict(tag)

    def sources(self, tag: StateTag) -> tuple[Source, Source] | None:
        """Principals and relations of the copy, if it is the state ``tag`` names."""
        manifest = self.manifest()
        if manifest is None or manifest.get("tag") != asdict(tag):
            return None
        try:
            principals = self._source(manifest["principals"], DELIVERED_PRINCIPAL_COLUMNS)
            relations = self._source(manifest["relations"], RELATION_COLUMNS)
            whole = _rows(principals) == manifest["principals_rows"] and (
                _rows(relations) == manifest["relations_rows"]
            )
        except (OSError, KeyError, pa.ArrowException):  # gone, or not Parquet any more
            return None
        return (principals, relations) if whole else None

    def _source(self, name: str, columns: list[str]) -> Source:
        if self.folder.is_local:
            path = self.folder.local_path(name)
            if not path.is_file():
                raise FileNotFoundError(name)
            return path
        return pq.read_table(io.BytesIO(self.folder.read_bytes(name)), columns=columns)

    def write(self, tag: StateTag, principals: pa.Table, relations: pa.Table) -> None:
        """Make ``principals`` and ``relations`` the copy of the state ``tag`` names."""
        con = connection()
        try:
            con.register("principals", principals)
            con.register("relations", relations)
            names = self._new_names()
            columns = ", ".join(DELIVERED_PRINCIPAL_COLUMNS)
            self._store(con, f"SELECT {columns} FROM principals", names[0])  # noqa: S608
            self._store(con, "SELECT type, a, b FROM relations", names[1])
        finally:
            con.close()
        self._publish(tag, names, principals.num_rows, relations.num_rows)

    def write_from(self, tag: StateTag, st: Staging) -> tuple[Source, Source] | None:
        """Make the delivered state in ``st`` the copy of the state ``tag`` names, read
        from the database batch by batch (a local work base); returns its files."""
        names = self._new_names()
        rows = [
            _write_batches(self.folder.local_path(name), st.delivered_batches(which), columns)
            for name, which, columns in (
                (names[0], "principals", DELIVERED_PRINCIPAL_COLUMNS),
                (names[1], "relations", RELATION_COLUMNS),
            )
        ]
        self._publish(tag, names, *rows)
        return self.sources(tag)

    def advance(self, base: StateTag, new: StateTag, changes: Changes, ws: RunWorkspace) -> bool:
        """Apply a committed run's ``changes`` to the copy of ``base``; False if there is none.

        ``ws`` is the run's work directory: against an empty state, with nothing to delete,
        the run's frozen ``package/state`` files are the new state as they are.
        """
        manifest = self.manifest()
        old = self.sources(base)
        if old is None or manifest is None:
            return False
        upserts, adds = changes.principal_upserts, changes.relation_adds
        names = self._new_names()
        if (
            manifest.get("principals_rows") == 0
            and manifest.get("relations_rows") == 0
            and not frame_rows(changes.principal_deletes)
            and not frame_rows(changes.relation_removes)
        ):
            state = ws.path("package", "state")
            self.folder.link_from(state / "state-principal-upserts.parquet", names[0])
            self.folder.link_from(state / "state-relation-adds.parquet", names[1])
            self._publish(new, names, frame_rows(upserts), frame_rows(adds))
            return True
        con = connection()
        try:
            view(con, "old_p", old[0], DELIVERED_PRINCIPAL_COLUMNS)
            view(con, "old_r", old[1], RELATION_COLUMNS)
            _view_of(con, "upserts", upserts, DELIVERED_PRINCIPAL_COLUMNS)
            _view_of(con, "deletes", changes.principal_deletes, ["key"])
            _view_of(con, "adds", adds, RELATION_COLUMNS)
            _view_of(con, "removes", changes.relation_removes, RELATION_COLUMNS)
            principals = self._store(con, _PRINCIPALS_AFTER, names[0])
            relations = self._store(con, _RELATIONS_AFTER, names[1])
        finally:
            con.close()
        self._publish(new, names, principals, relations)
        return True

    def _new_names(self) -> tuple[str, str]:
        # fresh names: the files of the copy in use are never overwritten
        token = uuid.uuid4().hex
        return f"principals-{token}.parquet", f"relations-{token}.parquet"

    def _store(self, con: duckdb.DuckDBPyConnection, query: str, name: str) -> int:
        """Write what ``query`` selects as ``name``; returns the number of rows.

        On a local disk DuckDB writes the file itself (:func:`autosynk.delta.store`).
        """
        if not self.folder.is_local:
            table = con.sql(query).to_arrow_table()
            buffer = io.BytesIO()
            pq.write_table(table, buffer, row_group_size=ROW_GROUP)
            self.folder.write_bytes(buffer.getvalue(), name)
            return table.num_rows
        return store(con, query, self.folder.local_path(name), ROW_GROUP)

    def _publish(
        self, tag: StateTag, names: tuple[str, str], principals: int, relations: int
    ) -> None:
        manifest = {
            "tag": asdict(tag),
            "principals": names[0],
            "relations": names[1],
            "principals_rows": principals,
            "relations_rows": relations,
        }
        self.folder.write_json(manifest, MANIFEST)
        for entry in self.folder.root.iterdir():  # earlier copies
            if entry.name not in (MANIFEST, *names) and not entry.name.startswith("."):
                with contextlib.suppress(OSError):
                    entry.unlink()


def _view_of(
    con: duckdb.DuckDBPyConnection, name: str, frame: ChangeFrame, columns: list[str]
) -> None:
    """A frame of changes as the view ``name`` of ``columns`` (a file is read where it is)."""
    if isinstance(frame, pd.DataFrame):
        frame = arrow_table(frame, columns)
    view(con, name, frame, columns)


def _write_batches(target: Path, batches: Iterator[pa.RecordBatch], columns: list[str]) -> int:
    """Write record batches as the Parquet file ``target`` (one row group each) as
    :func:`autosynk.delta.store` writes a query: privately, then renamed in place."""
    schema = pa.schema([(c, pa.string()) for c in columns])
    rows = 0
    with private_path(target) as part, pq.ParquetWriter(part, schema) as writer:
        for batch in batches:
            writer.write_batch(batch)
            rows += batch.num_rows
    return rows


def _rows(source: Source) -> int:
    """The row count a Parquet file's footer records (a damaged file fails to open)."""
    if isinstance(source, pa.Table):
        return source.num_rows
    return int(pq.ParquetFile(source).metadata.num_rows)
