"""The delta: tonight's mapped state against what Unikum was last told.

Keyed comparison with content hashes, in DuckDB:

- a principals row is sent when its key is new or its hash changed;
- a relation is added when it is new, removed when it was delivered and is gone;
- a record quarantined tonight *holds* its delivered state: its rows are not dropped and
  no relation naming it is removed (a broken record must not become removals);
- a protected person is *forgotten*: dropped from the delivered state with every relation
  naming them, and never named in a file (spec §10).

Rows to send and relations to add keep tonight's order (the transform writes relations
sorted by type, a, b); removes and deletes are sorted, so the same inputs always give the
same frames whichever store the delivered state was read from. :func:`diff` reads its
inputs where they are (Parquet files on a local disk, or Arrow tables) and answers in
Arrow, or in Parquet files DuckDB writes itself (the pipeline's way: memory stays at
DuckDB's limit, :data:`MEMORY`, however large the register).
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from autosynk.workspace import private_path

PRINCIPAL_COLUMNS = ["kind", "key", "source_id", "hash", "row"]
DELIVERED_PRINCIPAL_COLUMNS = ["kind", "key", "source_id", "hash"]
RELATION_COLUMNS = ["type", "a", "b"]

#: a Parquet file on a local disk (DuckDB reads only the columns it needs) or a table
Source: TypeAlias = Path | pa.Table


@dataclass
class TableDelta:
    """The delta in Arrow tables or Parquet files. ``None`` means *all of tonight's rows, as
    they are*.

    On a first night (an empty delivered state) everything is new: the caller then reuses
    tonight's frame (or file) instead of a copy of it.
    """

    principals: Source | None  # rows to send: kind, key, source_id, hash, row
    adds: Source | None  # type, a, b
    removes: Source  # type, a, b
    principal_deletes: Source  # kind, key, op (delete | forget)
    relation_removes: Source  # type, a, b, op (remove | forget)
    tonight_principals: int
    tonight_relations: int
    counts: dict[str, int] = field(default_factory=dict)
    #: per principals row type (new, changed, dropped, delivered) and per relation type
    #: (add, remove, delivered): what the guards measure
    by_type: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)


def diff(
    principals: Source,
    relations: Source,
    delivered_principals: Source,
    delivered_relations: Source,
    *,
    held_source_ids: Iterable[str],
    protected_source_ids: Iterable[str],
    protected_keys: Iterable[str],
    out: Path | None = None,
) -> TableDelta:
    """Compare tonight (``principals``, ``relations``) with the delivered state.

    The delta comes as Arrow tables, or, given a local folder ``out``, as Parquet files
    written there by DuckDB (never whole in memory, whatever their size).
    """
    inputs = _Inputs(
        principals,
        relations,
        delivered_principals,
        delivered_relations,
        _key_table(held_source_ids),
        _key_table(protected_source_ids),
        _key_table(protected_keys),
    )
    con = inputs.connect()
    try:
        return _diff(con, out)
    finally:
        con.close()


@dataclass(frozen=True)
class _Inputs:
    principals: Source
    relations: Source
    delivered_principals: Source
    delivered_relations: Source
    held_ids: pa.Table
    protected_ids: pa.Table
    protected_keys: pa.Table

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A connection with the inputs as views: tp, tr (numbered rows), dp, dr, and the
        key sets held_ids, protected_ids, protected_keys."""
        con = connection()
        view(con, "tp", self.principals, PRINCIPAL_COLUMNS, numbered=True)
        view(con, "tr", self.relations, RELATION_COLUMNS, numbered=True)
        view(con, "dp", self.delivered_principals, DELIVERED_PRINCIPAL_COLUMNS)
        view(con, "dr", self.delivered_relations, RELATION_COLUMNS)
        for name in ("held_ids", "protected_ids", "protected_keys"):
            con.register(name, getattr(self, name))
        return con


#: DuckDB's memory for the delta's joins, the writer's sorts and the delivered-state copy
#: (this process's database): beyond it they spill to a private temporary folder, so a
#: larger register costs disk and time, not memory. A Stockholm-scale night fits (its
#: largest join, the relations of a 1%-change night, needs about 0.45 GB); a national one
#: spills. One thread: two threads' join and sort buffers need twice the memory, and at
#: national scale the principals' join then fails within the limit; at Stockholm scale one
#: thread costs no CPU and little time (these queries are mostly one scan each).
MEMORY = "512MB"
THREADS = 1


def connection() -> duckdb.DuckDBPyConnection:
    """A connection of its own (close it after use) to this process's in-memory DuckDB.

    Its temporary tables and views go when it closes. Opening a database costs ~40 ms,
    which the many small deltas of a test run would otherwise pay each time. Keyed by
    process id: a forked worker must not use its parent's database.
    """
    return _database_of(os.getpid()).cursor()


