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
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa

from autosynk.errors import SourceError
from autosynk.records import RECORD_TYPES, to_records
from autosynk.register import as_list, collector_paused, day, read_list, ref_id, text
from autosynk.register_fields import SCHEMAS, TABLES_OF
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


class _Batch:
    """Columns of one batch, filled record by record, made Arrow tables at the end."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.columns: dict[str, dict[str, list[Any]]] = {
            name: {f: [] for f in SCHEMAS[name].names} for name in names
        }

    def tables(self) -> dict[str, pa.Table]:
        return {
            name: pa.Table.from_pydict(cols, schema=SCHEMAS[name])
            for name, cols in self.columns.items()
        }


def _organisations(records: list[Any], seq0: int, row: Callable[[Any], str]) -> _Batch:
    b = _Batch(TABLES_OF["organisations"])
    o, t = b.columns["organisations"], b.columns["organisation_school_types"]
    for n, org in enumerate(records):
        org_id = ref_id(org.id)
        address = _first(org.addresses or org.address)
        phone = _first(org.phoneNumbers or org.phoneNumber)
        o["seq"].append(seq0 + n)
        o["id"].append(org_id)
        o["name"].append(row(org.displayName))
        o["organisation_type"].append(text(org.organisationType))
        o["parent"].append(ref_id(org.parentOrganisation))
        o["school_unit_code"].append(text(org.schoolUnitCode))
        o["start"].append(day(org.startDate))
        o["end"].append(day(org.endDate))
        o["url"].append(row(org.url))
        o["street"].append(row(address.get("streetAddress")))
        o["postcode"].append(row(address.get("postalCode")))
        o["town"].append(row(address.get("locality")))
        o["phone"].append(row(phone.get("value")))
        if org_id is None:
            continue
        for pos, school_type in enumerate(as_list(org.schoolTypes)):
            t["parent"].append(org_id)
            t["pos"].append(pos)
            t["school_type"].append(text(school_type))
    return b


def _persons(records: list[Any], seq0: int, row: Callable[[Any], str]) -> _Batch:
    b = _Batch(TABLES_OF["persons"])
    c = b.columns
    p = c["persons"]
    ids = [ref_id(r.id) for r in records]
    p["seq"] = list(range(seq0, seq0 + len(records)))
    p["id"] = ids
    p["given_name"] = [row(r.givenName) for r in records]
    p["family_name"] = [row(r.familyName) for r in records]
    p["civic_no"] = [text(r.civicNo) for r in records]
    p["marking"] = [text(r.securityMarking) for r in records]
    p["marking_missing"] = [r.securityMarking in (None, "") for r in records]
    p["status"] = [text(r.personStatus) for r in records]
    ad, em, ph = c["person_addresses"], c["person_emails"], c["person_phones"]
    en, rs, ep = c["person_enrolments"], c["person_responsibles"], c["person_eppns"]
    for person_id, r in zip(ids, records, strict=True):
        if person_id is None:
            continue
        for pos, a in enumerate(r.addresses or ()):
            ad["parent"].append(person_id)
            ad["pos"].append(pos)
            ad["type"].append(text(a.type))
            ad["street"].append(row(a.streetAddress))
            ad["postcode"].append(row(a.postalCode))
            ad["town"].append(row(a.locality))
        for pos, e in enumerate(r.emails or ()):
            em["parent"].append(person_id)
            em["pos"].append(pos)
            em["value"].append(text(e.value))
            em["type"].append(text(e.type))
        for pos, f in enumerate(r.phoneNumbers or ()):
            ph["parent"].append(person_id)
            ph["pos"].append(pos)
            ph["value"].append(row(f.value))
            ph["type"].append(text(f.type))
            ph["mobile"].append(f.mobile is True)
        for pos, x in enumerate(r.enrolments or ()):
            en["parent"].append(person_id)
            en["pos"].append(pos)
            en["enroled_at"].append(ref_id(x.enroledAt))
            en["school_type"].append(text(x.schoolType))
            en["school_year"].append(text(x.schoolYear))
            en["start"].append(day(x.startDate))
            en["end"].append(day(x.endDate))
            en["cancelled"].append(x.cancelled is True)
        for pos, g in enumerate(r.responsibles or ()):
            rs["parent"].append(person_id)
            rs["pos"].append(pos)
            rs["person"].append(ref_id(g.person))
            rs["relation_type"].append(text(g.relationType))
        if r.eduPersonPrincipalNames is not None:
            for pos, name in enumerate(as_list(r.eduPersonPrincipalNames)):
                ep["parent"].append(person_id)
                ep["pos"].append(pos)
                ep["eppn"].append(text(name))
    return b


def _groups(records: list[Any], seq0: int, row: Callable[[Any], str]) -> _Batch:
    b = _Batch(TABLES_OF["groups"])
    g, m = b.columns["groups"], b.columns["group_memberships"]
    ids = [ref_id(r.id) for r in records]
    g["seq"] = list(range(seq0, seq0 + len(records)))
    g["id"] = ids
    g["name"] = [row(r.displayName) for r in records]
    g["description"] = [row(r.description) for r in records]
    g["organisation"] = [ref_id(r.organisation) for r in records]
    g["group_type"] = [text(r.groupType) for r in records]
    g["school_type"] = [text(r.schoolType) for r in records]
    g["start"] = [day(r.startDate) for r in records]
    g["end"] = [day(r.endDate) for r in records]
    for group_id, r in zip(ids, records, strict=True):
        if group_id is None:
            continue
        for pos, x in enumerate(r.groupMemberships or ()):
            m["parent"].append(group_id)
            m["pos"].append(pos)
            m["person"].append(ref_id(x.person))
            m["start"].append(day(x.startDate))
            m["end"].append(day(x.endDate))
    return b


def _duties(records: list[Any], seq0: int, row: Callable[[Any], str]) -> _Batch:
    b = _Batch(TABLES_OF["duties"])
    d, a = b.columns["duties"], b.columns["duty_assignments"]
    ids = [ref_id(r.id) for r in records]
    d["seq"] = list(range(seq0, seq0 + len(records)))
    d["id"] = ids
    d["person"] = [ref_id(r.person) for r in records]
    d["duty_at"] = [ref_id(r.dutyAt) for r in records]
    d["duty_role"] = [text(r.dutyRole) for r in records]
    d["start"] = [day(r.startDate) for r in records]
    d["end"] = [day(r.endDate) for r in records]
    for duty_id, r in zip(ids, records, strict=True):
        if duty_id is None:
            continue
        for pos, x in enumerate(r.assignmentRole or ()):
            a["parent"].append(duty_id)
            a["pos"].append(pos)
            a["group"].append(ref_id(x.group))
            a["role"].append(text(x.assignmentRoleType))
            a["start"].append(day(x.startDate))
            a["end"].append(day(x.endDate))
    return b


def _activities(records: list[Any], seq0: int, row: Callable[[Any], str]) -> _Batch:
    b = _Batch(TABLES_OF["activities"])
    c = b.columns
    act, gr, te = c["activities"], c["activity_groups"], c["activity_teachers"]
    ids = [ref_id(r.id) for r in records]
    act["seq"] = list(range(seq0, seq0 + len(records)))
    act["id"] = ids
    act["start"] = [day(r.startDate) for r in records]
    act["end"] = [day(r.endDate) for r in records]
    for activity_id, r in zip(ids, records, strict=True):
        if activity_id is None:
            continue
        for pos, group in enumerate(as_list(r.groups)):
            gr["parent"].append(activity_id)
            gr["pos"].append(pos)
            gr["group"].append(ref_id(group))
        for pos, x in enumerate(r.teachers or ()):
            te["parent"].append(activity_id)
            te["pos"].append(pos)
            te["duty"].append(ref_id(x.duty))
            te["start"].append(day(x.startDate))
            te["end"].append(day(x.endDate))
    return b


_CONVERT: dict[str, Callable[[list[Any], int, Callable[[Any], str]], _Batch]] = {
    "organisations": _organisations,
    "persons": _persons,
    "groups": _groups,
    "duties": _duties,
    "activities": _activities,
}


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
    return _CONVERT[entity](batch, seq0, _row_text(trim)).tables(), True


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
