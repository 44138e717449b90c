"""Every relation type (spec §4) as a join over the register's tables.

First by register id (:func:`by_register_id`: who relates to whom), then, once persons
have identity numbers (:mod:`.persons`), by identity number (:func:`by_identity_number`):
a person who is invalid, protected or not exported takes every relation naming them out
in one place, and the report says how many went, per type.

The joins are Arrow's (:mod:`.joins`): lookups on unique keys, semi joins and a few joins
of many rows to many, with SQL's meaning (a null matches nothing).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from autosynk.mapping.columnar.joins import (
    among,
    columns_of,
    distinct,
    join,
    lookup,
    lookups,
    sorted_distinct_of,
    stacked,
    where,
)

RELATIONS_SCHEMA = pa.schema([("type", pa.string()), ("a", pa.string()), ("b", pa.string())])

if TYPE_CHECKING:
    from autosynk.mapping.columnar.night import Night

#: relation types between a person and a school or class (by register id: ``person_rel``)
PERSON_OBJECT = (
    "student_in_school",
    "student_in_class",
    "staff_in_school",
    "administrator_for",
    "teacher_in_class",
)

#: a person is named by their code (:func:`.index.code_persons`), an object by its external id
PERSON_OBJECT_SCHEMA = pa.schema([("person", pa.int32()), ("object", pa.string())])


def by_register_id(night: Night) -> None:
    """The tables ``enrolled``, ``students``, ``staff_duties``, ``person_rel`` (type,
    person, object), ``person_pair`` (type, a, b: persons) and ``guardians``."""
    enrolled(night)
    staff_duties(night)
    # distinct type by type (no two types share a row): one small hash at a time
    night.put(
        "person_rel",
        pa.concat_tables(
            _typed(name, distinct(relation(night)))
            for name, relation in (
                ("student_in_school", student_in_school),
                ("student_in_class", student_in_class),
                ("staff_in_school", staff_in_school),
                ("administrator_for", administrator_for),
                ("teacher_in_class", teacher_in_class),
            )
        ),
    )
    pairs = distinct(mentor_for(night))
    night.put("person_pair", _with_type("mentor_for", pairs))  # a, b: persons
    guardians(night)


def _typed(name: str, table: pa.Table) -> pa.Table:
    """``SELECT '<name>' AS type, person, object`` from a table of a person and an object."""
    return _with_type(
        name, table.rename_columns(PERSON_OBJECT_SCHEMA.names).cast(PERSON_OBJECT_SCHEMA)
    )


def _with_type(name: str, table: pa.Table) -> pa.Table:
    """``SELECT '<name>' AS type, *``."""
    return table.add_column(0, "type", pa.repeat(pa.scalar(name), table.num_rows))


def _school_of(night: Night, org_ids: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """The exported school (external id) of each organisation's school unit, or null."""
    unit_of, schools = night.arrow["unit_of"], night.arrow["schools"]
    units = lookup(org_ids, unit_of["org_id"], unit_of["unit"])
    return lookup(units, schools["org_id"], schools["ext"])


def enrolled(night: Night) -> None:
    """The table ``enrolled`` (person, pos, school_type, school_year, ext): live, not
    cancelled enrolments at an exported school (a pupil's first school year is the one of
    their first such enrolment that names one); ``students``: the persons enrolled."""
    enrolments = night.arrow["person_enrolments"]
    enrolments = where(
        enrolments, pc.and_kleene(pc.invert(enrolments["cancelled"]), night.live_mask(enrolments))
    )
    ext = _school_of(night, enrolments["enroled_at"])
    night.put(
        "enrolled",
        where(
            pa.table(
                {
                    "person": enrolments["parent"],
                    "pos": enrolments["pos"],
                    "school_type": enrolments["school_type"],
                    "school_year": enrolments["school_year"],
                    "ext": ext,
                }
            ),
            pc.is_valid(ext),
        ),
    )
    night.put("students", pa.table({"person": pc.unique(night.arrow["enrolled"]["person"])}))
    del enrolments
    night.let_go("person_enrolments")  # read by no later step


def staff_duties(night: Night) -> None:
    """The table ``staff_duties`` (duty, person, duty_role, school): live duties at an
    exported school (a live duty without a person is reported)."""
    duties = night.arrow["duties"]
    live = where(duties, night.live_mask(duties))
    for duty_id in live.filter(pc.is_null(live["person"]))["id"].to_pylist():
        night.quarantine("duty", duty_id, "duty without a person", "warning")
    school = _school_of(night, live["duty_at"])
    night.put(
        "staff_duties",
        where(
            pa.table(
                {
                    "duty": live["id"],
                    "person": live["person"],
                    "duty_role": live["duty_role"],
                    "school": school,
                }
            ),
            pc.and_(pc.is_valid(school), pc.is_valid(live["person"])),
        ),
    )


