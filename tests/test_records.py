"""Typed register records: the fast reader must map exactly like the generic one, dirty or not."""

from __future__ import annotations

import copy
import logging

import pytest

from autosynk.errors import SourceError
from autosynk.mapping.engine import map_register
from autosynk.mapping.spec import load_mapping
from autosynk.records import Enrolment, Person, read_typed_snapshot, to_records
from autosynk.register import Snapshot, Valued, read_snapshot, ref_id, text
from tests import tiny_register as tiny

TODAY = "2026-11-28"


@pytest.mark.parametrize(
    ("raw", "enrolments"),
    [
        ({"id": "p"}, None),
        ({"id": "p", "enrolments": None}, []),
        ({"id": "p", "enrolments": []}, []),
        ({"id": "p", "enrolments": {"schoolYear": 7}}, [Enrolment(schoolYear=7)]),
        ({"id": "p", "enrolments": ["x", 3, {"schoolYear": "7"}]}, [Enrolment(schoolYear="7")]),
    ],
)
def test_to_records_tidies_arrays_as_the_mapping_always_did(raw, enrolments):
    (person,) = to_records("persons", [raw])
    assert isinstance(person, Person)
    assert person.enrolments == enrolments


def test_to_records_keeps_only_mapped_fields_and_leaves_values_alone():
    raw = {"id": 12, "civicNo": {"value": "x"}, "meta": {"modified": "2026"}, "sex": "Kvinna"}
    (person,) = to_records("persons", [raw])
    assert (person.id, person.civicNo) == (12, Valued("x"))
    assert not hasattr(person, "meta")


@pytest.mark.parametrize(
    ("enroled_at", "civic", "unit", "number"),
    [
        ({"id": "u1"}, {"value": "20100101-1234"}, "u1", "20100101-1234"),
        (" u1 ", "20100101-1234", "u1", "20100101-1234"),
        (42, 201001011234, "42", "201001011234"),
        (None, None, None, ""),
        ({"name": "no id"}, {"nationality": "SE"}, None, ""),
    ],
)
def test_references_and_values_read_as_the_mapping_always_read_them(
    enroled_at, civic, unit, number
):
    raw = {"id": "p", "civicNo": civic, "enrolments": [{"enroledAt": enroled_at}]}
    (person,) = to_records("persons", [raw])
    assert ref_id(person.enrolments[0].enroledAt) == unit == ref_id(enroled_at)
    assert text(person.civicNo) == number == text(civic)


def _mapped(snapshot: Snapshot, encoding: str = "utf-8", *, consume: bool = False):
    m = map_register(snapshot, load_mapping(), tiny.ORG, TODAY, encoding, consume=consume)
    return (
        sorted(m.principals),
        sorted(m.relations),
        sorted((q.entity, q.source_id, q.reason, q.severity) for q in m.quarantine),
        sorted(m.protected),
        dict(m.counts),
    )


def _dirty_register() -> dict:
    data = tiny.register()
    persons = data["persons"]
    persons[0]["enrolments"] = persons[0]["enrolments"][0]  # a lone object, not an array
    persons[1]["phoneNumbers"] = ["070-1234567", None]  # entries that are not objects
    persons[2]["addresses"] = None
    persons[2]["unknownField"] = {"deeply": ["nested"]}
    data["groups"][0]["groupMemberships"] = [*data["groups"][0]["groupMemberships"], "junk"]
    return data


@pytest.mark.parametrize("encoding", ["utf-8", "iso-8859-1"])
@pytest.mark.parametrize("dirty", [False, True], ids=["standard", "dirty"])
def test_typed_reader_maps_exactly_like_the_generic_reader(tmp_path, caplog, dirty, encoding):
    data = _dirty_register() if dirty else tiny.register()
    folder = tiny.write(tmp_path / "register", copy.deepcopy(data))
    with caplog.at_level(logging.INFO, logger="autosynk"):
        typed = read_typed_snapshot(folder)
    assert all(isinstance(p, Person) for p in typed.entities["persons"])
    # the standard shape decodes in one go; a dirty file says it is read record by record
    assert ("persons.json" in caplog.text) is dirty
    assert _mapped(typed, encoding) == _mapped(read_snapshot(folder), encoding)
    assert _mapped(typed, encoding) == _mapped(Snapshot(entities=data), encoding)


@pytest.mark.parametrize("dirty", [False, True], ids=["standard", "dirty"])
def test_a_consuming_mapping_maps_the_same_and_empties_what_it_read(tmp_path, dirty):
    folder = tiny.write(tmp_path / "register", _dirty_register() if dirty else tiny.register())
    kept, consumed = read_typed_snapshot(folder), read_typed_snapshot(folder)
    assert _mapped(consumed, consume=True) == _mapped(kept)
    persons = consumed.entities["persons"]
    assert all(p.enrolments is None and p.responsibles is None for p in persons)
    assert any(p.addresses is None and p.emails is None for p in persons)
    assert any(p.enrolments for p in kept.entities["persons"])  # the default leaves them


def test_a_dirty_register_still_maps_what_it_can(tmp_path):
    clean = _mapped(Snapshot(entities=tiny.register()))
    dirty = _mapped(read_typed_snapshot(tiny.write(tmp_path / "r", _dirty_register())))
    assert dirty[1] == clean[1]  # the lone enrolment still counts; junk entries are skipped


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "persons.json is not valid JSON"),
        (b'{"data": {"id": 1}}', 'persons.json is not of the form {"data": [...]}'),
        (b'{"data": [1, 2]}', "persons.json holds 2 entries that are not objects"),
    ],
)
def test_a_broken_file_is_a_clear_source_error(tmp_path, content, message):
    folder = tiny.write(tmp_path / "register")
    (folder / "persons.json").write_bytes(content)
    with pytest.raises(SourceError, match="persons: ") as raised:
        read_typed_snapshot(folder)
    assert message in str(raised.value)


def test_a_missing_file_is_named(tmp_path):
    folder = tiny.write(tmp_path / "register")
    (folder / "duties.json").unlink()
    with pytest.raises(SourceError, match=r"duties\.json is missing"):
        read_typed_snapshot(folder)
