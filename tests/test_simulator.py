"""The importer simulator: what a series of deliveries does to Unikum's state."""

from __future__ import annotations

from pathlib import Path

from autosynk.simulator import UnikumModel

GOLDEN = Path(__file__).parent / "golden"
STEM = "Exempelby_20261128_0130"
T = "\t"
STUDENT = "20150312-1236"
TEACHER = "19800515-3450"


def user(pnr: str, first: str) -> str:
    return T.join(
        [first, "Ek", "", pnr, *[""] * 7, "false", "true", "true", "true", "", "", "", "user"]
    )


def rels(*lines: str) -> str:
    return "".join(line.replace(" ", T) + "\n" for line in lines)


def golden_model() -> UnikumModel:
    """The state after the night before (KLASS-0A and its pupil) and the golden delivery."""
    model = UnikumModel()
    principals = (GOLDEN / f"{STEM}.principals").read_text(encoding="utf-8").splitlines()
    model.apply(
        "\n".join([principals[0], "KLASS-0A\t0A\t\t\t\t\tclass", principals[7]]),
        rels(
            "add school_in_org SKOLA-1 KOMMUN-1",
            "add class_in_school KLASS-0A SKOLA-1",
            "add student_in_class 20150375-5678 KLASS-0A",
        ),
    )
    model.apply(
        (GOLDEN / f"{STEM}.principals").read_text(encoding="utf-8"),
        (GOLDEN / f"{STEM}.relations").read_text(encoding="utf-8"),
    )
    return model


def test_a_total_creates_objects_and_relations() -> None:
    model = golden_model()
    assert model.errors == []
    assert len(model.objects) == 10
    assert model.objects[STUDENT].kind == "user"
    assert model.objects["KLASS-1A"].fields == ("KLASS-1A", "1A", "", "", "", "", "class")
    assert ("student_in_class", STUDENT, "KLASS-1A") in model.relations()
    assert ("administrator_for", TEACHER, "KOMMUN-1") in model.relations("sync")
    assert len(model.relations()) == 13  # 3 + 13 adds (one already there) - 2 removes
    assert ("class_in_school", "KLASS-0A", "SKOLA-1") not in model.relations()
    assert model.relations("manual") == set()


def test_a_principals_row_overwrites_the_whole_object() -> None:
    model = golden_model()
    model.apply(user(STUDENT, "Åsa Maria") + "\n", "")
    assert model.objects[STUDENT].fields[0] == "Åsa Maria"
    assert model.objects[STUDENT].fields[2] == ""  # the e-mail went with the old row
    assert model.objects[STUDENT].fields[15] == ""  # so did the årskurs


def test_remove_deletes_a_present_relation_and_ignores_an_absent_one() -> None:
    model = golden_model()
    before = model.snapshot()
    model.apply("", rels(f"remove student_in_class {STUDENT} KLASS-1A"))
    assert ("student_in_class", STUDENT, "KLASS-1A") not in model.relations()
    assert model.snapshot() != before
    after = model.snapshot()
    model.apply("", rels(f"remove student_in_class {STUDENT} KLASS-1A"))
    assert model.snapshot() == after
    assert model.errors == []


def test_manual_relations_survive_deliveries_that_do_not_name_them() -> None:
    model = golden_model()
    model.add_manual("staff_in_school", "19820730-4562", "SKOLA-1")
    model.apply(user(TEACHER, "Per") + "\n", rels(f"remove mentor_for {TEACHER} {STUDENT}"))
    assert model.relations("manual") == {("staff_in_school", "19820730-4562", "SKOLA-1")}
    assert model.removed_manual == []


def test_removing_a_manual_relation_is_recorded() -> None:
    model = golden_model()
    manual = ("teacher_in_class", "19820730-4562", "KLASS-1A")
    model.add_manual(*manual)
    model.apply("", rels("remove teacher_in_class 19820730-4562 KLASS-1A"))
    assert model.removed_manual == [manual]
    assert manual not in model.relations()  # Unikum does what the file says...
    # ... and the sync adding a hand-made relation again does not make it the sync's.
    model.add_manual(*manual)
    model.apply("", rels("add teacher_in_class 19820730-4562 KLASS-1A"))
    assert model.relations("manual") == {manual}


def test_a_relation_naming_an_unknown_object_is_an_import_error() -> None:
    model = golden_model()
    model.apply(
        "",
        rels(
            "add student_in_class 19900101-0017 KLASS-1A",
            "remove class_in_school KLASS-9Z SKOLA-1",
            "add administrator_for 19800515-3450 KOMMUN-9",
        ),
    )
    assert model.errors == [
        "relations:1: add student_in_class: unknown 19900101-****",
        "relations:2: remove class_in_school: unknown KLASS-9Z",
        "relations:3: add administrator_for: unknown KOMMUN-9",
    ]
    assert not any("19900101-0017" in rel for rel in model.relations())


def test_unreadable_rows_are_import_errors() -> None:
    model = UnikumModel()
    model.apply("KLASS-1A\t1A\tclass\nX\tteacher\n", rels("add parent_for A B", "add a b"))
    assert model.errors == [
        "principals:1: unreadable 'class' row",
        "principals:2: unreadable 'teacher' row",
        "relations:1: unknown 'add' 'parent_for'",
        "relations:2: wrong number of fields",
    ]
    assert model.objects == {}


def test_a_key_cannot_change_its_kind() -> None:
    model = golden_model()
    model.apply("KLASS-1A\tSkola\t\tse.vuxenutbildning" + T * 11 + "school\n", "")
    assert model.objects["KLASS-1A"].kind == "class"
    assert model.errors == ["principals:1: KLASS-1A is a class, not a school"]
