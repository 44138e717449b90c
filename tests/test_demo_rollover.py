"""The register's own school-year change on the demo municipality (demo rollover).

The oracle is the mapping (the public entry point the pipeline's transform uses) of the
register before and after the rollover: at a date in the old year nothing may differ, at
the effective date (1 July) every part of the change must be visible, for both register
styles (new group objects each year, or the same group renamed).
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import stat
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import msgspec
import pytest
from personnummer import personnummer as pnr

from autosynk.cli import main
from autosynk.demo.generate import generate
from autosynk.demo.mutate import mutate
from autosynk.demo.rollover import (
    breakdown,
    class_label,
    label_year,
    next_group_name,
    rollover,
)
from autosynk.errors import SourceError
from autosynk.identity import normalise
from autosynk.mapping.engine import map_register
from autosynk.mapping.spec import MappingSpec, load_mapping
from autosynk.register import read_snapshot
from autosynk.sources import ENTITIES

TODAY = dt.date(2026, 3, 10)  # in school year 2025/26
OLD_DATES = ("2026-03-10", "2026-06-30")  # today, and the old year's last day
EFFECTIVE = "2026-07-01"
SEED = 3
GRADE = 15  # field 16 of a user row
STYLES = ("new", "reuse")
TF = re.compile(r"^\d{8}-TF\d{2}$")


# ---- pure helpers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "group_type", "school_type", "year", "expected"),
    [
        ("7A", "Klass", "GR", 7, "8A"),
        ("1B", "Klass", "GR", 1, "2B"),
        ("FA", "Klass", "FSK", 0, "1A"),
        ("8B", "Klass", "GR", 8, "9B"),
        ("9A", "Klass", "GR", 9, None),  # the last year of grundskola leaves
        ("NA25", "Klass", "GY", 1, "NA25"),  # named for its intake year
        ("TE24", "Klass", "GY", 2, "TE24"),
        ("NA23", "Klass", "GY", 3, None),
        ("7A halvklass 2", "Schema", "GR", 7, "8A halvklass 2"),
        ("9B halvklass 1", "Schema", "GR", 9, None),
        ("Spanska 6", "Undervisning", "GR", 6, "Spanska 7"),
        ("Tyska 9", "Undervisning", "GR", 9, None),
        ("Mentor NA24 1", "Mentor", "GY", 2, "Mentor NA24 1"),
        ("Svenska 1 NA25", "Undervisning", "GY", 1, None),  # next year: other courses
        ("Fritids Ekdalskolan", "Övrigt", "FTH", None, "Fritids Ekdalskolan"),
        ("Klass Blå", "Klass", "GR", 4, "Klass Blå"),
        ("Engelska 1A", "Undervisning", "GR", 1, "Engelska 1A"),  # a label not first stays
        ("3C", "Klass", "GRS", 3, "4C"),
        ("9C", "Klass", "GRS", 9, None),
    ],
)
def test_next_group_name(
    name: str, group_type: str, school_type: str, year: int | None, expected: str | None
) -> None:
    assert next_group_name(name, group_type, school_type, year) == expected


@pytest.mark.parametrize(
    ("label", "year"),
    [("7A", 7), ("FB", 0), ("1A", 1), ("10A", 10), ("NA25", None), ("7", 7), ("Spanska", None)],
)
def test_label_year(label: str, year: int | None) -> None:
    assert label_year(label) == year


@pytest.mark.parametrize(
    ("year", "track", "label"), [(0, "A", "FA"), (1, "A", "1A"), (8, "B", "8B"), (3, "", "3")]
)
def test_class_label(year: int, track: str, label: str) -> None:
    assert class_label(year, track) == label


def test_breakdown_ranks_and_summarises() -> None:
    from collections import Counter

    counts = Counter({"Ekdalskolan": 3, "Åsgymnasiet": 9, "Björkskolan": 3})
    assert breakdown(counts) == "Åsgymnasiet 9, Björkskolan 3, Ekdalskolan 3"
    assert breakdown(counts, limit=1) == "Åsgymnasiet 9 and 2 more"
    assert breakdown(Counter()) == ""


# ---- the mapping of a register at a date -----------------------------------------------


@dataclass
class View:
    """One mapping of a register at one date, indexed the way the checks read it."""

    users: dict[str, list[str]]
    classes: dict[str, tuple[str, str]]  # external id -> (source id, name)
    relations: dict[str, set[tuple[str, str]]]
    quarantine: set[tuple[str, str, str, str]]
    protected: list[tuple[str, str]]
    principals: list[tuple[str, str, str, str]]
    all_relations: set[tuple[str, str, str]]
    by_type: dict[str, dict[str, set[str]]] = field(default_factory=dict)

    def of(self, rel_type: str, key: str) -> set[str]:
        """The second parties of ``key``'s relations of one type."""
        index = self.by_type.get(rel_type)
        if index is None:
            index = defaultdict(set)
            for a, b in self.relations.get(rel_type, set()):
                index[a].add(b)
            self.by_type[rel_type] = index
        return index.get(key, set())

    def keys(self, rel_type: str) -> set[str]:
        return {a for a, _b in self.relations.get(rel_type, set())}

    def grade(self, key: str) -> str:
        return self.users[key][GRADE]


