"""
# unikum_total_export

A **total** of the current state: every row Unikum should hold, extracted from the register
now, for one of two reasons (chosen in the trigger form):

- **for another server**, such as Unikum's test server: `target` names a target of the
  run configuration's `extra_targets` (or `configured`), `rebaseline` stays off, and the
  staging state is **not** advanced: the next night's delta is what it would have been;
- **a re-baseline** after a lost night or a restored Unikum: `target: configured`,
  `rebaseline: true`; the staging state advances to what was sent, as after any night.

Triggered by hand only. It takes the same run lock as the nightly, so the two never overlap.

## Runbook
- **Configuration**: the Airflow Variable `autosynk_config` (or `AUTOSYNK_CONFIG`) names
  the run configuration, read when a task runs. Named targets live under `extra_targets:`
  (see docs/retention.md for what a delivery leaves behind, and for how long).
- **prepare failed with "no target named ..."**: the name is not under `extra_targets`;
  trigger again with a configured name. **"a re-baseline ... goes to the configured
  target"**: a re-baseline to another server would make the staging state describe a server
  that is not Unikum's; send that total without `rebaseline`.
- **Any other task failed**: read its log (one line says why), fix the cause, *Clear* the
  task (downstream included). Tasks are idempotent as in `unikum_nightly_sync`: after
  `write` a retry re-sends the same bytes.
- **Approval (the `approval` task waits, *Required actions* in the UI)**: the total's plan
  tripped a guard (totals are not held to adds; a total also removes what the register no
  longer has). Read the report its body names; *Approve* delivers exactly that plan's files,
  *Reject* (or no answer in time) delivers nothing and the run ends rejected. A plan that
  passes its guards skips this task. `allow_mass_removal: true` does not hold the total to
  the removes guards at all; prefer approving what you have read.
- **Locked by another run**: wait for the night to finish, or, if the named run is dead,
  `autosynk unlock <run id> --config ...`.
- `commit_state` runs only for a re-baseline (skipped otherwise). The `report` task always
  runs, writes `report.html` and `run-summary.json` (beside the files for a folder target:
  the test server's folder for a test total), and fails the DAG run unless the total was
  delivered (and, for a re-baseline, committed).
- From the command line: `autosynk run --config F --total --no-commit [--target NAME]`,
  or `--total` alone for a re-baseline.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from airflow.sdk import Param, dag, get_current_context, task

from autosynk_airflow import tenants
from autosynk_airflow.approval import PlanApprovalOperator
from autosynk_airflow.notifications import approval_notifiers
from autosynk_airflow.stage_tasks import (
    commit_state,
    dag_settings,
    deliver,
    extract,
    report,
    transform_and_validate,
    write,
)

TAGS = ["autosynk", "unikum", "total"]
#: a switch that is off unless turned on (nullable, so the form does not mark it required)
SWITCH = ["boolean", "null"]


def _rebaseline(context: Mapping[str, Any]) -> bool:
    return bool(context["params"]["rebaseline"])


def unikum_total_export() -> None:
    @task
    def prepare() -> dict:
        from autosynk import total_export
        from autosynk_airflow import runtime

        return total_export.prepare(
            runtime.export_config(),
            runtime.current_run_id(),
            rebaseline=bool(get_current_context()["params"]["rebaseline"]),
            dag_run_id=runtime.current_run_id(),
        )

    @task
    def total() -> dict:
        from autosynk import pipeline
        from autosynk_airflow import runtime

        return pipeline.compute_delta(runtime.run_config(), runtime.current_run_id(), total=True)

    @task
    def plan() -> dict:
        from autosynk import pipeline
        from autosynk_airflow import runtime

        return pipeline.plan(
            runtime.export_config(),
            runtime.current_run_id(),
            allow_mass_removal=bool(get_current_context()["params"]["allow_mass_removal"]),
        )

    approval = PlanApprovalOperator(task_id="approval", notifiers=approval_notifiers())

    # a copy (override) of the shared task: run_if changes the task it is given
    commit_if_rebaseline = task.run_if(
        _rebaseline, skip_message="not a re-baseline: the staging state stays"
    )(commit_state.override())

    (
        prepare()
        >> extract()
        >> transform_and_validate()
        >> total()
        >> write(config="export")
        >> plan()
        >> approval
        >> deliver(config="export")
        >> commit_if_rebaseline()
        >> report(config="export")
    )


def total_export_for(municipality: tenants.Municipality) -> None:
    dag(
        dag_id=municipality.dag_id("unikum_total_export"),
        description=municipality.describe(
            "By hand: a total to Unikum's test server or another target, or a re-baseline"
        ),
        schedule=None,
        **dag_settings(
            tags=TAGS,
            doc_md=__doc__,
            retries=2,
            retry_delay=dt.timedelta(minutes=2),
            max_retry_delay=dt.timedelta(minutes=20),
        ),
        params={
            "target": Param(
                "configured",
                type="string",
                title="Target",
                description="'configured' (the target section) or a name under extra_targets",
            ),
            "rebaseline": Param(
                False,
                type=SWITCH,
                title="Re-baseline",
                description="advance the staging state (only to the configured target)",
            ),
            "allow_mass_removal": Param(
                False,
                type=SWITCH,
                title="Allow mass removal",
                description="accept removals beyond the safety limit",
            ),
        },
    )(unikum_total_export)()


for municipality in tenants.municipalities():
    total_export_for(municipality)
