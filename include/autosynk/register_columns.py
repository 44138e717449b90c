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

import linecache
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa

from autosynk import memory_return
from autosynk.errors import SourceError
from autosynk.records import RECORD_TYPES, to_records
from autosynk.register import as_list, collector_paused, day, read_list, ref_id, text
from autosynk.register_fields import ENTITY_FIELDS, SCHEMAS, TABLES_OF, FirstOf, Kind
from autosynk.sources import ENTITIES
from autosynk.sources.list_stream import Lines, iter_lines, iter_records

#: records per batch when the reader chunks a decoded list itself
BATCH_SIZE = 50_000
#: at most this many records per batch of these entities, whose records are large: a group
#: holds its memberships (a city's 33,200 groups are 80 MB of JSON, 2.4 kB each against a
#: person's 0.7 kB: one batch of them, parsed, was the read's peak)
ENTITY_BATCH_SIZE = {"groups": 10_000}
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


#: kind -> the Python that reads a typed record's leaf ``{}`` (``row``: see :func:`_row_text`)
_READ: dict[Kind, str] = {
    "text": "text({})",
    "row": "row({})",
    "day": "day({})",
    "id": "ref_id({})",
    "ref": "ref_id({})",
    "value": "text({})",
    "flag": "{} is True",
    "blank": '{} in (None, "")',
}


def _field_of(kind: type[msgspec.Struct], source: str) -> str:
    """``source``, a field of the typed record ``kind`` (else the description is wrong)."""
    if not (source.isidentifier() and source in kind.__struct_fields__):
        raise ValueError(f"{kind.__name__} has no field {source!r}")
    return source


def _name(column: str) -> str:
    if not column.isidentifier():
        raise ValueError(f"column {column!r} is no Python name")
    return column


def _converter_source(entity: str) -> str:
    """The typed converter of ``entity`` as Python, written from :data:`ENTITY_FIELDS`
    (:func:`records_tables` runs it): a list a column, every leaf an attribute read spelt
    out, the child tables filled in one pass over the records, as converters written by
    hand were. (A loop over the described fields at run time took about a third more CPU
    on the Stockholm register, and a dirty register is read this way from end to end.)"""
    spec, kind = ENTITY_FIELDS[entity], RECORD_TYPES[entity]
    code = [
        "def convert(records, seq0, row):",
        "    ids = [ref_id(r.id) for r in records]",
        "    own = {'seq': list(range(seq0, seq0 + len(records))), 'id': ids}",
    ]
    for part in spec.own:
        if isinstance(part, FirstOf):
            either = " or ".join(f"r.{_field_of(kind, s)}" for s in part.sources)
            code.append(f"    firsts = [_first({either}) for r in records]")
            for f in part.fields:
                leaf = _READ[f.kind].format(f"d.get({f.source!r})")
                code.append(f"    own[{f.column!r}] = [{leaf} for d in firsts]")
        else:
            leaf = _READ[part.kind].format(f"r.{_field_of(kind, part.source)}")
            code.append(f"    own[{part.column!r}] = [{leaf} for r in records]")
    code.append(f"    tables = {{{entity!r}: from_pydict(own, schema=SCHEMAS[{entity!r}])}}")
    columns = [["parent", "pos", *(_name(f.column) for f in c.fields)] for c in spec.children]
    code += [f"    c{n}_{name} = []" for n, names in enumerate(columns) for name in names]
    code += [
        "    for parent, r in zip(ids, records):",
        "        if parent is None:",
        "            continue",
    ]
    for n, child in enumerate(spec.children):
        items = f"r.{_field_of(kind, child.source)}"
        if child.of_values:
            items = f"as_list({items})"
        elif kind.__annotations__[child.source].startswith("list["):  # a list of records or None
            items = f"{items} or ()"
        else:
            raise ValueError(f"{kind.__name__}.{child.source} is not a typed list of records")
        code.append(f"        for pos, x in enumerate({items}):")
        code.append(f"            c{n}_parent.append(parent)")
        code.append(f"            c{n}_pos.append(pos)")
        for f in child.fields:
            leaf = _READ[f.kind].format(f"x.{f.source}" if f.source else "x")
            code.append(f"            c{n}_{f.column}.append({leaf})")
    for n, child in enumerate(spec.children):
        lists = ", ".join(f"{name!r}: c{n}_{name}" for name in columns[n])
        schema = f"SCHEMAS[{child.table!r}]"
        code.append(f"    tables[{child.table!r}] = from_pydict({{{lists}}}, schema={schema})")
    code.append("    return tables")
    return "\n".join(code) + "\n"


#: entity -> its typed converter (records, seq0, row) -> tables, written at first use
_converters: dict[str, Callable[[list[Any], int, Callable[[Any], str]], dict[str, pa.Table]]] = {}


def records_tables(
    entity: str, records: list[Any], seq0: int, row: Callable[[Any], str]
) -> dict[str, pa.Table]:
    """A batch of typed records as the entity's tables (:data:`ENTITY_FIELDS`)."""
    convert = _converters.get(entity)
    if convert is None:
        name = f"<typed converter of {entity}>"
        source = _converter_source(entity)
        linecache.cache[name] = (len(source), None, source.splitlines(True), name)
        namespace: dict[str, Any] = {
            "text": text,
            "day": day,
            "ref_id": ref_id,
            "as_list": as_list,
            "_first": _first,
            "SCHEMAS": SCHEMAS,
            "from_pydict": pa.Table.from_pydict,
        }
        exec(compile(source, name, "exec"), namespace)  # noqa: S102 (our own source, above)
        convert = _converters[entity] = namespace["convert"]
    return convert(records, seq0, row)


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
    return {name: _one_piece(parts.pop(name), SCHEMAS[name]) for name in TABLES_OF[entity]}


def _one_piece(tables: list[pa.Table], schema: pa.Schema) -> pa.Table:
    """A table's batches as one table, one chunk a column. The list is emptied, and each
    column's batches are let go once it is one piece: the table is held about once while
    it is put together, not twice (a city's group memberships are 86 MB)."""
    columns = {name: [table[name] for table in tables] for name in schema.names}
    tables.clear()
    whole = {}
    for field in schema:
        whole[field.name] = pa.chunked_array(
            [chunk for column in columns.pop(field.name) for chunk in column.chunks], field.type
        ).combine_chunks()
    return pa.table(whole, schema=schema)


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
    # what decoding freed (~120 MB of heap in a city) goes back before the mapping starts
    with memory_return.giving_back():
        for entity in ENTITIES:
            read = iter_lines if entity in fast_entities else iter_records
            size = min(batch_size, ENTITY_BATCH_SIZE.get(entity, batch_size))
            batches: Iterable[list[Any] | Lines] = read(folder / f"{entity}.json", entity, size)
            tables.update(entity_columns(entity, batches, trim=trim))
        directory_file = folder / "directory.json"
        directory = read_list(directory_file, "directory") if directory_file.exists() else None
    return RegisterColumns(tables, directory)
