"""Write a delta as Unikum's two files, in the order the contract asks for (spec §1, §4).

Principals: schools, then classes, then users (objects exist before anything links to
them). Relations: adds in dependency order, then removes in the reverse order (switchable),
so a pupil who changes class is in the new class before leaving the old one. Within a type,
rows are sorted, so the same delta always gives the same bytes.
"""

from __future__ import annotations

from typing import TypeAlias

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from autosynk.config import FileFormat
from autosynk.model import ADD, PRINCIPAL_ORDER, RELATION_ORDER, REMOVE
from autosynk.unikum.encoding import Encoding, LineEnding, encode_column

_KIND_ORDER = pa.array(list(PRINCIPAL_ORDER), pa.string())
_TYPE_ORDER = pa.array(list(RELATION_ORDER), pa.string())

Frame: TypeAlias = pd.DataFrame | pa.Table


def _table(frame: Frame, columns: tuple[str, ...]) -> pa.Table:
    """The columns as an Arrow table of strings (a pandas frame converted column-wise)."""
    if isinstance(frame, pa.Table):
        return pa.table({c: frame[c].cast(pa.large_string()) for c in columns})
    return pa.table({c: pa.array(frame[c], pa.large_string()) for c in columns})


def principal_lines(principals: Frame) -> pa.ChunkedArray:
    """``row`` holds the cleaned, tab-joined fields; order schools, classes, users."""
    table = _table(principals, ("kind", "key", "row"))
    rank = pc.index_in(table["kind"], value_set=_KIND_ORDER)
    order = pc.sort_indices(
        pa.table({"_rank": rank, "key": table["key"]}),
        sort_keys=[("_rank", "ascending"), ("key", "ascending")],
    )
    return table["row"].take(order)


def _sorted_relations(frame: Frame, reverse: bool) -> pa.Table:
    # ranked and sorted by Arrow (a stable sort): millions of rows
    table = _table(frame, ("type", "a", "b"))
    rank = pc.index_in(table["type"], value_set=_TYPE_ORDER)
    if rank.null_count:
        unknown = pc.filter(table["type"], pc.is_null(rank)).unique().to_pylist()
        raise ValueError(f"unknown relation type(s): {sorted(unknown)}")
    order = pc.sort_indices(
        table.append_column("_rank", rank),
        sort_keys=[
            ("_rank", "descending" if reverse else "ascending"),
            ("a", "ascending"),
            ("b", "ascending"),
        ],
    )
    return table.take(order)


def relation_lines(adds: Frame, removes: Frame, fmt: FileFormat) -> list[pa.ChunkedArray]:
    """The relation lines, in the order they are written (one array per operation)."""
    add_lines = [_lines(_sorted_relations(adds, reverse=False), ADD, fmt)] if len(adds) else []
    remove_lines = (
        [_lines(_sorted_relations(removes, reverse=True), REMOVE, fmt)] if len(removes) else []
    )
    return add_lines + remove_lines if fmt.removes_after_adds else remove_lines + add_lines


def _lines(table: pa.Table, operation: str, fmt: FileFormat) -> pa.ChunkedArray:
    # column by column, joined by Arrow: a first night has millions of relations
    columns = {
        "operation": pa.scalar(operation, pa.large_string()),
        "type": table["type"],
        "first": table["a"],
        "second": table["b"],
    }
    ordered = [columns[name] for name in fmt.relation_columns]
    return pc.binary_join_element_wise(*ordered, pa.scalar("\t", pa.large_string()))


def render(
    principals: Frame,
    adds: Frame,
    removes: Frame,
    fmt: FileFormat,
    encoding: str,
) -> tuple[bytes, bytes]:
    """The bytes of the ``.principals`` and ``.relations`` files."""
    ending: LineEnding = "\r\n" if fmt.line_ending == "crlf" else "\n"
    charset: Encoding = "iso-8859-1" if encoding == "iso-8859-1" else "utf-8"
    principal_bytes = encode_column(principal_lines(principals), charset, ending)
    relations = relation_lines(adds, removes, fmt)
    lines = pa.chunked_array(
        [chunk for part in relations for chunk in part.chunks], pa.large_string()
    )
    return principal_bytes, encode_column(lines, charset, ending)