def year_template(folder: Path) -> MappingSpec:
    path = folder / "mapping.yaml"
    path.write_text(
        "external_ids:\n  school: '{id}'\n  class: '{id}-{school_year}'\n", encoding="utf-8"
    )
    return load_mapping(path)


@cache
def view(folder: str, day: str, template: str = "") -> View:
    spec = load_mapping(Path(template)) if template else load_mapping()
    mapped = map_register(read_snapshot(Path(folder)), spec, "sjovik", day, "iso-8859-1")
    relations: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for rel_type, a, b in mapped.relations:
        relations[rel_type].add((a, b))
    return View(
        users={key: row.split("\t") for kind, key, _s, row in mapped.principals if kind == "user"},
        classes={
            key: (source, row.split("\t")[1])
            for kind, key, source, row in mapped.principals
            if kind == "class"
        },
        relations=relations,
        quarantine={(q.entity, q.source_id, q.severity, q.reason) for q in mapped.quarantine},
        protected=sorted(mapped.protected),
        principals=sorted(mapped.principals),
        all_relations=set(mapped.relations),
    )


def load(folder: Path) -> dict[str, list[dict[str, Any]]]:
    return {n: msgspec.json.decode((folder / f"{n}.json").read_bytes())["data"] for n in ENTITIES}


@dataclass
class Register:
    """What the checks need to know of the register itself (types of schools and groups)."""

    school_types: dict[str, set[str]]  # unit id (= school external id) -> schoolTypes
    group_types: dict[str, tuple[str, str]]  # group id -> (groupType, schoolType)
    names: dict[str, str]  # unit id -> name
    persons: list[dict[str, Any]]

    def kind(self, school: str) -> str:
        types = self.school_types[school]
        return "GY" if "GY" in types else "GR" if "GR" in types else "FS"


def register(folder: Path) -> Register:
    data = load(folder)
    return Register(
        school_types={
            o["id"]: set(o.get("schoolTypes") or [])
            for o in data["organisations"]
            if o["organisationType"] == "Skolenhet"
        },
        group_types={g["id"]: (g["groupType"], g["schoolType"]) for g in data["groups"]},
        names={o["id"]: o["displayName"] for o in data["organisations"]},
        persons=data["persons"],
    )


# ---- the demo municipality, rolled over in both styles ---------------------------------


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("rollover") / "original"
    generate(folder, seed=7, scale="small", today=TODAY)
    return folder


@dataclass
class Rolled:
    style: str
    folder: Path
    lines: list[str]


