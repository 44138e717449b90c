"""The column-wise mapping against the record-by-record reference, on generated registers.

``tests/reference_mapping`` is the mapping as it was before it went column-wise (one
Python pass per person and relation). On registers drawn by hypothesis, clean and dirty
(bad, repeated, shared and protected identity numbers, missing ids, dangling references,
odd dates, lone objects instead of arrays, numbers as text, values that need cleaning or
transliterating), under several mapping specs and both encodings, both engines must give
exactly the same rows, relations, quarantine entries, protected persons and counts.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autosynk.mapping.engine import map_register
from autosynk.mapping.spec import MappingSpec, load_mapping
from autosynk.register import Snapshot
from tests import register_strategies as reg
from tests import tiny_register as tiny
from tests.reference_mapping.engine import map_register as reference_map_register

DEFAULT = load_mapping()


def _spec(**changes: Any) -> MappingSpec:
    data = DEFAULT.model_dump(by_alias=True)
    data.update(changes)
    return MappingSpec.model_validate(data)


SPECS = {
    "default": DEFAULT,
    "templates": _spec(
        external_ids={"school": "S-{code}", "class": "{id}-{school_year}"},
        mentor_links=False,
        administrator_duty_roles=["Rektor"],
        missing_marking_is_protected=True,
    ),
    "untrimmed": _spec(
        transforms={
            "trim": False,
            "name_casing": "title",
            "email_lowercase": False,
            "phone_normalise": False,
        },
        email={"staff": ["directory", "Personal"], "student": ["Skola", "Privat"], "guardian": []},
        contact_details={
            "staff": {"address": True, "phones": False},
            "student": {"address": False, "phones": True},
            "guardian": {"address": True, "phones": True},
        },
        unprotected_markings=[],
        guardian_relation_types=["Vårdnadshavare", "Annan"],
        address_type="Annan",
    ),
    "narrow": _spec(
        group_types=["Mentor"],
        school_form_rank=[],
        excluded_person_status=[],
        teacher_assignment_roles=["Mentor"],
        school_year_starts="03-02",
    ),
}
DAYS = ("2026-03-02", "2026-03-01", "2020-08-15")


def _both(
    entities: dict[str, list[Any]],
    directory: list[dict[str, Any]] | None,
    spec: MappingSpec,
    today: str,
    encoding: str,
) -> None:
    new = map_register(
        Snapshot(entities=copy.deepcopy(entities), directory=copy.deepcopy(directory)),
        spec,
        reg.ORG,
        today,
        encoding,
    )
    old = reference_map_register(
        Snapshot(entities=copy.deepcopy(entities), directory=copy.deepcopy(directory)),
        spec,
        reg.ORG,
        today,
        encoding,
    )
    assert new.principals == old.principals
    assert new.relations == old.relations
    assert [(q.entity, q.source_id, q.reason, q.severity) for q in new.quarantine] == [
        (q.entity, q.source_id, q.reason, q.severity) for q in old.quarantine
    ]
    assert new.protected == old.protected
    assert dict(new.counts) == dict(old.counts)


@settings(
    max_examples=2000,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    register=reg.dirty_registers(),
    spec=st.sampled_from(sorted(SPECS)),
    today=st.sampled_from(DAYS),
    encoding=st.sampled_from(("utf-8", "iso-8859-1")),
)
def test_dirty_registers_map_exactly_as_the_reference(register, spec, today, encoding):
    _both(register.entities, register.directory, SPECS[spec], today, encoding)


@settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(night=reg.nights(), allow_invalid=st.booleans(), spec=st.sampled_from(sorted(SPECS)))
def test_nightly_registers_map_exactly_as_the_reference(night, allow_invalid, spec):
    _both(reg.register(night, allow_invalid), None, SPECS[spec], "2026-03-02", "utf-8")


@pytest.mark.parametrize("spec", sorted(SPECS))
@pytest.mark.parametrize("encoding", ["utf-8", "iso-8859-1"])
def test_the_tiny_register_maps_exactly_as_the_reference(spec, encoding):
    _both(tiny.register(), None, SPECS[spec], "2026-11-28", encoding)
