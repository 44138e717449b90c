"""The register's records as compact typed objects holding only what the mapping reads.

A Stockholm-sized ``persons.json`` decoded into plain dicts is about 2.4 GB of Python
objects, most of it fields the mapping never looks at (``meta``, ``birthDate``, every
address's country ...). Decoded straight into these ``msgspec.Struct`` types it is half
that, twice as fast, and the mapping reads attributes instead of probing dicts.

Leaves are typed ``Any``: registers send a number as text, a date with or without time,
an identity number as ``{"value": ...}`` or as a bare string, and judging that is the
mapping's job (:func:`autosynk.register.text` and friends). Only the large arrays are
typed, so that their entries are structs too. A register whose arrays break that shape
(a lone object instead of an array, an entry that is not an object) is still read: the
file is decoded generically and each record converted by :func:`to_records`, which
applies the same tolerance the mapping always had (missing or null -> empty, a lone
object -> one entry, entries that are not objects skipped).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import msgspec

from autosynk.register import Ref, Snapshot, Valued, as_list, collector_paused, read_list
from autosynk.sources import ENTITIES

log = logging.getLogger(__name__)


#: a reference is ``{"id": ...}`` or a bare id; a value ``{"value": ...}`` or a bare value
Reference = Ref | str | None
Value = Valued | str | None


class _Record(msgspec.Struct, gc=False):
    """Base: records hold no cycles, so the cyclic collector need not track them.

    Field names are spelt as SS 12000 spells them, so that decoding needs no renaming.
    """


class Membership(_Record):
    person: Reference = None
    startDate: Any = None
    endDate: Any = None


class Enrolment(_Record):
    enroledAt: Reference = None
    schoolType: Any = None
    schoolYear: Any = None
    startDate: Any = None
    endDate: Any = None
    cancelled: Any = None


class Responsible(_Record):
    person: Reference = None
    relationType: Any = None


class Address(_Record):
    type: Any = None
    streetAddress: Any = None
    postalCode: Any = None
    locality: Any = None


class Email(_Record):
    value: Any = None
    type: Any = None


class Phone(_Record):
    value: Any = None
    type: Any = None
    mobile: Any = None


class Assignment(_Record):
    group: Reference = None
    assignmentRoleType: Any = None
    startDate: Any = None
    endDate: Any = None


class Teacher(_Record):
    duty: Reference = None
    startDate: Any = None
    endDate: Any = None


class Organisation(_Record):
    id: Any = None
    displayName: Any = None
    organisationType: Any = None
    parentOrganisation: Any = None
    schoolTypes: Any = None
    schoolUnitCode: Any = None
    startDate: Any = None
    endDate: Any = None
    url: Any = None
    addresses: Any = None
    address: Any = None
    phoneNumbers: Any = None
    phoneNumber: Any = None


class Group(_Record):
    id: Any = None
    displayName: Any = None
    description: Any = None
    organisation: Reference = None
    groupType: Any = None
    schoolType: Any = None
    startDate: Any = None
    endDate: Any = None
    groupMemberships: list[Membership] | None = None


class Person(_Record):
    id: Any = None
    givenName: Any = None
    familyName: Any = None
    civicNo: Value = None
    securityMarking: Any = None
    personStatus: Any = None
    addresses: list[Address] | None = None
    emails: list[Email] | None = None
    phoneNumbers: list[Phone] | None = None
    enrolments: list[Enrolment] | None = None
    responsibles: list[Responsible] | None = None
    eduPersonPrincipalNames: Any = None


class Duty(_Record):
    id: Any = None
    person: Reference = None
    dutyAt: Reference = None
    dutyRole: Any = None
    startDate: Any = None
    endDate: Any = None
    assignmentRole: list[Assignment] | None = None


class Activity(_Record):
    id: Any = None
    startDate: Any = None
    endDate: Any = None
    groups: Any = None
    teachers: list[Teacher] | None = None


RECORD_TYPES: dict[str, type[_Record]] = {
    "organisations": Organisation,
    "persons": Person,
    "groups": Group,
    "duties": Duty,
    "activities": Activity,
}


@cache
def _shape(kind: type[_Record]) -> tuple[dict[str, type[_Record]], tuple[str, ...]]:
    """A record type's typed arrays (field -> entry type) and reference/value fields."""
    arrays: dict[str, type[_Record]] = {}
    scalars: list[str] = []
    for name, hint in kind.__annotations__.items():
        if hint.startswith("list["):
            arrays[name] = globals()[hint[5 : hint.index("]")]]
        elif hint in ("Reference", "Value"):
            scalars.append(name)
    return arrays, tuple(scalars)


def _tidy(kind: type[_Record], record: dict[str, Any]) -> dict[str, Any]:
    """A raw record in the typed shape, with the tolerance the mapping always had."""
    arrays, scalars = _shape(kind)
    out = dict(record)
    for name in scalars:  # a number or list where an id is due reads as its text
        value = out.get(name)
        if value is not None and not isinstance(value, (dict, str)):
            out[name] = str(value)
    for name, entry in arrays.items():
        if name in out:
            out[name] = [_tidy(entry, e) for e in as_list(out[name]) if isinstance(e, dict)]
    return out


def decoder(entity: str) -> msgspec.json.Decoder[Any]:
    """A decoder for ``{"data": [...]}`` straight into the entity's record type."""
    envelope = msgspec.defstruct(
        f"{entity}_document",
        [("data", list[RECORD_TYPES[entity]])],  # type: ignore[valid-type]
    )
    return msgspec.json.Decoder(envelope)


def to_records(entity: str, items: Iterable[Any]) -> list[Any]:
    """Raw records (dicts, or records already typed) as the entity's record type."""
    kind = RECORD_TYPES[entity]
    return [
        item if isinstance(item, kind) else msgspec.convert(_tidy(kind, item), kind, strict=False)
        for item in items
    ]


def all_records(entities: Mapping[str, list[Any]]) -> dict[str, list[Any]]:
    """Every entity list of a snapshot as typed records (no copy where already typed)."""
    return {
        name: items if _typed(name, items) else to_records(name, items)
        for name, items in entities.items()
        if name in RECORD_TYPES
    }


def _typed(entity: str, items: list[Any]) -> bool:
    kind = RECORD_TYPES[entity]
    return all(isinstance(item, kind) for item in items)


def read_typed_snapshot(folder: Path) -> Snapshot:
    """:func:`autosynk.register.read_snapshot`, each entity decoded into its record type.

    Each file is read in batches (:func:`autosynk.sources.list_stream.iter_records`), so
    its bytes are never in memory beside its records.
    """
    from autosynk.sources.list_stream import iter_records

    entities: dict[str, list[Any]] = {}
    for name in ENTITIES:
        records: list[Any] = []
        with collector_paused():
            for batch in iter_records(folder / f"{name}.json", name):
                records += batch
        entities[name] = records
    directory_file = folder / "directory.json"
    directory = read_list(directory_file, "directory") if directory_file.exists() else None
    return Snapshot(entities=entities, directory=directory)
