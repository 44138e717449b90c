"""Schools (spec §3) and classes: the register's school units and the groups they export.

A few thousand records even for a city: chosen here one by one, in register order, so
their rows and quarantine entries come in the order of the register.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from autosynk.model import CLASS, SCHOOL

if TYPE_CHECKING:
    from autosynk.mapping.columnar.night import Night

SKOLENHET = "Skolenhet"

Principal = tuple[str, str, str, str]


def school_units(night: Night) -> dict[str, str]:
    """Organisation id -> the school unit it is or belongs to (the nearest Skolenhet above)."""
    orgs_table = night.arrow["organisations"]
    orgs = dict(
        zip(
            orgs_table["id"].to_pylist(),
            zip(
                orgs_table["organisation_type"].to_pylist(),
                orgs_table["parent"].to_pylist(),
                strict=True,
            ),
            strict=True,
        )
    )
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


def _strings(**columns: list[str]) -> pa.Table:
    return pa.table({name: pa.array(values, pa.string()) for name, values in columns.items()})


def map_schools(night: Night) -> list[Principal]:
    """School rows and ``school_in_org``; the tables ``unit_of`` and ``schools``."""
    spec = night.spec
    units = school_units(night)
    night.put("unit_of", _strings(org_id=list(units), unit=list(units.values())))
    types: dict[str, list[str]] = defaultdict(list)
    school_types = night.arrow["organisation_school_types"].sort_by(
        [("parent", "ascending"), ("pos", "ascending")]
    )
    for parent, school_type in zip(
        school_types["parent"].to_pylist(), school_types["school_type"].to_pylist(), strict=True
    ):
        types[parent].append(school_type)
    principals: list[Principal] = []
    found: dict[str, tuple[str, str]] = {}
    for org in night.arrow["organisations"].to_pylist():
        org_id = org["id"]
        if org["organisation_type"] != SKOLENHET or not night.is_live(org["start"], org["end"]):
            continue
        org_types = types.get(org_id, [])
        forms = {spec.school_forms[t] for t in org_types if t in spec.school_forms}
        form = next((f for f in spec.school_form_rank if f in forms), None)
        if form is None and forms:
            form = sorted(forms)[0]
        if form is None:
            shown = ", ".join(org_types) or "none"
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
    night.school_of = found
    night.put(
        "schools",
        _strings(
            org_id=list(found),
            ext=[ext for ext, _form in found.values()],
            form=[form for _ext, form in found.values()],
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
    school_of = night.school_of
    school_ids = {ext for ext, _form in school_of.values()}
    units = dict(
        zip(
            night.arrow["unit_of"]["org_id"].to_pylist(),
            night.arrow["unit_of"]["unit"].to_pylist(),
            strict=True,
        )
    )
    groups = night.arrow["groups"]
    live = groups.filter(night.live_mask(groups)).select(
        ["id", "name", "description", "organisation", "group_type", "school_type"]
    )
    principals: list[Principal] = []
    member_groups: list[str] = []
    exported: dict[str, str] = {}
    for group in live.to_pylist():
        group_id, group_type = group["id"], group["group_type"]
        unit = units.get(group["organisation"])
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
    night.put("exported", _strings(group_id=list(exported), ext=list(exported.values())))
    memberships = night.arrow["group_memberships"]
    keep = pc.and_(
        pc.and_(
            pc.is_in(memberships["parent"], value_set=pa.array(member_groups, pa.string())),
            pc.is_valid(memberships["person"]),
        ),
        pc.fill_null(night.live_mask(memberships), False),
    )
    night.put(
        "members",
        memberships.filter(keep)
        .select(["parent", "person"])
        .rename_columns(["group_id", "person"]),
    )
    del memberships, keep
    night.let_go("groups", "group_memberships")  # read by no later step
    return principals