@pytest.fixture(scope="module", params=STYLES)
def rolled(
    request: pytest.FixtureRequest, original: Path, tmp_path_factory: pytest.TempPathFactory
) -> Rolled:
    folder = tmp_path_factory.mktemp("rolled") / request.param
    shutil.copytree(original, folder)
    lines = rollover(folder, SEED, today=TODAY, reuse_group_ids=request.param == "reuse")
    return Rolled(request.param, folder, lines)


def test_files_are_private_deterministic_and_seeded(
    original: Path, rolled: Rolled, tmp_path: Path
) -> None:
    reuse = rolled.style == "reuse"
    shutil.copytree(original, tmp_path / "again")
    shutil.copytree(original, tmp_path / "other")
    again = rollover(tmp_path / "again", SEED, today=TODAY, reuse_group_ids=reuse)
    rollover(tmp_path / "other", SEED + 1, today=TODAY, reuse_group_ids=reuse)
    assert again == rolled.lines
    for name in ENTITIES:
        path = rolled.folder / f"{name}.json"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
        assert (tmp_path / "again" / f"{name}.json").read_bytes() == path.read_bytes(), name
    assert (tmp_path / "other" / "persons.json").read_bytes() != (
        rolled.folder / "persons.json"
    ).read_bytes()


def test_a_second_rollover_of_the_same_year_is_refused(rolled: Rolled, tmp_path: Path) -> None:
    shutil.copytree(rolled.folder, tmp_path / "twice")
    before = (tmp_path / "twice" / "groups.json").read_bytes()
    with pytest.raises(SourceError, match="2026/27 has been rolled over already"):
        rollover(tmp_path / "twice", SEED, today=TODAY)
    assert (tmp_path / "twice" / "groups.json").read_bytes() == before


def test_lines_name_schools_and_counts_never_a_person(original: Path, rolled: Rolled) -> None:
    text = "\n".join(rolled.lines)
    assert "school year 2025/26 ends 2026-06-30, 2026/27 starts 2026-07-01" in text
    style = "groups renamed, ids kept" if rolled.style == "reuse" else "new groups, new ids"
    assert style in text
    for kind in (
        "promoted",
        "graduating year left",
        "moved away",
        "förskoleklass",
        "new preschool intake",
        "new gymnasium intake",
        "staff leaving",
        "mentors",
    ):
        assert kind in text, kind  # fmt: skip
    assert any(school in text for school in register(original).names.values())
    persons = load(rolled.folder)["persons"]
    assert not re.search(r"\d{6}-?\d{4}", text)
    for person in persons:
        assert person["id"] not in text
        assert f"{person['givenName']} {person['familyName']}" not in text


# ---- the old year is undisturbed -------------------------------------------------------


@pytest.mark.parametrize("day", OLD_DATES)
def test_the_old_year_looks_as_before(original: Path, rolled: Rolled, day: str) -> None:
    before, after = view(str(original), day), view(str(rolled.folder), day)
    assert after.all_relations == before.all_relations
    assert after.quarantine == before.quarantine
    assert after.protected == before.protected
    assert after.users == before.users
    if rolled.style == "new":
        assert after.principals == before.principals
        return
    # a register that reuses a group renames it: in the old year only that name differs
    renamed = {
        key: (before.classes[key][1], name)
        for key, (_source, name) in after.classes.items()
        if before.classes[key][1] != name
    }
    assert after.classes.keys() == before.classes.keys()
    assert renamed, "the reuse style renames last year's classes"
    assert ("7A", "8A") in renamed.values() and ("FA", "1A") in renamed.values()
    groups = register(rolled.folder).group_types
    for key, (old_name, new_name) in renamed.items():
        kind, school_type = groups[after.classes[key][0]]
        school_type = "FSK" if old_name.startswith("F") and kind == "Klass" else school_type
        assert new_name == next_group_name(old_name, kind, school_type, name_year(old_name))


