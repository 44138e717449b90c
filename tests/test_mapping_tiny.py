"""The default mapping on a hand-written register: literal input, literal expected output."""

from __future__ import annotations

import copy

import pytest

from autosynk.mapping.columnar import identity as columnar_identity
from autosynk.mapping.columnar import persons
from autosynk.mapping.engine import map_register
from autosynk.mapping.spec import MappingSpec, load_mapping
from autosynk.register import Snapshot
from tests import tiny_register as tiny

TODAY = "2026-11-28"


def run(data=None, spec: MappingSpec | None = None, encoding="utf-8"):
    snapshot = Snapshot(entities=copy.deepcopy(data or tiny.register()))
    return map_register(snapshot, spec or load_mapping(), tiny.ORG, TODAY, encoding)


def rows_by_key(mapped):
    return {key: row.split("\t") for _kind, key, _source, row in mapped.principals}


def test_relations_are_exactly_the_expected_ones():
    assert run().relations == tiny.EXPECTED_RELATIONS


def test_rows_are_exactly_the_expected_ones():
    rows = rows_by_key(run())
    assert rows[tiny.G1] == [
        "Anna",
        "Öberg",
        "anna@example.se",
        tiny.G1,
        "",
        "",
        "",
        "",
        "Storgatan 1",
        "12345",
        "Exempelby",
        "false",
        "true",
        "true",
        "true",
        "",
        "",
        "",
        "user",
    ]
    assert rows[tiny.T1] == [
        "Karin",
        "Lärare",
        "karin.larare@exempelby.se",
        tiny.T1,
        "",
        "",
        "0701234567",
        "",
        "",
        "",
        "",
        "false",
        "true",
        "true",
        "true",
        "",
        "",
        "",
        "user",
    ]
    assert rows[tiny.C1] == [
        "Åsa",
        "Öberg",
        "asa.oberg@elev.exempelby.se",
        tiny.C1,
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "false",
        "true",
        "true",
        "true",
        "7",
        "",
        "",
        "user",
    ]
    assert rows["u1"] == [
        "u1",
        "12345678",
        "Ekbackens skola",
        "se.grundskoleutbildning.grundskola",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "school",
    ]
    assert rows["avd1"] == ["avd1", "Avdelning Blå", "", "", "", "", "class"]
    assert set(rows) == {
        "u1",
        "u2",
        "7a",
        "ma7",
        "avd1",
        tiny.C1,
        tiny.C3,
        tiny.T1,
        tiny.P1,
        tiny.G1,
        tiny.G2,
    }


def test_protected_person_is_never_named_and_only_counted():
    mapped = run()
    named = {part for rel in mapped.relations for part in rel} | set(rows_by_key(mapped))
    assert tiny.C2 not in named
    assert mapped.protected == [("c2", tiny.C2)]
    assert mapped.counts["protected_persons"] == 1


def test_quarantine_names_each_problem():
    reasons = {(q.entity, q.source_id): q.reason for q in run().quarantine if q.severity == "error"}
    assert reasons == {
        ("organisation", "u3"): "school form cannot be mapped (school types: GYS)",
        ("group", "gys1"): "its school is not exported (quarantined, closed or not a school unit)",
        ("person", "g3"): "identity number: personnummer check digit or date is wrong",
    }


def test_mentor_links_can_be_left_to_unikum():
    spec = load_mapping().model_copy(update={"mentor_links": False})
    relations = run(spec=spec).relations
    assert not any(rel[0] == "mentor_for" for rel in relations)
    assert tiny.EXPECTED_RELATIONS - relations == {("mentor_for", tiny.T1, tiny.C1)}


@pytest.mark.parametrize("status", ["Avliden", "Utvandrad"])
def test_excluded_status_takes_the_person_out(status):
    data = tiny.register()
    data["persons"][0]["personStatus"] = status
    relations = run(data).relations
    assert not any(tiny.C1 in rel for rel in relations)


def test_duplicate_identity_number_quarantines_both_records():
    data = tiny.register()
    data["persons"][6]["civicNo"] = {"value": tiny.G1}  # g2 claims g1's number
    mapped = run(data)
    quarantined = {q.source_id for q in mapped.quarantine if q.severity == "error"}
    assert {"g1", "g2"} <= quarantined
    assert not any(rel[0] == "guardian_for" for rel in mapped.relations)
    assert all("4566" not in q.reason for q in mapped.quarantine)


