"""Benchmark: a first night and a 1%-change night through the CLI, stage by stage.

    python bench/run.py --scale stockholm|national|small|tiny [--work DIR] [--staging URL]

Generates a synthetic register (:mod:`synth`), then runs each night as one subprocess of
the real command line (``autosynk run``) with timing hooks around the pipeline stages, and
prints per stage the wall time, rows per second and peak memory, the night's total, the
rows it wrote to staging, and, on the same frames, the time of a DuckDB full-outer-join
diff as the reference for the delta stage. ``--json FILE`` keeps the figures.

The yardstick R (issue 13): one fresh process that ``json.load``s the register's five
files with the standard library, timed in the same run (before each night and after the
last; the median is R). Every night and stage is also given as a multiple of R, so runs
on other machines or hours compare. At national scale a ``json.load`` of the register does
not fit in memory, so R is taken on a Stockholm-scale register generated beside it
(``--yardstick-scale``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import synth  # noqa: E402

STAGES = (
    "prepare",
    "extract",
    "transform",
    "compute_delta",
    "write",
    "plan",
    "deliver",
    "commit",
    "report",
)
TABLES = ("delivered_principal", "delivered_relation", "change", "quarantine", "run", "delivery")
#: issue 13's targets, as multiples of R (Stockholm) and in MB; national: 11x Stockholm
TARGETS = {"first_r": 3.0, "change_r": 1.5, "rss_mb": 1024.0, "national_rss_mb": 10240.0}


# -- the child: one night through the CLI, with timing hooks -----------------------------


def child_night(config: str, run_id: str, out: str) -> int:
    """Run ``autosynk run`` in this process, timing each pipeline stage."""
    started = time.perf_counter()
    limit = os.environ.get("AUTOSYNK_BENCH_MEMORY_LIMIT_GB")
    if limit:  # fail cleanly (the CLI's out-of-memory line) instead of calling the OOM killer
        cap = int(float(limit) * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    import psutil

    from autosynk import cli, pipeline

    process = psutil.Process()
    peak = {"now": process.memory_info().rss}
    stop = threading.Event()

    def sample() -> None:  # RSS every 20 ms: the peak within each stage
        while not stop.is_set():
            peak["now"] = max(peak["now"], process.memory_info().rss)
            time.sleep(0.02)

    stages: list[dict[str, Any]] = []

    def hooked(name: str, function: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            peak["now"] = process.memory_info().rss
            begin, cpu = time.perf_counter(), time.process_time()
            result = function(*args, **kwargs)
            wall = time.perf_counter() - begin
            peak["now"] = max(peak["now"], process.memory_info().rss)
            stages.append(
                {
                    "stage": name,
                    "wall": wall,
                    "cpu": time.process_time() - cpu,  # all threads (DuckDB uses both cores)
                    "rss": peak["now"],
                    "result": result,
                }
            )
            return result

        return timed

    for name in STAGES:
        setattr(pipeline, name, hooked(name, getattr(pipeline, name)))
    imported = time.perf_counter() - started
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = cli.main(["run", "--config", config, "--run-id", run_id])
    stop.set()
    night = {"code": code, "imports": imported, "stages": stages, "peak_rss": own_peak_rss()}
    Path(out).write_text(json.dumps(night, default=str), encoding="utf-8")
    return code


def own_peak_rss() -> int:
    """This process's peak RSS in bytes (``VmHWM``: its own pages only).

    Not ``getrusage``/``wait4``'s ``ru_maxrss``: Linux hands a spawned child its parent's
    high-water mark at ``exec`` (a child of a 3 GB parent reports 3 GB), so a night would
    be charged with what the bench itself once held.
    """
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# -- the parent --------------------------------------------------------------------------


YARDSTICK = """
import json, sys, time
from pathlib import Path
begin = time.perf_counter()
register = [json.load(open(Path(sys.argv[1]) / f"{name}.json", encoding="utf-8"))
            for name in ("organisations", "persons", "groups", "duties", "activities")]
seconds = time.perf_counter() - begin
peak = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status")
            if line.startswith("VmHWM:"))  # its own pages (see own_peak_rss)
print(json.dumps({"seconds": seconds, "peak_rss": peak,
                  "records": sum(len(f["data"]) for f in register)}))
