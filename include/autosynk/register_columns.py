"""The register as Arrow tables: one per entity, one per nested list, read batch by batch.

The column-wise mapping (:mod:`autosynk.mapping.columnar`) reads these instead of the
typed records. Every leaf is normalised here exactly as the record-by-record mapping read
it (:func:`autosynk.register.text`, :func:`~autosynk.register.day`,
:func:`~autosynk.register.ref_id`), so the mapping needs no Python object of the
register any more:

- ids and references: ``ref_id`` (null when absent or blank);
- dates: ``day`` (the date part, null when absent or blank);
- values the mapping compares: ``text`` (never null, ``""`` when absent);
- values that go into a Unikum row: ``text`` when the mapping trims values (the
  default), else the value as it came (``""`` for null);
- flags the mapping tests with ``is True``: booleans; ``securityMarking`` keeps whether
  it was missing (null or ``""``), which the mapping treats apart from any other value.

Which key goes into which column, read how, is one table for both readers:
:data:`autosynk.register_fields.ENTITY_FIELDS` (the tables' schemas are derived from it).
Each nested list is a child table keyed by its parent's id (``parent``) and its place in
the list (``pos``), so "the first one that ..." choices stay what they were. Records
without an id keep their place (``seq``) with a null id: the mapping quarantines them.

Memory is bounded by the batch: each batch of records becomes a small Arrow table at once
and only the tables are kept (:func:`read_columns` drops each batch's records as it goes).

:func:`read_columns` reads persons, groups, duties and activities without a Python object
per record: each batch's raw entries go to :func:`autosynk.register_lines.lines_tables`
(``pyarrow.json`` and ``pyarrow.compute``); a batch that path cannot take exactly is
decoded into typed records and converted here, so the tables are the same either way.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa

from autosynk.errors import SourceError
from autosynk.records import RECORD_TYPES, to_records
from autosynk.register import as_list, collector_paused, day, read_list, ref_id, text
from autosynk.register_fields import ENTITY_FIELDS, SCHEMAS, TABLES_OF, Field, FirstOf, Kind
from autosynk.sources import ENTITIES
from autosynk.sources.list_stream import Lines, iter_lines, iter_records

#: records per batch when the reader chunks a decoded list itself
BATCH_SIZE = 50_000
#: batches read but not yet converted, at most
IN_FLIGHT = 2


@dataclass
class RegisterColumns:
    """The register's tables (see :data:`SCHEMAS`) and the directory entries, if any."""

    tables: dict[str, pa.Table]
    directory: list[dict[str, Any]] | None = None

    def __getitem__(self, name: str) -> pa.Table:
        return self.tables[name]

    def records(self, entity: str) -> int:
        return self.tables[entity].num_rows

    def hand_over(self) -> dict[str, pa.Table]:
        """The tables, which this object no longer holds (so that whoever maps them can
        let each go when done with it)."""
        tables, self.tables = self.tables, {}
        return tables


def _row_text(trim: bool) -> Callable[[Any], str]:
    """How a value that goes into a Unikum row is kept (the row builder trims it or not)."""
    if trim:
        return text
    return lambda raw: "" if raw is None else (raw if type(raw) is str else str(raw))


def _first(value: Any) -> dict[str, Any]:
    """The first of an optional array (or a lone object / bare value) as a dict."""
    items = as_list(value)
    if not items:
        return {}
    first = items[0]
    return first if isinstance(first, dict) else {"value": first}


#: kind -> how the typed records' leaf is read (``row``: see :func:`_row_text`)
_READ: dict[Kind, Callable[[Any], Any]] = {
    "text": text,
    "day": day,
    "id": ref_id,
    "ref": ref_id,
    "value": text,
    "flag": lambda value: value is True,
    "blank": lambda value: value in (None, ""),
}


def _reader(field: Field, row: Callable[[Any], str]) -> Callable[[Any], Any]:
    return row if field.kind == "row" else _READ[field.kind]


def _values(field: Field, items: list[Any], row: Callable[[Any], str]) -> list[Any]:
    """``field`` of every typed record (or list entry) in ``items``, read as its kind says."""
    read = _reader(field, row)
    if not field.source:  # the entries themselves
        return [read(item) for item in items]
    get = attrgetter(field.source)
    return [read(get(item)) for item in items]


def _first_of(sources: tuple[str, ...], records: list[Any]) -> list[dict[str, Any]]:
    """Each record's first entry of the first non-empty of ``sources`` (as ``a or b``)."""
    firsts = []
    for record in records:
        value = None
        for source in sources:
            value = getattr(record, source)
            if value:
                break
        firsts.append(_first(value))
    return firsts


def records_tables(
    entity: str, records: list[Any], seq0: int, row: Callable[[Any], str]
) -> dict[str, pa.Table]:
    """A batch of typed records as the entity's tables (:data:`ENTITY_FIELDS`)."""
    spec = ENTITY_FIELDS[entity]
    ids = [ref_id(r.id) for r in records]
    own: dict[str, list[Any]] = {"seq": list(range(seq0, seq0 + len(records))), "id": ids}
    for part in spec.own:
        if isinstance(part, FirstOf):
            firsts = _first_of(part.sources, records)
            for field in part.fields:
                read = _reader(field, row)
                own[field.column] = [read(first.get(field.source)) for first in firsts]
        else:
            own[part.column] = _values(part, records, row)
    tables = {entity: pa.Table.from_pydict(own, schema=SCHEMAS[entity])}
    for child in spec.children:
        get = attrgetter(child.source)
        parents: list[str] = []
        places: list[int] = []
        entries: list[Any] = []
        for parent, record in zip(ids, records, strict=True):
            if parent is None:
                continue
            items = as_list(get(record))
            if items:
                parents += [parent] * len(items)
                places += range(len(items))
                entries += items
        columns: dict[str, list[Any]] = {"parent": parents, "pos": places}
        for field in child.fields:
            columns[field.column] = _values(field, entries, row)
        tables[child.table] = pa.Table.from_pydict(columns, schema=SCHEMAS[child.table])
    return tables