def test_the_register_ends_the_year_on_30_june_and_starts_the_next_on_1_july(
    original: Path, rolled: Rolled
) -> None:
    before, after = load(original), load(rolled.folder)
    old_ids = {g["id"] for g in before["groups"]}
    continuing = ("Avdelning", "Personalgrupp")
    renamed = 0
    for group in after["groups"]:
        if group["id"] not in old_ids:
            assert group["startDate"] == EFFECTIVE
            assert group.get("endDate", "2027-06-30") == "2027-06-30"
        elif group["groupType"] not in continuing and group.get("endDate") == "2027-06-30":
            renamed += 1  # the same group, next year (reuse style only)
        elif group["groupType"] not in continuing:
            assert group["endDate"] == OLD_DATES[1], group["displayName"]
        for membership in group["groupMemberships"]:
            assert membership["startDate"] <= OLD_DATES[1] or membership["startDate"] == EFFECTIVE
            assert membership.get("endDate", "9999") >= membership["startDate"]
            if membership["startDate"] <= OLD_DATES[1] and group["groupType"] not in continuing:
                assert membership.get("endDate") == OLD_DATES[1]
    assert (renamed > 0) == (rolled.style == "reuse")
    for person in after["persons"]:
        live = [e for e in person.get("enrolments", []) if not e["cancelled"]]
        for enrolment in live:
            if enrolment["startDate"] == EFFECTIVE:
                assert enrolment["schoolType"] == "FS" or "schoolYear" in enrolment
            elif enrolment["schoolType"] != "FS":
                assert enrolment.get("endDate", "9999") <= OLD_DATES[1]
    for activity in after["activities"]:
        assert activity["endDate"] in (OLD_DATES[1], "2027-06-30")
        assert activity["startDate"] == EFFECTIVE or activity["endDate"] == OLD_DATES[1]


# ---- the new year at the effective date ------------------------------------------------


def name_year(name: str) -> int | None:
    """The year a demo group's name says: "7A" and "7A halvklass 1" -> 7, "Tyska 8" -> 8."""
    first, last = name.split(" ")[0], name.split(" ")[-1]
    return label_year(first) if label_year(first) is not None else label_year(last)


def next_grade(grade: str) -> str:
    return "1" if grade == "F" else str(int(grade) + 1)


def students_at(v: View, reg: Register, kind: str) -> set[str]:
    return {a for a, school in v.relations["student_in_school"] if reg.kind(school) == kind}


def assert_clean(v: View, reg: Register) -> None:
    """What the school-year checklist blocks on: none of it in the demo."""
    class_school = dict(v.relations["class_in_school"])
    mentored = {pupil for _mentor, pupil in v.relations["mentor_for"]}
    for key, school in v.relations["student_in_school"]:
        classes = {c for c in v.of("student_in_class", key) if class_school.get(c) == school}
        assert classes, f"a pupil at {reg.names.get(school)} has no group there"
        if reg.kind(school) != "FS":
            assert v.grade(key), "every pupil in grundskola and gymnasium has an årskurs"
            assert key in mentored, "every pupil in grundskola and gymnasium has a mentor"
    taught = {c for _t, c in v.relations["teacher_in_class"]}
    assert set(v.classes) <= taught, "every class has a teacher"


