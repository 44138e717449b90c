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

import pyarrow as pa
import pyarrow.compute as pc

from autosynk.mapping.columnar.relations import IN_RELATION, fixed_table
from autosynk.model import USER
from autosynk.register import text

if TYPE_CHECKING:
    from autosynk.mapping.columnar.night import Night

STAFF, STUDENT, GUARDIAN = "staff", "student", "guardian"
ROLES = (STAFF, STUDENT, GUARDIAN)


#: RE2: a value the row builder passes through unchanged once trimmed: printable Latin-1
#: (nothing to clean; nothing to transliterate, even for ISO-8859-1)
PLAIN = r"^[\x{20}-\x{7e}\x{a1}-\x{ac}\x{ae}-\x{ff}]*$"
#: RE2: the same for UTF-8 files: the Latin extensions too (letters, all printable)
PLAIN_UTF8 = r"^[\x{20}-\x{7e}\x{a1}-\x{ac}\x{ae}-\x{24f}\x{1e00}-\x{1eff}]*$"
#: RE2: an e-mail address the mapping passes unchanged (printable ASCII: lower-casing it
#: is the same in Arrow as in Python) and accepts (``rows._EMAIL`` on such text)
PLAIN_EMAIL = (
    r"^[\x{21}-\x{3f}\x{41}-\x{7e}]+@[\x{21}-\x{3f}\x{41}-\x{7e}]+\.[\x{21}-\x{3f}\x{41}-\x{7e}]+$"
)


def map_users(night: Night, directory: list[dict[str, Any]] | None) -> tuple[pa.Table, list[str]]:
    """User rows in key order, and the keys of persons whose row could not be built.

    Rows whose values are all plain (:data:`PLAIN`; the great majority) are joined
    column-wise; the others go value by value through :class:`.rows.RowBuilder`, which
    reports what it cleans or transliterates and quarantines what it cannot write.
    """
    spec = night.spec
    night.put("fixed_relations", fixed_table(night))
    sources = sorted({s for role in ROLES for s in getattr(spec.email, role) if s != "directory"})
    columns = _user_columns(night, sources)
    night.put("users", columns.select(["person"]))
    keys, persons = columns["key"].to_pylist(), columns["person"].to_pylist()
    entry_of = _directory(night, directory)
    mails: list[Any] = [None] * columns.num_rows
    if entry_of is not None:
        for n, (person_id, key) in enumerate(zip(persons, keys, strict=True)):
            entry = entry_of(person_id, key)
            mails[n] = None if entry is None else entry.get("mail")
    rows = _plain_rows(night, columns, sources, mails)
    value_by_value = [n for n, row in enumerate(rows) if row is None]
    phones = _phones(night, [persons[n] for n in value_by_value])
    dropped: list[str] = []
    build = night.rows.user
    data = columns.take(pa.array(value_by_value, pa.int64())).to_pydict()
    email_lists = [data[f"email_{k}"] for k in range(len(sources))]
    for i, n in enumerate(value_by_value):
        school_year = data["school_year"][i]
        grade = None if school_year is None else (data["school_type"][i], school_year)
        address = (
            (data["street"][i], data["postcode"][i], data["town"][i])
            if data["has_address"][i]
            else None
        )
        emails = [
            (source, values[i])
            for source, values in zip(sources, email_lists, strict=True)
            if values[i] is not None
        ]
        rows[n] = build(
            persons[n],
            keys[n],
            data["role"][i],
            (data["given_name"][i], data["family_name"][i]),
            grade,
            emails,
            mails[n],
            phones.get(persons[n], ()),
            address,
        )
        if rows[n] is None:  # quarantined by the row builder: its relations cannot go either
            dropped.append(keys[n])
    row_array = pa.array(rows, pa.string())
    sent = pc.is_valid(row_array)
    table = pa.table(
        {
            "kind": pa.array([USER] * columns.num_rows, pa.string()),
            "key": columns["key"],
            "source_id": columns["person"],
            "row": row_array,
        }
    ).filter(sent)
    night.counts["users"] = table.num_rows
    return table, dropped


