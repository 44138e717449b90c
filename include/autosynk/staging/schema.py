"""The staging database: what Unikum was last told, and the ledgers that explain it.

PostgreSQL in production, SQLite as the embedded default; the same tables on both.
Changed only through Alembic migrations (``autosynk db upgrade``).
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

#: the principals rows Unikum holds from us: key -> content hash and the row itself
delivered_principal = Table(
    "delivered_principal",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("kind", String(10), nullable=False),
    Column("source_id", String(200), nullable=False),
    Column("hash", String(32), nullable=False),
    Column("row", Text, nullable=False),
    Column("run_id", String(250), nullable=False),  # the run that delivered this version
    # the run that first delivered the key (kept through changes): it records the key's
    # add, so a new key needs no history row (revision 0002)
    Column("added_run", String(250), nullable=False),
    Index("ix_delivered_principal_source", "source_id"),
)

#: the relations Unikum holds from us (only these may ever be removed by the sync);
#: run_id is the run that added the relation, which therefore needs no history row
delivered_relation = Table(
    "delivered_relation",
    metadata,
    Column("rel_type", String(40), primary_key=True),
    Column("a", String(200), primary_key=True),
    Column("b", String(200), primary_key=True),
    Column("run_id", String(250), nullable=False),
)

#: history: what a committed run told Unikum (or forgot) that the delivered state cannot
#: show once it moves on: a delivered principal's changes, deletes, removes, forgets. Adds
#: (new keys, new relations) are the delivered rows' runs; rows from before revision 0002
#: also hold adds (op upsert | add, since_run NULL). See autosynk.staging.history.
change = Table(
    "change",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(250), nullable=False),
    Column("scope", String(10), nullable=False),  # principal | relation
    # change | delete | forget | remove (before 0002 also upsert | add)
    Column("op", String(10), nullable=False),
    Column("kind", String(40), nullable=False),  # row kind or relation type
    Column("a", String(200), nullable=False),  # key, or first party
    Column("b", String(200), nullable=False, default=""),  # second party
    # the run that had added what this row changed or removed (NULL before revision 0002)
    Column("since_run", String(250), nullable=True),
    Index("ix_change_a", "a"),
    Index("ix_change_run", "run_id"),
)

#: the run ledger
run = Table(
    "run",
    metadata,
    Column("run_id", String(250), primary_key=True),
    Column("dag_run_id", String(250), nullable=True),
    Column("kind", String(20), nullable=False),  # nightly | total
    Column("status", String(20), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True), nullable=True),
    Column("base_run", String(250), nullable=True),  # last committed run when delta was made
    Column("package", Text, nullable=True),  # JSON: file names, sizes, sha256
    Column("counts", Text, nullable=True),  # JSON
    Column("committed_at", DateTime(timezone=True), nullable=True),
    Column("message", Text, nullable=True),
    Column("evaluation_date", String(10), nullable=True),  # YYYY-MM-DD the register was read at
    Column("plan_id", String(40), nullable=True),
    Column("plan", Text, nullable=True),  # JSON: counts, guards, base state (autosynk.plans)
    Column("stages", Text, nullable=True),  # JSON: seconds and rows per stage
    Index("ix_run_plan_id", "plan_id", unique=True),
)

#: the delivery ledger: what arrived where
delivery = Table(
    "delivery",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(250), nullable=False, index=True),
    Column("name", String(250), nullable=False),
    Column("remote_path", Text, nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("delivered_at", String(40), nullable=False),
    Column("late", Boolean, nullable=False, default=False),
    Column("already_there", Boolean, nullable=False, default=False),
)

#: quarantined and warned records per run (ids only, reasons masked)
quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(250), nullable=False, index=True),
    Column("entity", String(40), nullable=False),
    Column("source_id", String(200), nullable=False),
    Column("severity", String(10), nullable=False),
    Column("reason", Text, nullable=False),
)

#: one row: which run holds the staging database (nightly, total, school-year change)
run_lock = Table(
    "run_lock",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("run_id", String(250), nullable=True),
    Column("acquired_at", DateTime(timezone=True), nullable=True),
)
