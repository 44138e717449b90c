"""User rows (spec §2): every person who is sent, with the values the mapping chooses.

A person is sent when their identity number is in at least one relation; their role is
staff (a duty at an exported school), else student (an enrolment at one), else guardian
(a guardian of a sent pupil). The choices per person are joins: the first address of the
wanted type, per e-mail source the first e-mail of that type with a value, the pupil's
first school year, the directory entry. The row itself is built value by value
(:class:`.rows.RowBuilder`), in key order.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from autosynk.mapping.columnar.relations import IN_RELATION, fixed_table
from autosynk.model import USER
from autosynk.register import text

if TYPE_CHECKING:
    from autosynk.mapping.columnar.night import Night

STAFF, STUDENT, GUARDIAN = "staff", "student", "guardian"
ROLES = (STAFF, STUDENT, GUARDIAN)


def map_users(
    night: Night, directory: list[dict[str, Any]] | None
) -> tuple[list[tuple[str, str, str, str]], list[str]]:
    """User rows in key order, and the keys of persons whose row could not be built."""
    spec = night.spec
    night.put("fixed_relations", fixed_table(night))
    sources = sorted({s for role in ROLES for s in getattr(spec.email, role) if s != "directory"})
    email_joins = "".join(
        f" LEFT JOIN (SELECT parent, arg_min(value, pos) AS value FROM person_emails "
        f"WHERE type = {night.literal(source)} AND value <> '' GROUP BY parent) e{n} "
        f"ON e{n}.parent = k.person"
        for n, source in enumerate(sources)
    )
    email_columns = "".join(f", e{n}.value AS email_{n}" for n in range(len(sources)))
    prefix = night.literal(spec.address_type[:10])
    columns = night.arrow_of(
        f"WITH in_relation AS ({IN_RELATION}), "
        "guardian_role AS (SELECT DISTINCT guardian AS person FROM guardian_links WHERE sent), "
        "grade AS (SELECT person, arg_min(school_type, pos) AS school_type, "
        "arg_min(school_year, pos) AS school_year "
        "FROM enrolled WHERE school_year <> '' GROUP BY person), "
        "users AS (SELECT k.person, k.key, p.given_name, p.family_name, "
        "CASE WHEN k.person IN (SELECT person FROM staff_duties) THEN 'staff' "
        "WHEN k.person IN (SELECT person FROM enrolled) THEN 'student' "
        "ELSE 'guardian' END AS role, "
        "g.school_type, g.school_year, a.street, a.postcode, a.town, "
        "(a.parent IS NOT NULL) AS has_address" + email_columns + " FROM key_of k "
        "JOIN persons p ON p.id = k.person "
        "LEFT JOIN grade g ON g.person = k.person "
        "LEFT JOIN (SELECT parent, arg_min(street, pos) AS street, "
        "arg_min(postcode, pos) AS postcode, arg_min(town, pos) AS town "
        f"FROM person_addresses WHERE starts_with(type, {prefix}) GROUP BY parent) a "
        "ON a.parent = k.person" + email_joins + " "
        "WHERE k.key IN (SELECT a FROM in_relation)) "
        "SELECT * FROM users WHERE role <> 'guardian' "
        "OR person IN (SELECT person FROM guardian_role) ORDER BY key"
    )
    night.put("users", columns.select(["person"]))
    phones = _phones(night)
    entry_of = _directory(night, directory)
    rows: list[tuple[str, str, str, str]] = []
    dropped: list[str] = []
    build = night.rows.user
    data = columns.to_pydict()
    email_lists = [data[f"email_{n}"] for n in range(len(sources))]
    for n, (person_id, key, role) in enumerate(
        zip(data["person"], data["key"], data["role"], strict=True)
    ):
        school_year = data["school_year"][n]
        grade = None if school_year is None else (data["school_type"][n], school_year)
        address = (
            (data["street"][n], data["postcode"][n], data["town"][n])
            if data["has_address"][n]
            else None
        )
        emails = [
            (source, values[n])
            for source, values in zip(sources, email_lists, strict=True)
            if values[n] is not None
        ]
        entry = entry_of(person_id, key) if entry_of else None
        row = build(
            person_id,
            key,
            role,
            (data["given_name"][n], data["family_name"][n]),
            grade,
            emails,
            None if entry is None else entry.get("mail"),
            phones.get(person_id, ()),
            address,
        )
        if row is None:  # quarantined by the row builder: its relations cannot go either
            dropped.append(key)
            continue
        rows.append((USER, key, person_id, row))
    night.counts["users"] = len(rows)
    return rows, dropped


def _phones(night: Night) -> dict[str, list[tuple[str, str, bool]]]:
    """Each user's phone numbers (value, type, mobile) in register order."""
    if not any(getattr(night.spec.contact_details, role).phones for role in ROLES):
        return {}
    phones: dict[str, list[tuple[str, str, bool]]] = defaultdict(list)
    data = night.con.sql(
        "SELECT parent, value, type, mobile FROM person_phones "
        "WHERE parent IN (SELECT person FROM users) ORDER BY parent, pos"
    ).fetch_arrow_table()
    for parent, value, kind, mobile in zip(
        *(data.column(n).to_pylist() for n in range(4)), strict=True
    ):
        phones[parent].append((value, kind, mobile))
    return phones


def _directory(night: Night, directory: list[dict[str, Any]] | None) -> Any:
    """A person's directory entry: matched on the identity number, the register id or an
    eduPersonPrincipalName (in that order); None when the directory has no entries."""
    if not directory:
        return None
    index = {str(entry["match"]): entry for entry in directory if entry.get("match")}
    if not index:
        return None
    eppns: dict[str, list[str]] = defaultdict(list)
    for parent, eppn in night.rows_of(
        "SELECT parent, eppn FROM person_eppns WHERE parent IN (SELECT person FROM users) "
        "ORDER BY parent, pos"
    ):
        eppns[parent].append(eppn)

    def entry_of(person_id: str, key: str) -> dict[str, Any] | None:
        if key in index:
            return index[key]
        if person_id in index:
            return index[person_id]
        for eppn in eppns.get(person_id, ()):
            found = index.get(text(eppn))
            if found is not None:
                return found
        return None

    return entry_of
