"""Write a delta as Unikum's two files, in the order the contract asks for (spec §1, §4).

Principals: schools, then classes, then users (objects exist before anything links to
them). Relations: adds in dependency order, then removes in the reverse order (switchable),
so a pupil who changes class is in the new class before leaving the old one. Within a type,
rows are sorted, so the same delta always gives the same bytes.

The rows are sorted by DuckDB (on both cores, spilling to disk beyond its memory limit) and
written batch by batch as they come out of the sort: memory stays at a batch of lines and
the sort's working set, however many millions of rows a night sends. Ties keep the input
order (the row's position is the last sort key), as a stable sort would. Strings compare by
their UTF-8 bytes, which is code point order.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, TypeAlias

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from autosynk.config import FileFormat
from autosynk.delta import connection, view
from autosynk.model import ADD, PRINCIPAL_ORDER, RELATION_ORDER, REMOVE
from autosynk.unikum.encoding import Encoding, LineEnding, encode_column

#: rows per batch written: a few MB of lines
BATCH_ROWS = 65_536
#: a Parquet file streamed to DuckDB is read through a buffer of this size (bytes)
READ_BUFFER = 2**20

#: rows to write: a pandas frame, an Arrow table, or a Parquet file on a local disk
Frame: TypeAlias = pd.DataFrame | pa.Table | Path


def _rank(column: str, order: tuple[str, ...]) -> str:
    """SQL for a value's position in ``order`` (NULL when it is not there)."""
    cases = " ".join(f"WHEN '{value}' THEN {i}" for i, value in enumerate(order))
    return f"CASE {column} {cases} END"


def _scan(
    con: duckdb.DuckDBPyConnection, name: str, frame: Frame, columns: list[str], *, once: bool
) -> None:
    """``name`` as a view of ``columns`` as text, with the row's position ``n``.

    ``once``: the view is read once, and a Parquet file is then streamed to DuckDB page by
    page (pyarrow's reader): DuckDB's own reader holds whole column chunks, and a wide
    column in row groups of a million rows (a country's principals) takes more memory than
    DuckDB is given, sort included.
    """
    if isinstance(frame, pd.DataFrame):
        frame = pa.table({c: pa.array(frame[c], pa.large_string()) for c in columns})
    if once and isinstance(frame, Path):
        con.register(f"{name}_stream", _numbered_stream(frame, columns))
        names = ", ".join(f'CAST("{c}" AS VARCHAR) AS "{c}"' for c in columns)
        con.execute(f"CREATE TEMP VIEW {name} AS SELECT {names}, n FROM {name}_stream")  # noqa: S608
        return
    view(con, name, frame, columns, numbered=True)


def _numbered_stream(path: Path, columns: list[str]) -> pa.RecordBatchReader:
    """``columns`` of a Parquet file with each row's position ``n``, batch by batch."""
    file = pq.ParquetFile(path, pre_buffer=False, buffer_size=READ_BUFFER)
    schema = file.schema_arrow
    fields = [schema.field(c) for c in columns]

    def batches() -> Iterator[pa.RecordBatch]:
        first = 0
        for batch in file.iter_batches(batch_size=BATCH_ROWS, columns=columns):
            positions = pa.array(np.arange(first, first + batch.num_rows, dtype=np.int64))
            first += batch.num_rows
            yield pa.RecordBatch.from_arrays([*batch.columns, positions], [*columns, "n"])

    numbered = pa.schema([*fields, pa.field("n", pa.int64())])
    return pa.RecordBatchReader.from_batches(numbered, batches())


def _batches(
    con: duckdb.DuckDBPyConnection, query: str, batch_rows: int
) -> Iterator[pa.RecordBatch]:
    reader = con.sql(query).to_arrow_reader(batch_rows)
    for batch in reader:
        if batch.num_rows:
            yield batch


def _principal_batches(
    con: duckdb.DuckDBPyConnection, principals: Frame, batch_rows: int
) -> Iterator[pa.Array]:
    """``row`` holds the cleaned, tab-joined fields; order schools, classes, users."""
    _scan(con, "principals", principals, ["kind", "key", "row"], once=True)
    query = (
        f"SELECT row FROM principals ORDER BY {_rank('kind', PRINCIPAL_ORDER)} "  # noqa: S608
        "ASC NULLS LAST, key ASC NULLS LAST, n"
    )
    for batch in _batches(con, query, batch_rows):
        yield batch.column(0)