"""


def yardstick(register: Path) -> dict[str, Any]:
    """R: one fresh process ``json.load``ing the register's five files (stdlib only)."""
    begin = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", YARDSTICK, str(register)], stdout=subprocess.PIPE
    )
    assert process.stdout is not None
    output = process.stdout.read()
    _pid, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - begin
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"bench: the yardstick failed on {register}")
    inner = json.loads(output)
    return {
        "wall": wall,
        "load_s": inner["seconds"],
        "cpu": usage.ru_utime + usage.ru_stime,
        "peak_rss": inner["peak_rss"],
        "records": inner["records"],
    }


def yardstick_register(root: Path, scale: str, yardstick_scale: str, seed: int) -> Path:
    """The register R is measured on: the bench's own, or one generated beside it."""
    if yardstick_scale == scale:
        return root / "register"
    folder = root / f"yardstick-{yardstick_scale}"
    if not (folder / "persons.json").exists():
        print(f"bench: generating a {yardstick_scale} register for the yardstick", flush=True)
        synth.generate(folder, yardstick_scale, seed)
    return folder


def measure_r(register: Path, samples: list[dict[str, Any]], when: str) -> None:
    sample = yardstick(register)
    sample["when"] = when
    samples.append(sample)
    print(
        f"bench: R ({when}) {sample['wall']:.2f} s, peak {sample['peak_rss'] / 2**20:.0f} MB",
        flush=True,
    )


def r_of(samples: list[dict[str, Any]]) -> dict[str, float]:
    """R: the median of the samples (wall, and its peak RSS)."""
    return {
        "wall": statistics.median(s["wall"] for s in samples),
        "cpu": statistics.median(s["cpu"] for s in samples),
        "peak_rss": statistics.median(s["peak_rss"] for s in samples),
    }


def write_config(root: Path, staging: str | None) -> Path:
    url = staging or f"sqlite:///{root / 'state' / 'staging.db'}"
    config = root / "autosynk.yaml"
    config.write_text(
        "municipality: Benchby\n"
        "organisation_id: BENCH-ORG\n"
        f"source: {{kind: ss12000-files, path: '{root / 'register'}'}}\n"
        f"staging: {{url: '{url}'}}\n"
        f"target: {{kind: directory, path: '{root / 'out'}'}}\n"
        f"work_base: '{root / 'work'}'\n",
        encoding="utf-8",
    )
    return config


def table_counts(url: str) -> dict[str, int]:
    import sqlalchemy as sa

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    counts = {}
    with engine.connect() as conn:
        for table in TABLES:
            try:
                counts[table] = int(
                    conn.execute(sa.text(f'SELECT count(*) FROM "{table}"')).scalar()  # noqa: S608
                )
            except sa.exc.DBAPIError:
                counts[table] = 0
    engine.dispose()
    return counts