def student_in_school(night: Night) -> pa.Table:
    return night.arrow["enrolled"].select(["person", "ext"])


def student_in_class(night: Night) -> pa.Table:
    members, exported = night.arrow["members"], night.arrow["exported"]
    members = where(members, among(members["person"], night.arrow["students"]["person"]))
    ext = lookup(members["group_id"], exported["group_id"], exported["ext"])
    return where(pa.table({"person": members["person"], "object": ext}), pc.is_valid(ext))


def staff_in_school(night: Night) -> pa.Table:
    return night.arrow["staff_duties"].select(["person", "school"])


def administrator_for(night: Night) -> pa.Table:
    duties = night.arrow["staff_duties"]
    roles = night.spec.administrator_duty_roles
    return where(duties, among(duties["duty_role"], roles)).select(["person", "school"])


def _assignments(night: Night, roles: list[str]) -> pa.Table:
    """(person, group_id): live assignments in one of these roles on a group, of duties at
    an exported school."""
    assignments = night.arrow["duty_assignments"]
    duties = night.arrow["staff_duties"]
    assignments = where(
        assignments,
        pc.and_(
            pc.and_(pc.is_valid(assignments["group"]), night.live_mask(assignments)),
            among(assignments["role"], roles),
        ),
    )
    person = lookup(assignments["parent"], duties["duty"], duties["person"])
    return where(
        pa.table({"person": person, "group_id": assignments["group"]}), pc.is_valid(person)
    )


def teacher_in_class(night: Night) -> pa.Table:
    """Assignment teachers of exported groups, and activity teachers of their groups."""
    exported, duties = night.arrow["exported"], night.arrow["staff_duties"]
    teachers = _assignments(night, night.spec.teacher_assignment_roles)
    ext = lookup(teachers["group_id"], exported["group_id"], exported["ext"])
    by_assignment = where(pa.table({"person": teachers["person"], "object": ext}), pc.is_valid(ext))
    activities = night.arrow["activities"]
    live = where(activities, night.live_mask(activities))["id"]
    groups = night.arrow["activity_groups"]
    groups = where(groups, among(groups["parent"], live))
    ext = lookup(groups["group"], exported["group_id"], exported["ext"])
    groups = where(pa.table({"activity": groups["parent"], "object": ext}), pc.is_valid(ext))
    teachers = night.arrow["activity_teachers"]
    teachers = where(teachers, pc.and_(among(teachers["parent"], live), night.live_mask(teachers)))
    person = lookup(teachers["duty"], duties["duty"], duties["person"])
    teachers = where(
        pa.table({"activity": teachers["parent"], "person": person}), pc.is_valid(person)
    )
    by_activity = join(distinct(teachers), distinct(groups), ("activity", "activity"))
    return pa.concat_tables([by_assignment, by_activity.select(["person", "object"])])


def mentor_for(night: Night) -> pa.Table:
    """(a, b): mentors of the pupils in their mentor groups (if the sync owns mentor links)."""
    if not night.spec.mentor_links:
        return pa.table({"a": pa.array([], pa.int32()), "b": pa.array([], pa.int32())})
    mentors = distinct(_assignments(night, night.spec.mentor_assignment_roles))
    members = night.arrow["members"]
    pupils = where(  # only the mentor groups' pupils can pair (the join keeps no other)
        members,
        pc.and_(
            among(members["group_id"], mentors["group_id"]),
            among(members["person"], night.arrow["students"]["person"]),
        ),
    )
    pairs = join(
        mentors.rename_columns(["a", "group_id"]),
        distinct(pupils.rename_columns(["group_id", "b"])),
        ("group_id", "group_id"),
    )
    return where(pairs, pc.not_equal(pairs["a"], pairs["b"])).select(["a", "b"])


def guardians(night: Night) -> None:
    """The table ``guardians`` (child, pos, guardian): each pupil's guardians, in their
    order, repeats kept (each is counted if dropped)."""
    responsibles = night.arrow["person_responsibles"]
    keep = pc.and_(
        pc.and_(
            among(responsibles["parent"], night.arrow["students"]["person"]),
            among(responsibles["relation_type"], night.spec.guardian_relation_types),
        ),
        pc.is_valid(responsibles["person"]),
    )
    night.put(
        "guardians",
        where(responsibles, keep)
        .select(["parent", "pos", "person"])
        .rename_columns(["child", "pos", "guardian"]),
    )