def test_every_part_of_the_change_is_visible(original: Path, rolled: Rolled) -> None:
    old = view(str(original), OLD_DATES[1])
    new = view(str(rolled.folder), EFFECTIVE)
    before, after = register(original), register(rolled.folder)
    assert_clean(new, after)

    # (a) the year's groups ended; departments go on
    old_sources = {source for source, _n in old.classes.values()}
    new_sources = {source for source, _n in new.classes.values()}
    kept = old_sources & new_sources
    departments = {s for s in old_sources if before.group_types[s][0] == "Avdelning"}
    if rolled.style == "new":
        assert kept == departments
    else:
        assert departments < kept
        for source in kept - departments:  # the same group, next year's name
            old_name = next(n for s, n in old.classes.values() if s == source)
            new_name = next(n for s, n in new.classes.values() if s == source)
            kind, school_type = before.group_types[source]
            assert new_name == next_group_name(old_name, kind, school_type, name_year(old_name))

    # (b) next year's classes: promoted names, a new gymnasium intake
    def klass_names(v: View, reg: Register, kind: str) -> set[str]:
        return {
            name
            for ext, (source, name) in v.classes.items()
            if reg.group_types[source][0] == "Klass"
            and reg.kind(dict(v.relations["class_in_school"])[ext]) == kind
        }

    assert klass_names(new, after, "GR") == klass_names(old, before, "GR")
    assert {"FA", "FB", "1A", "9B"} <= klass_names(new, after, "GR")
    gy_old, gy_new = klass_names(old, before, "GY"), klass_names(new, after, "GY")
    assert gy_new - gy_old == {"NA26", "TE26"} and gy_old - gy_new == {"NA23", "TE23"}

    # (c) every pupil who stays at their school moves up one year
    stayed = 0
    for key, school in old.relations["student_in_school"]:
        if before.kind(school) != "FS" and (key, school) in new.relations["student_in_school"]:
            assert new.grade(key) == next_grade(old.grade(key))
            stayed += 1
    assert stayed > 300

    # (d) the graduating years are gone; guardians keep or lose the school
    for key in students_at(old, before, "GR") | students_at(old, before, "GY"):
        school = next(iter(old.of("student_in_school", key)))
        last = "9" if before.kind(school) == "GR" else "3"
        if old.grade(key) == last:
            assert not new.of("student_in_school", key), "a graduate is still enrolled"
    keeping, losing = guardian_changes(old, new, before)
    assert keeping, "a guardian keeps a school through another child"
    assert losing, "a guardian whose only child there leaves loses the school"

    # (e) the oldest preschool children start förskoleklass at a grundskola
    starters = students_at(old, before, "FS") & students_at(new, after, "GR")
    assert len(starters) >= 5
    class_school = dict(new.relations["class_in_school"])
    for key in starters:
        assert new.grade(key) == "F"
        fsk = [c for c in new.of("student_in_class", key) if class_school[c] in after.school_types]
        assert any(after.group_types[new.classes[c][0]] == ("Klass", "FSK") for c in fsk)
    oldest = [
        p
        for p in after.persons
        if p["securityMarking"] == "Ingen" and p["birthDate"][:4] <= "2020"  # turn 6 in 2026
    ]
    preschool_now = students_at(new, after, "FS")
    assert not {normalise(p["civicNo"]["value"]).value for p in oldest} & preschool_now

    # (f) a new preschool intake, with guardians and valid, unique identity numbers
    intake = preschool_now - set(old.users)
    assert len(intake) >= 8
    for key in intake:
        assert TF.match(key) or pnr.valid(key)
        assert {g for g, c in new.relations["guardian_for"] if c == key}
    numbers = [normalise(p["civicNo"]["value"]).value for p in after.persons]
    assert len(numbers) == len(set(numbers))

    # (g) some staff leave, among them a mentor and a class's teacher; new staff start
    gone = old.keys("staff_in_school") - new.keys("staff_in_school")
    arrived = new.keys("staff_in_school") - old.keys("staff_in_school")
    assert len(gone) >= 3 and len(arrived) >= len(gone)
    assert gone & old.keys("mentor_for")
    klasses = {
        ext for ext, (source, _n) in old.classes.items() if before.group_types[source][0] == "Klass"
    }
    assert any(old.of("teacher_in_class", key) & klasses for key in gone - old.keys("mentor_for"))
    assert not gone & new.keys("mentor_for")

    # (h) mentors and teachers for the new year: every new class, mentor links anew
    new_klasses = {
        ext for ext, (source, _n) in new.classes.items() if after.group_types[source][0] == "Klass"
    }
    for ext in new_klasses:
        members = {a for a, c in new.relations["student_in_class"] if c == ext}
        mentors = {m for m, s in new.relations["mentor_for"] if s in members}
        assert mentors or not members, f"class {new.classes[ext][1]} has no mentor"
    assert new.relations["mentor_for"] - old.relations["mentor_for"]

    # no quarantine entries: only the demo's usual warnings, for the new people
    added = new.quarantine - old.quarantine
    assert all(severity == "warning" for _e, _s, severity, _r in added)
    assert {reason for *_x, reason in added} <= {reason for *_x, reason in old.quarantine}


