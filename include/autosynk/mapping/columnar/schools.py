"""Schools (spec §3) and classes: the register's school units and the groups they export.

A few thousand records even for a city: chosen here one by one, in register order, so
their rows and quarantine entries come in the order of the register.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

import pyarrow as pa

from autosynk.model import CLASS, SCHOOL

if TYPE_CHECKING:
    from autosynk.mapping.columnar.night import Night

SKOLENHET = "Skolenhet"

Principal = tuple[str, str, str, str]


def school_units(night: Night) -> dict[str, str]:
    """Organisation id -> the school unit it is or belongs to (the nearest Skolenhet above)."""
    orgs = {
        org_id: (kind, parent)
        for org_id, kind, parent in night.rows_of(
            "SELECT id, organisation_type, parent FROM organisations"
        )
    }
    units: dict[str, str] = {}
    for org_id in orgs:
        seen: set[str] = set()
        current: str | None = org_id
        while current is not None and current in orgs and current not in seen:
            seen.add(current)
            kind, parent = orgs[current]
            if kind == SKOLENHET:
                units[org_id] = current
                break
            current = parent
    return units


def map_schools(night: Night) -> list[Principal]:
    """School rows and ``school_in_org``; the tables ``unit_of`` and ``schools``."""
    spec = night.spec
    units = school_units(night)
    night.put(
        "unit_of",
        pa.table(
            {
                "org_id": pa.array(list(units), pa.string()),
                "unit": pa.array(list(units.values()), pa.string()),
            }
        ),
    )
    types: dict[str, list[str]] = defaultdict(list)
    for parent, school_type in night.rows_of(
        "SELECT parent, school_type FROM organisation_school_types ORDER BY parent, pos"
    ):
        types[parent].append(school_type)
    columns = night.con.sql("SELECT * FROM organisations ORDER BY seq").fetch_arrow_table()
    principals: list[Principal] = []
    found: dict[str, tuple[str, str]] = {}
    for org in columns.to_pylist():
        org_id = org["id"]
        if org["organisation_type"] != SKOLENHET or not night.is_live(org["start"], org["end"]):
            continue
        school_types = types.get(org_id, [])
        forms = {spec.school_forms[t] for t in school_types if t in spec.school_forms}
        form = next((f for f in spec.school_form_rank if f in forms), None)
        if form is None and forms:
            form = sorted(forms)[0]
        if form is None:
            shown = ", ".join(school_types) or "none"
            night.quarantine(
                "organisation", org_id, f"school form cannot be mapped (school types: {shown})"
            )
            continue
        code = org["school_unit_code"]
        external_id = spec.external_ids.school.format(
            id=org_id, code=code, school_year=night.school_year
        )
        if not external_id.strip() or external_id.startswith("-") or external_id.endswith("-"):
            night.quarantine(
                "organisation",
                org_id,
                "external id template gave an incomplete id (is schoolUnitCode missing?)",
            )
            continue
        row = night.rows.school(org_id, external_id, code, form, org)
        if row is None:
            continue
        found[org_id] = (external_id, form)
        principals.append((SCHOOL, external_id, org_id, row))
        night.fixed_relations.append(("school_in_org", external_id, night.organisation_id))
    night.counts["schools"] = len(found)
    night.put(
        "schools",
        pa.table(
            {
                "org_id": pa.array(list(found), pa.string()),
                "ext": pa.array([ext for ext, _form in found.values()], pa.string()),
                "form": pa.array([form for _ext, form in found.values()], pa.string()),
            }
        ),
    )
    return principals


def map_classes(night: Night) -> list[Principal]:
    """Class rows and ``class_in_school``; the tables ``exported`` and ``members``.

    ``members`` holds the active members of every live group of an exported school,
    exported or not (a mentor group need not be a Unikum group).
    """
    spec = night.spec
    wanted = set(spec.group_types)
    school_of = {
        org_id: (ext, form) for org_id, ext, form in night.rows_of("SELECT * FROM schools")
    }
    school_ids = {ext for ext, _form in school_of.values()}
    live = night.con.sql(
        "SELECT g.id, g.name, g.description, g.group_type, g.school_type, u.unit "
        "FROM groups g LEFT JOIN unit_of u ON u.org_id = g.organisation "
        f"WHERE {night.live('g')} ORDER BY g.seq"
    ).fetch_arrow_table()
    principals: list[Principal] = []
    member_groups: list[str] = []
    exported: dict[str, str] = {}
    for group in live.to_pylist():
        group_id, unit, group_type = group["id"], group["unit"], group["group_type"]
        if unit not in school_of:
            if group_type in wanted:
                reason = (
                    "its school is not exported (quarantined, closed or not a school unit)"
                    if unit is not None
                    else "its organisation is not a known school unit (dangling reference)"
                )
                night.quarantine("group", group_id, reason)
            continue
        member_groups.append(group_id)
        if group_type not in wanted:
            continue
        school_ext, school_form = school_of[unit]
        external_id = spec.external_ids.class_.format(
            id=group_id, code="", school_year=night.school_year
        )
        if external_id in school_ids:
            night.quarantine("group", group_id, "external id is already used by a school")
            continue
        group_form = spec.school_forms.get(group["school_type"], "")
        row = night.rows.group(
            group_id,
            external_id,
            "" if group_form == school_form else group_form,
            group["name"],
            group["description"],
        )
        if row is None:
            continue
        exported[group_id] = external_id
        principals.append((CLASS, external_id, group_id, row))
        night.fixed_relations.append(("class_in_school", external_id, school_ext))
    night.counts["classes"] = len(exported)
    night.put(
        "exported",
        pa.table(
            {
                "group_id": pa.array(list(exported), pa.string()),
                "ext": pa.array(list(exported.values()), pa.string()),
            }
        ),
    )
    night.put("member_groups", pa.table({"id": pa.array(member_groups, pa.string())}))
    night.table(
        "members",
        "SELECT m.parent AS group_id, m.person FROM group_memberships m "
        "WHERE m.parent IN (SELECT id FROM member_groups) "
        f"AND m.person IS NOT NULL AND {night.live('m')}",
    )
    return principals