def dump_delivered(url: str, folder: Path) -> None:
    """The delivered state before the night, as parquet, for the DuckDB reference."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import sqlalchemy as sa

    folder.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    queries = {
        "principals": ("SELECT key, hash FROM delivered_principal", ["key", "hash"]),
        "relations": ("SELECT rel_type, a, b FROM delivered_relation", ["type", "a", "b"]),
    }
    # in batches: a country's 30 M delivered rows as Python tuples took this process to
    # 11 GB, which the next night's child then reported as its own peak (see run_night)
    with engine.connect() as conn:
        for name, (query, columns) in queries.items():
            schema = pa.schema([(c, pa.string()) for c in columns])
            with pq.ParquetWriter(folder / f"{name}.parquet", schema) as writer:
                try:
                    result = conn.execution_options(stream_results=True).execute(sa.text(query))
                except sa.exc.DBAPIError:  # no such table yet: an empty state
                    continue
                for rows in result.partitions(500_000):
                    arrays = [pa.array([row[i] for row in rows]) for i in range(len(columns))]
                    writer.write_table(pa.table(arrays, schema=schema))
    engine.dispose()


def duckdb_reference(mapped: Path, delivered: Path) -> dict[str, Any]:
    """A FULL OUTER JOIN diff of tonight's mapped frames against the delivered state."""
    import duckdb

    begin = time.perf_counter()
    con = duckdb.connect()
    con.execute("SET threads = 2")
    principals = con.execute(
        """
        SELECT count(*) FILTER (WHERE d.key IS NULL),
               count(*) FILTER (WHERE t.key IS NOT NULL AND d.key IS NOT NULL
                                AND t.hash <> d.hash),
               count(*) FILTER (WHERE t.key IS NULL)
        FROM read_parquet($tonight) t
        FULL OUTER JOIN read_parquet($delivered) d ON t.key = d.key
        """,
        {
            "tonight": str(mapped / "principals.parquet"),
            "delivered": str(delivered / "principals.parquet"),
        },
    ).fetchone()
    con.execute(
        """
        CREATE TEMP TABLE relation_diff AS
        SELECT coalesce(t.type, d.type) AS type, coalesce(t.a, d.a) AS a,
               coalesce(t.b, d.b) AS b, d.type IS NULL AS added
        FROM read_parquet($tonight) t
        FULL OUTER JOIN read_parquet($delivered) d
          ON t.type = d.type AND t.a = d.a AND t.b = d.b
        WHERE t.type IS NULL OR d.type IS NULL
        """,
        {
            "tonight": str(mapped / "relations.parquet"),
            "delivered": str(delivered / "relations.parquet"),
        },
    )
    added, removed = con.execute(
        "SELECT count(*) FILTER (WHERE added), count(*) FILTER (WHERE NOT added) FROM relation_diff"
    ).fetchone()
    con.close()
    assert principals is not None
    return {
        "seconds": time.perf_counter() - begin,
        "principals_new": principals[0],
        "principals_changed": principals[1],
        "principals_gone": principals[2],
        "relations_added": added,
        "relations_removed": removed,
    }


def run_night(config: Path, run_id: str, root: Path) -> dict[str, Any]:
    out = root / f"{run_id}.json"
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        str(config),
        run_id,
        str(out),
    ]
    begin = time.perf_counter()
    with (root / f"{run_id}.log").open("wb") as log:
        process = subprocess.Popen(command, cwd=root, stdout=log, stderr=subprocess.STDOUT)
        _pid, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - begin
    process.returncode = os.waitstatus_to_exitcode(status)
    result: dict[str, Any] = {"code": process.returncode, "imports": 0.0, "stages": []}
    if out.exists():
        result = json.loads(out.read_text(encoding="utf-8"))
    if process.returncode != 0:
        tail = (root / f"{run_id}.log").read_text(encoding="utf-8", errors="replace")[-2000:]
        print(f"bench: night {run_id} FAILED (exit {process.returncode}):\n{tail}", flush=True)
        result["failed"] = tail.strip().splitlines()[-1] if tail.strip() else "no output"
    # the child's own high-water mark; wait4's would include this process's (own_peak_rss)
    result.update(
        wall=wall,
        peak_rss=result.get("peak_rss") or usage.ru_maxrss * 1024,
        cpu=usage.ru_utime + usage.ru_stime,
    )
    return result


def stage_rows(stage: str, night: dict[str, Any], written: int) -> int:
    by_name = {s["stage"]: s["result"] for s in night["stages"]}
    transform = by_name.get("transform", {})
    mapped = int(transform.get("principals", 0)) + int(transform.get("relations", 0))
    if stage == "extract":
        return sum(int(v) for k, v in transform.items() if k.startswith("snapshot_"))
    if stage == "write":
        counts = by_name.get("compute_delta", {})
        return sum(
            int(counts.get(k, 0)) for k in ("to_send_principals", "to_send_adds", "to_send_removes")
        )
    if stage == "commit":
        return written
    return mapped


def measure_night(label: str, config: Path, url: str, run_id: str, root: Path) -> dict[str, Any]:
    before = table_counts(url)
    dump_delivered(url, root / "reference" / run_id)
    night = run_night(config, run_id, root)
    if night.get("failed"):
        night.update(label=label, run_id=run_id)
        return night
    after = table_counts(url)
    commit = next((s["result"] for s in night["stages"] if s["stage"] == "commit"), {})
    state_rows = sum(
        int(commit.get(k, 0))
        for k in ("principal_upserts", "principal_deletes", "relation_adds", "relation_removes")
    )
    history = after["change"] - before["change"]
    ledgers = sum(after[t] - before[t] for t in ("quarantine", "run", "delivery"))
    written = state_rows + history + ledgers
    delivered_after = after["delivered_principal"] + after["delivered_relation"]
    work = root / "work" / run_id
    reference = duckdb_reference(work / "mapped", root / "reference" / run_id)
    night.update(
        label=label,
        run_id=run_id,
        staging_before=before,
        staging_after=after,
        rows_written=written,
        rows_written_state=state_rows,
        rows_written_history=history,
        rows_written_ledgers=ledgers,
        delivered_rows=delivered_after,
        duckdb=reference,
    )
    return night