def guardian_changes(old: View, new: View, reg: Register) -> tuple[set[Any], set[Any]]:
    """(guardian, school) pairs where a child left the school: kept through another
    child, and lost."""
    eu_old = old.relations["external_user_in_school"]
    eu_new = new.relations["external_user_in_school"]
    left = {
        (g, school)
        for g, child in old.relations["guardian_for"]
        for school in old.of("student_in_school", child) - new.of("student_in_school", child)
        if reg.kind(school) != "FS"
    }
    return {p for p in left if p in eu_new}, {p for p in left if p in eu_old and p not in eu_new}


def test_guardian_cases_are_made_where_the_register_has_none(
    original: Path, tmp_path: Path
) -> None:
    """A register whose graduates have no guardians on record: a pupil or two moves away
    so that one guardian keeps a school through another child and one loses it."""
    folder = tmp_path / "orphans"
    shutil.copytree(original, folder)
    data = load(folder)
    for person in data["persons"]:
        for enrolment in person.get("enrolments", []):
            last = {"GR": 9, "GY": 3}.get(enrolment["schoolType"])
            if not enrolment["cancelled"] and enrolment.get("schoolYear") == last:
                person.pop("responsibles", None)
    for name in ENTITIES:
        (folder / f"{name}.json").write_bytes(msgspec.json.encode({"data": data[name]}))
    old = view(str(folder), OLD_DATES[1])
    lines = rollover(folder, SEED, today=TODAY)
    new, reg = view(str(folder), EFFECTIVE), register(folder)
    keeping, losing = guardian_changes(old, new, reg)
    assert keeping and losing
    assert any(line.startswith("moved away: 2 pupils") for line in lines), lines
    assert_clean(new, reg)


