"""The one description of the register's fields drives both readers: every kind is read by
both, and a field the typed records do not hold is refused when the converter is written."""

from __future__ import annotations

from typing import get_args

import pytest

from autosynk import register_columns, register_lines
from autosynk.register_fields import ENTITY_FIELDS, Child, Entity, Field, FirstOf, Kind


def test_every_kind_is_read_by_both_paths() -> None:
    kinds = set(get_args(Kind))
    assert set(register_columns._READ) == kinds
    assert set(register_lines._READ) | {"row"} == kinds
    assert set(register_lines._KIND_SHAPES) == kinds


@pytest.mark.parametrize("entity", sorted(ENTITY_FIELDS))
def test_every_typed_converter_is_written(entity: str) -> None:
    source = register_columns._converter_source(entity)
    compile(source, entity, "exec")
    for table in (entity, *(c.table for c in ENTITY_FIELDS[entity].children)):
        assert f"SCHEMAS[{table!r}]" in source


#: a wrong description -> what writing the typed converter says
WRONG: dict[str, tuple[Entity, str]] = {
    "own field": (Entity((Field("x", "nosuch", "text"),)), "Duty has no field 'nosuch'"),
    "first of": (
        Entity((FirstOf(("addresses",), (Field("x", "value", "row"),)),)),
        "Duty has no field 'addresses'",
    ),
    "a list": (
        Entity((), (Child("duty_assignments", "nosuch", (Field("x", "", "ref"),)),)),
        "Duty has no field 'nosuch'",
    ),
    "not a typed list": (
        Entity((), (Child("duty_assignments", "dutyRole", (Field("x", "y", "text"),)),)),
        "Duty.dutyRole is not a typed list of records",
    ),
    "a column that is no Python name": (
        Entity((), (Child("duty_assignments", "assignmentRole", (Field("x-y", "group", "ref"),)),)),
        "column 'x-y' is no Python name",
    ),
}


@pytest.mark.parametrize("case", sorted(WRONG))
def test_a_field_the_typed_record_lacks_is_refused(
    monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    entity, message = WRONG[case]
    monkeypatch.setitem(ENTITY_FIELDS, "duties", entity)
    with pytest.raises(ValueError, match=message):
        register_columns._converter_source("duties")
