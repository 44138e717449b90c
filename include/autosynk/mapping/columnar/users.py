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

from autosynk.mapping.columnar.joins import among, first_by, keys_of, lookup, positions, where
from autosynk.mapping.columnar.relations import FINAL_READS, fixed_table, parties
from autosynk.model import USER
from autosynk.register import text

if TYPE_CHECKING:
    from autosynk.mapping.columnar.night import Night

STAFF, STUDENT, GUARDIAN = "staff", "student", "guardian"
ROLES = (STAFF, STUDENT, GUARDIAN)
#: the tables the user rows are built from (the night lets every other one go first)
READS = frozenset(
    {
        "enrolled",
        "guardian_links",
        "key_of",
        "person_addresses",
        "person_emails",
        "person_eppns",
        "person_phones",
        "person_ids",
        "persons",
        "staff_duties",
        "students",
    }
)

#: what the rows that go value by value read once the user columns are made
VALUE_BY_VALUE_READS = frozenset({"person_eppns", "person_phones"})

#: users whose rows are built value by value at a time (their values as Python objects)
VALUE_BY_VALUE_BATCH = 10_000

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
    night.keep_only(VALUE_BY_VALUE_READS | FINAL_READS)
    mails = _directory_mails(night, directory, columns)
    rows = _plain_rows(night, columns, sources, mails)
    # the few rows that are not plain go value by value, in Python; the rest stay in Arrow
    value_by_value = pc.indices_nonzero(pc.is_null(rows))
    built: list[str | None] = []
    dropped: list[str] = []
    for begin in range(0, len(value_by_value), VALUE_BY_VALUE_BATCH):
        at = value_by_value.slice(begin, VALUE_BY_VALUE_BATCH)
        _rows_value_by_value(night, columns.take(at), sources, mails.take(at), built, dropped)
    keys, source_ids = columns["key"], columns["source_id"]
    del columns, mails
    if built:
        rows = pc.replace_with_mask(rows, pc.is_null(rows), pa.array(built, pa.string()))
    del built
    table = pa.table(
        {
            "kind": pa.repeat(pa.scalar(USER), len(rows)),
            "key": keys,
            "source_id": source_ids,
            "row": rows,
        }
    )
    del keys, source_ids, rows
    if dropped:  # the rows the builder could not write
        table = table.filter(pc.is_valid(table["row"]))
    night.counts["users"] = table.num_rows
    return table, dropped


def _rows_value_by_value(
    night: Night,
    columns: pa.Table,
    sources: list[str],
    mails: pa.Array,
    built: list[str | None],
    dropped: list[str],
) -> None:
    """These users' rows built value by value (:meth:`.rows.RowBuilder.user`), appended to
    ``built``; the keys of those it could not build, to ``dropped``."""
    data = columns.to_pydict()
    persons, keys = data["source_id"], data["key"]
    phones = _phones(night, columns["person"])
    directory_mails = mails.to_pylist()
    build = night.rows.user
    email_lists = [data[f"email_{k}"] for k in range(len(sources))]
    for i, person in enumerate(persons):
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
        row = build(
            person,
            keys[i],
            data["role"][i],
            (data["given_name"][i], data["family_name"][i]),
            grade,
            emails,
            directory_mails[i],
            phones.get(data["person"][i], ()),
            address,
        )
        built.append(row)
        if row is None:  # quarantined by the row builder: its relations cannot go either
            dropped.append(keys[i])


def _user_columns(night: Night, sources: list[str]) -> pa.Table:
    """Every person sent as a user, by key: role, names, first school year, address,
    per e-mail source the first e-mail of that type, the first phone of each kind."""
    key_of = night.arrow["key_of"]
    users = where(key_of, among(key_of["key"], parties(night)))
    person = users["person"]
    role = pc.if_else(
        among(person, night.arrow["staff_duties"]["person"]),
        STAFF,
        pc.if_else(among(person, night.arrow["students"]["person"]), STUDENT, GUARDIAN),
    )
    links = night.arrow["guardian_links"]
    guardian_role = where(links, links["sent"])["guardian"]
    keep = pc.or_(pc.not_equal(role, GUARDIAN), among(person, guardian_role))
    users = where(users.append_column("role", role), keep).sort_by("key")
    del key_of, role, links, guardian_role, keep
    # each table goes once its last reader is done: the columns grow as the tables go
    night.let_go("key_of", "staff_duties", "students", "guardian_links")
    person = users["person"]  # codes of persons the register holds: their rows
    persons = night.arrow["persons"]
    columns = {
        "person": person,
        "source_id": pc.take(persons["id"], person),
        "key": users["key"],
        "given_name": pc.take(persons["given_name"], person),
        "family_name": pc.take(persons["family_name"], person),
        "role": users["role"],
    }
    del persons
    night.let_go("persons", "person_ids")
    columns.update(_first_school_year(night, person))
    night.let_go("enrolled")
    columns.update(_first_address(night, person))
    night.let_go("person_addresses")
    columns.update(_first_phones(night, person))
    columns.update(_first_emails(night, person, sources))
    night.let_go("person_emails")
    return pa.table(columns)


