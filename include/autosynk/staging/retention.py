"""Retention in the staging database: which ledger and history rows are past their time.

Used by :mod:`autosynk.housekeeping`, inside one transaction holding the run lock. The
delivered state (``delivered_principal``, ``delivered_relation``) is never touched here.

A key's history rows are removed once the key is no longer delivered (neither a delivered
principal nor a party of a delivered relation) and its newest event is older than the
cutoff: its whole history at once, including the rows that name it beside another key (a
pupil's removal from a class, a guardian's from a child). The history of a key Unikum
still holds loses only such rows about keys long gone.

A run's ledger row is kept while the history or the delivered state names it (the history
of a delivered key shows the run that added it), and the last committed run always stays:
the next night's delta is computed against it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from autosynk.staging import schema

_CHUNK = 500
_KEYS = "autosynk_expired_key"


@dataclass(frozen=True)
class LedgerRun:
    """What retention needs to know of one run in the run ledger."""

    run_id: str
    status: str
    started_at: dt.datetime
    ended_at: dt.datetime | None = None
    committed_at: dt.datetime | None = None
    base_run: str | None = None
    #: names of the files in its package (to keep them in an outbox while it is needed)
    package_files: tuple[str, ...] = ()

    @property
    def last_seen(self) -> dt.datetime:
        """The run's last moment in the ledger: its end, commit, or else its start."""
        return max(t for t in (self.started_at, self.ended_at, self.committed_at) if t is not None)


def utc(value: dt.datetime) -> dt.datetime:
    """SQLite gives back the UTC it was given without a zone: say so."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def ledger_runs(conn: Connection) -> list[LedgerRun]:
    t = schema.run
    rows = conn.execute(
        sa.select(
            t.c.run_id,
            t.c.status,
            t.c.started_at,
            t.c.ended_at,
            t.c.committed_at,
            t.c.base_run,
            t.c.package,
        )
    ).all()
    return [
        LedgerRun(
            run_id=r.run_id,
            status=r.status,
            started_at=utc(r.started_at),
            ended_at=None if r.ended_at is None else utc(r.ended_at),
            committed_at=None if r.committed_at is None else utc(r.committed_at),
            base_run=r.base_run,
            package_files=_package_files(r.package),
        )
        for r in rows
    ]


def _package_files(package: str | None) -> tuple[str, ...]:
    if not package:
        return ()
    try:
        files = json.loads(package).get("files") or []
    except (ValueError, AttributeError):
        return ()
    return tuple(str(f["name"]) for f in files if isinstance(f, dict) and "name" in f)


def expire_history(conn: Connection, cutoff: dt.datetime) -> int:
    """Delete the history rows naming a key no longer delivered whose newest event is before
    ``cutoff``; returns how many. Rows of a run missing from the run ledger cannot be
    dated: their keys are kept.

    In the caller's transaction: a dry run rolls it back.
    """
    change, runs = schema.change, schema.run
    principal, relation = schema.delivered_principal, schema.delivered_relation
    cutoff = cutoff.astimezone(dt.UTC)
    keys = sa.Table(
        _KEYS,
        sa.MetaData(),
        sa.Column("k", sa.String(200), primary_key=True),
        prefixes=["TEMPORARY"],
    )
    keys.drop(conn, checkfirst=True)
    keys.create(conn)
    try:
        dated = change.join(runs, runs.c.run_id == change.c.run_id)
        old = runs.c.committed_at < cutoff
        newer = sa.or_(runs.c.committed_at >= cutoff, runs.c.committed_at.is_(None))
        conn.execute(
            keys.insert().from_select(
                ["k"],
                sa.union(
                    sa.select(change.c.a).select_from(dated).where(old),
                    sa.select(change.c.b).select_from(dated).where(old, change.c.b != ""),
                ),
            )
        )
        _analyse(conn)
        undated = change.c.run_id.not_in(sa.select(runs.c.run_id))
        still_there = [
            sa.select(principal.c.key),
            sa.select(relation.c.a),
            sa.select(relation.c.b),
            # a newer event, or one that cannot be dated
            sa.select(change.c.a).select_from(dated).where(newer),
            sa.select(change.c.b).select_from(dated).where(newer),
            sa.select(change.c.a).where(undated),
            sa.select(change.c.b).where(undated),
        ]
        for query in still_there:
            conn.execute(keys.delete().where(keys.c.k.in_(query)))
        _analyse(conn)
        # two deletes, not one with OR: each is a plain semi-join (PostgreSQL would test an
        # OR of two IN lists row by row against the whole key list)
        removed = 0
        for party in (change.c.a, change.c.b):
            expired = party.in_(sa.select(keys.c.k))
            removed += int(conn.execute(change.delete().where(expired)).rowcount)
        return removed
    finally:
        keys.drop(conn, checkfirst=True)


def _analyse(conn: Connection) -> None:
    """PostgreSQL never analyses a temporary table by itself: give its planner the size."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text(f"ANALYZE {_KEYS}"))


def referenced_runs(conn: Connection) -> set[str]:
    """Runs the history or the delivered state names (one scan of each table)."""
    change = schema.change
    principal, relation = schema.delivered_principal, schema.delivered_relation
    found: set[str] = set()
    for column in (
        change.c.run_id,
        change.c.since_run,
        principal.c.run_id,
        principal.c.added_run,
        relation.c.run_id,
    ):
        found.update(r for (r,) in conn.execute(sa.select(column).distinct()) if r is not None)
    return found


def rows_of_runs(conn: Connection, table: sa.Table, run_ids: Iterable[str]) -> int:
    """Delete the rows of ``table`` belonging to ``run_ids``; returns how many."""
    total = 0
    for chunk in _chunks(sorted(set(run_ids))):
        total += int(conn.execute(table.delete().where(table.c.run_id.in_(chunk))).rowcount)
    return total


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]
