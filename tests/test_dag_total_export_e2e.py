"""``unikum_total_export`` with ``dag.test()``: a total for a test server leaves staging as it
was; a re-baseline advances it; a re-baseline to the test server is refused."""

from __future__ import annotations

import json

import pytest

from tests import tiny_register as tiny
from tests.test_night_cli import YESTERDAY, Night, relations_of

TEST_SERVER = "extra_targets:\n  test: {kind: directory, path: test-server}\n"


def class_ends(data):
    data["groups"][0]["groupMemberships"][0].update(endDate=YESTERDAY)


NOW_EXPECTED = tiny.EXPECTED_RELATIONS - {
    ("student_in_class", tiny.C1, "7a"),
    ("mentor_for", tiny.T1, tiny.C1),
}


def _files(folder):
    return {p.suffix: p.read_text().splitlines() for p in folder.glob("Exempelby_*")}


def trigger(dag, **conf):
    """One run; the whole form each time (``dag.test`` keeps the last run's values)."""
    form = {"target": "configured", "rebaseline": False, "allow_mass_removal": False}
    return dag.test(run_conf={**form, **conf})


@pytest.fixture(scope="module")
def export_dag():
    from airflow.dag_processing.dagbag import DagBag

    from tests.test_dags import DAGS

    bag = DagBag(str(DAGS))
    assert bag.import_errors == {}
    dag = bag.dags["unikum_total_export"]
    for task in dag.tasks:  # no waiting for retries in a test
        task.retries = 0
    return dag


@pytest.mark.airflow
def test_total_export_is_triggered_by_hand(export_dag):
    from tests.test_dags import chain

    assert type(export_dag.timetable).__name__ == "NullTimetable"
    assert set(export_dag.params) == {"target", "rebaseline", "allow_mass_removal"}
    assert export_dag.params["target"] == "configured"
    assert chain(export_dag) == [
        "prepare",
        "extract",
        "transform_and_validate",
        "total",
        "write",
        "plan",
        "approval",
        "deliver",
        "commit_state",
        "report",
    ]


@pytest.mark.airflow
def test_total_for_a_test_server_then_a_rebaseline(tmp_path, monkeypatch, airflow_db, export_dag):
    night = Night(tmp_path, f"sqlite:///{tmp_path}/staging.db", TEST_SERVER)
    monkeypatch.setenv("AUTOSYNK_CONFIG", str(night.config))
    assert night.run() == 0
    night.new_files()
    night.change(class_ends)
    test_server = tmp_path / "test-server"

    # to the test server: every current row, staging unchanged, production untouched
    first = trigger(export_dag, target="test")
    assert first.state == "success"
    sent = _files(test_server)
    assert relations_of(sent[".relations"]) == {("add", *r) for r in NOW_EXPECTED} | {
        ("remove", "student_in_class", tiny.C1, "7a"),
        ("remove", "mentor_for", tiny.T1, tiny.C1),
    }
    assert len(sent[".principals"]) == 11
    assert night.new_files() == {}
    assert night.delivered_relations() == tiny.EXPECTED_RELATIONS
    run = night.staging().get_run(first.run_id)
    assert (run["kind"], run["status"]) == ("export", "delivered")
    summary = json.loads((test_server / "run-summary.json").read_text())
    assert summary["run_id"] == first.run_id
    assert json.loads((night.out / "run-summary.json").read_text())["run_id"] != first.run_id
    tasks = {ti.task_id: ti.state for ti in first.get_task_instances()}
    assert tasks["commit_state"] == "skipped" and tasks["report"] == "success"

    # a re-baseline must go to the configured target
    refused = trigger(export_dag, target="test", rebaseline=True)
    assert refused.state == "failed"
    assert night.staging().get_run(refused.run_id) is None
    assert night.staging().lock_holder() is None
    assert len(list(test_server.glob("Exempelby_*"))) == 2

    # the re-baseline: the configured target, and staging advances
    rebaseline = trigger(export_dag, rebaseline=True)
    assert rebaseline.state == "success"
    assert relations_of(night.new_files()[".relations"]) == relations_of(sent[".relations"])
    assert night.delivered_relations() == NOW_EXPECTED
    run = night.staging().get_run(rebaseline.run_id)
    assert (run["kind"], run["status"]) == ("total", "committed")
    assert night.run() == 0
    assert night.new_files() == {}


def test_cli_total_to_a_named_target_keeps_staging(tmp_path, capsys):
    night = Night(tmp_path, f"sqlite:///{tmp_path}/staging.db", TEST_SERVER)
    assert night.run() == 0
    night.new_files()
    night.change(class_ends)
    assert night.run("--total", "--no-commit", "--target", "test") == 0
    assert len(_files(tmp_path / "test-server")[".principals"]) == 11
    assert night.new_files() == {}
    assert night.delivered_relations() == tiny.EXPECTED_RELATIONS
    capsys.readouterr()
    assert night.run("--total", "--target", "test") == 1
    err = capsys.readouterr().err
    assert "a re-baseline advances the staging state" in err and "Traceback" not in err
    assert night.run("--total", "--no-commit", "--target", "nowhere") == 1
    assert "no target named 'nowhere'" in capsys.readouterr().err
    # the next night sends the change, as if the test total had never happened
    assert night.run() == 0
    assert relations_of(night.new_files()[".relations"]) == {
        ("remove", "student_in_class", tiny.C1, "7a"),
        ("remove", "mentor_for", tiny.T1, tiny.C1),
    }


def test_deliver_takes_a_target_override(tmp_path):
    from autosynk import pipeline
    from autosynk.config import load_config
    from tests.test_night_cli import stage

    night = Night(tmp_path, f"sqlite:///{tmp_path}/staging.db", TEST_SERVER)
    for name in ("prepare", "extract", "transform", "delta", "write", "plan"):
        assert stage(night, name, "one") == 0
    cfg = load_config(night.config)
    done = pipeline.deliver(cfg, "one", target=cfg.extra_targets["test"])
    assert done["delivered"] == 2
    assert sorted(p.suffix for p in (tmp_path / "test-server").glob("Exempelby_*")) == [
        ".principals",
        ".relations",
    ]
    assert not list(night.out.glob("Exempelby_*"))