def release() -> None:
    """Close this process's database, if it has one open: the memory DuckDB keeps for
    reuse while it is open goes back, and its spill folder goes. A stage that used it
    calls this when it ends; the next connection opens a fresh database."""
    pid = os.getpid()
    if _open.get(pid) is None:
        return
    database, spill = _open.pop(pid)
    _database_of.cache_clear()
    database.close()
    shutil.rmtree(spill, ignore_errors=True)


#: this process's open database and its spill folder
_open: dict[int, tuple[duckdb.DuckDBPyConnection, str]] = {}


@functools.cache
def _database_of(pid: int) -> duckdb.DuckDBPyConnection:
    # what DuckDB spills is personal data: a folder only this user can read (0700),
    # removed when this process ends (and only by the process that made it)
    spill = tempfile.mkdtemp(prefix=f"autosynk-duckdb-{pid}-")
    atexit.register(_remove_spill, spill, pid)
    database = duckdb.connect(
        config={"memory_limit": MEMORY, "temp_directory": spill, "threads": THREADS}
    )
    _open[pid] = (database, spill)
    return database


def _remove_spill(folder: str, pid: int) -> None:
    if os.getpid() == pid:
        shutil.rmtree(folder, ignore_errors=True)


def _diff(con: duckdb.DuckDBPyConnection, out: Path | None) -> TableDelta:
    def row(sql: str) -> tuple[int, ...]:
        return tuple(int(v) for v in con.execute(sql).fetchall()[0])

    def count(sql: str) -> int:
        return row(sql)[0]

    def result(sql: str, name: str) -> tuple[Source, int]:
        """The rows ``sql`` selects: a table, or (``out``) a Parquet file written there."""
        if out is None:
            table = con.sql(sql).to_arrow_table()
            return table, table.num_rows
        path = out / f"{name}.parquet"
        return path, store(con, sql, path)

    tonight_principals = count("SELECT count(*) FROM tp")
    tonight_relations = count("SELECT count(*) FROM tr")
    delivered_relations = count("SELECT count(*) FROM dr")

    con.execute(_FORGOTTEN)
    con.execute(_REL)
    # principals: only keys and hashes are compared; rows are fetched for what is sent
    con.execute(_PRINCIPAL_DIFF)
    con.execute(_KEY_SETS)
    sent, new = row("SELECT count(*), count(*) FILTER (WHERE new) FROM send")
    to_send = None
    if sent != tonight_principals:
        to_send, _ = result(_ROWS_TO_SEND, "principals")

    # relations: the largest join, one at a time (two at once would need twice the memory)
    if not delivered_relations:  # nothing delivered: every relation of tonight is new
        added_from = "rel"
        con.execute(_EMPTY_GONE)
        added = count("SELECT count(*) FROM rel")
        adds = None
        if added != tonight_relations:
            adds, _ = result("SELECT type, a, b FROM rel ORDER BY n", "adds")
    else:
        added_from = "relation_diff WHERE added"
        con.execute(f"CREATE TEMP TABLE relation_diff AS {_DIFF}")
        added = count("SELECT count(*) FROM relation_diff WHERE added")
        adds = None
        if added != tonight_relations:
            adds, _ = result("SELECT type, a, b FROM relation_diff WHERE added ORDER BY n", "adds")
        con.execute(_GONE)
    held_keys = count("SELECT count(*) FROM held")
    con.execute(_HOLD if held_keys else _NO_HOLD)
    removes, removed = result(
        "SELECT type, a, b FROM gone WHERE NOT forget AND NOT hold ORDER BY type, a, b", "removes"
    )
    relation_removes, _ = result(
        "SELECT type, a, b, CASE WHEN forget THEN 'forget' ELSE 'remove' END AS op "
        "FROM gone WHERE NOT hold ORDER BY forget, type, a, b",
        "relation-removes",
    )
    con.execute(_DROPPED)
    principal_deletes, _ = result(
        "SELECT kind, key, 'delete' AS op FROM dropped "
        "UNION ALL SELECT kind, key, 'forget' FROM forgotten_rows ORDER BY op, key",
        "principal-deletes",
    )
    held_relations, forgotten_relations = row(
        "SELECT count(*) FILTER (WHERE hold), count(*) FILTER (WHERE forget) FROM gone"
    )
    counts = {
        "principals_sent": sent,
        "principals_new": new,
        "principals_changed": sent - new,
        "principals_dropped": count("SELECT count(*) FROM dropped"),
        "relations_added": added,
        "relations_removed": removed,
        "held_keys": held_keys,
        "relations_held": held_relations,
        "forgotten_keys": count("SELECT count(*) FROM forgotten_rows"),
        "relations_forgotten": forgotten_relations,
        "delivered_relations_before": delivered_relations,
    }
    return TableDelta(
        by_type=_by_type(con, added_from),
        principals=to_send,
        adds=adds,
        removes=removes,
        principal_deletes=principal_deletes,
        relation_removes=relation_removes,
        tonight_principals=tonight_principals,
        tonight_relations=tonight_relations,
        counts=counts,
    )