def report(
    scale: str, counts: dict[str, Any], nights: list[dict[str, Any]], extra: dict[str, Any]
) -> str:
    r = extra["r"]
    lines = [
        f"# autosynk benchmark, scale {scale}",
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}, {extra['memory_gb']:.0f} GiB RAM",
        "register: "
        + ", ".join(f"{k} {v}" for k, v in counts.items())
        + f" (generated in {extra['generate_s']:.1f} s)",
        f"yardstick R = {r['wall']:.2f} s (json.load of the {extra['yardstick_scale']} "
        f"register's five files, one process; median of "
        + ", ".join(f"{s['wall']:.2f}" for s in extra["r_samples"])
        + f" s; CPU {r['cpu']:.2f} s, peak RSS {r['peak_rss'] / 2**20:.0f} MB)",
    ]
    for night in nights:
        lines += ["", f"## {night['label']} ({night['run_id']})"]
        if night.get("failed"):
            lines.append(
                f"FAILED after {night['wall']:.1f} s (peak RSS "
                f"{night['peak_rss'] / 2**20:.0f} MB): {night['failed']}"
            )
        lines.append(
            f"{'stage':<14}{'wall s':>9}{'cpu s':>8}{'x R':>7}{'rows':>11}{'rows/s':>12}"
            f"{'peak MB':>10}"
        )
        for stage in night["stages"]:
            rows = stage_rows(stage["stage"], night, night.get("rows_written", 0))
            rate = rows / stage["wall"] if stage["wall"] > 0 else 0.0
            lines.append(
                f"{stage['stage']:<14}{stage['wall']:>9.2f}{stage.get('cpu', 0.0):>8.2f}"
                f"{stage['wall'] / r['wall']:>7.2f}{rows:>11}{rate:>12.0f}"
                f"{stage['rss'] / 2**20:>10.0f}"
            )
        stage_sum = sum(s["wall"] for s in night["stages"])
        lines += [
            f"{'startup':<14}{night['imports']:>9.2f}   (interpreter and imports)",
            f"total wall {night['wall']:.2f} s = {night['wall'] / r['wall']:.2f} R "
            f"(stages {stage_sum:.2f} s), cpu {night['cpu']:.1f} s, "
            f"peak RSS {night['peak_rss'] / 2**20:.0f} MB",
        ]
        if night.get("failed"):
            continue
        delta = next(s for s in night["stages"] if s["stage"] == "compute_delta")
        reference = night["duckdb"]
        lines += [
            f"duckdb full-outer-join diff {reference['seconds']:.2f} s; delta stage "
            f"{delta['wall']:.2f} s = {delta['wall'] / reference['seconds']:.1f}x the reference",
            f"duckdb counts: {json.dumps({k: v for k, v in reference.items() if k != 'seconds'})}",
            f"staging rows written {night['rows_written']} (state {night['rows_written_state']}, "
            f"history {night['rows_written_history']}, ledgers {night['rows_written_ledgers']}) = "
            f"{night['rows_written'] / max(night['delivered_rows'], 1):.2%} of "
            f"{night['delivered_rows']} delivered rows",
        ]
    lines += ["", "## targets (issue 13)"]
    lines += [f"{verdict:<7}{what}: {value}" for what, verdict, value in verdicts(scale, nights, r)]
    return "\n".join(lines)


