"""The nightly DAG itself, end to end with ``dag.test()`` over the demo municipality."""

from __future__ import annotations

import json

import pytest

from autosynk.demo.generate import generate
from autosynk.demo.mutate import mutate

pytestmark = pytest.mark.airflow


def _dag():
    from airflow.dag_processing.dagbag import DagBag

    from tests.test_dags import DAGS

    bag = DagBag(str(DAGS))
    assert bag.import_errors == {}
    return bag.dags["unikum_nightly_sync"]


def _files(out):
    return {p.name: p.read_text(encoding="utf-8") for p in out.glob("Exempelby_*")}


def test_nightly_dag_delivers_total_then_delta_then_nothing(tmp_path, monkeypatch, airflow_db):
    register = tmp_path / "register"
    generate(register, seed=3, scale="small")
    config = tmp_path / "autosynk.yaml"
    config.write_text(
        "municipality: Exempelby\norganisation_id: exempelby-kommun\n"
        "source: {kind: ss12000-files, path: register}\n"
        "staging: {url: 'sqlite:///state/staging.db'}\n"
        "target: {kind: directory, path: out}\nwork_base: work\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("AUTOSYNK_CONFIG", str(config))
    dag = _dag()
    out = tmp_path / "out"

    first = dag.test()
    assert first.state == "success"
    total = _files(out)
    assert sorted(name.rsplit(".", 1)[1] for name in total) == ["principals", "relations"]
    relations = next(v for k, v in total.items() if k.endswith(".relations")).splitlines()
    assert relations and all(line.startswith("add\t") for line in relations)
    summary = json.loads((out / "run-summary.json").read_text())
    assert summary["status"] == "committed" and summary["run_id"] == first.run_id

    mutate(register, seed=4)
    second = dag.test()
    assert second.state == "success"
    delta = {k: v for k, v in _files(out).items() if k not in total}
    delta_relations = next(v for k, v in delta.items() if k.endswith(".relations")).splitlines()
    assert any(line.startswith("remove\t") for line in delta_relations)
    assert len(delta_relations) < len(relations) / 5

    third = dag.test()
    assert third.state == "success"
    assert set(_files(out)) == set(total) | set(delta)
    assert json.loads((out / "run-summary.json").read_text())["nothing_to_deliver"] is True


def test_a_failed_night_fails_the_dag_run_and_frees_the_lock(tmp_path, monkeypatch, airflow_db):
    register = tmp_path / "register"
    register.mkdir()
    for name in ("organisations", "persons", "groups", "duties", "activities"):
        (register / f"{name}.json").write_text('{"data": []}')
    config = tmp_path / "autosynk.yaml"
    config.write_text(
        "municipality: Exempelby\norganisation_id: x\n"
        "source: {kind: ss12000-files, path: register}\n"
        "target: {kind: directory, path: out}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("AUTOSYNK_CONFIG", str(config))
    dag = _dag()
    for task in dag.tasks:  # no waiting for retries in a test
        task.retries = 0
    run = dag.test()
    assert run.state == "failed"
    from autosynk.config import load_config
    from autosynk.staging.store import Staging

    staging = Staging(load_config(config).staging.url)
    assert staging.lock_holder() is None
    assert staging.get_run(run.run_id)["status"] == "failed"
    assert not list((tmp_path / "out").glob("Exempelby_*"))


def test_a_dry_run_plans_and_reports_and_delivers_nothing(tmp_path, monkeypatch, airflow_db):
    register = tmp_path / "register"
    generate(register, seed=5, scale="small")
    config = tmp_path / "autosynk.yaml"
    config.write_text(
        "municipality: Exempelby\norganisation_id: exempelby-kommun\n"
        "source: {kind: ss12000-files, path: register}\n"
        "target: {kind: directory, path: out}\nwork_base: work\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("AUTOSYNK_CONFIG", str(config))
    dag = _dag()
    run = dag.test(run_conf={"dry_run": True, "evaluation_date": "2026-10-01"})
    assert run.state == "success"
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    # nothing to approve: the approval task skips delivery and commit
    assert [states[t] for t in ("deliver", "commit_state")] == ["skipped"] * 2, states
    assert not list((tmp_path / "out").glob("Exempelby_*"))
    summary = json.loads((tmp_path / "out" / "run-summary.json").read_text())
    assert summary["status"] == "dry-run" and summary["evaluation_date"] == "2026-10-01"
    assert summary["plan"]["dry_run"] is True
    from autosynk.config import load_config
    from autosynk.staging.store import Staging

    staging = Staging(load_config(config).staging.url)
    assert staging.last_committed_run() is None and staging.lock_holder() is None