def test_iso_8859_1_transliterates_and_reports():
    mapped = run(encoding="iso-8859-1")
    rows = rows_by_key(mapped)
    assert rows[tiny.C3][1] == "Nguyen"
    assert rows[tiny.C1][:2] == ["Åsa", "Öberg"]  # latin-1 letters stay
    warnings = [q for q in mapped.quarantine if q.severity == "warning"]
    assert any(q.source_id == "c3" and "transliterated" in q.reason for q in warnings)


def test_tab_and_newline_in_a_value_are_cleaned_and_reported():
    data = tiny.register()
    data["groups"][0]["displayName"] = "7A\tEk\nbacken"
    mapped = run(data)
    assert rows_by_key(mapped)["7a"][1] == "7A Ek backen"
    assert any(q.source_id == "7a" and q.severity == "warning" for q in mapped.quarantine)


def test_missing_optional_arrays_and_nulls_do_not_crash():
    data = tiny.register()
    for person in data["persons"]:
        person.pop("emails", None)
        person["phoneNumbers"] = None
    data["groups"][1]["groupMemberships"] = None
    mapped = run(data)
    assert ("student_in_class", tiny.C1, "ma7") not in mapped.relations
    assert rows_by_key(mapped)[tiny.T1][2] == ""


def test_the_shipped_example_mapping_changes_what_it_says():
    from pathlib import Path

    example = Path(__file__).resolve().parent.parent / "examples" / "mapping.example.yaml"
    relations = run(spec=load_mapping(example)).relations
    types = {rel[0] for rel in relations}
    assert "mentor_for" not in types
    assert ("class_in_school", "7a-2026", "12345678") in relations
    assert not any(rel[1] == "ma7-2026" for rel in relations)  # teaching groups not sent
    assert ("school_in_org", "11223344", tiny.ORG) in relations  # GYS now mapped


def _civic(birth: str, serial: int) -> str:
    """A valid personnummer ``YYYYMMDD-NNNC`` (Luhn over the last nine digits)."""
    nine = f"{birth[2:]}{serial:03d}"
    total = sum(
        (2 * int(d) - 9 if 2 * int(d) > 9 else 2 * int(d)) if i % 2 == 0 else int(d)
        for i, d in enumerate(nine)
    )
    return f"{birth}-{serial:03d}{(10 - total % 10) % 10}"


def test_many_shared_numbers_hold_every_holder_in_one_pass(monkeypatch):
    data = tiny.register()
    child = data["persons"][0]
    shared = [_civic(f"1970{month:02d}{day:02d}", 230) for month in (1, 2) for day in range(1, 16)]
    for n, number in enumerate(shared):
        for side, civic in (("a", number), ("b", number[2:] if n == 0 else number)):
            person_id = f"x{n:02d}{side}"  # x00b writes the number in its 10-digit form
            data["persons"].append(tiny._person(person_id, "Delad", "Nummer", civic))
            child["responsibles"].append(
                {"person": {"id": person_id}, "relationType": "Vårdnadshavare"}
            )
    calls = {"n": 0}  # identity checks: values checked as arrays, and one by one
    array_check = persons.identity_numbers

    def counted_array(values, _original=array_check):
        calls["n"] += len(values)
        return _original(values)

    monkeypatch.setattr(persons, "identity_numbers", counted_array)
    for module in (persons, columnar_identity):
        single = module.normalise

        def counted(*args, _original=single, **kwargs):
            calls["n"] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, "normalise", counted)
    mapped = run(data)
    held = [
        (q.source_id, q.reason)
        for q in mapped.quarantine
        if q.reason.endswith("is used by several person records")
    ]
    # sorted by number, then person: both holders of each of the 30 numbers, masked
    assert [source for source, _ in held] == [f"x{n:02d}{s}" for n in range(30) for s in "ab"]
    assert all("-****" in reason and not any(n in reason for n in shared) for _, reason in held)
    assert not any(rel[1].startswith("1970") for rel in mapped.relations)
    # one pass for all shared numbers: a few checks per person, not one per person and number
    assert 0 < calls["n"] <= 3 * len(data["persons"])
