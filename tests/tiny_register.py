"""A tiny, hand-written SS 12000 register whose Unikum result is known line by line.

Used by the pipeline tests as literal input with literal expected output. Dates are open
or far in the past, so the register looks the same on any evaluation date.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

ORG = "exempelby-kommun"
START = "2020-08-15"

C1, C2, C3 = "20130315-2381", "20130422-2464", "20220611-1235"
T1, P1 = "19850101-1236", "19750505-1115"
G1, G2 = "19870202-4566", "19790303-7898"
G3_BAD = "19800404-3210"  # wrong check digit


def _ref(id_: str) -> dict[str, str]:
    return {"id": id_}


def _person(id_: str, given: str, family: str, civic: str, **extra: Any) -> dict[str, Any]:
    person = {
        "id": id_,
        "givenName": given,
        "familyName": family,
        "civicNo": {"value": civic},
        "securityMarking": "Ingen",
        "personStatus": "Aktiv",
    }
    person.update(extra)
    return person


def register() -> dict[str, list[dict[str, Any]]]:
    organisations = [
        {"id": "hm", "displayName": "Exempelby kommun", "organisationType": "Huvudman"},
        {
            "id": "sk1",
            "displayName": "Ekbackens skolor",
            "organisationType": "Skola",
            "parentOrganisation": _ref("hm"),
        },
        {
            "id": "u1",
            "displayName": "Ekbackens skola",
            "organisationType": "Skolenhet",
            "schoolUnitCode": "12345678",
            "schoolTypes": ["FSK", "GR", "FTH"],
            "parentOrganisation": _ref("sk1"),
            "startDate": START,
        },
        {
            "id": "u2",
            "displayName": "Förskolan Solros",
            "organisationType": "Skolenhet",
            "schoolUnitCode": "87654321",
            "schoolTypes": ["FS"],
            "parentOrganisation": _ref("hm"),
        },
        {
            "id": "u3",
            "displayName": "Särgymnasiet",
            "organisationType": "Skolenhet",
            "schoolUnitCode": "11223344",
            "schoolTypes": ["GYS"],
            "parentOrganisation": _ref("hm"),
        },
    ]
    persons = [
        _person(
            "c1",
            "Åsa",
            "Öberg",
            C1.replace("-", ""),
            emails=[{"value": "asa.oberg@elev.exempelby.se", "type": "Skola"}],
            enrolments=[
                {"enroledAt": _ref("u1"), "schoolType": "GR", "schoolYear": 7, "startDate": START}
            ],
            responsibles=[
                {"person": _ref("g1"), "relationType": "Vårdnadshavare"},
                {"person": _ref("g2"), "relationType": "Vårdnadshavare"},
                {"person": _ref("t1"), "relationType": "Annan"},
            ],
        ),
        _person(
            "c2",
            "Dolt",
            "Barn",
            C2,
            securityMarking="Skyddad folkbokföring",
            enrolments=[
                {"enroledAt": _ref("u1"), "schoolType": "GR", "schoolYear": 7, "startDate": START}
            ],
            responsibles=[{"person": _ref("g1"), "relationType": "Vårdnadshavare"}],
        ),
        _person(
            "c3",
            "Liam",
            "Nguyễn",
            C3,
            enrolments=[{"enroledAt": _ref("u2"), "schoolType": "FS", "startDate": START}],
            responsibles=[{"person": _ref("g3"), "relationType": "Vårdnadshavare"}],
        ),
        _person(
            "t1",
            "Karin",
            "Lärare",
            T1,
            emails=[{"value": "Karin.Larare@Exempelby.se", "type": "Personal"}],
            phoneNumbers=[{"value": "070-123 45 67", "type": "Mobil", "mobile": True}],
        ),
        _person(
            "p1",
            "Per",
            "Pedagog",
            P1,
            emails=[{"value": "per.pedagog@exempelby.se", "type": "Personal"}],
        ),
        _person(
            "g1",
            "Anna",
            "Öberg",
            G1,
            emails=[{"value": "anna@example.se", "type": "Privat"}],
            addresses=[
                {
                    "type": "Folkbokföringsadress",
                    "streetAddress": "Storgatan 1",
                    "postalCode": "12345",
                    "locality": "Exempelby",
                }
            ],
        ),
        _person("g2", "Bo", "Öberg", G2.replace("19", "", 1)),
        _person("g3", "Trasig", "Nummer", G3_BAD),
    ]
    groups = [
        {
            "id": "7a",
            "displayName": "7A",
            "groupType": "Klass",
            "schoolType": "GR",
            "organisation": _ref("u1"),
            "startDate": START,
            "groupMemberships": [
                {"person": _ref("c1"), "startDate": START},
                {"person": _ref("c2"), "startDate": START},
            ],
        },
        {
            "id": "ma7",
            "displayName": "Matematik 7",
            "groupType": "Undervisning",
            "schoolType": "GR",
            "organisation": _ref("u1"),
            "groupMemberships": [{"person": _ref("c1")}],
        },
        {
            "id": "avd1",
            "displayName": "Avdelning Blå",
            "groupType": "Avdelning",
            "schoolType": "FS",
            "organisation": _ref("u2"),
            "groupMemberships": [{"person": _ref("c3")}],
        },
        {
            "id": "ment",
            "displayName": "Mentorsgrupp",
            "groupType": "Mentor",
            "organisation": _ref("u1"),
            "groupMemberships": [{"person": _ref("c1")}],
        },
        {"id": "gys1", "displayName": "GYS1", "groupType": "Klass", "organisation": _ref("u3")},
    ]
    duties = [
        {
            "id": "d1",
            "person": _ref("t1"),
            "dutyAt": _ref("u1"),
            "dutyRole": "Lärare",
            "startDate": START,
            "assignmentRole": [{"group": _ref("7a"), "assignmentRoleType": "Mentor"}],
        },
        {
            "id": "d2",
            "person": _ref("p1"),
            "dutyAt": _ref("u2"),
            "dutyRole": "Förskollärare",
            "assignmentRole": [{"group": _ref("avd1"), "assignmentRoleType": "Förskollärare"}],
        },
    ]
    activities = [
        {
            "id": "a1",
            "displayName": "Matematik 7",
            "organisation": _ref("u1"),
            "groups": [_ref("ma7")],
            "teachers": [{"duty": _ref("d1")}],
        },
    ]
    return {
        "organisations": organisations,
        "persons": persons,
        "groups": groups,
        "duties": duties,
        "activities": activities,
    }


def write(folder: Path, data: dict[str, list[dict[str, Any]]] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, records in (data or register()).items():
        (folder / f"{name}.json").write_text(
            json.dumps({"data": records}, ensure_ascii=False), encoding="utf-8"
        )
    return folder


def edit(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """The register currently in ``folder`` (for a test to change and write back)."""
    return {
        name: copy.deepcopy(json.loads((folder / f"{name}.json").read_text())["data"])
        for name in ("organisations", "persons", "groups", "duties", "activities")
    }


#: the relations the default mapping must produce from register()
EXPECTED_RELATIONS = {
    ("school_in_org", "u1", ORG),
    ("school_in_org", "u2", ORG),
    ("class_in_school", "7a", "u1"),
    ("class_in_school", "ma7", "u1"),
    ("class_in_school", "avd1", "u2"),
    ("student_in_school", C1, "u1"),
    ("student_in_school", C3, "u2"),
    ("staff_in_school", T1, "u1"),
    ("staff_in_school", P1, "u2"),
    ("student_in_class", C1, "7a"),
    ("student_in_class", C1, "ma7"),
    ("student_in_class", C3, "avd1"),
    ("teacher_in_class", T1, "ma7"),
    ("teacher_in_class", P1, "avd1"),
    ("mentor_for", T1, C1),
    ("guardian_for", G1, C1),
    ("guardian_for", G2, C1),
    ("external_user_in_school", G1, "u1"),
    ("external_user_in_school", G2, "u1"),
}
