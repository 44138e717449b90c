"""Benchmark: housekeeping over two years of nights at Stockholm scale.

    python bench/housekeeping.py [--staging URL] [--nights 365] [--changes 20000]

Builds, directly in a staging database and a work base (no nights are run), what two
years of nightly runs leave behind at Stockholm scale: a delivered state of 700,000
principals and 2,360,000 relations, a run ledger of ``--nights`` committed runs spread
evenly over 730 days with two deliveries and some quarantine rows each, ``--changes``
history rows per night (half naming persons who have left, half naming persons still
delivered), and a work directory of 30 small files per run. Then it times
``autosynk housekeeping`` twice, as a dry run and for real, with the default retention,
and prints the counts, the wall time and the peak memory of each.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from autosynk.config import load_config
from autosynk.housekeeping import describe, housekeeping
from autosynk.staging import schema
from autosynk.staging.store import Staging, _bulk_insert

PRINCIPALS = 700_000
RELATIONS_PER_PRINCIPAL = 3  # 2.1 M, plus 260,000 relations to schools
SPAN_DAYS = 730


def build(staging: Staging, work: Path, nights: int, changes: int) -> None:
    now = dt.datetime.now(dt.UTC)
    runs = [f"scheduled__night-{i:04d}" for i in range(nights)]
    when = [now - dt.timedelta(days=SPAN_DAYS * (nights - i) / nights) for i in range(nights)]
    row = "Förnamn\tEfternamn\t\tfornamn.efternamn@exempelby.se\t\t\tuser"
    with staging.engine.begin() as conn:
        _bulk_insert(
            conn,
            schema.run,
            ["run_id", "kind", "status", "started_at", "ended_at", "committed_at", "base_run"],
            (
                (r, "nightly", "committed", t, t, t, runs[i - 1] if i else None)
                for i, (r, t) in enumerate(zip(runs, when, strict=True))
            ),
        )
        _bulk_insert(
            conn,
            schema.delivered_principal,
            ["key", "kind", "source_id", "hash", "row", "run_id", "added_run"],
            (
                (f"K{k:07d}", "user", f"s{k}", "0" * 32, row, runs[0], runs[0])
                for k in range(PRINCIPALS)
            ),
        )
        _bulk_insert(
            conn,
            schema.delivered_relation,
            ["rel_type", "a", "b", "run_id"],
            (
                (t, f"K{k:07d}", f"{t}-{k % 800}", runs[0])
                for k in range(PRINCIPALS)
                for t in ("student_in_class", "student_in_school", "guardian_for")[
                    :RELATIONS_PER_PRINCIPAL
                ]
            ),
        )
        _bulk_insert(
            conn,
            schema.change,
            ["run_id", "scope", "op", "kind", "a", "b", "since_run"],
            (
                (
                    r,
                    "relation" if j % 4 else "principal",
                    "remove" if j % 4 else "delete",
                    "student_in_class" if j % 4 else "user",
                    f"D{i:04d}-{j // 4:06d}"
                    if j < changes // 2
                    else f"K{(i * changes + j) % PRINCIPALS:07d}",
                    f"7a-{j % 800}" if j % 4 else "",
                    runs[0],
                )
                for i, r in enumerate(runs)
                for j in range(changes)
            ),
        )
        _bulk_insert(
            conn,
            schema.delivery,
            [
                "run_id",
                "name",
                "remote_path",
                "size",
                "sha256",
                "delivered_at",
                "late",
                "already_there",
            ],
            (
                (
                    r,
                    f"Exempelby_{i:04d}.{s}",
                    f"/upload/Exempelby_{i:04d}.{s}",
                    1,
                    "0" * 64,
                    t.isoformat(),
                    False,
                    False,
                )
                for i, (r, t) in enumerate(zip(runs, when, strict=True))
                for s in ("principals", "relations")
            ),
        )
        _bulk_insert(
            conn,
            schema.quarantine,
            ["run_id", "entity", "source_id", "severity", "reason"],
            ((r, "person", f"p{q}", "error", "identity number") for r in runs for q in range(20)),
        )
    for name, moment in zip(runs, when, strict=True):
        folder = work / name.replace(":", "_")
        for part in ("extract", "mapped", "delta", "package"):
            (folder / part).mkdir(parents=True, exist_ok=True)
        parts = ("extract", "mapped", "delta", "package")
        data = [folder / part / f"f{n}.bin" for part in parts for n in range(7)]
        files = [folder / "run-summary.json", *data[:29]]
        for path in files:
            path.write_bytes(b"x" * 1024)
            os.utime(path, (moment.timestamp(), moment.timestamp()))


def timed(label: str, call):  # type: ignore[no-untyped-def]
    process = psutil.Process()
    peak = [process.memory_info().rss]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.02)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    started = time.perf_counter()
    result = call()
    took = time.perf_counter() - started
    stop.set()
    watcher.join()
    print(f"{label}: {took:.2f} s wall, peak RSS {peak[0] / 2**20:.0f} MB")
    for line in describe(result):
        print(line)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--staging", help="SQLAlchemy URL (default: SQLite in a temp folder)")
    parser.add_argument("--nights", type=int, default=365)
    parser.add_argument("--changes", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="autosynk-housekeeping-") as tmp:
        root = Path(tmp)
        url = args.staging or f"sqlite:///{root}/staging.db"
        config = root / "autosynk.yaml"
        config.write_text(
            "municipality: Exempelby\norganisation_id: x\n"
            "source: {kind: ss12000-files, path: register}\n"
            f"staging: {{url: '{url}'}}\ntarget: {{kind: directory, path: out}}\n"
            "work_base: work\n",
            encoding="utf-8",
        )
        cfg = load_config(config)
        staging = Staging(cfg.staging.url)
        staging.upgrade()
        started = time.perf_counter()
        build(staging, root / "work", args.nights, args.changes)
        print(
            f"built {args.nights} nights, {args.nights * args.changes:,} history rows, "
            f"{PRINCIPALS:,} principals in {time.perf_counter() - started:.0f} s"
        )
        timed("dry run", lambda: housekeeping(cfg, dry_run=True))
        timed("housekeeping", lambda: housekeeping(cfg))
        timed("again (nothing left)", lambda: housekeeping(cfg))
    return 0


if __name__ == "__main__":
    sys.exit(main())