def _by_type(
    con: duckdb.DuckDBPyConnection, added_from: str
) -> dict[str, dict[str, dict[str, int]]]:
    """Counts per principals row type and per relation type, zeros filled in."""
    queries = {
        "principals": {
            "new": "SELECT kind, count(*) FROM send WHERE new GROUP BY kind",
            "changed": "SELECT kind, count(*) FROM send WHERE NOT new GROUP BY kind",
            "dropped": "SELECT kind, count(*) FROM dropped GROUP BY kind",
            "delivered": "SELECT kind, count(*) FROM dp GROUP BY kind",
        },
        "relations": {
            "add": f"SELECT type, count(*) FROM {added_from} GROUP BY type",  # noqa: S608
            "remove": "SELECT type, count(*) FROM gone WHERE NOT forget AND NOT hold GROUP BY type",
            "delivered": "SELECT type, count(*) FROM dr GROUP BY type",
        },
    }
    out: dict[str, dict[str, dict[str, int]]] = {}
    for scope, measures in queries.items():
        found = {m: dict(con.execute(sql).fetchall()) for m, sql in measures.items()}
        types = sorted({t for values in found.values() for t in values})
        out[scope] = {t: {m: int(found[m].get(t, 0)) for m in measures} for t in types}
    return out


# Keys and ids are never NULL (the staging columns are NOT NULL, the mapping always sets
# them), so IN / NOT IN below need no NULL care.

#: one full outer join of tonight's and the delivered principals, keeping every row that
#: matters: sent (new or changed), gone from tonight, forgotten or quarantined
#: (the delivered rows are marked forgotten or held before the join: a join carrying
#: only keys, kinds and hashes fits DuckDB's memory limit at national scale)
_PRINCIPAL_DIFF = """
    CREATE TEMP TABLE principal_diff AS
    SELECT * FROM (
        SELECT t.n, t.key, t.kind, d.kind AS old_kind, d.key AS old_key, d.key IS NULL AS new,
               t.key IS NOT NULL AND (d.key IS NULL OR t.hash IS DISTINCT FROM d.hash)
                   AS changed,
               coalesce(d.forget, false) AS forget,
               coalesce(d.held, false) AS quarantined
        FROM (SELECT n, key, kind, hash FROM tp) t
        FULL OUTER JOIN (
            SELECT kind, key, hash,
                   key IN (SELECT key FROM forgotten_rows) AS forget,
                   source_id IN (SELECT key FROM held_ids) AS held
            FROM dp
        ) d ON t.key = d.key
    )
    WHERE changed OR n IS NULL OR forget OR quarantined
"""

_FORGOTTEN = """
    -- delivered rows of persons protected tonight: forgotten
    CREATE TEMP TABLE forgotten_rows AS
        SELECT kind, key FROM dp
        WHERE source_id IN (SELECT key FROM protected_ids)
           OR key IN (SELECT key FROM protected_keys);
    CREATE TEMP TABLE forgotten AS
        SELECT key FROM forgotten_rows UNION SELECT key FROM protected_keys;
"""

_KEY_SETS = """
    -- delivered keys of records quarantined tonight: held
    CREATE TEMP TABLE held AS
        SELECT old_key AS key FROM principal_diff WHERE quarantined AND NOT forget;
    CREATE TEMP TABLE send AS
        SELECT n, new, kind FROM principal_diff
        WHERE changed AND key NOT IN (SELECT key FROM forgotten);
"""

#: tonight's relations without those naming a forgotten person
_REL = """
    CREATE TEMP VIEW rel AS
        SELECT type, a, b, n FROM tr
        WHERE a NOT IN (SELECT key FROM forgotten) AND b NOT IN (SELECT key FROM forgotten)
"""

_ROWS_TO_SEND = """
    SELECT kind, key, source_id, hash, row FROM tp
    WHERE n IN (SELECT n FROM send) ORDER BY n
"""


#: a full outer join of tonight and the delivered relations, keeping what is on one side
_DIFF = """
        SELECT coalesce(t.type, d.type) AS type, coalesce(t.a, d.a) AS a,
               coalesce(t.b, d.b) AS b, t.n, d.type IS NULL AS added
        FROM rel t
        FULL OUTER JOIN dr d ON t.type = d.type AND t.a = d.a AND t.b = d.b
        WHERE t.type IS NULL OR d.type IS NULL
"""

