"""Each stage of a run in a process of its own, as the Airflow DAG runs them: peak RSS and CPU.

    python bench/stages.py --config FILE --run-id ID [--stages delta,write,...] [--json OUT]

Runs ``autosynk stage NAME --config FILE --run-id ID`` for each stage in turn (default:
the stages after the transform: delta, write, plan, deliver, commit, report) and prints
per stage its wall time, CPU seconds (user + system, all threads) and peak RSS, measured
by the operating system for that process alone (``wait4``). A stage that fails stops the
run; its output is shown. What the stage returns is kept under ``--json``.

A stage's figures are its own: nothing another stage left in memory is counted, which is
how the memory of a stage is judged (issue 13). To measure the same stages again, restore
the staging database and the run's work directory as they were before the first one.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

LATER = ("delta", "write", "plan", "deliver", "commit", "report")


def run_stage(stage: str, config: str, run_id: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "autosynk.cli", "stage", stage]
    command += ["--config", config, "--run-id", run_id]
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        begin = time.perf_counter()
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr)
        _pid, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - begin
        stdout.seek(0)
        stderr.seek(0)
        out = stdout.read().decode(errors="replace")
        err = stderr.read().decode(errors="replace")
    code = os.waitstatus_to_exitcode(status)
    result: Any = None
    if code == 0:
        try:
            result = json.loads(out)
        except ValueError:
            result = out
    return {
        "stage": stage,
        "code": code,
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss_mb": usage.ru_maxrss / 1024,
        "result": result,
        "error": err.strip().splitlines()[-1] if code and err.strip() else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--stages", default=",".join(LATER), help="comma-separated, in order")
    parser.add_argument("--json", help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    rows = []
    print(f"{'stage':<10} {'wall s':>8} {'CPU s':>8} {'peak RSS MB':>12}", flush=True)
    for stage in args.stages.split(","):
        row = run_stage(stage.strip(), args.config, args.run_id)
        rows.append(row)
        print(
            f"{row['stage']:<10} {row['wall']:>8.2f} {row['cpu']:>8.2f} {row['rss_mb']:>12,.0f}",
            flush=True,
        )
        if row["code"]:
            print(f"bench: stage {stage} failed (exit {row['code']}): {row['error']}")
            break
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str), encoding="utf-8")
    return max((row["code"] for row in rows), default=0)


if __name__ == "__main__":
    sys.exit(main())
