"""Write a delta as Unikum's two files, in the order the contract asks for (spec §1, §4).

Principals: schools, then classes, then users (objects exist before anything links to
them). Relations: adds in dependency order, then removes in the reverse order (switchable),
so a pupil who changes class is in the new class before leaving the old one. Within a type,
rows are sorted, so the same delta always gives the same bytes.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from autosynk.config import FileFormat
from autosynk.model import ADD, PRINCIPAL_ORDER, RELATION_ORDER, REMOVE
from autosynk.unikum.encoding import Encoding, LineEnding, encode_lines

_KIND_RANK = {kind: rank for rank, kind in enumerate(PRINCIPAL_ORDER)}
_TYPE_ORDER = pa.array(list(RELATION_ORDER), pa.string())


def principal_lines(principals: pd.DataFrame) -> list[str]:
    """``row`` holds the cleaned, tab-joined fields; order schools, classes, users."""
    if not len(principals):
        return []
    ordered = principals.assign(_rank=principals["kind"].map(_KIND_RANK)).sort_values(
        ["_rank", "key"], kind="stable"
    )
    return ordered["row"].tolist()


def _sorted_relations(frame: pd.DataFrame, reverse: bool) -> pd.DataFrame:
    # ranked and sorted by Arrow (a stable sort, like pandas' "stable"): millions of rows
    rank = pc.index_in(pa.array(frame["type"], pa.string()), value_set=_TYPE_ORDER)
    unknown = rank.is_null().to_numpy(zero_copy_only=False)
    if unknown.any():
        raise ValueError(f"unknown relation type(s): {sorted(set(frame.loc[unknown, 'type']))}")
    table = pa.table(
        {
            "_rank": rank,
            "a": pa.array(frame["a"], pa.string()),
            "b": pa.array(frame["b"], pa.string()),
        }
    )
    order = pc.sort_indices(
        table,
        sort_keys=[
            ("_rank", "descending" if reverse else "ascending"),
            ("a", "ascending"),
            ("b", "ascending"),
        ],
    )
    return frame.iloc[order.to_numpy()]


def relation_lines(adds: pd.DataFrame, removes: pd.DataFrame, fmt: FileFormat) -> list[str]:
    add_lines = _lines(_sorted_relations(adds, reverse=False), ADD, fmt) if len(adds) else []
    remove_lines = (
        _lines(_sorted_relations(removes, reverse=True), REMOVE, fmt) if len(removes) else []
    )
    return add_lines + remove_lines if fmt.removes_after_adds else remove_lines + add_lines


def _lines(frame: pd.DataFrame, operation: str, fmt: FileFormat) -> list[str]:
    count = len(frame)
    columns: dict[str, Iterable[str]] = {
        "operation": itertools.repeat(operation, count),
        "type": frame["type"].tolist(),
        "first": frame["a"].tolist(),
        "second": frame["b"].tolist(),
    }
    # column by column, not a dict per row: a first night has millions of relations
    ordered = [columns[name] for name in fmt.relation_columns]
    return ["\t".join(parts) for parts in zip(*ordered, strict=True)]


def render(
    principals: pd.DataFrame,
    adds: pd.DataFrame,
    removes: pd.DataFrame,
    fmt: FileFormat,
    encoding: str,
) -> tuple[bytes, bytes]:
    """The bytes of the ``.principals`` and ``.relations`` files."""
    ending: LineEnding = "\r\n" if fmt.line_ending == "crlf" else "\n"
    charset: Encoding = "iso-8859-1" if encoding == "iso-8859-1" else "utf-8"
    return (
        encode_lines(principal_lines(principals), charset, ending),
        encode_lines(relation_lines(adds, removes, fmt), charset, ending),
    )