def records_of_lines(entity: str, lines: Lines) -> list[Any]:
    """A batch of raw entries as typed records, as :func:`iter_records` decodes them."""
    kind = RECORD_TYPES[entity]
    document = lines.document()
    try:
        return msgspec.json.decode(document, type=list[kind])  # type: ignore[valid-type]
    except msgspec.ValidationError:
        return to_records(entity, msgspec.json.decode(document))
    except msgspec.DecodeError as exc:
        raise SourceError(f"{entity}: is not valid JSON ({exc})") from None
    except UnicodeDecodeError:
        raise SourceError(f"{entity}: holds text that is not UTF-8") from None


def batch_tables(
    entity: str, batch: list[Any] | Lines, seq0: int, *, trim: bool = True
) -> tuple[dict[str, pa.Table], bool]:
    """One batch (typed records, or raw entries) as the entity's tables, and whether the
    batch was converted record by record (raw entries the fast path could not take)."""
    if isinstance(batch, Lines):
        from autosynk.register_lines import lines_tables

        tables = lines_tables(entity, batch, seq0, trim=trim)
        if tables is not None:
            return tables, False
        batch = records_of_lines(entity, batch)
    return records_tables(entity, batch, seq0, _row_text(trim)), True


def entity_columns(
    entity: str, batches: Iterable[list[Any] | Lines], *, trim: bool = True
) -> dict[str, pa.Table]:
    """One entity's batches (lists of :data:`autosynk.records.RECORD_TYPES` records, or
    :class:`Lines` of raw entries) as its tables; each batch is converted and let go
    before the next is read.

    Batches are converted in a second thread while the next is read (``pyarrow.json``
    and ``pyarrow.compute`` let go of the GIL): at most :data:`IN_FLIGHT` at a time.
    """
    parts: dict[str, list[pa.Table]] = {name: [] for name in TABLES_OF[entity]}

    def keep(future: Future[tuple[dict[str, pa.Table], bool]]) -> None:
        for name, table in future.result()[0].items():
            parts[name].append(table)

    seq = 0
    with collector_paused(), ThreadPoolExecutor(1) as worker:
        pending: deque[Future[tuple[dict[str, pa.Table], bool]]] = deque()
        for batch in batches:
            pending.append(worker.submit(batch_tables, entity, batch, seq, trim=trim))
            seq += len(batch)
            del batch
            while len(pending) >= IN_FLIGHT:
                keep(pending.popleft())
        while pending:
            keep(pending.popleft())
    out: dict[str, pa.Table] = {}
    for name in TABLES_OF[entity]:  # each table's batches let go once it is one piece
        tables = parts.pop(name)
        out[name] = (
            pa.concat_tables(tables).combine_chunks() if tables else SCHEMAS[name].empty_table()
        )
        del tables
    return out


def register_columns(
    batches: Mapping[str, Iterable[list[Any]]],
    directory: list[dict[str, Any]] | None = None,
    *,
    trim: bool = True,
) -> RegisterColumns:
    """Every entity's record batches (entity name -> iterable of record lists) as tables."""
    tables: dict[str, pa.Table] = {}
    for entity in RECORD_TYPES:
        tables.update(entity_columns(entity, batches.get(entity, ()), trim=trim))
    return RegisterColumns(tables, directory)


def snapshot_columns(
    entities: Mapping[str, list[Any]],
    directory: list[dict[str, Any]] | None = None,
    *,
    trim: bool = True,
    batch_size: int = BATCH_SIZE,
) -> RegisterColumns:
    """A snapshot already in memory (records or plain dicts) as tables."""

    def batches(entity: str) -> Iterator[list[Any]]:
        items = entities.get(entity) or []
        for begin in range(0, len(items), batch_size):
            yield to_records(entity, items[begin : begin + batch_size])

    return register_columns({e: batches(e) for e in RECORD_TYPES}, directory, trim=trim)


def read_columns(
    folder: Path, *, trim: bool = True, batch_size: int = BATCH_SIZE, fast: bool = True
) -> RegisterColumns:
    """The snapshot in ``folder`` (five list files, ``directory.json`` if there) as tables.

    ``fast``: raw entries through :mod:`autosynk.register_lines` where it can take them
    (else every batch is decoded into typed records and converted here)."""
    from autosynk.register_lines import ENTITIES as FAST_ENTITIES

    fast_entities = FAST_ENTITIES if fast else ()

    tables: dict[str, pa.Table] = {}
    for entity in ENTITIES:
        read = iter_lines if entity in fast_entities else iter_records
        batches: Iterable[list[Any] | Lines] = read(folder / f"{entity}.json", entity, batch_size)
        tables.update(entity_columns(entity, batches, trim=trim))
    directory_file = folder / "directory.json"
    directory = read_list(directory_file, "directory") if directory_file.exists() else None
    return RegisterColumns(tables, directory)
