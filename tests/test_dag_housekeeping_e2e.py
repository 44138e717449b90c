"""``autosynk_housekeeping`` with ``dag.test()``: one task, under the run lock, that removes
what is past retention (and, as a dry run, nothing)."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.test_night_cli import Night

pytestmark = pytest.mark.airflow


@pytest.fixture(scope="module")
def housekeeping_dag():
    from airflow.dag_processing.dagbag import DagBag

    from tests.test_dags import DAGS

    bag = DagBag(str(DAGS))
    assert bag.import_errors == {}
    return bag.dags["autosynk_housekeeping"]


def test_housekeeping_dag_runs_daily_after_the_nightly_window(housekeeping_dag):
    assert housekeeping_dag.timetable.expression == "0 4 * * *"
    assert "Europe/Stockholm" in str(housekeeping_dag.timetable.timezone)
    assert [t.task_id for t in housekeeping_dag.tasks] == ["remove_what_is_past_retention"]


def test_housekeeping_dag_removes_an_old_night_and_a_dry_run_nothing(
    tmp_path, monkeypatch, airflow_db, housekeeping_dag
):
    night = Night(tmp_path, f"sqlite:///{tmp_path}/staging.db", "retention: {work_days: 7}\n")
    monkeypatch.setenv("AUTOSYNK_CONFIG", str(night.config))
    assert night.run("--run-id", "old-night") == 0
    assert night.run("--run-id", "last-night") == 0
    st = night.staging()
    moved = dt.datetime.now(dt.UTC) - dt.timedelta(days=8)
    st.update_run("old-night", started_at=moved, ended_at=moved, committed_at=moved)
    old = tmp_path / "work" / "old-night"
    before = sorted(p.name for p in old.iterdir())
    assert "extract" in before and "run-summary.json" in before

    dry = housekeeping_dag.test(run_conf={"dry_run": True})
    assert dry.state == "success"
    assert sorted(p.name for p in old.iterdir()) == before
    removed = dry.get_task_instance("remove_what_is_past_retention").xcom_pull()
    assert removed["dry_run"] is True and removed["removed"]["work"]["count"] > 0

    done = housekeeping_dag.test(run_conf={"dry_run": False})
    assert done.state == "success"
    assert sorted(p.name for p in old.iterdir()) == ["report.html", "run-summary.json"]
    assert (tmp_path / "work" / "last-night" / "extract").is_dir()
    result = done.get_task_instance("remove_what_is_past_retention").xcom_pull()
    assert result["removed"]["work"] == removed["removed"]["work"]
    assert st.lock_holder() is None
    # the delivered state is whole: the next night knows Unikum is in step
    night.new_files()
    assert night.run() == 0
    assert night.new_files() == {}
    assert night.summary()["nothing_to_deliver"] is True
