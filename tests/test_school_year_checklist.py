"""The school-year checklist and settings, on literal inputs."""

from __future__ import annotations

import pyarrow as pa
import pytest

from autosynk import delta as delta_engine
from autosynk.errors import ConfigError
from autosynk.mapping.spec import load_mapping
from autosynk.school_year import checklist, effective_date, label, parse_school_year


@pytest.mark.parametrize(
    ("text", "year"),
    [("2027/28", 2027), ("2027/2028", 2027), (" 1999/00 ", 1999), ("2099/00", 2099)],
)
def test_parse_school_year(text, year):
    assert parse_school_year(text) == year
    assert parse_school_year(label(year)) == year


@pytest.mark.parametrize("text", ["2027", "2027/29", "2027-28", "27/28", "2027/2029", ""])
def test_parse_school_year_refuses(text):
    with pytest.raises(ConfigError):
        parse_school_year(text)


@pytest.mark.parametrize(
    ("starts", "given", "expected"),
    [
        ("07-01", None, "2027-07-01"),
        ("08-15", None, "2027-08-15"),
        ("07-01", "2027-08-18", "2027-08-18"),
        ("07-01", "2028-06-30", "2028-06-30"),
    ],
)
def test_effective_date(starts, given, expected):
    spec = load_mapping().model_copy(update={"school_year_starts": starts})
    assert effective_date(spec, 2027, given) == expected


@pytest.mark.parametrize("given", ["2027-06-30", "2028-07-01", "2027-13-01"])
def test_effective_date_outside_the_school_year(given):
    with pytest.raises(ConfigError):
        effective_date(load_mapping(), 2027, given)


def user(key: str, grade: str = "") -> tuple[str, str, str]:
    fields = ["Förnamn", "Efternamn", "", key] + [""] * 11 + [grade, "", "", "user"]
    return ("user", key, "\t".join(fields))


def klass(key: str, name: str) -> tuple[str, str, str]:
    return ("class", key, "\t".join([key, name, "", "", "", "", "class"]))


def school(key: str, form: str) -> tuple[str, str, str]:
    return ("school", key, "\t".join([key, "12345678", f"Skola {key}", form, *[""] * 10, "school"]))


GR = "se.grundskoleutbildning.grundskola"
FS = "se.forskoleverksamhet.forskola"
NINE, FIVE, SIX, TEN, GUARD = (
    "20120101-1111",  # graduating from grade 9
    "20160101-2222",  # grade 5 -> 6, stays
    "20150101-3333",  # grade 6, moves out
    "20210101-4444",  # preschool, starts at S1 without a group (loose)
    "19800101-5555",  # guardian of NINE and FIVE
)
TEACHER, LEAVING_TEACHER = "19700101-6666", "19750101-7777"

BEFORE_ROWS = [
    school("S1", GR),
    school("P1", FS),
    klass("9a", "9A"),
    klass("5a", "5A"),
    klass("6a", "6A"),
    klass("avd", "Avd Blå"),
    user(NINE, "9"),
    user(FIVE, "5"),
    user(SIX, "6"),
    user(TEN),
    user(GUARD),
    user(TEACHER),
    user(LEAVING_TEACHER),
]
BEFORE = {
    ("class_in_school", "9a", "S1"),
    ("class_in_school", "5a", "S1"),
    ("class_in_school", "6a", "S1"),
    ("class_in_school", "avd", "P1"),
    ("student_in_school", NINE, "S1"),
    ("student_in_school", FIVE, "S1"),
    ("student_in_school", SIX, "S1"),
    ("student_in_school", TEN, "P1"),
    ("student_in_class", NINE, "9a"),
    ("student_in_class", FIVE, "5a"),
    ("student_in_class", SIX, "6a"),
    ("student_in_class", TEN, "avd"),
    ("staff_in_school", TEACHER, "S1"),
    ("staff_in_school", LEAVING_TEACHER, "S1"),
    ("teacher_in_class", TEACHER, "9a"),
    ("teacher_in_class", LEAVING_TEACHER, "6a"),
    ("mentor_for", LEAVING_TEACHER, SIX),
    ("mentor_for", TEACHER, NINE),
    ("guardian_for", GUARD, NINE),
    ("guardian_for", GUARD, FIVE),
    ("external_user_in_school", GUARD, "S1"),
    ("administrator_for", TEACHER, "9a"),
}
AFTER_ROWS = [
    school("S1", GR),
    school("P1", FS),
    klass("6a-2027", "6A"),
    user(FIVE, "6"),
    user(TEN, "F"),
    user(GUARD),
    user(TEACHER),
]
AFTER = {
    ("class_in_school", "6a-2027", "S1"),
    ("student_in_school", FIVE, "S1"),
    ("student_in_school", TEN, "S1"),
    ("student_in_class", FIVE, "6a-2027"),
    ("staff_in_school", TEACHER, "S1"),
    ("teacher_in_class", TEACHER, "6a-2027"),
    ("guardian_for", GUARD, FIVE),
    ("external_user_in_school", GUARD, "S1"),
}