def _user_columns(night: Night, sources: list[str]) -> pa.Table:
    """Every person sent as a user, by key: role, names, first school year, address,
    per e-mail source the first e-mail of that type, the first phone of each kind."""
    spec = night.spec
    email_joins = "".join(
        f" LEFT JOIN (SELECT parent, arg_min(value, pos) AS value FROM person_emails "
        f"WHERE type = {night.literal(source)} AND value <> '' GROUP BY parent) e{n} "
        f"ON e{n}.parent = k.person"
        for n, source in enumerate(sources)
    )
    email_columns = "".join(f", e{n}.value AS email_{n}" for n in range(len(sources)))
    prefix = night.literal(spec.address_type[:10])
    plain = PLAIN if night.rows.latin1 else PLAIN_UTF8
    normalised = (
        "CASE WHEN starts_with(x, '00') THEN '+' || substr(x, 3) ELSE x END"
        if spec.transforms.phone_normalise
        else "x"
    )
    compact = (
        r"regexp_replace(value, '[ \-().\/]', '', 'g')"
        if spec.transforms.phone_normalise
        else "value"
    )
    return night.arrow_of(
        f"WITH in_relation AS ({IN_RELATION}), "
        "guardian_role AS (SELECT DISTINCT guardian AS person FROM guardian_links WHERE sent), "
        "grade AS (SELECT person, arg_min(school_type, pos) AS school_type, "
        "arg_min(school_year, pos) AS school_year "
        "FROM enrolled WHERE school_year <> '' GROUP BY person), "
        "phones AS (SELECT parent, "
        f"bool_and(regexp_full_match(value, '{plain}')) AS phones_plain, "
        "arg_min(norm, pos) FILTER (WHERE norm <> '' AND mobile) AS mobile, "
        "arg_min(norm, pos) FILTER (WHERE norm <> '' AND NOT mobile AND type = 'Arbete') "
        "AS work, "
        "arg_min(norm, pos) FILTER (WHERE norm <> '' AND NOT mobile AND type <> 'Arbete') "
        "AS phone "
        f"FROM (SELECT *, {normalised} AS norm FROM (SELECT *, "
        f"{compact} AS x FROM person_phones)) "
        "GROUP BY parent), "
        "users AS (SELECT k.person, k.key, p.given_name, p.family_name, "
        "CASE WHEN k.person IN (SELECT person FROM staff_duties) THEN 'staff' "
        "WHEN k.person IN (SELECT person FROM enrolled) THEN 'student' "
        "ELSE 'guardian' END AS role, "
        "g.school_type, g.school_year, a.street, a.postcode, a.town, "
        "(a.parent IS NOT NULL) AS has_address, "
        "coalesce(f.phones_plain, true) AS phones_plain, "
        "coalesce(f.phone, '') AS phone, coalesce(f.mobile, '') AS mobile, "
        "coalesce(f.work, '') AS work" + email_columns + " FROM key_of k "
        "JOIN persons p ON p.id = k.person "
        "LEFT JOIN grade g ON g.person = k.person "
        "LEFT JOIN phones f ON f.parent = k.person "
        "LEFT JOIN (SELECT parent, arg_min(street, pos) AS street, "
        "arg_min(postcode, pos) AS postcode, arg_min(town, pos) AS town "
        f"FROM person_addresses WHERE starts_with(type, {prefix}) GROUP BY parent) a "
        "ON a.parent = k.person" + email_joins + " "
        "WHERE k.key IN (SELECT a FROM in_relation)) "
        "SELECT * FROM users WHERE role <> 'guardian' "
        "OR person IN (SELECT person FROM guardian_role) ORDER BY key"
    )


def _plain(values: Any, pattern: str = PLAIN) -> Any:
    return pc.fill_null(pc.match_substring_regex(values, pattern), True)


