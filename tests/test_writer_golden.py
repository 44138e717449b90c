"""Golden files: the tiny register's total, every row type and relation type, both encodings.

The golden files were read line by line against the spec when they were made; a change in
the writer's bytes must be a deliberate change to these files.
Regenerate with ``AUTOSYNK_REGENERATE_GOLDEN=1 pytest tests/test_writer_golden.py``.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pandas as pd
import pytest

from autosynk.config import FileFormat
from autosynk.mapping.engine import map_register
from autosynk.mapping.spec import load_mapping
from autosynk.register import Snapshot
from autosynk.unikum.writer import render
from autosynk.verify import verify_paths
from tests import tiny_register as tiny

GOLDEN = Path(__file__).parent / "golden" / "writer"


def total(encoding: str) -> tuple[bytes, bytes]:
    spec = load_mapping().model_copy(update={"administrator_duty_roles": ["Förskollärare"]})
    mapped = map_register(
        Snapshot(entities=tiny.register()), spec, tiny.ORG, "2026-11-28", encoding
    )
    principals = pd.DataFrame(
        mapped.principals,
        columns=["kind", "key", "source_id", "row"],
    )
    adds = pd.DataFrame(sorted(mapped.relations), columns=["type", "a", "b"])
    removes = pd.DataFrame(  # removes of what an earlier night sent, to fix their order too
        [("student_in_class", tiny.C1, "6a"), ("class_in_school", "6a", "u1")],
        columns=["type", "a", "b"],
    )
    return render(principals, adds, removes, FileFormat(), encoding)


@pytest.mark.parametrize("encoding", ["utf-8", "iso-8859-1"])
def test_total_matches_golden(encoding, tmp_path):
    principals, relations = total(encoding)
    stem = f"Exempelby_20261128_2030_{encoding}"
    if os.environ.get("AUTOSYNK_REGENERATE_GOLDEN"):
        (GOLDEN / f"{stem}.principals").write_bytes(principals)
        (GOLDEN / f"{stem}.relations").write_bytes(relations)
    assert principals == (GOLDEN / f"{stem}.principals").read_bytes()
    assert relations == (GOLDEN / f"{stem}.relations").read_bytes()
    # and the independent verifier agrees the golden delivery is right
    for suffix, data in ((".principals", principals), (".relations", relations)):
        (tmp_path / f"Exempelby_20261128_2030{suffix}").write_bytes(data)
    problems = verify_paths(sorted(tmp_path.iterdir()), encoding=encoding)
    assert [str(p) for p in problems] == []


def test_golden_covers_every_row_and_relation_type():
    principals = (GOLDEN / "Exempelby_20261128_2030_utf-8.principals").read_text().splitlines()
    relations = (GOLDEN / "Exempelby_20261128_2030_utf-8.relations").read_text().splitlines()
    assert {line.split("\t")[-1] for line in principals} == {"school", "class", "user"}
    from autosynk.model import RELATION_ORDER

    assert {line.split("\t")[1] for line in relations} == set(RELATION_ORDER)


@pytest.mark.parametrize("encoding", ["utf-8", "iso-8859-1"])
def test_files_written_from_parquet_in_small_batches_are_the_golden_bytes(
    encoding, tmp_path, monkeypatch
):
    """The write stage's way: the delta's Parquet files, streamed and written a few lines at
    a time (batches of 7 rows here), give the same bytes as frames in memory."""
    from autosynk.unikum import writer

    monkeypatch.setattr(writer, "BATCH_ROWS", 7)
    spec = load_mapping().model_copy(update={"administrator_duty_roles": ["Förskollärare"]})
    mapped = map_register(
        Snapshot(entities=tiny.register()), spec, tiny.ORG, "2026-11-28", encoding
    )
    frames = {
        "principals": pd.DataFrame(mapped.principals, columns=["kind", "key", "source_id", "row"]),
        # unsorted on purpose: the writer orders them
        "adds": pd.DataFrame(sorted(mapped.relations, reverse=True), columns=["type", "a", "b"]),
        "removes": pd.DataFrame(
            [("student_in_class", tiny.C1, "6a"), ("class_in_school", "6a", "u1")],
            columns=["type", "a", "b"],
        ),
    }
    paths = {}
    for name, frame in frames.items():
        paths[name] = tmp_path / f"{name}.parquet"
        frame.to_parquet(paths[name], index=False)
    out = {".principals": io.BytesIO(), ".relations": io.BytesIO()}
    writer.write_principals(
        paths["principals"], FileFormat(), encoding, out[".principals"], batch_rows=7
    )
    writer.write_relations(
        paths["adds"], paths["removes"], FileFormat(), encoding, out[".relations"], batch_rows=7
    )
    stem = f"Exempelby_20261128_2030_{encoding}"
    for suffix, data in out.items():
        assert data.getvalue() == (GOLDEN / f"{stem}{suffix}").read_bytes()
