"""Map one register with the reference engine or the column-wise one; compare the results.

    python -m tests.reference_mapping.compare_city old REGISTER OUT [DAY]
    python -m tests.reference_mapping.compare_city new REGISTER OUT [DAY]
    python -m tests.reference_mapping.compare_city compare OUT_OLD OUT_NEW

Each mapping run reads the register's files as the transform does (the reference through
the typed records, the new one straight into tables), maps it with the default mapping
and writes what it mapped to OUT (principals and relations as Parquet, quarantine,
protected and counts as JSON) with its wall time. Run each under ``/usr/bin/time -v`` for
its peak memory. ``compare`` says whether the two are exactly the same.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ORG = "BENCH-ORG"


def _write(out: Path, principals: pa.Table, relations: pa.Table, rest: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(principals, out / "principals.parquet")
    pq.write_table(relations, out / "relations.parquet")
    (out / "rest.json").write_text(json.dumps(rest, ensure_ascii=False), encoding="utf-8")


def run_old(register: Path, out: Path, day: str) -> None:
    from autosynk.mapping.spec import load_mapping
    from autosynk.records import read_typed_snapshot
    from tests.reference_mapping.engine import map_register

    begin = time.perf_counter()
    snapshot = read_typed_snapshot(register)
    read = time.perf_counter() - begin
    mapped = map_register(snapshot, load_mapping(), ORG, day, "utf-8", consume=True)
    del snapshot
    wall = time.perf_counter() - begin
    kinds, keys, sources, rows = zip(*mapped.principals, strict=True)
    principals = pa.table({"kind": kinds, "key": keys, "source_id": sources, "row": rows})
    types, firsts, seconds = zip(*sorted(mapped.relations), strict=True)
    relations = pa.table({"type": types, "a": firsts, "b": seconds})
    rest = {
        "quarantine": [[q.entity, q.source_id, q.reason, q.severity] for q in mapped.quarantine],
        "protected": [list(p) for p in mapped.protected],
        "counts": dict(sorted(mapped.counts.items())),
        "seconds": {"read": read, "total": wall},
    }
    _write(out, principals, relations, rest)


def run_new(register: Path, out: Path, day: str) -> None:
    from autosynk.mapping.columnar import map_columns
    from autosynk.mapping.spec import load_mapping
    from autosynk.register_columns import read_columns

    begin = time.perf_counter()
    columns = read_columns(register)
    read = time.perf_counter() - begin
    mapped = map_columns(columns, load_mapping(), ORG, day, "utf-8")
    del columns
    wall = time.perf_counter() - begin
    rest = {
        "quarantine": [[q.entity, q.source_id, q.reason, q.severity] for q in mapped.quarantine],
        "protected": [list(p) for p in mapped.protected],
        "counts": dict(sorted(mapped.counts.items())),
        "seconds": {"read": read, "total": wall},
    }
    _write(out, mapped.principals, mapped.relations, rest)


def compare(old: Path, new: Path) -> bool:
    same = True
    for name in ("principals.parquet", "relations.parquet"):
        a, b = pq.read_table(old / name), pq.read_table(new / name)
        equal = a.cast(b.schema).equals(b)
        print(f"{name}: {a.num_rows} vs {b.num_rows} rows, {'same' if equal else 'DIFFERENT'}")
        same &= equal
    a_rest = json.loads((old / "rest.json").read_text(encoding="utf-8"))
    b_rest = json.loads((new / "rest.json").read_text(encoding="utf-8"))
    for key in ("quarantine", "protected", "counts"):
        equal = a_rest[key] == b_rest[key]
        print(
            f"{key}: {len(a_rest[key])} vs {len(b_rest[key])}, {'same' if equal else 'DIFFERENT'}"
        )
        same &= equal
    print("seconds old", a_rest["seconds"], "new", b_rest["seconds"])
    return same


def main(argv: list[str]) -> int:
    mode = argv[0]
    if mode == "compare":
        return 0 if compare(Path(argv[1]), Path(argv[2])) else 1
    day = argv[3] if len(argv) > 3 else "2026-12-01"
    (run_old if mode == "old" else run_new)(Path(argv[1]), Path(argv[2]), day)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