def _relation_batches(
    con: duckdb.DuckDBPyConnection,
    name: str,
    relations: Frame,
    operation: str,
    fmt: FileFormat,
    batch_rows: int,
) -> Iterator[pa.Array]:
    _scan(con, name, relations, ["type", "a", "b"], once=False)
    known = ", ".join(f"'{t}'" for t in RELATION_ORDER)
    unknown = con.execute(
        f"SELECT DISTINCT type FROM {name} WHERE type IS NULL OR type NOT IN ({known})"  # noqa: S608
    ).fetchall()
    if unknown:
        raise ValueError(f"unknown relation type(s): {sorted(t for (t,) in unknown)}")
    # one sort per type, in the order types are written: each holds a type's rows only
    # (a third of them at most), and sorting in parts is faster than sorting them all
    order = RELATION_ORDER[::-1] if operation == REMOVE else RELATION_ORDER
    for rel_type in order:
        query = (
            f"SELECT type, a, b FROM {name} WHERE type = '{rel_type}' "  # noqa: S608
            "ORDER BY a ASC NULLS LAST, b ASC NULLS LAST, n"
        )
        for batch in _batches(con, query, batch_rows):
            yield _lines(batch, operation, fmt)


def _lines(batch: pa.RecordBatch, operation: str, fmt: FileFormat) -> pa.Array:
    # column by column, joined by Arrow
    columns = {
        "operation": pa.scalar(operation, pa.large_string()),
        "type": batch.column("type").cast(pa.large_string()),
        "first": batch.column("a").cast(pa.large_string()),
        "second": batch.column("b").cast(pa.large_string()),
    }
    ordered = [columns[name] for name in fmt.relation_columns]
    return pc.binary_join_element_wise(*ordered, pa.scalar("\t", pa.large_string()))


def _rows(frame: Frame) -> int:
    if isinstance(frame, Path):
        return int(pq.ParquetFile(frame).metadata.num_rows)
    return len(frame)


def _format(fmt: FileFormat, encoding: str) -> tuple[Encoding, LineEnding]:
    ending: LineEnding = "\r\n" if fmt.line_ending == "crlf" else "\n"
    charset: Encoding = "iso-8859-1" if encoding == "iso-8859-1" else "utf-8"
    return charset, ending


def _write(
    lines: Iterator[pa.Array], charset: Encoding, ending: LineEnding, out: BinaryIO, first: int
) -> int:
    """Encode and write batches of lines; returns the next line's number."""
    for batch in lines:
        out.write(encode_column(batch, charset, ending, first_line=first))
        first += len(batch)
    return first


def write_principals(
    principals: Frame,
    fmt: FileFormat,
    encoding: str,
    out: BinaryIO,
    *,
    batch_rows: int = BATCH_ROWS,
) -> None:
    """The ``.principals`` file's bytes into ``out``, batch by batch."""
    charset, ending = _format(fmt, encoding)
    encode_column(pa.array([], pa.large_string()), charset, ending)  # checks the format
    if not _rows(principals):
        return
    con = connection()
    try:
        _write(_principal_batches(con, principals, batch_rows), charset, ending, out, 1)
    finally:
        con.close()


def write_relations(
    adds: Frame,
    removes: Frame,
    fmt: FileFormat,
    encoding: str,
    out: BinaryIO,
    *,
    batch_rows: int = BATCH_ROWS,
) -> None:
    """The ``.relations`` file's bytes into ``out``, batch by batch: adds in dependency
    order, removes in reverse order, adds first unless the format says otherwise."""
    charset, ending = _format(fmt, encoding)
    encode_column(pa.array([], pa.large_string()), charset, ending)  # checks the format
    parts = [("adds", adds, ADD), ("removes", removes, REMOVE)]
    if not fmt.removes_after_adds:
        parts.reverse()
    con = connection()
    try:
        line = 1
        for name, frame, operation in parts:
            if _rows(frame):
                batches = _relation_batches(con, name, frame, operation, fmt, batch_rows)
                line = _write(batches, charset, ending, out, line)
    finally:
        con.close()


def render(
    principals: Frame,
    adds: Frame,
    removes: Frame,
    fmt: FileFormat,
    encoding: str,
) -> tuple[bytes, bytes]:
    """The bytes of the ``.principals`` and ``.relations`` files (in memory: small deltas
    and tests; the write stage streams them into files)."""
    principal_bytes, relation_bytes = io.BytesIO(), io.BytesIO()
    write_principals(principals, fmt, encoding, principal_bytes)
    write_relations(adds, removes, fmt, encoding, relation_bytes)
    return principal_bytes.getvalue(), relation_bytes.getvalue()
