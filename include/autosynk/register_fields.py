"""The register's tables, field by field: one description that both readers are driven by.

Each entity is one table (``seq``: the record's place in its file, ``id``: its id read as
:func:`autosynk.register.ref_id` reads it, then its :class:`Field` s) and one child table
per nested list (:class:`Child`: ``parent``, the parent's id, ``pos``, the place in the
list, then the entry's fields). The typed-record reader
(:mod:`autosynk.register_columns`) and the raw-entry reader (:mod:`autosynk.register_lines`)
both build their tables from :data:`ENTITY_FIELDS`, and :data:`SCHEMAS` is derived from
it: a new field is added here (and to its typed record in :mod:`autosynk.records`).

What a field's ``kind`` means (how the record-by-record mapping read the leaf):

- ``text``: :func:`autosynk.register.text` (trimmed, never null, ``""`` when absent);
- ``row``: a value that goes into a Unikum row: ``text`` when the mapping trims values
  (the default), else the value as it came (``""`` for null);
- ``day``: :func:`autosynk.register.day` (the date part, null when absent or blank);
- ``id``: :func:`autosynk.register.ref_id` of a bare id (null when absent or blank);
- ``ref``: the same of a reference object ``{"id": ...}``;
- ``value``: ``text`` of a value object ``{"value": ...}`` (``civicNo``);
- ``flag``: ``value is True``;
- ``blank``: whether the value is missing (null or ``""``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

Kind = Literal["text", "row", "day", "id", "ref", "value", "flag", "blank"]


@dataclass(frozen=True)
class Field:
    """One column: its name, the key it is read from (``""``: the list entry itself, in a
    :class:`Child` whose entries are values) and how it is read."""

    column: str
    source: str
    kind: Kind

    @property
    def arrow_type(self) -> pa.DataType:
        return pa.bool_() if self.kind in ("flag", "blank") else pa.string()


@dataclass(frozen=True)
class FirstOf:
    """Fields of the first entry of an optional array (``sources``: the first of these keys
    that is not empty; a lone object counts as one entry, a bare value as
    ``{"value": ...}``), in the parent's own table."""

    sources: tuple[str, ...]
    fields: tuple[Field, ...]


@dataclass(frozen=True)
class Child:
    """A nested list as a child table. Its entries are objects (``fields`` read keys of
    each) or values (one field whose ``source`` is ``""``: the entry itself)."""

    table: str
    source: str
    fields: tuple[Field, ...]

    @property
    def of_values(self) -> bool:
        return len(self.fields) == 1 and self.fields[0].source == ""


@dataclass(frozen=True)
class Entity:
    """An entity's own fields (after ``seq`` and ``id``) and its nested lists."""

    own: tuple[Field | FirstOf, ...]
    children: tuple[Child, ...] = ()

    @property
    def fields(self) -> tuple[Field, ...]:
        """The own table's fields in column order (those of a :class:`FirstOf` in place)."""
        return tuple(
            f for part in self.own for f in (part.fields if isinstance(part, FirstOf) else (part,))
        )


def _dates() -> tuple[Field, Field]:
    return Field("start", "startDate", "day"), Field("end", "endDate", "day")


#: entity -> its fields and nested lists (the entity's table is named as the entity)
ENTITY_FIELDS: dict[str, Entity] = {
    "organisations": Entity(
        (
            Field("name", "displayName", "row"),
            Field("organisation_type", "organisationType", "text"),
            Field("parent", "parentOrganisation", "ref"),
            Field("school_unit_code", "schoolUnitCode", "text"),
            *_dates(),
            Field("url", "url", "row"),
            FirstOf(
                ("addresses", "address"),
                (
                    Field("street", "streetAddress", "row"),
                    Field("postcode", "postalCode", "row"),
                    Field("town", "locality", "row"),
                ),
            ),
            FirstOf(("phoneNumbers", "phoneNumber"), (Field("phone", "value", "row"),)),
        ),
        (Child("organisation_school_types", "schoolTypes", (Field("school_type", "", "text"),)),),
    ),
    "persons": Entity(
        (
            Field("given_name", "givenName", "row"),
            Field("family_name", "familyName", "row"),
            Field("civic_no", "civicNo", "value"),
            Field("marking", "securityMarking", "text"),
            Field("marking_missing", "securityMarking", "blank"),
            Field("status", "personStatus", "text"),
        ),
        (
            Child(
                "person_addresses",
                "addresses",
                (
                    Field("type", "type", "text"),
                    Field("street", "streetAddress", "row"),
                    Field("postcode", "postalCode", "row"),
                    Field("town", "locality", "row"),
                ),
            ),
            Child(
                "person_emails",
                "emails",
                (Field("value", "value", "text"), Field("type", "type", "text")),
            ),
            Child(
                "person_phones",
                "phoneNumbers",
                (
                    Field("value", "value", "row"),
                    Field("type", "type", "text"),
                    Field("mobile", "mobile", "flag"),
                ),
            ),
            Child(
                "person_enrolments",
                "enrolments",
                (
                    Field("enroled_at", "enroledAt", "ref"),
                    Field("school_type", "schoolType", "text"),
                    Field("school_year", "schoolYear", "text"),
                    *_dates(),
                    Field("cancelled", "cancelled", "flag"),
                ),
            ),
            Child(
                "person_responsibles",
                "responsibles",
                (Field("person", "person", "ref"), Field("relation_type", "relationType", "text")),
            ),
            Child("person_eppns", "eduPersonPrincipalNames", (Field("eppn", "", "text"),)),
        ),
    ),
    "groups": Entity(
        (
            Field("name", "displayName", "row"),
            Field("description", "description", "row"),
            Field("organisation", "organisation", "ref"),
            Field("group_type", "groupType", "text"),
            Field("school_type", "schoolType", "text"),
            *_dates(),
        ),
        (
            Child(
                "group_memberships",
                "groupMemberships",
                (Field("person", "person", "ref"), *_dates()),
            ),
        ),
    ),
    "duties": Entity(
        (
            Field("person", "person", "ref"),
            Field("duty_at", "dutyAt", "ref"),
            Field("duty_role", "dutyRole", "text"),
            *_dates(),
        ),
        (
            Child(
                "duty_assignments",
                "assignmentRole",
                (
                    Field("group", "group", "ref"),
                    Field("role", "assignmentRoleType", "text"),
                    *_dates(),
                ),
            ),
        ),
    ),
    "activities": Entity(
        _dates(),
        (
            Child("activity_groups", "groups", (Field("group", "", "ref"),)),
            Child("activity_teachers", "teachers", (Field("duty", "duty", "ref"), *_dates())),
        ),
    ),
}

#: entity -> the tables its records fill (its own first)
TABLES_OF: dict[str, tuple[str, ...]] = {
    entity: (entity, *(child.table for child in spec.children))
    for entity, spec in ENTITY_FIELDS.items()
}


def _schema(keys: tuple[tuple[str, pa.DataType], ...], fields: tuple[Field, ...]) -> pa.Schema:
    return pa.schema([*keys, *((f.column, f.arrow_type) for f in fields)])


def _schemas() -> dict[str, pa.Schema]:
    schemas: dict[str, pa.Schema] = {}
    for entity, spec in ENTITY_FIELDS.items():
        schemas[entity] = _schema((("seq", pa.int64()), ("id", pa.string())), spec.fields)
        for child in spec.children:
            schemas[child.table] = _schema(
                (("parent", pa.string()), ("pos", pa.int64())), child.fields
            )
    return schemas


#: table name -> schema (derived from :data:`ENTITY_FIELDS`)
SCHEMAS: dict[str, pa.Schema] = _schemas()