def verdicts(
    scale: str, nights: list[dict[str, Any]], r: dict[str, float]
) -> list[tuple[str, str, str]]:
    """(target, met / MISSED / n/a, figure) for issue 13's targets at this scale."""

    def judged(ok: bool) -> str:
        return "met" if ok else "MISSED"

    out = []
    national = scale == "national"
    for night, limit in zip(nights, ("first_r", "change_r"), strict=False):
        times = night["wall"] / r["wall"]
        if night.get("failed"):
            out.append((f"{night['label']} completes", "MISSED", night["failed"]))
        elif national:  # judged against Stockholm's figures by the reader: 11x those
            out.append((f"{night['label']} (<= 11x Stockholm's)", "n/a", f"{times:.2f} R"))
        else:
            out.append(
                (
                    f"{night['label']} <= {TARGETS[limit]:g} R",
                    judged(times <= TARGETS[limit]),
                    f"{times:.2f} R ({night['wall']:.1f} s)",
                )
            )
    peak = max(n["peak_rss"] for n in nights) / 2**20
    limit_mb = TARGETS["national_rss_mb" if national else "rss_mb"]
    out.append(
        (f"peak memory <= {limit_mb / 1024:g} GB", judged(peak <= limit_mb), f"{peak:.0f} MB")
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(synth.SCALES), default="stockholm")
    parser.add_argument(
        "--work", help="folder for register, staging and runs (default: a temp dir)"
    )
    parser.add_argument("--staging", help="staging URL (default: SQLite in the work folder)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="also write the figures as JSON here")
    parser.add_argument(
        "--yardstick-scale",
        choices=sorted(synth.SCALES),
        help="register R is measured on (default: the bench's own; stockholm for national)",
    )
    parser.add_argument(
        "--memory-limit-gb",
        type=float,
        help="cap each night's address space (a night that needs more fails cleanly)",
    )
    parser.add_argument(
        "--child", nargs=3, metavar=("CONFIG", "RUN_ID", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.child:
        return child_night(*args.child)

    import psutil

    if args.memory_limit_gb:
        os.environ["AUTOSYNK_BENCH_MEMORY_LIMIT_GB"] = str(args.memory_limit_gb)
    root = Path(args.work or tempfile.mkdtemp(prefix=f"autosynk-bench-{args.scale}-")).resolve()
    root.mkdir(parents=True, exist_ok=True)
    print(f"bench: work folder {root}", flush=True)
    begin = time.perf_counter()
    reused = synth.already_generated(root / "register", args.scale, args.seed)
    counts = reused or synth.generate(root / "register", args.scale, args.seed)
    generated = time.perf_counter() - begin
    print(f"bench: {'reused' if reused else 'generated'} {counts} in {generated:.1f} s", flush=True)
    for earlier in ("state", "work", "out"):  # a first night starts from nothing
        shutil.rmtree(root / earlier, ignore_errors=True)
    yardstick_scale = args.yardstick_scale or (
        "stockholm" if args.scale == "national" else args.scale
    )
    measured = yardstick_register(root, args.scale, yardstick_scale, args.seed)
    samples: list[dict[str, Any]] = []
    measure_r(measured, samples, "before the first night")
    (root / "state").mkdir(exist_ok=True)
    config = write_config(root, args.staging)
    url = args.staging or f"sqlite:///{root / 'state' / 'staging.db'}"
    stamp = time.strftime("%Y%m%dT%H%M%S")
    nights = [measure_night("first night", config, url, f"bench-first-{stamp}", root)]
    print(f"bench: first night {nights[0]['wall']:.1f} s", flush=True)
    mutated = 0.0
    if not nights[0].get("failed"):
        begin = time.perf_counter()
        synth.mutate_one_percent(root / "register", args.seed + 1)
        mutated = time.perf_counter() - begin
        print(f"bench: mutated 1% in {mutated:.1f} s", flush=True)
        measure_r(measured, samples, "before the 1%-change night")
        nights.append(measure_night("1%-change night", config, url, f"bench-change-{stamp}", root))
    measure_r(measured, samples, "after the last night")
    extra = {
        "generate_s": generated,
        "mutate_s": mutated,
        "memory_gb": psutil.virtual_memory().total / 2**30,
        "r": r_of(samples),
        "r_samples": samples,
        "yardstick_scale": yardstick_scale,
    }
    text = report(args.scale, counts, nights, extra)
    print(text, flush=True)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"scale": args.scale, "counts": counts, "nights": nights, **extra},
                default=str,
                indent=1,
            ),
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