#: the tables :func:`by_identity_number` reads (the night lets the register's others go)
IDENTITY_READS = frozenset({"enrolled", "guardians", "key_of", "person_pair", "person_rel"})


def by_identity_number(night: Night) -> None:
    """The tables ``resolved`` (type, a, b) by identity number and ``guardian_links``.

    Reads ``key_of`` (person, key) from :mod:`.persons`; a relation with a party that has
    no key is dropped and counted (``relations_skipped_<type>``), a guardian link once
    for every time the register names it.
    """
    key_of = night.arrow["key_of"]
    links = night.arrow["guardians"]
    person_rel, person_pair = night.arrow["person_rel"], night.arrow["person_pair"]
    child_key, guardian_key, rel_key, pair_a, pair_b = lookups(
        key_of["person"],
        key_of["key"],
        links["child"],
        links["guardian"],
        person_rel["person"],
        person_pair["a"],
        person_pair["b"],
    )
    sent = pc.fill_null(pc.not_equal(child_key, guardian_key), False)
    links = pa.table(
        {
            "child": links["child"],
            "guardian": links["guardian"],
            "child_key": child_key,
            "guardian_key": guardian_key,
            "sent": sent,
        }
    )
    night.put("guardian_links", links)
    pair_sent = pc.and_(pc.is_valid(pair_a), pc.is_valid(pair_b))
    dropped: Counter[str] = Counter()
    for types in (
        person_rel["type"].filter(pc.is_null(rel_key)),
        person_pair["type"].filter(pc.invert(pair_sent)),
    ):
        dropped.update(types.to_pylist())
    dropped["guardian_for"] += links.num_rows - (pc.sum(sent).as_py() or 0)
    sent_links = where(links, sent)
    presence = join(
        sent_links.select(["child", "guardian_key"]),
        night.arrow["enrolled"].select(["person", "ext"]),
        ("child", "person"),
    )
    # no two parts share a type, and person_rel and person_pair are distinct and stay so
    # (no two persons share a key: a number that several carry is sent for none); the
    # guardian links repeat as the register repeats them: the final table's sort drops
    # repeats (cheaper than a hash of every row, which costs half a gigabyte in a city)
    resolved = [
        where(
            pa.table({"type": person_rel["type"], "a": rel_key, "b": person_rel["object"]}),
            pc.is_valid(rel_key),
        ),
        where(pa.table({"type": person_pair["type"], "a": pair_a, "b": pair_b}), pair_sent),
        _relations("guardian_for", sent_links["guardian_key"], sent_links["child_key"]),
        # presence only through children who are sent (never reveals a protected child)
        _relations("external_user_in_school", presence["guardian_key"], presence["ext"]),
    ]
    night.put("resolved", pa.concat_tables(t.cast(RELATIONS_SCHEMA) for t in resolved))
    for rel_type, count in dropped.items():
        if count:
            night.counts[f"relations_skipped_{rel_type}"] += count


def _relations(rel_type: str, a: pa.ChunkedArray, b: pa.ChunkedArray) -> pa.Table:
    return pa.table({"type": pa.repeat(pa.scalar(rel_type), len(a)), "a": a, "b": b})


#: the tables :func:`parties` and :func:`final_table` read, once the relations are resolved
FINAL_READS = frozenset({"resolved", "fixed_relations"})


def fixed_table(night: Night) -> pa.Table:
    rows = night.fixed_relations
    columns = list(zip(*rows, strict=True)) if rows else [(), (), ()]
    return pa.table([pa.array(column, pa.string()) for column in columns], schema=RELATIONS_SCHEMA)


def parties(night: Night) -> pa.Array:
    """Every party of a relation (a person is sent only if they are one)."""
    tables = (night.arrow["resolved"], night.arrow["fixed_relations"])
    return pc.unique(stacked(*(t[c] for t in tables for c in ("a", "b"))))


def final_table(night: Night, dropped: list[str]) -> pa.Table:
    """Every relation once, less those of persons whose row could not be built, sorted by
    (type, a, b). The night lets go of the relations as they are sorted."""
    table = sorted_distinct_of(
        columns_of(
            pa.concat_tables([night.arrow.pop("resolved"), night.arrow.pop("fixed_relations")])
        )
    )
    if dropped:
        gone = pc.or_(among(table["a"], dropped), among(table["b"], dropped))
        night.counts["relations_skipped_invalid_person_row"] += pc.sum(gone).as_py() or 0
        table = table.filter(pc.invert(gone))
    return table
