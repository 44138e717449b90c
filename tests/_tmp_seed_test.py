"""The demo municipality: realism, integrity and determinism of generate() and mutate()."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import stat
from collections import Counter
from pathlib import Path
from typing import Any

import msgspec
import pytest
from personnummer import personnummer as pnr

from autosynk.demo.generate import generate, school_year
from autosynk.demo.mutate import mutate
from autosynk.demo.names import fold_ascii, luhn_digit
from autosynk.errors import ConfigError, SourceError
from autosynk.identity import normalise
from autosynk.sources import ENTITIES

TODAY = dt.date(2025, 9, 2)
SY_FIRST = 2025  # the school year 2025/26 contains TODAY
TF = re.compile(r"^\d{8}-TF\d{2}$")
Data = dict[str, list[dict[str, Any]]]


def load(folder: Path) -> Data:
    return {n: msgspec.json.decode((folder / f"{n}.json").read_bytes())["data"] for n in ENTITIES}


def is_active(record: dict[str, Any], day: dt.date) -> bool:
    iso = day.isoformat()
    return record.get("startDate", "") <= iso and (
        record.get("endDate") is None or iso <= record["endDate"]
    )


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int], Data]:
    folder = tmp_path_factory.mktemp("demo") / "small"
    counts = generate(folder, seed=123, scale="small", today=TODAY)
    return folder, counts, load(folder)


@pytest.fixture(scope="module")
def data(small: tuple[Path, dict[str, int], Data]) -> Data:
    return small[2]


def persons_by_id(data: Data) -> dict[str, dict[str, Any]]:
    return {p["id"]: p for p in data["persons"]}


def children(data: Data) -> list[dict[str, Any]]:
    return [p for p in data["persons"] if p.get("enrolments")]


def guardian_ids(data: Data) -> set[str]:
    return {r["person"]["id"] for p in data["persons"] for r in p.get("responsibles", [])}


def staff_ids(data: Data) -> set[str]:
    return {d["person"]["id"] for d in data["duties"]}


def current_enrolment(person: dict[str, Any], day: dt.date = TODAY) -> dict[str, Any]:
    live = [e for e in person["enrolments"] if not e["cancelled"] and is_active(e, day)]
    assert len(live) == 1
    return live[0]


# ---- pure helpers ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("nine", "digit"),
    [("811218987", 6), ("900101001", 7), ("121212121", 2), ("000000000", 0)],
)
def test_luhn_digit(nine: str, digit: int) -> None:
    assert luhn_digit(nine) == digit


@pytest.mark.parametrize(
    ("name", "folded"),
    [("Nguyễn", "nguyen"), ("Łukasz", "lukasz"), ("Şahin", "sahin"), ("Åsa-Märta", "asa-marta"),
     ("Đorđević", "dordevic"), ("Yılmaz", "yilmaz"), ("Al Hakim", "alhakim")],
)  # fmt: skip
def test_fold_ascii(name: str, folded: str) -> None:
    assert fold_ascii(name) == folded


@pytest.mark.parametrize(
    ("today", "start", "end"),
    [
        (dt.date(2026, 3, 10), dt.date(2025, 7, 1), dt.date(2026, 6, 30)),
        (dt.date(2025, 9, 1), dt.date(2025, 7, 1), dt.date(2026, 6, 30)),
        # the boundary days move by one so that start < today < end holds
        (dt.date(2025, 7, 1), dt.date(2025, 6, 30), dt.date(2026, 6, 30)),
        (dt.date(2026, 6, 30), dt.date(2025, 7, 1), dt.date(2026, 7, 1)),
    ],
)
def test_school_year(today: dt.date, start: dt.date, end: dt.date) -> None:
    year = school_year(today)
    assert (year.start, year.end) == (start, end)
    assert year.start < today < year.end


# ---- files, determinism ------------------------------------------------------------


def test_files_are_private_and_counted(small: tuple[Path, dict[str, int], Data]) -> None:
    folder, counts, data = small
    for name in ENTITIES:
        path = folder / f"{name}.json"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
        assert counts[name] == len(data[name])
    assert counts["schools"] == 5
    assert 300 <= counts["children"] <= 650
    assert counts["guardians"] == len(guardian_ids(data))
    assert counts["staff"] == len(staff_ids(data))
    assert counts["protected"] == sum(p["securityMarking"] != "Ingen" for p in data["persons"])


def test_same_seed_same_bytes_other_seed_other_bytes(
    small: tuple[Path, dict[str, int], Data], tmp_path: Path
) -> None:
    folder = small[0]
    generate(tmp_path / "again", seed=123, scale="small", today=TODAY)
    generate(tmp_path / "other", seed=8, scale="small", today=TODAY)
    for name in ENTITIES:
        original = (folder / f"{name}.json").read_bytes()
        assert (tmp_path / "again" / f"{name}.json").read_bytes() == original, name
        assert (tmp_path / "other" / f"{name}.json").read_bytes() != original, name


def test_unknown_scale_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="huge"):
        generate(tmp_path, seed=1, scale="huge", today=TODAY)


# ---- integrity ---------------------------------------------------------------------


def test_ids_are_unique_across_entities(data: Data) -> None:
    ids = [r["id"] for name in ENTITIES for r in data[name]]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[0-9a-f-]{36}", i) for i in ids)


def test_every_reference_resolves(data: Data) -> None:
    orgs = {o["id"] for o in data["organisations"]}
    persons = {p["id"] for p in data["persons"]}
    groups = {g["id"] for g in data["groups"]}
    duties = {d["id"] for d in data["duties"]}
    for org in data["organisations"]:
        assert org.get("parentOrganisation", {"id": next(iter(orgs))})["id"] in orgs
    for person in data["persons"]:
        assert {e["enroledAt"]["id"] for e in person.get("enrolments", [])} <= orgs
        assert {r["person"]["id"] for r in person.get("responsibles", [])} <= persons
    for group in data["groups"]:
        assert group["organisation"]["id"] in orgs
        assert {m["person"]["id"] for m in group["groupMemberships"]} <= persons
    for duty in data["duties"]:
        assert duty["person"]["id"] in persons and duty["dutyAt"]["id"] in orgs
        assert {a["group"]["id"] for a in duty["assignmentRole"]} <= groups
    for activity in data["activities"]:
        assert activity["organisation"]["id"] in orgs
        assert {g["id"] for g in activity["groups"]} <= groups
        assert {t["duty"]["id"] for t in activity["teachers"]} <= duties


def test_every_entity_has_rfc3339_meta(data: Data) -> None:
    stamp = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
    for name in ENTITIES:
        for record in data[name]:
            assert stamp.match(record["meta"]["created"]), name
            assert record["meta"]["created"] <= record["meta"]["modified"] < TODAY.isoformat()


# ---- organisation tree and groups --------------------------------------------------


def test_organisation_tree(data: Data) -> None:
    orgs = {o["id"]: o for o in data["organisations"]}
    kinds = Counter(o["organisationType"] for o in orgs.values())
    assert kinds["Huvudman"] == 1 and kinds["Skola"] >= 3 and kinds["Skolenhet"] == 5
    units = [o for o in orgs.values() if o["organisationType"] == "Skolenhet"]
    for unit in units:
        assert re.fullmatch(r"\d{8}", unit["schoolUnitCode"])
        assert orgs[unit["parentOrganisation"]["id"]]["organisationType"] == "Skola"
    assert len({u["schoolUnitCode"] for u in units}) == len(units)
    for school in (o for o in orgs.values() if o["organisationType"] == "Skola"):
        assert orgs[school["parentOrganisation"]["id"]]["organisationType"] == "Huvudman"
    assert sorted(tuple(u["schoolTypes"]) for u in units) == [
        ("FS",),
        ("FS",),
        ("FSK", "GR", "FTH"),
        ("FSK", "GR", "FTH"),
        ("GY",),
    ]


def test_group_types_and_class_names(data: Data) -> None:
    kinds = Counter(g["groupType"] for g in data["groups"])
    for kind in ("Klass", "Undervisning", "Avdelning", "Mentor", "Schema", "Personalgrupp"):
        assert kinds[kind] > 0, kind
    names = {g["displayName"] for g in data["groups"] if g["groupType"] == "Klass"}
    assert {"FA", "FB", "1A", "7B", "9A"} <= names
    assert any(re.fullmatch(r"NA2[345]", n) for n in names)
    by_type = {(g["groupType"], g["schoolType"]) for g in data["groups"]}
    assert {("Avdelning", "FS"), ("Klass", "FSK"), ("Klass", "GR"), ("Klass", "GY")} <= by_type


def test_everything_meant_to_be_active_is_active(data: Data) -> None:
    for group in data["groups"]:
        assert group["startDate"] < TODAY.isoformat() and is_active(group, TODAY)
        for membership in group["groupMemberships"]:
            assert membership["startDate"] < TODAY.isoformat() and is_active(membership, TODAY)
    for duty in data["duties"]:
        assert is_active(duty, TODAY)
        assert all(is_active(a, TODAY) for a in duty["assignmentRole"])
    for activity in data["activities"]:
        assert is_active(activity, TODAY)
        assert all(is_active(t, TODAY) for t in activity["teachers"])
    for child in children(data):
        current_enrolment(child)


@pytest.mark.parametrize("today", [dt.date(2025, 7, 1), dt.date(2026, 6, 30)])
def test_boundary_days_still_active(today: dt.date, tmp_path: Path) -> None:
    generate(tmp_path, seed=2, scale="small", today=today)
    data = load(tmp_path)
    for group in data["groups"]:
        for membership in group["groupMemberships"]:
            assert membership["startDate"] < today.isoformat()
            assert membership.get("endDate", "9999") > today.isoformat()
    for child in children(data):
        current_enrolment(child, today)


# ---- people ------------------------------------------------------------------------


def test_civic_numbers_valid_unique_and_in_every_style(data: Data) -> None:
    values = [p["civicNo"]["value"] for p in data["persons"]]
    for value in values:
        assert TF.match(value) or pnr.valid(value), value
    canonical = [normalise(v, TODAY).value for v in values]
    assert len(set(canonical)) == len(canonical)
    assert any(re.fullmatch(r"\d{8}-\d{4}", v) for v in values)
    assert any(re.fullmatch(r"\d{6}-\d{4}", v) for v in values)
    assert any(re.fullmatch(r"\d{10}|\d{12}", v) for v in values)
    assert any(TF.match(v) for v in values)
    assert any(normalise(v, TODAY).kind == "samordningsnummer" for v in values)


def test_ages_match_roles(data: Data) -> None:
    persons = persons_by_id(data)
    for child in children(data):
        enrolment = current_enrolment(child)
        born = int(normalise(child["civicNo"]["value"], TODAY).value[:4])
        kind = enrolment["schoolType"]
        if kind == "FS":
            assert "schoolYear" not in enrolment
            assert SY_FIRST - 5 <= born <= SY_FIRST - 2
        else:
            offset = 15 if kind == "GY" else 6
            assert born == SY_FIRST - offset - enrolment["schoolYear"]
    for guardian_id in guardian_ids(data):
        born = int(normalise(persons[guardian_id]["civicNo"]["value"], TODAY).value[:4])
        assert born <= TODAY.year - 18


def test_school_years(data: Data) -> None:
    seen: dict[str, set[int]] = {}
    for child in children(data):
        enrolment = current_enrolment(child)
        seen.setdefault(enrolment["schoolType"], set()).add(enrolment.get("schoolYear", -1))
    assert seen == {"FS": {-1}, "FSK": {0}, "GR": set(range(1, 10)), "GY": {1, 2, 3}}


def test_families(data: Data) -> None:
    persons = persons_by_id(data)
    kids = children(data)
    guardian_counts = Counter(len(c["responsibles"]) for c in kids)
    assert set(guardian_counts) == {1, 2}
    assert guardian_counts[2] > guardian_counts[1] > 0
    assert all(r["relationType"] == "Vårdnadshavare" for c in kids for r in c["responsibles"])
    schools_of: dict[str, set[str]] = {}
    for child in kids:
        unit = current_enrolment(child)["enroledAt"]["id"]
        for responsible in child["responsibles"]:
            schools_of.setdefault(responsible["person"]["id"], set()).add(unit)
    assert any(len(units) >= 2 for units in schools_of.values())
    teachers_as_guardians = guardian_ids(data) & staff_ids(data)
    assert len(teachers_as_guardians) == 1
    teacher = persons[teachers_as_guardians.pop()]
    assert {m["type"] for m in teacher["emails"]} == {"Personal", "Privat"}


def test_staff_roles(data: Data) -> None:
    groups = {g["id"]: g for g in data["groups"]}
    roles = {
        (a["assignmentRoleType"], groups[a["group"]["id"]]["groupType"])
        for d in data["duties"]
        for a in d["assignmentRole"]
    }
    assert {
        ("Mentor", "Klass"),
        ("Förskollärare", "Avdelning"),
        ("Barnskötare", "Avdelning"),
    } <= roles
    duties = {d["id"]: d for d in data["duties"]}
    linked = {
        groups[g["id"]]["groupType"]
        for a in data["activities"]
        for g in a["groups"]
        if all(duties[t["duty"]["id"]]["dutyRole"] == "Lärare" for t in a["teachers"])
    }
    assert {"Klass", "Undervisning"} <= linked
    assert {"Rektor", "Lärare", "Förskollärare", "Barnskötare"} <= {
        d["dutyRole"] for d in data["duties"]
    }


def test_markings_and_status(data: Data) -> None:
    kids = {c["id"] for c in children(data)}
    marked = [p for p in data["persons"] if p["securityMarking"] != "Ingen"]
    assert {p["securityMarking"] for p in marked} == {"Skyddad folkbokföring", "Sekretessmarkering"}
    assert sum(p["id"] in kids for p in marked) >= 2
    assert sum(p["id"] in guardian_ids(data) for p in marked) == 1
    assert all("addresses" not in p for p in marked if p["securityMarking"].startswith("Skyddad"))
    status = Counter(p["personStatus"] for p in data["persons"])
    assert status == {"Aktiv": len(data["persons"]) - 1, "Avliden": 1}


def test_names_and_contact_details(data: Data) -> None:
    people = data["persons"]
    full_names = [f"{p['givenName']} {p['familyName']}" for p in people]
    assert any(set("åäöÅÄÖ") & set(name) for name in full_names)
    outside_latin1 = [n for n in full_names if not n.isascii() and not _latin1(n)]
    assert len(outside_latin1) >= 3
    guardians, staff = guardian_ids(data), staff_ids(data)
    for person in people:
        types = {m["type"] for m in person.get("emails", [])}
        if person["id"] in staff:
            assert "Personal" in types
        elif person["id"] in guardians:
            assert types <= {"Privat"}
    assert sum("Privat" in {m["type"] for m in p.get("emails", [])} for p in people) > 500
    mobile = {ph["mobile"] for p in people for ph in p.get("phoneNumbers", [])}
    assert mobile == {True, False}
    with_address = [
        p for p in people if any(a["type"] == "Folkbokföring" for a in p.get("addresses", []))
    ]
    assert len(with_address) >= 0.9 * len(people)
    address = with_address[0]["addresses"][0]
    assert re.fullmatch(r"\d{3} \d{2}", address["postalCode"])
    assert address["streetAddress"] and address["locality"]


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


# ---- mutate ------------------------------------------------------------------------

DAY_AFTER = TODAY + dt.timedelta(days=1)


@pytest.fixture(scope="module")
def mutated(
    small: tuple[Path, dict[str, int], Data], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[str], Data]:
    folder = tmp_path_factory.mktemp("mutated") / "day"
    shutil.copytree(small[0], folder)
    lines = mutate(folder, seed=3, today=DAY_AFTER)
    return folder, lines, load(folder)


def test_mutate_is_deterministic_and_private(
    small: tuple[Path, dict[str, int], Data],
    mutated: tuple[Path, list[str], Data],
    tmp_path: Path,
) -> None:
    shutil.copytree(small[0], tmp_path / "again")
    assert mutate(tmp_path / "again", seed=3, today=DAY_AFTER) == mutated[1]
    for name in ENTITIES:
        again = (tmp_path / "again" / f"{name}.json").read_bytes()
        assert again == (mutated[0] / f"{name}.json").read_bytes(), name
        assert stat.S_IMODE((mutated[0] / f"{name}.json").stat().st_mode) == 0o600
    shutil.copytree(small[0], tmp_path / "other")
    mutate(tmp_path / "other", seed=4, today=DAY_AFTER)
    assert (tmp_path / "other" / "persons.json").read_bytes() != (
        mutated[0] / "persons.json"
    ).read_bytes()


def test_mutate_reports_every_change_without_personal_data(
    mutated: tuple[Path, list[str], Data],
) -> None:
    lines = mutated[1]
    assert len(lines) == 7
    assert not any(line.startswith("skipped") for line in lines), lines
    assert not any(re.search(r"\d{6}", line) for line in lines)
    assert lines[0].startswith("new pupil in class ") and "with 2 guardians at " in lines[0]


def test_mutate_changes_are_in_the_data(data: Data, mutated: tuple[Path, list[str], Data]) -> None:
    after = mutated[2]
    today, yesterday = DAY_AFTER.isoformat(), TODAY.isoformat()
    before_persons, after_persons = persons_by_id(data), persons_by_id(after)
    stamp = f"{today}T12:00:00Z"

    # new pupil with two new guardians, enrolled and in a class from today
    new_ids = set(after_persons) - set(before_persons)
    new_kids = [after_persons[i] for i in new_ids if after_persons[i].get("enrolments")]
    assert len(new_kids) == 1
    kid = new_kids[0]
    assert kid["enrolments"][0]["startDate"] == today
    assert {r["person"]["id"] for r in kid["responsibles"]} <= new_ids
    assert len(kid["responsibles"]) == 2
    memberships = [
        (g, m)
        for g in after["groups"]
        for m in g["groupMemberships"]
        if m["person"]["id"] == kid["id"]
    ]
    assert [(g["groupType"], m["startDate"]) for g, m in memberships] == [("Klass", today)]
    assert memberships[0][0]["meta"]["modified"] == stamp

    # a new guardian on an existing child: 3 new persons in all, one of them that guardian
    assert len(new_ids) == 4
    grown = [
        p
        for i, p in before_persons.items()
        if len(after_persons[i].get("responsibles", [])) == len(p.get("responsibles", [])) + 1
    ]
    assert len(grown) == 1 and grown[0]["responsibles"] != []
    assert after_persons[grown[0]["id"]]["responsibles"][-1]["person"]["id"] in new_ids

    # a leaver: enrolment and every membership end yesterday
    ended = [
        after_persons[i]
        for i, p in before_persons.items()
        if p.get("enrolments") and p["enrolments"] != after_persons[i]["enrolments"]
    ]
    assert len(ended) == 1
    leaver = ended[0]
    assert leaver["enrolments"][-1]["endDate"] == yesterday
    assert leaver["meta"]["modified"] == stamp
    for group in after["groups"]:
        for membership in group["groupMemberships"]:
            if membership["person"]["id"] == leaver["id"]:
                assert membership["endDate"] == yesterday

    # a class change: one class membership ends yesterday, another (same school) starts today
    before_groups = {g["id"]: g for g in data["groups"]}
    movers = [
        (g, m)
        for g in after["groups"]
        for m in g["groupMemberships"]
        if g["groupType"] == "Klass" and m["startDate"] == today and m["person"]["id"] != kid["id"]
    ]
    assert len(movers) == 1
    new_class, joined = movers[0]
    old = [
        g
        for g in after["groups"]
        if g["groupType"] == "Klass"
        and g["id"] != new_class["id"]
        and any(
            m["person"]["id"] == joined["person"]["id"] and m.get("endDate") == yesterday
            for m in g["groupMemberships"]
        )
    ]
    assert len(old) == 1 and old[0]["organisation"] == new_class["organisation"]
    assert joined["person"]["id"] != leaver["id"]
    assert any(
        m["person"]["id"] == joined["person"]["id"]
        for m in before_groups[old[0]["id"]]["groupMemberships"]
    )

    # a changed staff e-mail
    changed_mail = [
        i for i in staff_ids(data) if before_persons[i]["emails"] != after_persons[i]["emails"]
    ]
    assert len(changed_mail) == 1
    assert after_persons[changed_mail[0]]["meta"]["modified"] == stamp

    # a teacher replaced on one activity
    before_activities = {a["id"]: a for a in data["activities"]}
    replaced = [a for a in after["activities"] if a != before_activities[a["id"]]]
    assert len(replaced) == 1
    teachers = replaced[0]["teachers"]
    assert [t["endDate"] for t in teachers if t["startDate"] < today].count(yesterday) == 1
    newcomer = [t for t in teachers if t["startDate"] == today]
    assert len(newcomer) == 1
    assert newcomer[0]["duty"]["id"] not in {
        t["duty"]["id"] for t in before_activities[replaced[0]["id"]]["teachers"]
    }

    # a closed teaching group
    closed = [g for g in after["groups"] if g.get("endDate") == yesterday]
    assert len(closed) == 1 and closed[0]["groupType"] == "Undervisning"
    assert before_groups[closed[0]["id"]]["endDate"] != yesterday


def test_mutate_without_files_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="missing"):
        mutate(tmp_path, seed=1, today=DAY_AFTER)
