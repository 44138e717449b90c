"""Persons named by codes in the column-wise mapping, and the grades of the user rows."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from autosynk.mapping.columnar import index, persons, users
from autosynk.mapping.columnar.night import Night
from autosynk.mapping.spec import load_mapping
from autosynk.register_fields import SCHEMAS, TABLES_OF


def register(**rows: list[dict[str, Any]]) -> dict[str, pa.Table]:
    """Every table of a register, these rows in them (missing columns null)."""
    tables = {}
    for entities in TABLES_OF.values():
        for name in entities:
            schema = SCHEMAS[name]
            given = rows.get(name, [])
            columns = {f.name: [row.get(f.name) for row in given] for f in schema}
            tables[name] = pa.table(columns, schema=schema)
    return tables


def indexed(tables: dict[str, pa.Table]) -> Night:
    night = Night(load_mapping(), "ORG", "2026-12-02", "iso-8859-1")
    index.index_records(night, tables)
    return night


def test_persons_and_their_references_are_coded_by_row_dangling_ones_past_the_end() -> None:
    night = indexed(
        register(
            persons=[
                {"seq": 0, "id": "p-b"},
                {"seq": 1, "id": "p-a"},
                {"seq": 2, "id": "p-b"},
                {"seq": 3, "id": "p-c"},
            ],
            person_emails=[
                {"parent": "p-a", "pos": 0, "value": "a@x.se"},
                {"parent": "p-b", "pos": 0, "value": "b@x.se"},  # a repeated id: dropped
                {"parent": "p-c", "pos": 0, "value": "c@x.se"},
            ],
            person_responsibles=[
                {"parent": "p-c", "pos": 0, "person": "p-a"},
                {"parent": "p-c", "pos": 1, "person": "p-zz"},
                {"parent": "p-a", "pos": 0, "person": None},
            ],
            group_memberships=[{"parent": "g", "pos": 0, "person": "p-b"}],
            duties=[{"seq": 0, "id": "d", "person": "p-zz"}],
        )
    )
    assert night.arrow["persons"]["id"].to_pylist() == ["p-a", "p-c"]  # the rows: codes 0, 1
    assert night.arrow["person_emails"].select(["parent", "value"]).to_pylist() == [
        {"parent": 0, "value": "a@x.se"},
        {"parent": 1, "value": "c@x.se"},
    ]
    responsibles = night.arrow["person_responsibles"]
    assert responsibles.select(["parent", "person"]).to_pylist() == [
        {"parent": 1, "person": 0},
        {"parent": 1, "person": 2},
        {"parent": 0, "person": None},
    ]
    assert night.arrow["group_memberships"]["person"].to_pylist() == [3]
    assert night.arrow["duties"]["person"].to_pylist() == [2]
    # each code's id: the persons held, then those only named, in the order first named
    assert night.arrow["person_ids"]["id"].to_pylist() == ["p-a", "p-c", "p-zz", "p-b"]
    assert responsibles.schema.field("person").type == pa.int32()


@pytest.mark.parametrize(
    ("codes", "held", "expected"),
    [
        ([0, 2, 3, None], 3, [0, 2, None, None]),
        ([], 0, []),
        ([0], 0, [None]),
    ],
)
def test_rows_of_are_the_codes_of_persons_held(codes, held, expected) -> None:
    found = persons.rows_of(pa.array(codes, pa.int32()), held)
    assert found.to_pylist() == expected


@pytest.mark.parametrize(
    ("labels", "school_type", "school_year", "expected"),
    [
        (
            {"FSK": {"0": "F"}},
            ["FSK", "GR", "FSK", None],
            ["0", "0", "1", None],
            ["F", "0", "1", ""],
        ),
        ({}, ["GR", ""], ["5", None], ["5", ""]),
        (
            {"GR": {"1": "Ett", "2": "Två"}},
            ["GR", "GR", "GY"],
            ["2", "1", "2"],
            ["Två", "Ett", "2"],
        ),
        ({"GR": {"1": "Ett"}}, [None], ["1"], ["1"]),  # no school form: the year
    ],
)
def test_grades_are_the_labels_else_the_year(labels, school_type, school_year, expected) -> None:
    found = users.grades(
        labels, pa.array(school_type, pa.string()), pa.array(school_year, pa.string())
    )
    assert found.to_pylist() == expected