# Each choice below is its own function, so that its intermediate tables (filtered,
# sorted copies of a register table) are let go when it returns, not held to the end.


def _first_school_year(night: Night, person: pa.ChunkedArray) -> dict[str, Any]:
    """Per person, the school form and year of their first enrolment that names a year."""
    enrolled = night.arrow["enrolled"]
    grade = first_by(
        where(enrolled, pc.not_equal(enrolled["school_year"], "")),
        "person",
        "pos",
        ["school_type", "school_year"],
    )
    at = positions(person, grade["person"])
    return {name: pc.take(grade[name], at) for name in ("school_type", "school_year")}


def _first_address(night: Night, person: pa.ChunkedArray) -> dict[str, Any]:
    """Per person, the first address of the mapping's type (``has_address``: one found)."""
    addresses = night.arrow["person_addresses"]
    prefix = night.spec.address_type[:10]
    addresses = where(
        addresses,
        pc.and_(among(addresses["parent"], person), pc.starts_with(addresses["type"], prefix)),
    )
    address = first_by(addresses, "parent", "pos", ["street", "postcode", "town"])
    at = positions(person, address["parent"])
    columns = {name: pc.take(address[name], at) for name in ("street", "postcode", "town")}
    columns["has_address"] = pc.is_valid(at)
    return columns


def _first_emails(night: Night, person: pa.ChunkedArray, sources: list[str]) -> dict[str, Any]:
    """Per person and e-mail source (``email_<n>``), the first e-mail of that type."""
    emails = night.arrow["person_emails"]
    emails = where(
        emails, pc.and_(among(emails["parent"], person), pc.not_equal(emails["value"], ""))
    )
    columns = {}
    for n, source in enumerate(sources):
        first = first_by(
            where(emails, pc.equal(emails["type"], source)), "parent", "pos", ["value"]
        )
        columns[f"email_{n}"] = lookup(person, first["parent"], first["value"])
    return columns


def _first_phones(night: Night, person: pa.ChunkedArray) -> dict[str, Any]:
    """Per person: whether every number is plain (``phones_plain``), and the first phone,
    mobile and work number that is not empty once compacted (and 00 written +)."""
    phones = night.arrow["person_phones"]
    phones = where(phones, among(phones["parent"], person))
    values = phones["value"]
    if night.spec.transforms.phone_normalise:
        values = pc.replace_substring_regex(values, r"[ \-().\/]", "")
        values = pc.replace_substring_regex(values, "^00", "+", max_replacements=1)
    plain = PLAIN if night.rows.latin1 else PLAIN_UTF8
    phones = pa.table(
        {
            "parent": phones["parent"],
            "pos": phones["pos"],
            "norm": values,
            "plain": pc.match_substring_regex(phones["value"], plain),
            "mobile": phones["mobile"],
            "work": pc.equal(phones["type"], "Arbete"),
        }
    )
    every = phones.group_by("parent", use_threads=False).aggregate([("plain", "all")])
    columns = {
        "phones_plain": pc.fill_null(lookup(person, every["parent"], every["plain_all"]), True)
    }
    phones = where(phones, pc.not_equal(phones["norm"], ""))
    landline = pc.invert(phones["mobile"])
    for name, chosen in (
        ("phone", pc.and_kleene(landline, pc.invert(phones["work"]))),
        ("mobile", phones["mobile"]),
        ("work", pc.and_kleene(landline, phones["work"])),
    ):
        first = first_by(where(phones, chosen), "parent", "pos", ["norm"])
        columns[name] = pc.fill_null(lookup(person, first["parent"], first["norm"]), "")
    return columns


def _plain(values: Any, pattern: str = PLAIN) -> Any:
    return pc.fill_null(pc.match_substring_regex(values, pattern), True)