_GONE = """
    CREATE TEMP TABLE gone_only AS
        SELECT type, a, b,
               a IN (SELECT key FROM forgotten) OR b IN (SELECT key FROM forgotten) AS forget
        FROM relation_diff WHERE NOT added
"""

_EMPTY_GONE = """
    CREATE TEMP TABLE gone_only (type VARCHAR, a VARCHAR, b VARCHAR, forget BOOLEAN)
"""

# A held record keeps every delivered relation naming it; and guardian presence derived
# from a held child is held too: ``external_user_in_school`` names the guardian and the
# school, not the child it comes from, so when that child is quarantined tonight the
# presence must not be removed either.
_HOLD = """
    CREATE TEMP TABLE presence AS
        SELECT DISTINCT g.a AS guardian, s.b AS school
        FROM dr g JOIN dr s ON g.b = s.a
        WHERE g.type = 'guardian_for' AND s.type = 'student_in_school'
          AND g.b IN (SELECT key FROM held);
    CREATE TEMP TABLE gone AS
        SELECT type, a, b, forget,
               NOT forget AND (
                   a IN (SELECT key FROM held) OR b IN (SELECT key FROM held)
                   OR (type = 'external_user_in_school' AND EXISTS (
                       SELECT 1 FROM presence p WHERE p.guardian = a AND p.school = b))
               ) AS hold
        FROM gone_only
"""

_NO_HOLD = "CREATE TEMP TABLE gone AS SELECT type, a, b, forget, false AS hold FROM gone_only"

# A delivered row is dropped when nothing tonight has its key; it stays while it is held,
# or while a held relation still names it, even when nothing tonight does (a guardian
# whose only child is quarantined).
_DROPPED = """
    CREATE TEMP TABLE dropped AS
        SELECT old_kind AS kind, old_key AS key FROM principal_diff
        WHERE n IS NULL AND NOT forget
          AND old_key NOT IN (SELECT key FROM held)
          AND old_key NOT IN (SELECT a FROM gone WHERE hold UNION SELECT b FROM gone WHERE hold)
"""


def view(
    con: duckdb.DuckDBPyConnection,
    name: str,
    source: Source,
    columns: list[str],
    *,
    numbered: bool = False,
) -> None:
    """``name`` as a view of ``columns`` as text (plus row number ``n`` when ``numbered``).

    The cast costs nothing for text and gives an empty column written without a type
    (pandas' empty object column) the type the joins need.
    """
    names = ", ".join(f'CAST("{c}" AS VARCHAR) AS "{c}"' for c in columns)
    if isinstance(source, pa.Table):
        if numbered:
            source = source.append_column("n", pa.array(np.arange(source.num_rows)))
        con.register(f"{name}_arrow", source)
        extra = ", n" if numbered else ""
        con.execute(f"CREATE TEMP VIEW {name} AS SELECT {names}{extra} FROM {name}_arrow")  # noqa: S608
        return
    # names and columns are this module's own; the path is quoted as an SQL literal
    path = str(source).replace("'", "''")
    if numbered:
        con.execute(
            f"CREATE TEMP VIEW {name} AS SELECT {names}, file_row_number AS n "  # noqa: S608
            f"FROM read_parquet('{path}', file_row_number = true)"
        )
    else:
        con.execute(f"CREATE TEMP VIEW {name} AS SELECT {names} FROM read_parquet('{path}')")  # noqa: S608


def store(con: duckdb.DuckDBPyConnection, query: str, target: Path, row_group: int = 0) -> int:
    """Write what ``query`` selects as the Parquet file ``target``; returns its rows.

    DuckDB writes the file itself (in the query's order, in parallel, no table in memory)
    in a private temporary folder beside ``target``; it is made 0600, flushed and renamed
    in place, so a half-written file is never taken for a finished one.
    """
    options = "FORMAT parquet" + (f", ROW_GROUP_SIZE {int(row_group)}" if row_group else "")
    with private_path(target) as part:
        literal = str(part).replace("'", "''")
        found = con.execute(f"COPY ({query}) TO '{literal}' ({options})").fetchall()
    return int(found[0][0])


def _key_table(values: Iterable[str]) -> pa.Table:
    keys = sorted({v for v in values if isinstance(v, str) and v})
    return pa.table({"key": pa.array(keys, pa.string())})


def arrow_table(frame: pd.DataFrame, columns: list[str]) -> pa.Table:
    """``columns`` of ``frame`` as an Arrow table of strings (empty frames included)."""
    return pa.table({c: pa.array(frame[c], pa.string()) for c in columns})
