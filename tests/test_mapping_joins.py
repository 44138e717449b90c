"""The mapping's joins over Arrow tables mean what their SQL means (nulls included)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from autosynk.mapping.columnar import joins

KEYS = pa.array(["a", "b", "c"])
NAMES = pa.array(["Anna", None, "Cia"])


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["a", "c"], ["Anna", "Cia"]),
        (["c", "c", "a"], ["Cia", "Cia", "Anna"]),
        (["b"], [None]),  # found, its value null
        (["x", None, ""], [None, None, None]),  # not found; a null key matches nothing
        ([], []),
    ],
)
def test_lookup_is_a_left_join_on_a_unique_key(values: list[Any], expected: list[Any]) -> None:
    found = joins.lookup(pa.array(values, pa.string()), KEYS, NAMES)
    assert found.to_pylist() == expected


def test_lookups_share_one_hash_and_keep_each_column_apart() -> None:
    values = [
        pa.array(["a", "x"]),
        pa.chunked_array([["c"], ["b", "a"]]),
        pa.array([], pa.string()),
    ]
    assert [part.to_pylist() for part in joins.lookups(KEYS, NAMES, *values)] == [
        ["Anna", None],
        ["Cia", None, "Anna"],
        [],
    ]


@pytest.mark.parametrize(
    ("values", "keys", "expected"),
    [
        (["a", "x", None], ["a", "b"], [True, False, False]),  # null IN (...) is not true
        (["a"], [], [False]),  # IN () matches nothing
        (["Rektor", None], ("Rektor",), [True, False]),
    ],
)
def test_among_is_sql_in(values: list[Any], keys: Any, expected: list[bool]) -> None:
    keys = keys if isinstance(keys, tuple) else pa.array(keys, pa.string())
    assert joins.among(pa.array(values, pa.string()), keys).to_pylist() == expected


def test_where_keeps_the_rows_where_the_condition_is_true() -> None:
    table = pa.table({"n": [1, 2, 3]})
    assert joins.where(table, pa.array([True, None, False]))["n"].to_pylist() == [1]


def test_join_pairs_every_match_and_no_null_key() -> None:
    left = pa.table({"activity": ["v1", "v1", "v2", None], "person": ["p1", "p2", "p3", "p4"]})
    right = pa.table({"activity": ["v1", "v1", "v3", None], "object": ["K1", "K2", "K3", "K4"]})
    joined = joins.join(left, right, ("activity", "activity"))
    assert sorted(zip(joined["person"].to_pylist(), joined["object"].to_pylist(), strict=True)) == [
        ("p1", "K1"),
        ("p1", "K2"),
        ("p2", "K1"),
        ("p2", "K2"),
    ]


def test_distinct_rows() -> None:
    table = pa.table({"a": ["x", "x", "y", None, None], "b": ["1", "1", "1", "2", "2"]})
    rows = joins.distinct(table).to_pylist()
    assert sorted(rows, key=str) == sorted(
        [{"a": "x", "b": "1"}, {"a": "y", "b": "1"}, {"a": None, "b": "2"}], key=str
    )


def test_first_by_is_arg_min_per_key_each_column_skipping_nulls() -> None:
    table = pa.table(
        {
            "parent": ["p1", "p2", "p1", "p1", "p2"],
            "pos": [2, 0, 1, 0, 1],
            "street": ["third", "p2 first", "second", None, "p2 second"],
            "town": ["T3", None, "T2", "T1", "T-p2"],
        }
    )
    firsts = joins.first_by(table, "parent", "pos", ["street", "town"])
    assert sorted(firsts.to_pylist(), key=lambda row: row["parent"]) == [
        # p1's first row has no street: the street of its next row, the town of its first
        {"parent": "p1", "street": "second", "town": "T1"},
        {"parent": "p2", "street": "p2 first", "town": "T-p2"},
    ]


def test_stacked_is_union_all() -> None:
    stacked = joins.stacked(pa.array(["a"]), pa.chunked_array([["b"], ["c", None]]))
    assert stacked.to_pylist() == ["a", "b", "c", None]


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        ((pa.array([1], pa.int32()), pa.chunked_array([[2], [None]], pa.int32())), [1, 2, None]),
        ((pa.chunked_array([], pa.int32()),), []),
    ],
)
def test_stacked_keeps_the_columns_type(columns: tuple[Any, ...], expected: list[Any]) -> None:
    stacked = joins.stacked(*columns)
    assert stacked.type == pa.int32()
    assert stacked.to_pylist() == expected


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        (pa.chunked_array([["a", "b"]]), ["a", "b"]),
        (pa.chunked_array([["a"], ["b", None]]), ["a", "b", None]),
        (pa.array(["c"]), ["c"]),
    ],
)
def test_keys_of_is_one_array(column: Any, expected: list[Any]) -> None:
    keys = joins.keys_of(column)
    assert isinstance(keys, pa.Array)
    assert keys.to_pylist() == expected


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        (
            {"type": ["t2", "t1", "t1", "t1", "t2"], "a": ["x", "y", "x", "y", None]},
            [("t1", "x"), ("t1", "y"), ("t2", "x"), ("t2", None)],
        ),
        ({"type": ["t1"], "a": ["x"]}, [("t1", "x")]),
        ({"type": [], "a": []}, []),
        ({"type": ["t", "t"], "a": [None, None]}, [("t", None)]),  # two nulls are the same
    ],
)
def test_sorted_distinct_of_empties_the_columns_it_is_given(
    columns: dict[str, list[Any]], expected: list[tuple[Any, ...]]
) -> None:
    given = {name: pa.chunked_array([values], pa.string()) for name, values in columns.items()}
    table = joins.sorted_distinct_of(given)
    assert given == {}
    assert list(zip(table["type"].to_pylist(), table["a"].to_pylist(), strict=True)) == expected
    table = pa.table({name: pa.array(values, pa.string()) for name, values in columns.items()})
    assert joins.sorted_distinct_of(joins.columns_of(table)).to_pylist() == [
        dict(zip(columns, row, strict=True)) for row in expected
    ]
