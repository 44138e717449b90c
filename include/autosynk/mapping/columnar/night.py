"""One night's mapping: the steps in the spec's order, over the register's Arrow tables."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

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
    """What every step shares: the spec, the date, the tables, what is reported."""

    def __init__(self, spec: MappingSpec, organisation_id: str, today: str, encoding: str) -> None:
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
        #: the tables named with :meth:`put`
        self.arrow: dict[str, pa.Table] = {}

    def quarantine(self, entity: str, source_id: str, reason: str, severity: str = "error") -> None:
        self.quarantine_entries.append(QuarantineEntry(entity, source_id, mask(reason), severity))
        self.counts[f"quarantine_{severity}"] += 1

    def is_live(self, start: str | None, end: str | None) -> bool:
        return (start is None or start <= self.today) and (end is None or self.today <= end)

    def keep_only(self, names: frozenset[str]) -> None:
        """Let go of every table but these (the steps that follow read no other)."""
        for name in self.arrow.keys() - names:
            del self.arrow[name]

    def let_go(self, *names: str) -> None:
        """Let go of these tables (their last reader is done with them)."""
        for name in names:
            self.arrow.pop(name, None)

    def put(self, name: str, table: pa.Table) -> None:
        """Name a table for the steps that follow."""
        self.arrow[name] = table

    def live_mask(self, table: pa.Table) -> pa.ChunkedArray:
        """``startDate <= today <= endDate``, a missing bound being open (spec §10), over
        an Arrow table's ``start`` and ``end`` columns."""
        today = pa.scalar(self.today, pa.string())
        return pc.and_kleene(
            pc.or_kleene(pc.is_null(table["start"]), pc.less_equal(table["start"], today)),
            pc.or_kleene(pc.is_null(table["end"]), pc.less_equal(today, table["end"])),
        )


def map_columns(
    columns: RegisterColumns,
    spec: MappingSpec,
    organisation_id: str,
    today: str,
    encoding: str,
) -> MappedTables:
    """Map one register. ``today`` is the evaluation date (``YYYY-MM-DD``, Europe/Stockholm).

    The register's tables are handed over (``columns`` holds none afterwards): each table
    is let go as soon as the steps are done with it, so that a city's register, its
    joins and the result are not all held at once.
    """
    night = Night(spec, organisation_id, today, encoding)
    try:
        index.index_records(night, columns.hand_over())
        school_rows = schools.map_schools(night)
        class_rows = schools.map_classes(night)
        relations.by_register_id(night)
        night.keep_only(relations.IDENTITY_READS | users.READS)  # resolve reads no other
        persons.resolve(night)
        relations.by_identity_number(night)
        night.keep_only(users.READS | relations.FINAL_READS)
        user_rows, dropped = users.map_users(night, columns.directory)
        night.keep_only(relations.FINAL_READS)
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
        night.arrow.clear()  # the night's tables, now (the night object is in a cycle)


def _principals(rows: list[tuple[str, str, str, str]]) -> pa.Table:
    kinds, keys, sources, texts = zip(*rows, strict=True) if rows else ((), (), (), ())
    return pa.table(
        [pa.array(column, pa.string()) for column in (kinds, keys, sources, texts)],
        schema=PRINCIPALS_SCHEMA,
    )