def relations(triples) -> pa.Table:
    ordered = sorted(triples)
    return pa.table({name: [t[i] for t in ordered] for i, name in enumerate(("type", "a", "b"))})


def principals(rows) -> pa.Table:
    return pa.table(
        {
            "kind": [r[0] for r in rows],
            "key": [r[1] for r in rows],
            "source_id": [r[1] for r in rows],
            "hash": ["" for _ in rows],
            "row": [r[2] for r in rows],
        }
    )


def items(*, owned: bool = True, block: bool = True) -> dict[str, dict]:
    con = delta_engine.connection()
    try:
        delta_engine.view(con, "tp", principals(AFTER_ROWS), delta_engine.PRINCIPAL_COLUMNS)
        delta_engine.view(con, "dr", relations(BEFORE), delta_engine.RELATION_COLUMNS)
        before = principals(BEFORE_ROWS).select(["kind", "key", "row"])
        checklist.register_inputs(con, before, relations(BEFORE - AFTER), relations(AFTER - BEFORE))
        found = checklist.compute(con, mentor_links_owned=owned, block_on_loose=block)
    finally:
        con.close()
    return {i["id"]: i for i in found}


def rows(item: dict) -> list[list]:
    return [list(r) for r in item["rows"]]


def test_each_checklist_item():
    found = items()
    assert rows(found["groups_detached"]) == [
        ["avd", "Avd Blå", "Skola P1 (P1)", 1, 0],
        ["5a", "5A", "Skola S1 (S1)", 1, 0],
        ["6a", "6A", "Skola S1 (S1)", 1, 1],
        ["9a", "9A", "Skola S1 (S1)", 1, 1],
    ]
    assert rows(found["groups_new"]) == [["6a-2027", "6A", "Skola S1 (S1)"]]
    assert rows(found["grade_changes"]) == [
        ["20160101-****", "5", "6"],
        ["20210101-****", "", "F"],
    ]
    assert found["grade_changes"]["note"] == "5 → 6: 1; – → F: 1"
    assert rows(found["leavers"]) == [
        ["20120101-****", "Skola S1 (S1)", "9", "graduating", 1, 1, 1],
        ["20150101-****", "Skola S1 (S1)", "6", "moving out", 1, 0, 1],
    ]
    assert rows(found["guardians_staying"]) == [["19800101-****", "Skola S1 (S1)"]]
    assert rows(found["staff_leaving"]) == [["19750101-****", "Skola S1 (S1)", 1, 1]]
    assert found["mentor_links"]["status"] == "removed"
    assert rows(found["mentor_links"]) == [
        ["19700101-****", "20120101-****"],
        ["19750101-****", "20150101-****"],
    ]
    assert rows(found["administrators_on_old_groups"]) == [["19700101-****", "9a", "yes"]]
    assert found["pupils_without_grade"]["count"] == 0
    assert rows(found["pupils_without_group"]) == [["20210101-****", "Skola S1 (S1)"]]
    assert found["pupils_without_group"]["status"] == "blocking"
    assert checklist.blocking(list(found.values())) == [
        "Pupils who would be at a school without any group: 1"
    ]


def test_mentor_links_kept_by_hand_are_listed_for_manual_work():
    found = items(owned=False, block=False)
    assert found["mentor_links"]["status"] == "manual"
    assert rows(found["mentor_links"]) == [
        ["pupil", "20120101-****"],
        ["pupil", "20150101-****"],
        ["staff", "19750101-****"],
    ]
    assert found["pupils_without_group"]["status"] == "attention"
    assert checklist.blocking(list(found.values())) == []