def test_both_styles_give_the_same_year_with_new_external_ids(
    original: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """With ``{school_year}`` in the class template both styles give every group of the new
    year a new external id, and the same Unikum state apart from those ids."""
    folder = tmp_path_factory.mktemp("styles")
    template = str(folder / "mapping.yaml")
    year_template(folder)
    states = []
    old = view(str(original), OLD_DATES[1], template)
    for style in STYLES:
        shutil.copytree(original, folder / style)
        rollover(folder / style, SEED, today=TODAY, reuse_group_ids=style == "reuse")
        new = view(str(folder / style), EFFECTIVE, template)
        assert not set(old.classes) & set(new.classes)
        assert all(ext.endswith("-2026") for ext in new.classes)
        school_of = dict(new.relations["class_in_school"])

        def canon(party: str, new: View = new, school_of: dict[str, str] = school_of) -> Any:
            return (school_of[party], new.classes[party][1]) if party in new.classes else party

        states.append(
            (
                new.users,
                {(t, canon(a), canon(b)) for t, a, b in new.all_relations},
            )
        )
    assert states[0] == states[1]


def test_reused_ids_without_the_school_year_keep_their_external_id(
    original: Path, rolled: Rolled
) -> None:
    """Why the spec's class template should hold {school_year}: with plain ``{id}`` a
    register that reuses ids gives Unikum a renamed class, not a new one."""
    old, new = view(str(original), OLD_DATES[1]), view(str(rolled.folder), EFFECTIVE)
    same = {ext for ext in set(old.classes) & set(new.classes)}
    renamed = {ext for ext in same if old.classes[ext][1] != new.classes[ext][1]}
    if rolled.style == "new":
        assert not renamed
    else:
        assert len(renamed) >= 20


# ---- loose pupils on purpose, and later days -------------------------------------------


def test_loose_pupils_for_the_checklist(original: Path, tmp_path: Path) -> None:
    shutil.copytree(original, tmp_path / "loose")
    lines = rollover(tmp_path / "loose", SEED, today=TODAY, loose_pupils=2)
    assert any(line.startswith("left without a group on purpose: 2 pupils") for line in lines)
    new, reg = view(str(tmp_path / "loose"), EFFECTIVE), register(tmp_path / "loose")
    class_school = dict(new.relations["class_in_school"])
    loose = {
        key
        for key, school in new.relations["student_in_school"]
        if not {c for c in new.of("student_in_class", key) if class_school.get(c) == school}
    }
    assert len(loose) == 2
    for key in loose:
        assert reg.kind(next(iter(new.of("student_in_school", key)))) == "GR"
        assert new.grade(key)  # enrolled in next year, only without a group


def test_mutate_still_works_on_a_rolled_register(rolled: Rolled, tmp_path: Path) -> None:
    folder = tmp_path / "days"
    shutil.copytree(rolled.folder, folder)
    before = view(str(rolled.folder), EFFECTIVE)
    # a day in June, before the new year starts
    lines = mutate(folder, seed=5, today=dt.date(2026, 6, 1))
    assert not [line for line in lines if line.startswith("skipped")], lines
    after = view(str(folder), EFFECTIVE)
    reg = register(folder)
    assert_clean(after, reg)
    gone = before.keys("student_in_school") - after.keys("student_in_school")
    assert len(gone) == 1, "the June leaver is not enrolled next year either"
    assert after.keys("student_in_school") <= before.keys("student_in_school")
    # and a day in August, in the new year
    lines = mutate(folder, seed=6, today=dt.date(2026, 8, 20))
    assert not [line for line in lines if line.startswith("skipped")], lines
    assert_clean(view(str(folder), "2026-08-20"), register(folder))


@pytest.mark.parametrize(
    ("seed", "today", "scale", "styles"),
    [
        (11, dt.date(2025, 9, 1), "small", STYLES),
        (12, dt.date(2026, 6, 30), "small", STYLES),  # the old year's last day
        (13, dt.date(2025, 7, 1), "small", STYLES),  # the first day of a school year
        (14, dt.date(2026, 1, 20), "medium", ("reuse",)),
    ],
)
def test_other_seeds_and_days_roll_over_cleanly(
    seed: int, today: dt.date, scale: str, styles: tuple[str, ...], tmp_path: Path
) -> None:
    """Property-style: other municipalities and other days of the year."""
    generate(tmp_path / "original", seed=seed, scale=scale, today=today)
    first = today.year if today.month >= 7 else today.year - 1
    last_day, effective = f"{first + 1}-06-30", f"{first + 1}-07-01"
    old = view(str(tmp_path / "original"), last_day)
    for style in styles:
        folder = tmp_path / style
        shutil.copytree(tmp_path / "original", folder)
        rollover(folder, seed, today=today, reuse_group_ids=style == "reuse")
        assert view(str(folder), last_day).all_relations == old.all_relations
        new, reg = view(str(folder), effective), register(folder)
        assert_clean(new, reg)
        for key, school in old.relations["student_in_school"]:
            if (key, school) in new.relations["student_in_school"] and old.grade(key):
                assert new.grade(key) == next_grade(old.grade(key))
        errors = {q for q in new.quarantine - old.quarantine if q[2] == "error"}
        assert not errors
        gone = old.keys("staff_in_school") - new.keys("staff_in_school")
        assert gone & old.keys("mentor_for"), "a mentor leaves"
        assert gone - old.keys("mentor_for"), "a teacher who mentors no class leaves"


# ---- the command line ------------------------------------------------------------------


def test_cli_rolls_over_and_refuses_a_second_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "register"
    generate(folder, seed=2, scale="small")
    assert main(["demo", "rollover", "--in", str(folder), "--seed", "4"]) == 0
    out = capsys.readouterr().out
    assert "starts" in out and "promoted" in out and "new groups, new ids" in out
    assert main(["demo", "rollover", "--in", str(folder), "--reuse-group-ids"]) == 1
    assert "rolled over already" in capsys.readouterr().err