def _plain_rows(night: Night, columns: pa.Table, sources: list[str], mails: pa.Array) -> pa.Array:
    """Each user's row where every value in it is plain (null where one is not).

    Where the mapping does not trim values or changes the names' case, every row is
    built value by value.
    """
    spec = night.spec
    n = columns.num_rows
    if not n or not spec.transforms.trim or spec.transforms.name_casing != "keep":
        return pa.nulls(n, pa.string())
    role = columns["role"]
    first, last = columns["given_name"], columns["family_name"]
    plain = PLAIN if night.rows.latin1 else PLAIN_UTF8
    ok = pc.and_(
        pc.and_(_plain(first, plain), _plain(last, plain)),
        pc.and_(pc.not_equal(first, ""), pc.not_equal(last, "")),
    )
    # e-mail: per role, the first source with a value; it must be plain and an address
    candidate_of = {source: columns[f"email_{k}"] for k, source in enumerate(sources)}
    candidate_of["directory"] = pa.chunked_array([mails])
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
        address.append(pc.if_else(sends_address, value, ""))
    phones = [pc.if_else(sends_phones, columns[f], "") for f in ("phone", "mobile", "work")]
    grade = grades(spec.grade_labels, columns["school_type"], columns["school_year"])
    flags = [pa.scalar(flag) for flag in night.rows.flags]
    # a null value makes its row null: the first name is null where a value is not plain
    rows = pc.binary_join_element_wise(
        pc.if_else(ok, first, pa.scalar(None, pa.string())),
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
    return keys_of(rows)


def grades(labels: dict[str, dict[str, str]], school_type: Any, school_year: Any) -> Any:
    """Each user's grade as the row writes it: the label of their (school form, school
    year) in ``labels`` (the mapping's ``grade_labels``), else the year; ``""`` where
    there is none."""
    grade = pc.fill_null(school_year, "")
    for form, years in labels.items():
        of_form = pc.fill_null(pc.equal(school_type, form), False)
        for year, label in years.items():
            chosen = pc.and_(of_form, pc.fill_null(pc.equal(school_year, year), False))
            grade = pc.if_else(chosen, label, grade)
    return grade


def _phones(night: Night, persons: pa.ChunkedArray) -> dict[int, list[tuple[str, str, bool]]]:
    """The phone numbers (value, type, mobile) in register order of these persons (codes)."""
    if not any(getattr(night.spec.contact_details, role).phones for role in ROLES):
        return {}
    if not len(persons):
        return {}
    phones: dict[int, list[tuple[str, str, bool]]] = defaultdict(list)
    data = night.arrow["person_phones"]
    data = where(data, among(data["parent"], persons)).sort_by(
        [("parent", "ascending"), ("pos", "ascending")]
    )
    for parent, value, kind, mobile in zip(
        *(data[name].to_pylist() for name in ("parent", "value", "type", "mobile")), strict=True
    ):
        phones[parent].append((value, kind, mobile))
    return phones


def _directory_mails(
    night: Night, directory: list[dict[str, Any]] | None, columns: pa.Table
) -> pa.Array:
    """Each user's ``mail`` in the directory, as text (null where there is none)."""
    entry_of = _directory(night, directory, columns["person"])
    if entry_of is None:
        return pa.nulls(columns.num_rows, pa.string())
    mails = []
    for person, person_id, key in zip(
        columns["person"].to_pylist(),
        columns["source_id"].to_pylist(),
        columns["key"].to_pylist(),
        strict=True,
    ):
        entry = entry_of(person, person_id, key)
        mail = "" if entry is None else text(entry.get("mail"))
        mails.append(mail or None)
    return pa.array(mails, pa.string())


def _directory(night: Night, directory: list[dict[str, Any]] | None, users: pa.ChunkedArray) -> Any:
    """A person's directory entry: matched on the identity number, the register id or an
    eduPersonPrincipalName (in that order); None when the directory has no entries."""
    if not directory:
        return None
    index = {str(entry["match"]): entry for entry in directory if entry.get("match")}
    if not index:
        return None
    eppns: dict[int, list[str]] = defaultdict(list)
    data = night.arrow["person_eppns"]
    data = where(data, among(data["parent"], users)).sort_by(
        [("parent", "ascending"), ("pos", "ascending")]
    )
    for parent, eppn in zip(data["parent"].to_pylist(), data["eppn"].to_pylist(), strict=True):
        eppns[parent].append(eppn)

    def entry_of(person: int, person_id: str, key: str) -> dict[str, Any] | None:
        if key in index:
            return index[key]
        if person_id in index:
            return index[person_id]
        for eppn in eppns.get(person, ()):
            found = index.get(text(eppn))
            if found is not None:
                return found
        return None

    return entry_of
