"""Nights on a real Airflow deployment: Celery workers, many municipalities, the REST API.

All of these share one start-up (``airflow_deployment``, tests/services/): api-server,
scheduler, dag-processor, triggerer and two Celery workers, with the municipalities
``alfa`` and ``beta`` delivering to SFTP servers of their own. Runs are triggered, watched,
cleared and read through the REST API with the requests the UI sends. They run in file
order: each night builds on the staging state the previous one left, and the slow worker
test comes before the second nights so that their file names (to the minute) differ.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psutil
import pytest
import requests

from autosynk.demo.generate import generate
from autosynk.demo.mutate import mutate
from autosynk.staging.store import Staging
from autosynk.workspace import safe_run_dir
from tests.airflow_rest import AirflowError
from tests.services.airflow_deployment import (
    AirflowDeployment,
    Municipality,
    municipality_config,
)

pytestmark = [pytest.mark.airflow, pytest.mark.sshd, pytest.mark.postgres]

STAGE_TASKS = {
    "prepare": "staging at revision",
    "extract": "extracted",
    "transform_and_validate": "mapped",
    "delta": "delta",
    "write": "wrote",
    "plan": "; report: ",  # the plan and where its report is
    "deliver": "verified by sha256",  # a late night adds one warning line besides
    "commit_state": "committed",
    "report": "report: status committed",
}
#: a personnummer or samordningsnummer written out (12 digits, or 10 with a separator)
FULL_NUMBER = re.compile(r"(?<!\d)(?:19|20)\d{6}[-+]?\d{4}(?!\d)|(?<!\d)\d{6}[-+]\d{4}(?!\d)")


def _night(d: AirflowDeployment, names: list[str]) -> dict[str, str]:
    """Trigger tonight's run of each municipality; return the run ids."""
    runs = {}
    for name in names:
        dag_id = d.municipalities[name].dag_id
        d.api.unpause(dag_id)
        runs[name] = d.api.trigger(dag_id)
    return runs


def _after_the_last_delivery_minute(d: AirflowDeployment) -> None:
    """Wait until the clock left the minute of the last delivered file name.

    Unikum's files are named to the minute (``Alfa_20261201_2030.principals``), and a night
    cannot tell whether a name is taken on an SFTP server until it uploads: two nights
    that deliver within one minute collide (the second is refused, never overwritten).
    """
    while True:
        now = dt.datetime.now(ZoneInfo("Europe/Stockholm")).strftime("%Y%m%d_%H%M")
        if not any(
            f.split(".")[0].endswith(now) for m in d.municipalities.values() for f in m.delivered()
        ):
            return
        time.sleep(1)


