"""One night's mapping: the steps in the spec's order, over one DuckDB connection."""

from __future__ import annotations

import functools
import os
import re
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from autosynk.identity import mask
from autosynk.mapping.columnar import index, persons, relations, schools, users
from autosynk.mapping.columnar.rows import RowBuilder
from autosynk.mapping.result import Mapped, QuarantineEntry
from autosynk.mapping.spec import MappingSpec
from autosynk.mapping.values import school_year_of
from autosynk.register_columns import RegisterColumns

PRINCIPALS_SCHEMA = pa.schema(
    [("kind", pa.string()), ("key", pa.string()), ("source_id", pa.string()), ("row", pa.string())]
)


#: DuckDB's memory for the mapping: beyond it, joins and sorts spill to disk (its
#: default, most of the machine's memory, lets a city's joins hold gigabytes)
MEMORY = "1GB"

_WORD = re.compile(r"[a-z_]+")

#: a register with fewer rows than this (all its tables) is mapped through views
SMALL = 50_000


@dataclass
class MappedTables:
    """The mapping's result as tables: what the transform writes to Parquet as it is."""

    #: kind, key, source_id, row: schools, then classes (register order), users by key
    principals: pa.Table
    #: type, a, b: sorted by (type, a, b)
    relations: pa.Table
    quarantine: list[QuarantineEntry] = field(default_factory=list)
    protected: list[tuple[str, str]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    def to_mapped(self) -> Mapped:
        """As :class:`Mapped` (lists and a set; for tests and small registers)."""
        p = self.principals.to_pydict()
        r = self.relations.to_pydict()
        return Mapped(
            principals=list(zip(p["kind"], p["key"], p["source_id"], p["row"], strict=True)),
            relations=set(zip(r["type"], r["a"], r["b"], strict=True)),
            quarantine=list(self.quarantine),
            protected=list(self.protected),
            counts=Counter(self.counts),
        )


class Night:
    """What every step shares: the spec, the date, the connection, what is reported."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        spec: MappingSpec,
        organisation_id: str,
        today: str,
        encoding: str,
        small: bool = False,
    ) -> None:
        self.con = con
        self.small = small
        self.spec = spec
        self.organisation_id = organisation_id
        self.today = today
        self.school_year = school_year_of(today, spec.school_year_starts)
        self.quarantine_entries: list[QuarantineEntry] = []
        self.counts: Counter[str] = Counter()
        self.rows = RowBuilder(spec, encoding, self.quarantine)
        #: (source_id, key or "") of protected persons, in register order
        self.protected: list[tuple[str, str]] = []
        #: relations that name no person (school_in_org, class_in_school)
        self.fixed_relations: list[tuple[str, str, str]] = []
        #: exported schools: organisation id -> (external id, school form)
        self.school_of: dict[str, tuple[str, str]] = {}
        #: the Arrow tables named with :meth:`put`, and those DuckDB has been shown
        self.arrow: dict[str, pa.Table] = {}
        self._registered: set[str] = set()

    def quarantine(self, entity: str, source_id: str, reason: str, severity: str = "error") -> None:
        self.quarantine_entries.append(QuarantineEntry(entity, source_id, mask(reason), severity))
        self.counts[f"quarantine_{severity}"] += 1

    def live(self, alias: str = "") -> str:
        """SQL: ``startDate <= today <= endDate``, a missing bound being open (spec §10)."""
        prefix = f"{alias}." if alias else ""
        today = self.literal(self.today)
        return (
            f'({prefix}"start" IS NULL OR {prefix}"start" <= {today}) AND '
            f'({prefix}"end" IS NULL OR {today} <= {prefix}"end")'
        )

    def is_live(self, start: str | None, end: str | None) -> bool:
        return (start is None or start <= self.today) and (end is None or self.today <= end)

    @staticmethod
    def literal(value: str) -> str:
        return "'" + value.replace("'", "''") + "'"

    def among(self, values: list[str]) -> str:
        """SQL: a list of string literals for ``IN (...)`` (matches nothing when empty)."""
        if not values:
            return "(NULL)"
        return "(" + ", ".join(self.literal(v) for v in values) + ")"

    def table(self, name: str, query: str) -> None:
        """Name a query's result (a temporary table: it is read more than once)."""
        self._reads(query)
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {query}")

    def put(self, name: str, table: pa.Table) -> None:
        """Name an Arrow table; DuckDB reads it where it is once a query names it."""
        self.arrow[name] = table
        self._registered.discard(name)

    def _reads(self, query: str) -> None:
        """Show DuckDB the Arrow tables a query names (registering costs milliseconds:
        most of a small register's time if every table were registered)."""
        for name in set(_WORD.findall(query)) & self.arrow.keys() - self._registered:
            self.con.register(name, self.arrow[name])
            self._registered.add(name)

    def arrow_of(self, query: str) -> pa.Table:
        self._reads(query)
        return self.con.sql(query).fetch_arrow_table()

    def live_mask(self, table: pa.Table) -> pa.ChunkedArray:
        """:meth:`live` over an Arrow table's ``start`` and ``end`` columns."""
        today = pa.scalar(self.today, pa.string())
        return pc.and_kleene(
            pc.or_kleene(pc.is_null(table["start"]), pc.less_equal(table["start"], today)),
            pc.or_kleene(pc.is_null(table["end"]), pc.less_equal(today, table["end"])),
        )

    def rows_of(self, query: str) -> list[tuple[Any, ...]]:
        self._reads(query)
        return self.con.sql(query).fetchall()


def map_columns(
    columns: RegisterColumns,
    spec: MappingSpec,
    organisation_id: str,
    today: str,
    encoding: str,
) -> MappedTables:
    """Map one register. ``today`` is the evaluation date (``YYYY-MM-DD``, Europe/Stockholm)."""
    small = sum(table.num_rows for table in columns.tables.values()) < SMALL
    con = _database(os.getpid(), small).cursor()
    try:
        night = Night(con, spec, organisation_id, today, encoding, small)
        index.index_records(night, columns)
        school_rows = schools.map_schools(night)
        class_rows = schools.map_classes(night)
        relations.by_register_id(night)
        persons.resolve(night)
        relations.by_identity_number(night)
        user_rows, dropped = users.map_users(night, columns.directory)
        principals = pa.concat_tables(
            [_principals(school_rows), _principals(class_rows), user_rows.cast(PRINCIPALS_SCHEMA)]
        )
        return MappedTables(
            principals=principals,
            relations=relations.final_table(night, dropped),
            quarantine=night.quarantine_entries,
            protected=night.protected,
            counts=night.counts,
        )
    finally:
        con.close()


@functools.cache
def _database(pid: int, small: bool) -> duckdb.DuckDBPyConnection:
    """This process's in-memory DuckDB for the mapping (keyed by process id, as the
    delta's: a forked worker must not use its parent's database).

    A small register is mapped on one thread: waking a pool of threads costs more than
    its queries do.
    """
    settings: dict[str, Any] = {
        "preserve_insertion_order": False,
        "memory_limit": MEMORY,
        "temp_directory": str(Path(tempfile.gettempdir()) / f"autosynk-mapping-{pid}"),
    }
    if small:
        settings["threads"] = 1
    return duckdb.connect(config=settings)


def _principals(rows: list[tuple[str, str, str, str]]) -> pa.Table:
    kinds, keys, sources, texts = zip(*rows, strict=True) if rows else ((), (), (), ())
    return pa.table(
        [pa.array(column, pa.string()) for column in (kinds, keys, sources, texts)],
        schema=PRINCIPALS_SCHEMA,
    )
