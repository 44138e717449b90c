"""Every relation type (spec §4) as a join over the register's tables.

First by register id (:func:`by_register_id`: who relates to whom), then, once persons
have identity numbers (:mod:`.persons`), by identity number (:func:`by_identity_number`):
a person who is invalid, protected or not exported takes every relation naming them out
in one place, and the report says how many went, per type.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

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


def by_register_id(night: Night) -> None:
    """The tables ``enrolled``, ``staff_duties``, ``person_rel`` (type, person, object),
    ``person_pair`` (type, person, person) and ``guardians``."""
    enrolled(night)
    staff_duties(night)
    night.table(
        "person_rel",
        "WITH students AS (SELECT DISTINCT person FROM enrolled) "
        + " UNION ".join(
            f"SELECT '{name}' AS type, person, object FROM ({query})"
            for name, query in (
                ("student_in_school", student_in_school(night)),
                ("student_in_class", student_in_class(night)),
                ("staff_in_school", staff_in_school(night)),
                ("administrator_for", administrator_for(night)),
                ("teacher_in_class", teacher_in_class(night)),
            )
        ),
    )
    night.table(
        "person_pair",
        "WITH students AS (SELECT DISTINCT person FROM enrolled) "
        f"SELECT DISTINCT 'mentor_for' AS type, a, b FROM ({mentor_for(night)})",
    )
    guardians(night)


def enrolled(night: Night) -> None:
    """Live, not cancelled enrolments at an exported school (a pupil's first school year
    is the one of their first such enrolment that names one)."""
    night.table(
        "enrolled",
        "SELECT e.parent AS person, e.pos, e.school_type, e.school_year, s.ext "
        "FROM person_enrolments e JOIN unit_of u ON u.org_id = e.enroled_at "
        "JOIN schools s ON s.org_id = u.unit "
        f"WHERE NOT e.cancelled AND {night.live('e')}",
    )


def staff_duties(night: Night) -> None:
    """Live duties at an exported school (a live duty without a person is reported)."""
    duties = night.arrow["duties"]
    live = duties.filter(pc.fill_null(night.live_mask(duties), False))
    for duty_id in live.filter(pc.is_null(live["person"]))["id"].to_pylist():
        night.quarantine("duty", duty_id, "duty without a person", "warning")
    night.put("live_duties", live)
    night.table(
        "staff_duties",
        "SELECT d.id AS duty, d.person, d.duty_role, s.ext AS school "
        "FROM live_duties d JOIN unit_of u ON u.org_id = d.duty_at "
        "JOIN schools s ON s.org_id = u.unit WHERE d.person IS NOT NULL",
    )


def student_in_school(night: Night) -> str:
    return "SELECT DISTINCT person, ext AS object FROM enrolled"


def student_in_class(night: Night) -> str:
    return (
        "SELECT DISTINCT m.person, x.ext AS object FROM members m "
        "JOIN exported x ON x.group_id = m.group_id "
        "WHERE m.person IN (SELECT person FROM students)"
    )


def staff_in_school(night: Night) -> str:
    return "SELECT DISTINCT person, school AS object FROM staff_duties"


def administrator_for(night: Night) -> str:
    roles = night.among(night.spec.administrator_duty_roles)
    return f"SELECT DISTINCT person, school AS object FROM staff_duties WHERE duty_role IN {roles}"


def _assignments(night: Night) -> str:
    """Live assignments on a group, of duties at an exported school."""
    return (
        'SELECT d.person, a."group" AS group_id, a.role FROM duty_assignments a '
        "JOIN staff_duties d ON d.duty = a.parent "
        f'WHERE a."group" IS NOT NULL AND {night.live("a")}'
    )


def teacher_in_class(night: Night) -> str:
    """Assignment teachers of exported groups, and activity teachers of their groups."""
    roles = night.among(night.spec.teacher_assignment_roles)
    live = night.live
    return (
        "SELECT DISTINCT a.person, x.ext AS object "
        f"FROM ({_assignments(night)}) a JOIN exported x ON x.group_id = a.group_id "
        f"WHERE a.role IN {roles} "
        "UNION "
        "SELECT DISTINCT d.person, x.ext AS object FROM activities v "
        "JOIN activity_groups g ON g.parent = v.id "
        'JOIN exported x ON x.group_id = g."group" '
        "JOIN activity_teachers t ON t.parent = v.id "
        "JOIN staff_duties d ON d.duty = t.duty "
        f"WHERE {live('v')} AND {live('t')}"
    )


def mentor_for(night: Night) -> str:
    """Mentors of the pupils in their mentor groups (if the sync owns mentor links)."""
    if not night.spec.mentor_links:
        return "SELECT NULL::VARCHAR AS a, NULL::VARCHAR AS b WHERE false"
    roles = night.among(night.spec.mentor_assignment_roles)
    return (
        "SELECT a.person AS a, m.person AS b "
        f"FROM ({_assignments(night)}) a JOIN members m ON m.group_id = a.group_id "
        f"WHERE a.role IN {roles} AND m.person IN (SELECT person FROM students) "
        "AND m.person <> a.person"
    )


def guardians(night: Night) -> None:
    """Each pupil's guardians, in their order, repeats kept (each is counted if dropped)."""
    types = night.among(night.spec.guardian_relation_types)
    night.table(
        "guardians",
        "SELECT r.parent AS child, r.pos, r.person AS guardian FROM person_responsibles r "
        "WHERE r.parent IN (SELECT person FROM enrolled) "
        f"AND r.relation_type IN {types} AND r.person IS NOT NULL",
    )


