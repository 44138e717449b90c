"""The writer's order: rows sorted by DuckDB, batch by batch, as Python sorts them.

Strings compare by code point (UTF-8 byte order), ties keep their input order, and the
rows come out the same whichever form the delta is in (frame, Arrow table, Parquet file)
and however small the batches.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from autosynk.config import FileFormat
from autosynk.model import RELATION_ORDER
from autosynk.unikum import writer

KEYS = [
    "b",
    "B",
    "a",
    "å",  # U+00E5, after z
    "a\u030a",  # a + combining ring: after "a", before "b"
    "ä",
    "Z",
    "z",
    "é",
    "ß",
    "Ω",
    "€",
    "😀",
    "10",
    "9",
    "1",
    "",
    "a",  # a tie: input order kept
    "ab",
    "a b",
]


def forms(frame: pd.DataFrame, tmp_path: Path, name: str) -> dict[str, writer.Frame]:
    path = tmp_path / f"{name}.parquet"
    frame.to_parquet(path, index=False)
    return {
        "frame": frame,
        "table": pa.Table.from_pandas(frame, preserve_index=False),
        "file": path,
    }


@pytest.mark.parametrize("form", ["frame", "table", "file"])
@pytest.mark.parametrize("batch_rows", [1, 3, 1000])
def test_principals_come_out_as_python_sorts_them(form, batch_rows, tmp_path, monkeypatch):
    monkeypatch.setattr(writer, "BATCH_ROWS", batch_rows)
    kinds = ["user", "class", "school"]
    rows = [(kinds[i % 3], key, f"s{i}", f"{key}\t{i}") for i, key in enumerate(KEYS)]
    frame = pd.DataFrame(rows, columns=["kind", "key", "source_id", "row"])
    out = io.BytesIO()
    writer.write_principals(
        forms(frame, tmp_path, "p")[form], FileFormat(), "utf-8", out, batch_rows=batch_rows
    )
    rank = {"school": 0, "class": 1, "user": 2}
    # Python's sort is stable: ties keep their input order
    expected = [row for _, _, _, row in sorted(rows, key=lambda r: (rank[r[0]], r[1]))]
    assert out.getvalue().decode().splitlines() == expected


@pytest.mark.parametrize("form", ["frame", "table", "file"])
def test_relations_come_out_in_dependency_order_then_as_python_sorts_them(form, tmp_path):
    relations = [
        (RELATION_ORDER[(i * 7) % len(RELATION_ORDER)], a, b)
        for i, (a, b) in enumerate(zip(KEYS, reversed(KEYS), strict=True))
    ]
    frame = pd.DataFrame(relations, columns=["type", "a", "b"])
    adds = forms(frame, tmp_path, "adds")[form]
    removes = forms(frame.iloc[:5], tmp_path, "removes")[form]
    out = io.BytesIO()
    writer.write_relations(adds, removes, FileFormat(), "utf-8", out, batch_rows=2)
    rank = {t: i for i, t in enumerate(RELATION_ORDER)}
    added = sorted(relations, key=lambda r: (rank[r[0]], r[1], r[2]))
    removed = sorted(relations[:5], key=lambda r: (-rank[r[0]], r[1], r[2]))
    expected = [f"add\t{t}\t{a}\t{b}" for t, a, b in added]
    expected += [f"remove\t{t}\t{a}\t{b}" for t, a, b in removed]
    assert out.getvalue().decode().split("\n")[:-1] == expected


def test_an_unknown_relation_type_is_named(tmp_path):
    frame = pd.DataFrame([("friend_of", "a", "b")], columns=["type", "a", "b"])
    empty = frame.iloc[:0]
    with pytest.raises(ValueError, match=r"unknown relation type\(s\): \['friend_of'\]"):
        writer.write_relations(frame, empty, FileFormat(), "utf-8", io.BytesIO())
