"""The run's stages as TaskFlow tasks, one definition shared by every DAG that runs them.

Each task calls one ``autosynk`` function with the run's configuration and id, and
returns its small dict of counts and file names (XCom carries no personal data). A DAG
file imports these, adds what is its own (prepare, plan, approval) and reads as a
sentence. Nothing here runs at parse time: the imports inside the tasks run on a worker.

``config`` says which configuration a task delivers with: ``"run"`` (the municipality's
file) or ``"export"`` (the total export's target, chosen in its trigger form).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Literal

import pendulum
from airflow.sdk import TriggerRule, XComArg, get_current_context, task

from autosynk_airflow import tenants
from autosynk_airflow.callbacks import on_failure
from autosynk_airflow.notifications import night_notifiers

if TYPE_CHECKING:
    from autosynk.config import RunConfig

Config = Literal["run", "export"]


def dag_settings(
    *,
    tags: list[str],
    doc_md: str | None,
    retries: int,
    retry_delay: dt.timedelta,
    max_retry_delay: dt.timedelta,
) -> dict[str, Any]:
    """What every autosynk DAG shares: never two runs at once, no catch-up of missed
    slots, the runbook as ``doc_md``, and task retries backing off, the failure callback
    on every task."""
    return {
        "start_date": pendulum.datetime(2026, 1, 1, tz="Europe/Stockholm"),
        "catchup": False,
        "max_active_runs": 1,
        "tags": tags,
        "doc_md": doc_md,
        "default_args": {
            "owner": "autosynk",
            "retries": retries,
            "retry_delay": retry_delay,
            "retry_exponential_backoff": True,
            "max_retry_delay": max_retry_delay,
            "on_failure_callback": on_failure,
        },
    }


def _config(config: Config) -> RunConfig:
    from autosynk_airflow import runtime

    return runtime.export_config() if config == "export" else runtime.run_config()


@task(pool=tenants.REGISTER_READS_POOL)
def extract() -> dict:
    from autosynk import pipeline
    from autosynk_airflow import runtime

    return pipeline.extract(runtime.airflow_config(), runtime.current_run_id())


@task
def transform_and_validate() -> dict:
    """The trigger form's ``mentor_links`` (the school-year change) overrides the spec's."""
    from autosynk import pipeline
    from autosynk_airflow import runtime

    return pipeline.transform(
        runtime.run_config(),
        runtime.current_run_id(),
        mentor_links=get_current_context()["params"].get("mentor_links"),
    )


@task
def delta() -> dict:
    from autosynk import pipeline
    from autosynk_airflow import runtime

    return pipeline.compute_delta(
        runtime.run_config(),
        runtime.current_run_id(),
        total=bool(get_current_context()["params"].get("total")),
    )


@task
def write(config: Config = "run") -> dict:
    from autosynk import pipeline
    from autosynk_airflow import runtime

    return pipeline.write(_config(config), runtime.current_run_id())


@task(trigger_rule=TriggerRule.NONE_FAILED, pool=tenants.SFTP_UPLOADS_POOL)
def deliver(config: Config = "run") -> dict:
    """Only what the plan allows: passed guards, or the ``approval`` task's Approve."""
    from autosynk import pipeline
    from autosynk_airflow import runtime
    from autosynk_airflow.approval import approver

    cfg = _config(config)
    return pipeline.deliver(
        cfg,
        runtime.current_run_id(),
        uploader=runtime.airflow_uploader(cfg),
        approved_by=approver(get_current_context()["ti"].xcom_pull(task_ids="approval")),
    )


@task
def commit_state() -> dict:
    from autosynk import pipeline
    from autosynk_airflow import runtime

    return pipeline.commit(runtime.run_config(), runtime.current_run_id())


def report(config: Config = "run") -> XComArg:
    """The ``report`` task, its failure notices (``night_notifiers``) read as the DAG is
    parsed, like every other setting of a DAG, not once per process."""
    notices = _report.override(on_failure_callback=[on_failure, *night_notifiers()])
    return notices(config=config)


@task(task_id="report", trigger_rule=TriggerRule.ALL_DONE, retries=0)
def _report(config: Config = "run") -> dict:
    """Always runs; fails the DAG run unless the run finished (see ``report_and_judge``):
    committed (or a dry run); a total export delivered, a re-baseline committed.
    """
    from autosynk_airflow import runtime

    context = get_current_context()
    cfg = _config(config)
    approval = context["ti"].xcom_pull(task_ids="approval")
    run_id = runtime.current_run_id()
    if config == "export":
        finished = ("committed",) if context["params"]["rebaseline"] else ("delivered",)
        return runtime.report_and_judge(cfg, run_id, approval=approval, finished=finished)
    return runtime.report_and_judge(cfg, run_id, approval=approval)