def by_identity_number(night: Night) -> None:
    """The tables ``resolved`` (type, a, b) by identity number and ``guardian_links``.

    Reads ``key_of`` (person, key) from :mod:`.persons`; a relation with a party that has
    no key is dropped and counted (``relations_skipped_<type>``), a guardian link once
    for every time the register names it.
    """
    night.table(
        "guardian_links",
        "SELECT g.child, g.guardian, kc.key AS child_key, kg.key AS guardian_key, "
        "(kc.key IS NOT NULL AND kg.key IS NOT NULL AND kc.key <> kg.key) AS sent "
        "FROM guardians g LEFT JOIN key_of kc ON kc.person = g.child "
        "LEFT JOIN key_of kg ON kg.person = g.guardian",
    )
    dropped = night.rows_of(
        "SELECT type, count(*) FROM ("
        "SELECT r.type FROM person_rel r ANTI JOIN key_of k ON k.person = r.person "
        "UNION ALL SELECT p.type FROM person_pair p "
        "WHERE p.a NOT IN (SELECT person FROM key_of) "
        "OR p.b NOT IN (SELECT person FROM key_of) "
        "UNION ALL SELECT 'guardian_for' FROM guardian_links WHERE NOT sent"
        ") GROUP BY type"
    )
    night.table(
        "resolved",
        "SELECT r.type, k.key AS a, r.object AS b FROM person_rel r "
        "JOIN key_of k ON k.person = r.person "
        "UNION SELECT p.type, ka.key, kb.key FROM person_pair p "
        "JOIN key_of ka ON ka.person = p.a JOIN key_of kb ON kb.person = p.b "
        "UNION SELECT 'guardian_for', guardian_key, child_key FROM guardian_links WHERE sent "
        # presence only through children who are sent (never reveals a protected child)
        "UNION SELECT 'external_user_in_school', g.guardian_key, e.ext "
        "FROM guardian_links g JOIN enrolled e ON e.person = g.child WHERE g.sent",
    )
    for rel_type, count in dropped:
        night.counts[f"relations_skipped_{rel_type}"] += count


def fixed_table(night: Night) -> pa.Table:
    rows = night.fixed_relations
    columns = list(zip(*rows, strict=True)) if rows else [(), (), ()]
    return pa.table([pa.array(column, pa.string()) for column in columns], schema=RELATIONS_SCHEMA)


#: SQL: every party of a relation (a person is sent only if they are one)
IN_RELATION = (
    "SELECT a FROM resolved UNION SELECT b FROM resolved "
    "UNION SELECT a FROM fixed_relations UNION SELECT b FROM fixed_relations"
)


def final_table(night: Night, dropped: list[str]) -> pa.Table:
    """Every relation, less those of persons whose row could not be built, sorted."""
    everything = "SELECT type, a, b FROM resolved UNION SELECT type, a, b FROM fixed_relations"
    if dropped:
        night.put("dropped_keys", pa.table({"key": pa.array(dropped, pa.string())}))
        table = night.arrow_of(
            f"SELECT type, a, b, (a IN (SELECT key FROM dropped_keys) "
            f"OR b IN (SELECT key FROM dropped_keys)) AS gone FROM ({everything}) "
            "ORDER BY type, a, b"
        )
        gone = table["gone"]
        night.counts["relations_skipped_invalid_person_row"] += pc.sum(gone).as_py() or 0
        table = table.filter(pc.invert(gone)).drop_columns(["gone"])
    else:
        table = night.arrow_of(f"{everything} ORDER BY type, a, b")
    return table.cast(RELATIONS_SCHEMA)
