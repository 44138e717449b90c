"""Policy as tests: every DAG parses with no I/O and no lookups, and obeys the house rules.

One DagBag for the whole session. Variable and Connection lookups at parse time are made
to *fail* (``tests/parse_guard.py``), and so is any network connection, so a DAG that
touches either while being parsed shows up as an import error here.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from autosynk_airflow import stage_tasks
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
        # a municipality's copy carries its name after "__" (see the tenants test below)
        assert Path(dag.fileloc).stem == dag_id.split("__")[0]


def test_every_dag_says_in_one_line_what_it_does(dagbag):
    for dag in dagbag.dags.values():
        assert dag.description, dag.dag_id  # the DAG list's description column
        assert "\n" not in dag.description and len(dag.description) <= 120, dag.dag_id


def test_params_have_titles_and_switches_are_not_marked_required(dagbag):
    for dag in dagbag.dags.values():
        for name, param in dag.params.items():
            schema = param.schema
            assert schema.get("title"), (dag.dag_id, name)
            assert param.description, (dag.dag_id, name)
            kinds = schema.get("type")
            if kinds == "boolean" or (isinstance(kinds, list) and "boolean" in kinds):
                # the trigger form marks a field required unless its type allows null
                assert isinstance(kinds, list) and "null" in kinds, (dag.dag_id, name)
                assert param.value in (False, None), (dag.dag_id, name)  # off, or unset


def test_a_tenants_folder_gives_each_municipality_its_own_dags(tmp_path, monkeypatch):
    """One DAG per municipality and DAG file, each at its own slot; parsing looks nothing up."""
    (tmp_path / "Upplands Väsby.yaml").write_text(
        "municipality: Upplands Väsby\ntimezone: Europe/Stockholm\n"
        "schedules: {unikum_nightly_sync: '15 21 * * *'}\n"
    )
    (tmp_path / "malmo.yml").write_text("municipality: Malmö\n")
    (tmp_path / "trasig.yaml").write_text("municipality: [unclosed\n")  # broken: still a DAG
    (tmp_path / "fel.yaml").write_text("schedules: {unikum_nightly_sync: '61 25 * * *'}\n")
    (tmp_path / "zon.yaml").write_text("timezone: Mars/Olympus\n")  # would fail serializing
    (tmp_path / "_shared.yaml").write_text("not: a municipality\n")
    (tmp_path / "malmo").mkdir()
    (tmp_path / "malmo" / "mapping.yaml").write_text("{}\n")
    monkeypatch.setenv("AUTOSYNK_TENANTS_DIR", str(tmp_path))
    bag = _parse(DAGS)
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {
        f"{base}__{name}"
        for base in EXPECTED_DAGS
        for name in ("upplands_vasby", "malmo", "trasig", "fel", "zon")
    }
    vasby = bag.dags["unikum_nightly_sync__upplands_vasby"]
    assert vasby.timetable.expression == "15 21 * * *"
    assert vasby.description.startswith("Upplands Väsby: ")
    malmo = bag.dags["unikum_nightly_sync__malmo"]
    assert malmo.timetable.expression == "30 20 * * *"  # no slot of its own: the default
    assert malmo.description.startswith("Malmö: ")
    assert bag.dags["unikum_nightly_sync__trasig"].description.startswith("trasig: ")
    # a slot Airflow cannot use falls back to the default instead of failing the file
    assert bag.dags["unikum_nightly_sync__fel"].timetable.expression == "30 20 * * *"
    assert "Europe/Stockholm" in str(bag.dags["unikum_nightly_sync__zon"].timetable.timezone)
    from airflow.serialization.serialized_objects import DagSerialization

    for dag in bag.dags.values():  # what the dag-processor stores must serialize
        DagSerialization.to_dict(dag)
    pools = {t.task_id: t.pool for t in malmo.tasks}
    assert pools["extract"] == "autosynk_register_reads"
    assert pools["deliver"] == "autosynk_sftp_uploads"
    assert {p for t, p in pools.items() if t not in ("extract", "deliver")} == {"default_pool"}


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


def test_shared_stage_tasks_keep_each_dags_own_settings(dagbag):
    """The stages are defined once (stage_tasks); a DAG's own change to one stays its own."""
    nightly = dagbag.dags["unikum_nightly_sync"]
    total = dagbag.dags["unikum_total_export"]
    school_year = dagbag.dags["unikum_school_year_change"]
    # only the total export commits on a condition (a re-baseline)
    assert total.get_task("commit_state")._pre_execute_hook is not None
    assert nightly.get_task("commit_state")._pre_execute_hook is None
    assert school_year.get_task("commit_state")._pre_execute_hook is None
    # ... and the shared definition is untouched once every DAG file has been parsed
    assert "pre_execute" not in stage_tasks.commit_state.kwargs
    for dag in (nightly, total, school_year):
        assert dag.get_task("extract").pool == "autosynk_register_reads"
        assert dag.get_task("deliver").pool == "autosynk_sftp_uploads"
        assert dag.get_task("deliver").trigger_rule == "none_failed"
        assert dag.get_task("report").trigger_rule == "all_done"
        assert dag.get_task("report").retries == 0
    assert total.get_task("deliver").op_kwargs == {"config": "export"}
    assert nightly.get_task("deliver").op_kwargs == {}
    assert [dag.default_args["retries"] for dag in (nightly, total, school_year)] == [3, 2, 2]


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