def _ledger(m: Municipality, run_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    staging = Staging(m.staging_url)
    try:
        run = staging.get_run(run_id)
        assert run is not None, f"{m.name}: run {run_id} is not in its staging ledger"
        return run, staging.deliveries(run_id)
    finally:
        staging.dispose()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _civic_numbers(register: Path) -> set[str]:
    persons = json.loads((register / "persons.json").read_text(encoding="utf-8"))["data"]
    found = set()
    for person in persons:
        value = (person.get("civicNo") or {}).get("value")
        if value:
            found.add(value)
            found.add(f"{value[:8]}-{value[8:]}")
    return found


@pytest.fixture(scope="module")
def first_nights(airflow_deployment: AirflowDeployment) -> dict[str, str]:
    d = airflow_deployment
    runs = _night(d, ["alfa", "beta"])
    for name, run_id in runs.items():
        d.api.wait_for_run(d.municipalities[name].dag_id, run_id, timeout=300)
    return runs


def test_two_municipalities_nights_both_deliver_on_the_workers(
    airflow_deployment: AirflowDeployment, first_nights: dict[str, str]
) -> None:
    d = airflow_deployment
    for name, run_id in first_nights.items():
        m = d.municipalities[name]
        d.api.expect_run(m.dag_id, run_id, "success")
        tis = d.api.task_instances(m.dag_id, run_id)
        states = {ti["task_id"]: ti["state"] for ti in tis}
        # a night within its guards needs no approval: that task is skipped
        assert states == {**dict.fromkeys(STAGE_TASKS, "success"), "approval": "skipped"}
        # run by Celery, from the deployment's own queue, not in the scheduler's process
        assert {ti["queue"] for ti in tis} == {d.deployment.settings.queue}
        assert all(ti["hostname"] for ti in tis if ti["task_id"] in STAGE_TASKS)
        files = m.delivered()
        assert [f.rsplit(".", 1)[1] for f in files] == ["principals", "relations"]
        assert all(f.startswith(f"{name.title()}_") for f in files), files
        run, deliveries = _ledger(m, run_id)
        assert run["status"] == "committed"
        assert {r["name"]: r["sha256"] for r in deliveries} == {
            f: _sha256(m.upload_dir / f)  # type: ignore[operator]
            for f in files
        }
    # the pools all municipalities share, as the deployment made them
    pools = {p["name"]: p["slots"] for p in d.api.get("/api/v2/pools")["pools"]}
    assert pools["autosynk_register_reads"] == 2 and pools["autosynk_sftp_uploads"] == 2
    # each municipality its own staging (a database, a schema), slot and DAG
    alfa, beta = d.municipalities["alfa"], d.municipalities["beta"]
    details = {name: d.api.dag_details(m.dag_id) for name, m in d.municipalities.items()}
    assert details["alfa"]["timetable_summary"] != details["beta"]["timetable_summary"]
    assert details["alfa"]["description"].startswith("Alfa: ")
    assert "\n" not in details["alfa"]["description"]
    assert alfa.staging_url != beta.staging_url


def test_each_municipality_keeps_its_own_staging(
    airflow_deployment: AirflowDeployment, first_nights: dict[str, str]
) -> None:
    d = airflow_deployment
    for name, m in d.municipalities.items():
        if name not in first_nights:
            continue
        other = "beta" if name == "alfa" else "alfa"
        staging = Staging(m.staging_url)
        try:
            assert staging.get_run(first_nights[other]) is None  # the other's night is not here
            assert staging.lock_holder() is None
        finally:
            staging.dispose()


def test_task_logs_say_one_line_per_stage_with_counts_and_no_personal_data(
    airflow_deployment: AirflowDeployment, first_nights: dict[str, str]
) -> None:
    d = airflow_deployment
    m = d.municipalities["alfa"]
    run_id = first_nights["alfa"]
    numbers = _civic_numbers(m.folder / "register")
    assert len(numbers) > 100
    for task_id, says in STAGE_TASKS.items():
        entries = d.api.task_log_entries(m.dag_id, run_id, task_id, 1)
        text = "\n".join(json.dumps(e, ensure_ascii=False) for e in entries)
        ours = [
            str(e["event"])
            for e in entries
            if isinstance(e, dict)
            and e.get("logger") == "autosynk"
            and str(e.get("event", "")).startswith(f"run {run_id}: ")
        ]
        assert 1 <= len(ours) <= 3, (task_id, ours)  # readable: a summary, not a trace
        summaries = [line for line in ours if says in line]
        assert len(summaries) == 1, (task_id, ours)  # one line says what the stage did
        line = summaries[0]
        assert "\n" not in line and len(line) < 400
        if task_id not in ("prepare", "report"):
            assert re.search(r"\d", line.removeprefix(f"run {run_id}: ")), line
        assert not FULL_NUMBER.search(text), (task_id, FULL_NUMBER.search(text))
        assert not any(number in text for number in numbers), task_id


def test_the_human_in_the_loop_endpoints_answer(
    airflow_deployment: AirflowDeployment, first_nights: dict[str, str]
) -> None:
    api = airflow_deployment.api
    # the list the UI's Required actions page reads; nothing asks for approval here
    assert api.hitl_requests() == []
    # an answer in the UI's shape reaches the handler (a wrong shape would be a 422), which
    # says this task asks nothing: the request is right, only there is no question
    dag_id = airflow_deployment.municipalities["alfa"].dag_id
    with pytest.raises(AirflowError, match=r"PATCH .*/taskInstances/delta/-1/hitlDetails: 404"):
        api.answer_hitl(dag_id, first_nights["alfa"], "delta", ["Approve"])
    with pytest.raises(AirflowError, match=r": 422"):
        api.request(
            "PATCH",
            f"/api/v2/dags/{dag_id}/dagRuns/x/taskInstances/delta/-1/hitlDetails",
            json={"chosen_options": []},
        )


def test_the_ui_defaults_to_stockholm_time(airflow_deployment: AirflowDeployment) -> None:
    page = requests.get(f"{airflow_deployment.base_url}/dags", timeout=10)
    assert page.status_code == 200
    head = page.text.split("<head>", 1)[1]
    script = head.split("</script>", 1)[0]
    assert 'localStorage.setItem("timezone","\\"Europe/Stockholm\\"")' in script
    assert 'if(!localStorage.getItem("timezone"))' in script  # a user's own choice is kept
    assert head.index("timezone") < head.index('type="module"')
    version = airflow_deployment.api.get("/api/v2/version")
    assert "version" in version  # the API's JSON is untouched


def _transform_process(d: AirflowDeployment, min_rss_kb: int) -> tuple[str, int] | None:
    """(worker, pid) of a task process under a worker holding more than ``min_rss_kb``."""
    for worker in d.deployment.workers:
        pid = d.deployment.pid(worker)
        if pid is None:
            continue
        try:
            children = psutil.Process(pid).children(recursive=True)
        except psutil.NoSuchProcess:
            continue
        for child in children:
            try:
                rss = child.memory_info().rss
            except psutil.NoSuchProcess:
                continue
            if rss > min_rss_kb * 1024:
                return worker, child.pid
    return None


def test_a_worker_killed_in_the_middle_of_transform_leaves_a_correct_night(
    airflow_deployment: AirflowDeployment, tmp_path: Path
) -> None:
    d = airflow_deployment
    server = d.servers["alfa"]
    folder = d.tenants_dir / "gamma"
    # a large register, so that transform works for seconds after it starts
    generate(folder / "register", seed=23, scale="large")
    upload, remote = server.user_dir("gamma")
    gamma = Municipality(
        name="gamma",
        config=d.tenants_dir / "gamma.yaml",
        folder=folder,
        staging_url=f"sqlite:///{folder}/state/staging.db",
        sftp=server,
        upload_dir=upload,
    )
    d.add_municipality(
        gamma, municipality_config(gamma, "autosynk_sftp_extra", remote, "Gamma", "0 21 * * *")
    )
    # the same night by the command line, as the reference for what Unikum must receive
    reference = tmp_path / "reference.yaml"
    reference.write_text(
        "municipality: Gamma\norganisation_id: gamma-kommun\n"
        f"source: {{kind: ss12000-files, path: {folder / 'register'}}}\n"
        "target: {kind: directory, path: out}\n",
        encoding="utf-8",
    )
    cli = subprocess.Popen(
        [str(Path(sys.executable).parent / "autosynk"), "run", "--config", str(reference)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        run_id = _night(d, ["gamma"])["gamma"]
        d.api.wait_for_task(gamma.dag_id, run_id, "transform_and_validate", {"running"}, 300)
        deadline = time.monotonic() + 120
        found = None
        while found is None and time.monotonic() < deadline:
            found = _transform_process(d, min_rss_kb=400_000)  # decoding the register
            time.sleep(0.05)
        assert found is not None, "transform never got under way"
        worker, task_pid = found
        mapped = folder / "work" / safe_run_dir(run_id) / "mapped"
        killed = d.deployment.kill(worker)
        assert task_pid in killed
        assert not (mapped / "protected.parquet").exists()  # transform had not finished
        state = d.api.task_instance(gamma.dag_id, run_id, "transform_and_validate")["state"]
        assert state == "running"  # Airflow has not noticed yet: the worker just vanished

        d.api.expect_run(gamma.dag_id, run_id, "success", timeout=400)
    finally:
        d.ensure_workers()
    tries = d.api.tries(gamma.dag_id, run_id, "transform_and_validate")
    assert [t["state"] for t in tries] == ["failed", "success"]
    _, errors = cli.communicate(timeout=300)
    assert cli.returncode == 0, errors

    delivered = gamma.delivered()
    assert [f.rsplit(".", 1)[1] for f in delivered] == ["principals", "relations"]
    expected = sorted(p for p in (tmp_path / "out").glob("Gamma_*"))
    assert [p.suffix for p in expected] == [".principals", ".relations"]
    for got, want in zip(delivered, expected, strict=True):
        assert (upload / got).read_bytes() == want.read_bytes(), got  # whole, and the same
    run, deliveries = _ledger(gamma, run_id)
    assert run["status"] == "committed"
    assert sorted(r["name"] for r in deliveries) == delivered  # once


def test_a_municipality_whose_server_is_down_fails_alone_and_a_clear_delivers_once(
    airflow_deployment: AirflowDeployment, first_nights: dict[str, str]
) -> None:
    d = airflow_deployment
    alfa, beta = d.municipalities["alfa"], d.municipalities["beta"]
    assert beta.sftp is not None
    mutate(alfa.folder / "register", seed=41)
    mutate(beta.folder / "register", seed=42)
    before = {name: set(m.delivered()) for name, m in d.municipalities.items()}
    _after_the_last_delivery_minute(d)

    beta.sftp.stop()
    try:
        runs = _night(d, ["alfa", "beta"])
        d.api.expect_run(alfa.dag_id, runs["alfa"], "success")
        d.api.expect_run(beta.dag_id, runs["beta"], "failed")
        states = d.api.task_states(beta.dag_id, runs["beta"])
        assert states["plan"] == "success" and states["approval"] == "skipped"
        assert states["deliver"] == "failed"
        assert states["commit_state"] == "upstream_failed"
        assert states["report"] == "failed"  # a failed night is never green
        assert set(beta.delivered()) == before["beta"]
        assert _ledger(beta, runs["beta"])[0]["status"] == "failed"
        assert _ledger(beta, runs["beta"])[1] == []
        # the other municipality's night went on as if nothing happened
        assert len(set(alfa.delivered()) - before["alfa"]) == 2
        assert _ledger(alfa, runs["alfa"])[0]["status"] == "committed"
    finally:
        beta.sftp.start()

    affected = d.api.clear_task(beta.dag_id, runs["beta"], "deliver")
    assert {ti["task_id"] for ti in affected} == {"deliver", "commit_state", "report"}
    d.api.expect_run(beta.dag_id, runs["beta"], "success")
    tries = d.api.tries(beta.dag_id, runs["beta"], "deliver")
    assert [t["state"] for t in tries] == ["failed", "failed", "success"]  # 1 retry, 1 clear
    new = sorted(set(beta.delivered()) - before["beta"])
    assert [f.rsplit(".", 1)[1] for f in new] == ["principals", "relations"]
    run, deliveries = _ledger(beta, runs["beta"])
    assert run["status"] == "committed"
    assert sorted(r["name"] for r in deliveries) == new  # delivered once, not twice
    assert {f["name"]: f["sha256"] for f in run["package"]["files"]} == {
        f: _sha256(beta.upload_dir / f)  # type: ignore[operator]
        for f in new
    }
