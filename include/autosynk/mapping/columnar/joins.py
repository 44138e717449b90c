"""The joins the mapping makes, over Arrow tables, with SQL's meaning.

Most joins of the mapping are lookups on a key that is unique on its side (a school
unit's id, a duty's id, a person's id): one hash of the keys and one pass over the rows
(``index_in`` and ``take``), whatever the register's size. The rest are semi joins
(``is_in``), a few joins of many rows to many (:func:`join`), distinct rows and "the
first value by position" per key (DuckDB's ``arg_min``). A null key matches nothing, as
in SQL.

Each of these costs microseconds on a small register, where a DuckDB statement costs
milliseconds to plan and start however few rows it reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

Column: TypeAlias = pa.Array | pa.ChunkedArray


def keys_of(values: Column) -> pa.Array:
    """A column as one array, as ``value_set`` takes it."""
    if isinstance(values, pa.ChunkedArray):
        return values.chunk(0) if values.num_chunks == 1 else values.combine_chunks()
    return values


def stacked(*columns: Column) -> pa.ChunkedArray:
    """The columns one after the other (``UNION ALL``), as one column of their type
    (string when there are none)."""
    chunks = [
        chunk
        for column in columns
        for chunk in (column.chunks if isinstance(column, pa.ChunkedArray) else [column])
    ]
    return pa.chunked_array(chunks, columns[0].type if columns else pa.string())


def positions(values: Column, keys: Column) -> Column:
    """The row whose key is each value; null where there is none (one hash of the keys,
    one probe per value: what every column of a left join on a unique key shares)."""
    return pc.index_in(values, value_set=keys_of(keys))


def lookup(values: Column, keys: Column, column: Column) -> Column:
    """``column`` at the row whose key is each value; null where there is none.

    A left join on a unique key (``keys``): ``LEFT JOIN t ON t.key = value``.
    """
    return pc.take(column, positions(values, keys))


def lookups(keys: Column, column: Column, *values: Column) -> list[pa.ChunkedArray]:
    """:func:`lookup` of each of several value columns in the same keys (hashed once)."""
    found = pc.take(column, positions(stacked(*values), keys))
    parts, start = [], 0
    for value in values:
        parts.append(found.slice(start, len(value)))
        start += len(value)
    return parts


def among(values: Column, keys: Column | Sequence[str]) -> Column:
    """``value IN (keys)``, false where the value is null (as a filter reads SQL's null)."""
    value_set = pa.array(keys, pa.string()) if isinstance(keys, list | tuple) else keys_of(keys)
    return pc.is_in(values, value_set=value_set)


def where(table: pa.Table, condition: Column) -> pa.Table:
    """The rows where the condition is true (not false, not null: SQL's ``WHERE``)."""
    return table.filter(condition, null_selection_behavior="drop")


def join(left: pa.Table, right: pa.Table, on: tuple[str, str]) -> pa.Table:
    """``left JOIN right ON left.<on[0]> = right.<on[1]>`` (many rows to many; no order)."""
    return left.join(right, keys=on[0], right_keys=on[1], join_type="inner")


def distinct(table: pa.Table) -> pa.Table:
    """``SELECT DISTINCT *`` (no order)."""
    return table.group_by(table.column_names, use_threads=False).aggregate([])


def columns_of(table: pa.Table) -> dict[str, pa.ChunkedArray]:
    """A table's columns by name: what :func:`sorted_distinct_of` takes (and empties)."""
    return dict(zip(table.column_names, table.columns, strict=True))


def sorted_distinct_of(columns: dict[str, Column]) -> pa.Table:
    """``SELECT DISTINCT * ... ORDER BY`` every column, ascending, nulls last, of the table
    these columns make: one sort and one pass over neighbours, where :func:`distinct`
    hashes every row (a city's 2.3 M relations would need half a gigabyte more for that).

    It empties ``columns``: each column is let go once its sorted copy is made, and each
    sorted one once its distinct rows are, so that a city's relations are held about once,
    not three times over (the table, its sorted copy, its distinct rows)."""
    names = list(columns)
    if not names:
        return pa.table({})
    order = pc.sort_indices(pa.table(columns), [(name, "ascending") for name in names])
    ordered = {name: pc.take(columns.pop(name), order) for name in names}
    del order
    if len(ordered[names[0]]) < 2:
        return pa.table(ordered)
    repeat = None
    for name in names:
        same = _same_as_before(ordered[name])
        repeat = same if repeat is None else pc.and_(repeat, same)
    keep = _first_and(pc.invert(repeat))
    del repeat
    for name in names:
        ordered[name] = ordered[name].filter(keep)
    return pa.table(ordered)


def first_by(table: pa.Table, key: str, order: str, columns: Sequence[str]) -> pa.Table:
    """Per key, each column's first non-null value by ``order``: ``arg_min(column, order)
    ... GROUP BY key`` (``order`` is unique per key; a null key is a group of its own).

    One sort of the row numbers by (key, order), then per column the first valid value of
    each run of equal keys: no sorted copy of the table and no hash of the keys.
    """
    if table.num_rows == 0:
        return table.select([key, *columns])
    ranked = pc.sort_indices(table, [(key, "ascending"), (order, "ascending")])
    keys = pc.take(table[key], ranked)
    starts = _first_and(pc.invert(_same_as_before(keys)))
    group = np.cumsum(starts.to_numpy(zero_copy_only=False)) - 1  # each sorted row's group
    result = {key: keys.filter(starts)}
    for name in columns:
        values = pc.take(table[name], ranked)
        valid = pc.is_valid(values)
        valid_group = group[valid.to_numpy(zero_copy_only=False)]
        first = np.ones(len(valid_group), dtype=bool)
        first[1:] = valid_group[1:] != valid_group[:-1]
        at = np.full(len(result[key]), -1, dtype=np.int64)
        at[valid_group[first]] = np.arange(int(first.sum()))
        found = values.filter(valid).filter(pa.array(first))
        result[name] = pc.take(found, pa.array(at, mask=at < 0))
    return pa.table(result)


def _same_as_before(column: Column) -> Column:
    """Per row but the first, whether it equals the row before (two nulls are equal)."""
    later, earlier = column.slice(1), column.slice(0, len(column) - 1)
    return pc.or_(
        pc.fill_null(pc.equal(later, earlier), False),
        pc.and_(pc.is_null(later), pc.is_null(earlier)),
    )


def _first_and(rest: Column) -> pa.ChunkedArray:
    """True for the first row, then ``rest``."""
    chunks = rest.chunks if isinstance(rest, pa.ChunkedArray) else [rest]
    return pa.chunked_array([pa.array([True]), *chunks], pa.bool_())
