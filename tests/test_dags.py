"""Policy as tests: every DAG parses with no I/O and no lookups, and obeys the house rules.

One DagBag for the whole session. Variable and Connection lookups at parse time are made
to *fail* (``tests/parse_guard.py``), and so is any network connection, so a DAG that
touches either while being parsed shows up as an import error here.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests import parse_guard

pytestmark = pytest.mark.airflow

DAGS = Path(__file__).resolve().parent.parent / "dags"
TAG_VOCABULARY = {"autosynk", "unikum", "nightly", "total", "school-year", "housekeeping"}
EXPECTED_DAGS = {
    "unikum_nightly_sync",
    "unikum_school_year_change",
    "unikum_total_export",
    "autosynk_housekeeping",
}


def _parse(folder: Path):
    from airflow.dag_processing.dagbag import DagBag

    real_connect = socket.socket.connect

    def no_network(self, address):
        raise OSError(f"network connection to {address} at DAG parse time")

    parse_guard.ARMED = True
    socket.socket.connect = no_network  # type: ignore[method-assign]
    try:
        return DagBag(str(folder))
    finally:
        socket.socket.connect = real_connect  # type: ignore[method-assign]
        parse_guard.ARMED = False


@pytest.fixture(scope="session")
def dagbag():
    return _parse(DAGS)


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == EXPECTED_DAGS


def test_file_name_is_the_dag_id(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert Path(dag.fileloc).stem == dag_id


def test_policy(dagbag):
    for dag in dagbag.dags.values():
        assert dag.tags and set(dag.tags) <= TAG_VOCABULARY, dag.dag_id
        assert dag.doc_md and "Runbook" in dag.doc_md, dag.dag_id
        assert dag.catchup is False
        assert dag.max_active_runs == 1
        for task in dag.tasks:
            assert task.owner == "autosynk", task.task_id
            if task.task_id not in ("report", "approval"):
                assert task.retries >= 1, task.task_id
                assert task.retry_exponential_backoff, task.task_id


def test_nightly_runs_before_unikums_deadline(dagbag):
    dag = dagbag.dags["unikum_nightly_sync"]
    assert dag.timetable.expression == "30 20 * * *"  # 2.5 h before Unikum's 23:00 import
    assert "Europe/Stockholm" in str(dag.timetable.timezone)
    assert chain(dag) == [
        "prepare",
        "extract",
        "transform_and_validate",
        "delta",
        "write",
        "plan",
        "approval",
        "deliver",
        "commit_state",
        "report",
    ]


def test_the_school_year_change_is_triggered_by_hand_and_waits_for_approval(dagbag):
    dag = dagbag.dags["unikum_school_year_change"]
    assert type(dag.timetable).__name__ == "NullTimetable"  # triggered by hand only
    assert chain(dag) == [
        "prepare",
        "extract",
        "transform_at_effective_date",
        "delta",
        "write",
        "plan",
        "checklist_report",
        "approval",
        "deliver",
        "commit_state",
        "report",
    ]
    assert dag.get_task("approval").response_timeout.total_seconds() == 72 * 3600
    params = dag.params
    assert {name: params.get_param(name).schema.get("title") for name in params} == {
        "school_year": "School year",
        "effective_date": "Effective date",
        "mentor_links": "Sync owns mentor links",
    }


def chain(dag) -> list[str]:
    """The task ids of a DAG that is one straight line, first to last."""
    (task,) = [t for t in dag.tasks if not t.upstream_task_ids]
    order = [task.task_id]
    while task.downstream_task_ids:
        (name,) = task.downstream_task_ids
        task = dag.get_task(name)
        order.append(name)
    return order


def test_guard_catches_a_parse_time_lookup(tmp_path):
    (tmp_path / "looks_up.py").write_text(
        "import pendulum\n"
        "from airflow.sdk import Variable, dag, task\n"
        "LIMIT = Variable.get('limit', default=None)\n"
        "@dag(dag_id='looks_up', schedule=None, start_date=pendulum.datetime(2026, 1, 1))\n"
        "def looks_up():\n"
        "    @task\n"
        "    def t():\n"
        "        return 1\n"
        "    t()\n"
        "looks_up()\n"
    )
    (tmp_path / "calls_out.py").write_text(
        "# an airflow dag file (safe mode parses only files that say so)\n"
        "import socket\nsocket.create_connection(('127.0.0.1', 9), timeout=1)\n"
    )
    bag = _parse(tmp_path)
    assert set(bag.import_errors) == {str(tmp_path / "looks_up.py"), str(tmp_path / "calls_out.py")}
    assert "looked up at DAG parse time" in bag.import_errors[str(tmp_path / "looks_up.py")]
