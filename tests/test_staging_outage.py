"""A staging database that goes away: at the start of a night, or in the middle of one.

PostgreSQL is a private cluster on a high port (``tests/services/pg_cluster.py``), stopped
and started again for real. The night ends with one line naming the database (password
masked), exit 1, a run summary in the work directory and nothing delivered; once the
database is back, the failed stage is retried and the night finishes correctly.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import yaml

from autosynk.cli import main
from autosynk.ss12000_server import Fault, FaultPlan
from autosynk.staging.store import Staging
from tests import tiny_register as tiny
from tests.services.pg_cluster import PASSWORD
from tests.services.ss12000 import CLIENT_ID, CLIENT_SECRET


def write_config(root: Path, staging_url: str, source: dict) -> Path:
    config = root / "autosynk.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "municipality": "Exempelby",
                "organisation_id": tiny.ORG,
                "source": source,
                "staging": {"url": staging_url},
                "target": {"kind": "directory", "path": "out"},
                "work_base": "work",
            }
        ),
        encoding="utf-8",
    )
    return config


def delivered_files(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "out").glob("Exempelby_*"))


def summary_in_work_dir(root: Path, run_id: str) -> dict:
    return json.loads((root / "work" / run_id / "run-summary.json").read_text(encoding="utf-8"))


def delivered_relations(url: str) -> set[tuple[str, str, str]]:
    staging = Staging(url)
    try:
        return set(staging.delivered_relations().itertuples(index=False, name=None))
    finally:
        staging.dispose()


def masked_url(cluster) -> str:
    return f"postgresql+psycopg://postgres:***@127.0.0.1:{cluster.port}/autosynk"


def test_staging_down_when_the_night_starts(tmp_path, private_postgres, capsys):
    tiny.write(tmp_path / "register")
    config = write_config(
        tmp_path, private_postgres.url, {"kind": "ss12000-files", "path": "register"}
    )
    private_postgres.stop()

    assert main(["run", "--config", str(config), "--run-id", "night-1"]) == 1
    out, err = capsys.readouterr()
    assert err.splitlines() == [
        f"error: staging database {masked_url(private_postgres)} cannot be reached: "
        f'connection failed: connection to server at "127.0.0.1", port {private_postgres.port} '
        "failed: Connection refused; run night-1 stopped at prepare: when the database is "
        "back, finish it with `autosynk run --run-id night-1`"
    ]
    assert PASSWORD not in out + err and "Traceback" not in out + err
    summary = summary_in_work_dir(tmp_path, "night-1")
    assert (summary["status"], summary["stage"]) == ("failed", "prepare")
    assert summary["message"] == err.splitlines()[0].removeprefix("error: ")
    assert f"summary: {tmp_path / 'out' / 'run-summary.json'}" in out
    assert delivered_files(tmp_path) == []

    private_postgres.start()
    assert main(["run", "--config", str(config), "--run-id", "night-1"]) == 0
    assert len(delivered_files(tmp_path)) == 2
    assert delivered_relations(private_postgres.url) == tiny.EXPECTED_RELATIONS


def test_staging_lost_between_stages_then_the_failed_stage_is_retried(
    tmp_path, private_postgres, start_ss12000, capsys, monkeypatch
):
    # the register answers its last list slowly; the database goes away meanwhile, so the
    # snapshot is taken but the run ledger cannot record it
    fault = Fault("slow", "/activities", seconds=5.0)  # ample time to stop PostgreSQL
    plan = FaultPlan([fault])
    server = start_ss12000(tiny.write(tmp_path / "served"), plan)
    monkeypatch.setenv("TEST_SS12000_SECRET", CLIENT_SECRET)
    source = {
        "kind": "ss12000",
        "base_url": server.url,
        "token_url": server.token_url,
        "client_id": CLIENT_ID,
        "client_secret_env": "TEST_SS12000_SECRET",
        "page_size": 2,
        "timeout_seconds": 20.0,
    }
    config = str(write_config(tmp_path, private_postgres.url, source))

    def stop_when_asked_for_activities() -> None:
        deadline = time.monotonic() + 60
        while plan.count("/activities") == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        private_postgres.stop()

    outage = threading.Thread(target=stop_when_asked_for_activities)
    outage.start()
    code = main(["run", "--config", config, "--run-id", "night-1"])
    outage.join()
    assert code == 1
    out, err = capsys.readouterr()
    [line] = err.splitlines()
    assert line.startswith(f"error: staging database {masked_url(private_postgres)} cannot be ")
    assert line.endswith(
        "run night-1 stopped at extract: when the database is back, finish it with "
        "`autosynk run --run-id night-1`"
    )
    assert PASSWORD not in out + err and "Traceback" not in out + err
    summary = summary_in_work_dir(tmp_path, "night-1")
    assert (summary["status"], summary["stage"]) == ("failed", "extract")
    assert delivered_files(tmp_path) == []

    private_postgres.start()
    # a night started anew meets the failed night's lock, and can paste the way out
    assert main(["run", "--config", config, "--run-id", "night-2"]) == 1
    assert "release it with `autosynk unlock night-1`" in capsys.readouterr().err
    # as Airflow would: the failed stage again, then the rest of the night
    for stage in ("extract", "transform", "delta", "write", "plan", "deliver", "commit", "report"):
        assert main(["stage", stage, "--config", config, "--run-id", "night-1"]) == 0, stage
    assert len(delivered_files(tmp_path)) == 2
    assert delivered_relations(private_postgres.url) == tiny.EXPECTED_RELATIONS
    assert summary_in_work_dir(tmp_path, "night-1")["status"] == "committed"