def _plain_rows(
    night: Night, columns: pa.Table, sources: list[str], mails: list[Any]
) -> list[str | None]:
    """Each user's row where every value in it is plain (None where one is not).

    Where the mapping does not trim values or changes the names' case, every row is
    built value by value.
    """
    spec = night.spec
    n = columns.num_rows
    if not n or not spec.transforms.trim or spec.transforms.name_casing != "keep":
        return [None] * n
    role = columns["role"]
    first, last = columns["given_name"], columns["family_name"]
    plain = PLAIN if night.rows.latin1 else PLAIN_UTF8
    ok = pc.and_(
        pc.and_(_plain(first, plain), _plain(last, plain)),
        pc.and_(pc.not_equal(first, ""), pc.not_equal(last, "")),
    )
    empty = pa.array([""] * n, pa.string())
    # e-mail: per role, the first source with a value; it must be plain and an address
    directory_mail = pa.array(
        [None if (value := text(mail)) == "" else value for mail in mails], pa.string()
    )
    candidate_of = {source: columns[f"email_{k}"] for k, source in enumerate(sources)}
    candidate_of["directory"] = pa.chunked_array([directory_mail])
    email = pa.chunked_array([pa.nulls(n, pa.string())])
    for name in ROLES:
        choices = [candidate_of[source] for source in getattr(spec.email, name)]
        chosen = pc.coalesce(*choices) if choices else email
        email = pc.if_else(pc.equal(role, name), chosen, email)
    if spec.transforms.email_lowercase:
        email = pc.utf8_lower(email)
    ok = pc.and_(ok, pc.fill_null(pc.match_substring_regex(email, PLAIN_EMAIL), True))
    email = pc.fill_null(email, "")
    # phones and address, for the roles that send them
    sends_phones = pc.is_in(
        role,
        value_set=pa.array(
            [r for r in ROLES if getattr(spec.contact_details, r).phones], pa.string()
        ),
    )
    sends_address = pc.and_(
        columns["has_address"],
        pc.is_in(
            role,
            value_set=pa.array(
                [r for r in ROLES if getattr(spec.contact_details, r).address], pa.string()
            ),
        ),
    )
    ok = pc.and_(ok, pc.or_(pc.invert(sends_phones), columns["phones_plain"]))
    address = []
    for field in ("street", "postcode", "town"):
        value = pc.fill_null(columns[field], "")
        ok = pc.and_(ok, pc.or_(pc.invert(sends_address), _plain(value, plain)))
        address.append(pc.if_else(sends_address, value, empty))
    phones = [pc.if_else(sends_phones, columns[f], empty) for f in ("phone", "mobile", "work")]
    labels = spec.grade_labels
    grade = pa.array(
        [
            "" if year is None else labels.get(school_type, {}).get(year, year)
            for school_type, year in zip(
                columns["school_type"].to_pylist(), columns["school_year"].to_pylist(), strict=True
            )
        ],
        pa.string(),
    )
    flags = [pa.scalar(flag) for flag in night.rows.flags]
    rows = pc.binary_join_element_wise(
        first,
        last,
        email,
        columns["key"],
        "",
        *phones,
        *address,
        *flags,
        grade,
        "",
        "",
        USER,
        "\t",
    )
    return pc.if_else(ok, rows, pa.scalar(None, pa.string())).to_pylist()


def _phones(night: Night, persons: list[str]) -> dict[str, list[tuple[str, str, bool]]]:
    """The phone numbers (value, type, mobile) in register order of these persons."""
    if not any(getattr(night.spec.contact_details, role).phones for role in ROLES):
        return {}
    if not persons:
        return {}
    night.put("value_by_value", pa.table({"person": pa.array(persons, pa.string())}))
    phones: dict[str, list[tuple[str, str, bool]]] = defaultdict(list)
    data = night.arrow_of(
        "SELECT parent, value, type, mobile FROM person_phones "
        "WHERE parent IN (SELECT person FROM value_by_value) ORDER BY parent, pos"
    )
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
