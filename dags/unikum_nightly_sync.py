"""
# unikum_nightly_sync

Every night, bring **Unikum** in step with the student register and the directory:
extract the register (SS 12000 API or files) and the directory (LDAP), map and validate,
compare with what Unikum was last told (the staging database), write and package the
changed rows, deliver them to Unikum's file server, and only then advance the staging state.

Runs at 20:30 Europe/Stockholm, leaving retries room before Unikum's 23:00 import.

## Runbook
- **Configuration**: the Airflow Variable `autosynk_config` (or the environment variable
  `AUTOSYNK_CONFIG`) names the run configuration file; it is read when a task runs.
- **A task failed**: read its log (one clear line says why), fix the cause, then *Clear*
  the failed task (downstream included). Every task is idempotent: extract/transform/delta
  recompute from the source until the package is built; after that, a retry re-sends the
  **same package** (same bytes), and a file that already arrived is not uploaded twice.
- **Refused as a mass removal**: look at the register first. If the change is real
  (e.g. the school-year change), trigger with `allow_mass_removal: true`.
- **A lost night**: trigger with `total: true` to send a re-baseline total.
- **Locked by another run**: runs never overlap. If the named run is dead, release it with
  `autosynk unlock <run id> --config ...`.
- The `report` task always runs; it writes `run-summary.json` and fails the DAG run when
  the night did not reach `commit`, so a failed night is never green.
"""

from __future__ import annotations

import datetime as dt

import pendulum
from airflow.sdk import CronTriggerTimetable, Param, TriggerRule, dag, get_current_context, task

from autosynk_airflow.callbacks import on_failure

TAGS = ["autosynk", "unikum", "nightly"]


@dag(
    dag_id="unikum_nightly_sync",
    schedule=CronTriggerTimetable("30 20 * * *", timezone="Europe/Stockholm"),
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Stockholm"),
    catchup=False,
    max_active_runs=1,
    tags=TAGS,
    doc_md=__doc__,
    default_args={
        "owner": "autosynk",
        "retries": 3,
        "retry_delay": dt.timedelta(minutes=5),
        "retry_exponential_backoff": True,
        "max_retry_delay": dt.timedelta(minutes=30),
        "on_failure_callback": on_failure,
    },
    params={
        "allow_mass_removal": Param(
            False, type="boolean", description="accept a delta beyond the removal limit"
        ),
        "total": Param(False, type="boolean", description="send a re-baseline total"),
    },
)
def unikum_nightly_sync() -> None:
    @task
    def prepare() -> dict:
        from autosynk import pipeline
        from autosynk_airflow import runtime

        return pipeline.prepare(
            runtime.run_config(),
            runtime.current_run_id(),
            kind="total" if get_current_context()["params"]["total"] else "nightly",
            dag_run_id=runtime.current_run_id(),
        )

    @task
    def extract() -> dict:
        from autosynk import pipeline
        from autosynk_airflow import runtime

        return pipeline.extract(runtime.airflow_config(), runtime.current_run_id())

    @task
    def transform_and_validate() -> dict:
        from autosynk import pipeline
        from autosynk_airflow import runtime

        return pipeline.transform(runtime.run_config(), runtime.current_run_id())

    @task
    def delta() -> dict:
        from autosynk import pipeline
        from autosynk_airflow import runtime

        params = get_current_context()["params"]
        return pipeline.compute_delta(
            runtime.run_config(),
            runtime.current_run_id(),
            allow_mass_removal=params["allow_mass_removal"],
            total=params["total"],
        )

    @task
    def write() -> dict:
        from autosynk import pipeline
        from autosynk_airflow import runtime

        return pipeline.write(runtime.run_config(), runtime.current_run_id())

    @task
    def deliver() -> dict:
        from autosynk import pipeline
        from autosynk_airflow import runtime

        cfg = runtime.run_config()
        return pipeline.deliver(
            cfg, runtime.current_run_id(), uploader=runtime.airflow_uploader(cfg)
        )

    @task
    def commit_state() -> dict:
        from autosynk import pipeline
        from autosynk_airflow import runtime

        return pipeline.commit(runtime.run_config(), runtime.current_run_id())

    @task(trigger_rule=TriggerRule.ALL_DONE, retries=0)
    def report() -> dict:
        from autosynk_airflow import runtime

        return runtime.report_and_judge(runtime.run_config(), runtime.current_run_id())

    (
        prepare()
        >> extract()
        >> transform_and_validate()
        >> delta()
        >> write()
        >> deliver()
        >> commit_state()
        >> report()
    )


unikum_nightly_sync()
