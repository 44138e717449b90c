"""From a register snapshot to Unikum's objects and relations, per the mapping spec.

The mapping works on register ids first (who relates to whom), then resolves persons to
their identity numbers, so a person who is invalid, protected or not exported takes every
relation naming them out in one place, and the report can say how many went.

Quarantine entries name the register record and the reason (ids masked); a quarantined
record keeps its last delivered state (the delta holds it), it never becomes removals.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from autosynk.identity import InvalidIdentity, mask, normalise
from autosynk.mapping.result import Mapped, QuarantineEntry
from autosynk.mapping.spec import MappingSpec
from autosynk.mapping.values import school_year_of
from autosynk.model import CLASS, SCHOOL
from autosynk.records import Activity, Duty, Group, Organisation, Person, all_records
from autosynk.register import Snapshot, as_list, collector_paused, day, ref_id, text
from tests.reference_mapping.rows import RowBuilder

SKOLENHET = "Skolenhet"
STAFF, STUDENT, GUARDIAN = "staff", "student", "guardian"


class _Context:
    def __init__(self, spec: MappingSpec, organisation_id: str, today: str) -> None:
        self.spec = spec
        self.organisation_id = organisation_id
        self.today = today
        self.school_year = school_year_of(today, spec.school_year_starts)
        self.out = Mapped()

    def quarantine(self, entity: str, source_id: str, reason: str, severity: str = "error") -> None:
        self.out.quarantine.append(QuarantineEntry(entity, source_id, mask(reason), severity))
        self.out.counts[f"quarantine_{severity}"] += 1


def _live(record: Any, today: str) -> bool:
    """``startDate <= today <= endDate``, a missing bound being open (spec §10)."""
    start = day(record.startDate)
    end = day(record.endDate)
    return (start is None or start <= today) and (end is None or today <= end)


def _index(ctx: _Context, entity: str, records: list[Any]) -> dict[str, Any]:
    """Records by id; a record without an id, or a duplicated id, is quarantined."""
    by_id: dict[str, Any] = {}
    duplicated: set[str] = set()
    for record in records:
        record_id = ref_id(record.id)
        if record_id is None:
            ctx.quarantine(entity, "(no id)", f"{entity} record without an id")
            continue
        if record_id in by_id:
            duplicated.add(record_id)
        by_id[record_id] = record
    for record_id in sorted(duplicated):
        del by_id[record_id]
        ctx.quarantine(entity, record_id, f"{entity} id appears more than once in the register")
    return by_id


def map_register(
    snapshot: Snapshot,
    spec: MappingSpec,
    organisation_id: str,
    today: str,
    encoding: str,
    *,
    consume: bool = False,
) -> Mapped:
    """Map one snapshot. ``today`` is the evaluation date (``YYYY-MM-DD``, Europe/Stockholm).

    ``consume``: the caller drops the snapshot afterwards, so parts of its person records
    are emptied as soon as the mapping has read them (enrolments and guardians once the
    relations are known, contact details once the row is built). At city scale that hands
    hundreds of MB back for the relations and rows to reuse, which lowers the peak.
    """
    with collector_paused():
        return _map_register(snapshot, spec, organisation_id, today, encoding, consume)


def _map_register(
    snapshot: Snapshot,
    spec: MappingSpec,
    organisation_id: str,
    today: str,
    encoding: str,
    consume: bool,
) -> Mapped:
    ctx = _Context(spec, organisation_id, today)
    rows = RowBuilder(spec, encoding, ctx.quarantine)
    entities = all_records(snapshot.entities)
    orgs: dict[str, Organisation] = _index(ctx, "organisation", entities["organisations"])
    persons: dict[str, Person] = _index(ctx, "person", entities["persons"])
    groups: dict[str, Group] = _index(ctx, "group", entities["groups"])
    duties: dict[str, Duty] = _index(ctx, "duty", entities["duties"])
    activities: dict[str, Activity] = _index(ctx, "activity", entities["activities"])

    schools = _map_schools(ctx, rows, orgs)  # org id -> (external id, school form)
    unit_of = _unit_resolver(orgs)
    exported_groups, members = _map_groups(ctx, rows, groups, schools, unit_of)

    # relations by register id; persons resolved to identity numbers afterwards
    person_rel: set[tuple[str, str, str]] = set()  # (type, person id, object external id)
    person_pair: set[tuple[str, str, str]] = set()  # (type, person id, person id)
    staff_ids: set[str] = set()  # persons with a live duty at an exported school
    grade: dict[str, tuple[str, str]] = {}  # person id -> (school type, school year)
    student_schools: dict[str, set[str]] = defaultdict(set)

    for person_id, person in persons.items():
        for enrolment in person.enrolments or ():
            if enrolment.cancelled is True or not _live(enrolment, today):
                continue
            unit = unit_of(ref_id(enrolment.enroledAt))
            if unit not in schools:
                continue
            school_ext = schools[unit][0]
            person_rel.add(("student_in_school", person_id, school_ext))
            student_schools[person_id].add(school_ext)
            year = text(enrolment.schoolYear)
            if year and person_id not in grade:
                grade[person_id] = (text(enrolment.schoolType), year)

    students = set(student_schools)
    for group_id, (group_ext, _unit) in exported_groups.items():
        for person_id in members.get(group_id, ()):
            if person_id in students:
                person_rel.add(("student_in_class", person_id, group_ext))

    duty_person = _map_duties(
        ctx,
        duties,
        schools,
        unit_of,
        exported_groups,
        members,
        students,
        person_rel,
        person_pair,
        staff_ids,
    )
    _map_activities(ctx, activities, duty_person, exported_groups, person_rel)

    guardians_of: dict[str, list[str]] = defaultdict(list)
    guardian_types = set(spec.guardian_relation_types)
    for child_id in students:
        child = persons.get(child_id)
        for responsible in (child.responsibles if child else None) or ():
            if text(responsible.relationType) not in guardian_types:
                continue
            guardian_id = ref_id(responsible.person)
            if guardian_id is None:
                continue
            guardians_of[child_id].append(guardian_id)
    if consume:  # read for the last time above
        for person in persons.values():
            person.enrolments = person.responsibles = None

    _resolve_persons(
        ctx,
        rows,
        persons,
        person_rel,
        person_pair,
        staff_ids,
        grade,
        guardians_of,
        student_schools,
        snapshot.directory,
        consume,
    )
    return ctx.out


def _unit_resolver(orgs: dict[str, Organisation]) -> Any:
    cache: dict[str | None, str | None] = {}

    def unit_of(org_id: str | None) -> str | None:
        if org_id in cache:
            return cache[org_id]
        seen: set[str] = set()
        current = org_id
        found: str | None = None
        while current is not None and current in orgs and current not in seen:
            seen.add(current)
            org = orgs[current]
            if text(org.organisationType) == SKOLENHET:
                found = current
                break
            current = ref_id(org.parentOrganisation)
        cache[org_id] = found
        return found

    return unit_of


def _map_schools(
    ctx: _Context, rows: RowBuilder, orgs: dict[str, Organisation]
) -> dict[str, tuple[str, str]]:
    spec = ctx.spec
    schools: dict[str, tuple[str, str]] = {}
    for org_id, org in orgs.items():
        if text(org.organisationType) != SKOLENHET or not _live(org, ctx.today):
            continue
        types = [text(t) for t in as_list(org.schoolTypes)]
        forms = {spec.school_forms[t] for t in types if t in spec.school_forms}
        form = next((f for f in spec.school_form_rank if f in forms), None)
        if form is None and forms:
            form = sorted(forms)[0]
        if form is None:
            shown = ", ".join(types) or "none"
            ctx.quarantine(
                "organisation", org_id, f"school form cannot be mapped (school types: {shown})"
            )
            continue
        code = text(org.schoolUnitCode)
        external_id = spec.external_ids.school.format(
            id=org_id, code=code, school_year=ctx.school_year
        )
        if not external_id.strip() or external_id.startswith("-") or external_id.endswith("-"):
            ctx.quarantine(
                "organisation",
                org_id,
                "external id template gave an incomplete id (is schoolUnitCode missing?)",
            )
            continue
        row = rows.school(org_id, org, external_id, code, form)
        if row is None:
            continue
        schools[org_id] = (external_id, form)
        ctx.out.principals.append((SCHOOL, external_id, org_id, "\t".join(row)))
        ctx.out.relations.add(("school_in_org", external_id, ctx.organisation_id))
    ctx.out.counts["schools"] = len(schools)
    return schools


def _map_groups(
    ctx: _Context,
    rows: RowBuilder,
    groups: dict[str, Group],
    schools: dict[str, tuple[str, str]],
    unit_of: Any,
) -> tuple[dict[str, tuple[str, str]], dict[str, list[str]]]:
    """Exported groups (id -> (external id, unit)) and active members of every live group."""
    spec = ctx.spec
    exported: dict[str, tuple[str, str]] = {}
    members: dict[str, list[str]] = {}
    wanted = set(spec.group_types)
    school_ids = {ext for ext, _form in schools.values()}
    for group_id, group in groups.items():
        if not _live(group, ctx.today):
            continue
        org_id = ref_id(group.organisation)
        unit = unit_of(org_id)
        group_type = text(group.groupType)
        if unit not in schools:
            if group_type in wanted:
                reason = (
                    "its school is not exported (quarantined, closed or not a school unit)"
                    if unit is not None
                    else "its organisation is not a known school unit (dangling reference)"
                )
                ctx.quarantine("group", group_id, reason)
            continue
        members[group_id] = [
            pid
            for m in group.groupMemberships or ()
            if _live(m, ctx.today) and (pid := ref_id(m.person)) is not None
        ]
        if group_type not in wanted:
            continue
        school_ext, school_form = schools[unit]
        external_id = spec.external_ids.class_.format(
            id=group_id, code="", school_year=ctx.school_year
        )
        if external_id in school_ids:
            ctx.quarantine("group", group_id, "external id is already used by a school")
            continue
        group_form = spec.school_forms.get(text(group.schoolType), "")
        row = rows.group(
            group_id, group, external_id, "" if group_form == school_form else group_form
        )
        if row is None:
            continue
        exported[group_id] = (external_id, unit)
        ctx.out.principals.append((CLASS, external_id, group_id, "\t".join(row)))
        ctx.out.relations.add(("class_in_school", external_id, school_ext))
    ctx.out.counts["classes"] = len(exported)
    return exported, members


def _map_duties(
    ctx: _Context,
    duties: dict[str, Duty],
    schools: dict[str, tuple[str, str]],
    unit_of: Any,
    exported_groups: dict[str, tuple[str, str]],
    members: dict[str, list[str]],
    students: set[str],
    person_rel: set[tuple[str, str, str]],
    person_pair: set[tuple[str, str, str]],
    staff_ids: set[str],
) -> dict[str, str]:
    """staff_in_school, administrator_for, assignment teachers and mentors; duty -> person."""
    spec = ctx.spec
    teacher_roles = set(spec.teacher_assignment_roles)
    mentor_roles = set(spec.mentor_assignment_roles)
    admin_roles = set(spec.administrator_duty_roles)
    duty_person: dict[str, str] = {}
    for duty_id, duty in duties.items():
        if not _live(duty, ctx.today):
            continue
        person_id = ref_id(duty.person)
        unit = unit_of(ref_id(duty.dutyAt))
        if person_id is None:
            ctx.quarantine("duty", duty_id, "duty without a person", "warning")
            continue
        if unit not in schools:
            continue
        school_ext = schools[unit][0]
        duty_person[duty_id] = person_id
        staff_ids.add(person_id)
        person_rel.add(("staff_in_school", person_id, school_ext))
        if text(duty.dutyRole) in admin_roles:
            person_rel.add(("administrator_for", person_id, school_ext))
        for assignment in duty.assignmentRole or ():
            if not _live(assignment, ctx.today):
                continue
            group_id = ref_id(assignment.group)
            role = text(assignment.assignmentRoleType)
            if group_id is None:
                continue
            if role in teacher_roles and group_id in exported_groups:
                person_rel.add(("teacher_in_class", person_id, exported_groups[group_id][0]))
            if role in mentor_roles and spec.mentor_links:
                for student_id in members.get(group_id, ()):
                    if student_id in students and student_id != person_id:
                        person_pair.add(("mentor_for", person_id, student_id))
    return duty_person


def _map_activities(
    ctx: _Context,
    activities: dict[str, Activity],
    duty_person: dict[str, str],
    exported_groups: dict[str, tuple[str, str]],
    person_rel: set[tuple[str, str, str]],
) -> None:
    for activity in activities.values():
        if not _live(activity, ctx.today):
            continue
        group_exts = [
            exported_groups[gid][0]
            for g in as_list(activity.groups)
            if (gid := ref_id(g)) is not None and gid in exported_groups
        ]
        if not group_exts:
            continue
        for teacher in activity.teachers or ():
            if not _live(teacher, ctx.today):
                continue
            person_id = duty_person.get(ref_id(teacher.duty) or "")
            if person_id is None:
                continue
            for group_ext in group_exts:
                person_rel.add(("teacher_in_class", person_id, group_ext))


def _resolve_persons(
    ctx: _Context,
    rows: RowBuilder,
    persons: dict[str, Person],
    person_rel: set[tuple[str, str, str]],
    person_pair: set[tuple[str, str, str]],
    staff_ids: set[str],
    grade: dict[str, tuple[str, str]],
    guardians_of: dict[str, list[str]],
    student_schools: dict[str, set[str]],
    directory: list[dict[str, Any]] | None,
    consume: bool,
) -> None:
    """Turn person ids into identity numbers; drop whoever may not or cannot be sent."""
    spec = ctx.spec
    counts = ctx.out.counts
    excluded = set(spec.excluded_person_status)
    unprotected = set(spec.unprotected_markings)

    # who is needed at all: persons in a relation, and guardians of exported children
    needed: set[str] = {pid for _t, pid, _o in person_rel}
    needed |= {pid for _t, a, b in person_pair for pid in (a, b)}
    for child_id, guardian_ids in guardians_of.items():
        needed.update(guardian_ids)
        needed.add(child_id)

    # protected persons anywhere in the register: never sent, forgotten if once delivered
    protected: set[str] = set()
    for person_id, person in persons.items():
        marking = person.securityMarking
        if (
            spec.missing_marking_is_protected
            if marking in (None, "")
            else text(marking) not in unprotected
        ):
            protected.add(person_id)
            try:
                protected_key = normalise(text(person.civicNo)).value
            except InvalidIdentity:
                protected_key = ""
            ctx.out.protected.append((person_id, protected_key))
    counts["protected_persons"] = len(protected)
    counts["protected_persons_with_roles"] = len(protected & needed)

    key_of: dict[str, str] = {}
    number_owner: dict[str, str] = {}
    duplicated_numbers: set[str] = set()
    for person_id in sorted(needed - protected):
        record = persons.get(person_id)
        if record is None:
            ctx.quarantine(
                "person", person_id, "referenced person is not in the register", "warning"
            )
            counts["dangling_person_references"] += 1
            continue
        number: str | None = None
        reason = ""
        try:
            number = identity_number(text(record.civicNo))
        except InvalidIdentity as exc:
            reason = str(exc)
        if text(record.personStatus) in excluded:
            counts["excluded_status_persons"] += 1
            continue
        if number is None:
            ctx.quarantine("person", person_id, f"identity number: {reason}")
            continue
        if number in number_owner:
            duplicated_numbers.add(number)
            continue
        number_owner[number] = person_id
        key_of[person_id] = number
    if duplicated_numbers:
        _hold_shared_numbers(ctx, persons, needed, duplicated_numbers, number_owner, key_of)

    # relations that survive: every person party resolved
    dropped: Counter[str] = Counter()
    relations = ctx.out.relations
    # every party of a relation (kept as relations are added: cheaper than a pass after)
    in_relation = {a for _t, a, _b in relations}
    in_relation.update(b for _t, _a, b in relations)
    # popped, not iterated: each relation by register id is freed as its resolved twin is
    # made, so the two sets (millions of tuples at city scale) never both exist in full
    while person_rel:
        rel_type, person_id, object_ext = person_rel.pop()
        key = key_of.get(person_id)
        if key is None:
            dropped[rel_type] += 1
        else:
            relations.add((rel_type, key, object_ext))
            in_relation.add(key)
    while person_pair:
        rel_type, first_id, second_id = person_pair.pop()
        first, second = key_of.get(first_id), key_of.get(second_id)
        if first is None or second is None:
            dropped[rel_type] += 1
        else:
            relations.add((rel_type, first, second))
            in_relation.add(first)
            in_relation.add(second)
    guardian_role: set[str] = set()
    for child_id, guardian_ids in guardians_of.items():
        child = key_of.get(child_id)
        for guardian_id in guardian_ids:
            guardian = key_of.get(guardian_id)
            if child is None or guardian is None or guardian == child:
                dropped["guardian_for"] += 1
                continue
            relations.add(("guardian_for", guardian, child))
            in_relation.add(guardian)
            in_relation.add(child)
            guardian_role.add(guardian_id)
            # presence only through children who are sent (never reveals a protected child)
            for school_ext in student_schools.get(child_id, ()):
                relations.add(("external_user_in_school", guardian, school_ext))
    for rel_type, count in dropped.items():
        counts[f"relations_skipped_{rel_type}"] += count

    # user rows for every person who is in at least one relation
    directory_by_match = _directory_index(directory, spec)
    users = 0
    for person_id, key in sorted(key_of.items(), key=lambda item: item[1]):
        if key not in in_relation:
            continue
        role = (
            STAFF
            if person_id in staff_ids
            else STUDENT
            if person_id in student_schools
            else GUARDIAN
        )
        if role == GUARDIAN and person_id not in guardian_role:
            continue
        person = persons[person_id]
        entry = _directory_entry(directory_by_match, spec, person, person_id, key)
        row = rows.user(person_id, person, key, role, grade.get(person_id), entry)
        if consume:  # the row holds what the mapping needed of these
            person.addresses = person.emails = person.phoneNumbers = None
        if row is None:  # quarantined by the row builder: its relations cannot go either
            _drop_person(ctx, key)
            continue
        ctx.out.principals.append(("user", key, person_id, "\t".join(row)))
        users += 1
    counts["users"] = users


_LUHN_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def identity_number(raw: str) -> str:
    """``normalise(raw).value``, with a fast path for the form most registers send.

    ``YYYYMMDD-NNNC`` and ``YYYYMMDDNNNC`` with a valid date (or coordination day),
    serial and Luhn digit are checked here directly; anything else, and anything that
    fails a check, goes through :func:`normalise`, which gives the reason.
    """
    value = raw.strip().replace(" ", "")
    digits = ""
    if len(value) == 13 and value[8] == "-":
        digits = value[:8] + value[9:]
    elif len(value) == 12:
        digits = value
    if len(digits) == 12 and digits.isascii() and digits.isdigit() and digits[8:11] != "000":
        total = 0
        for position in range(2, 11):
            digit = ord(digits[position]) - 48
            total += _LUHN_DOUBLED[digit] if position % 2 == 0 else digit
        if (10 - total % 10) % 10 == ord(digits[11]) - 48:
            day = int(digits[6:8])
            try:
                dt.date(int(digits[:4]), int(digits[4:6]), day - 60 if day > 60 else day)
            except ValueError:
                pass
            else:
                return f"{digits[:8]}-{digits[8:]}"
    return normalise(value).value


def _hold_shared_numbers(
    ctx: _Context,
    persons: dict[str, Person],
    needed: set[str],
    shared: set[str],
    number_owner: dict[str, str],
    key_of: dict[str, str],
) -> None:
    """Send no one whose identity number several person records carry; quarantine them all.

    One pass over the needed persons for all shared numbers: a national register has
    thousands of them, and a pass per number would take hours.
    """
    for number in shared:
        key_of.pop(number_owner.pop(number), None)
    holders: dict[str, list[str]] = defaultdict(list)
    for person_id in sorted(needed):  # protected and excluded persons are held as well
        person = persons.get(person_id)
        if person is None:
            continue
        try:
            number = identity_number(text(person.civicNo))
        except InvalidIdentity:
            continue
        if number in shared:
            holders[number].append(person_id)
    for number in sorted(holders):
        for person_id in holders[number]:
            ctx.quarantine(
                "person",
                person_id,
                f"identity number {mask(number)} is used by several person records",
            )


def _drop_person(ctx: _Context, key: str) -> None:
    gone = {rel for rel in ctx.out.relations if key in (rel[1], rel[2])}
    ctx.out.relations -= gone
    ctx.out.counts["relations_skipped_invalid_person_row"] += len(gone)


def _directory_index(
    directory: Iterable[dict[str, Any]] | None, spec: MappingSpec
) -> dict[str, dict[str, Any]]:
    if not directory:
        return {}
    return {str(entry["match"]): entry for entry in directory if entry.get("match")}


def _directory_entry(
    index: dict[str, dict[str, Any]],
    spec: MappingSpec,
    person: Person,
    person_id: str,
    key: str,
) -> dict[str, Any] | None:
    if not index:
        return None
    if key in index:
        return index[key]
    if person_id in index:
        return index[person_id]
    for eppn in as_list(person.eduPersonPrincipalNames):
        found = index.get(text(eppn))
        if found is not None:
            return found
    return None
