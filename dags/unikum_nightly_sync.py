"""
# unikum_nightly_sync

Every night, bring **Unikum** in step with the student register and the directory:
extract the register (SS 12000 API or files) and the directory (LDAP), map and validate,
compare with what Unikum was last told (the staging database), write and package the
changed rows, judge them by the guards (the **plan**), deliver them to Unikum's file
server, and only then advance the staging state.

Runs at 20:30 Europe/Stockholm, leaving retries room before Unikum's 23:00 import (with
many municipalities, each at its own slot: `schedules:` in its run configuration).
Every run writes `report.html` (for people) and `run-summary.json` in its work directory,
and beside the files for a local-folder target; the `plan` and `report` task logs name it.

## Runbook
- **Configuration**: the Airflow Variable `autosynk_config` (or the environment variable
  `AUTOSYNK_CONFIG`) names the run configuration file; it is read when a task runs. In a
  deployment with many municipalities (`AUTOSYNK_TENANTS_DIR`), this DAG runs
  `<folder>/<name>.yaml`, the name after `__` in its DAG id (see docs/deployment.md).
- **A task waits in *scheduled***: its pool is full (`autosynk_register_reads` for
  extract, `autosynk_sftp_uploads` for deliver, shared by all municipalities) and it runs
  when a slot frees; if the pool is missing, create it (*Admin > Pools*).
- **A task failed**: read its log (one clear line says why), fix the cause, then *Clear*
  the failed task (downstream included). Every task is idempotent: extract/transform/delta
  recompute from the source until the package is built; after that, a retry re-sends the
  **same package** (same bytes), and a file that already arrived is not uploaded twice.
  - `prepare`: the staging database is unreachable or locked (see *Locked* below).
  - `extract`: the register or directory could not be read completely (server down,
    credentials, an empty list): nothing downstream ran; clear it when the source is back.
  - `transform_and_validate`: the mapping spec or the snapshot is wrong; records that
    cannot be sent are quarantined, not failed: see the report's quarantine section.
  - `delta`, `write`: staging or the work directory; packaging (GnuPG keys, encoding).
  - `deliver`: Unikum's file server refused or went away; the package is kept; clear the
    task when the server is back: the same bytes go once. A stale plan (another run
    committed since) is refused here: trigger a new run.
  - `commit_state`: only after a verified delivery; clearing it is always safe.
- **Approval (the `approval` task waits, *Required actions* in the UI)**: the plan tripped a
  guard. Its body lists the counts per type, which guard tripped, and the report's path.
  Read the report. If the change is real (a school's move, the school-year change in the
  register, a corrected mapping), choose **Approve**: exactly that plan's files are
  delivered, provided nothing else committed since. If not, choose **Reject** (or let it
  time out, `AUTOSYNK_APPROVAL_TIMEOUT_HOURS`, default 23 h): nothing is delivered, the run
  ends failed as *rejected*, and the staging state is as it was. Fix the register or the
  mapping; the next night plans again. Nights that pass their guards skip this task.
  - *adds* guard (principals new, relations added): a surge of new records, a mapping
    change that adds a relation type, a second register merged in. First nights and
    totals are not held to it.
  - *changes* guard (principals changed): a mapping mistake that rewrites every name or
    e-mail, an encoding change.
  - *removes* guard (principals dropped, relations removed; and `max_remove_fraction` over
    all relations): a partial export, a school missing from the register, groups ended
    early, the register's own school-year change (use the school-year DAG for that).
  - Limits are per municipality in the configuration's `safety:` section.
- **Dry run**: trigger with `dry_run: true`: everything up to the plan and its report,
  nothing delivered or committed; the report says whether a real run would be refused.
- **Evaluation date**: `evaluation_date` (YYYY-MM-DD) evaluates the register at that date
  instead of today (Europe/Stockholm).
- **A lost night**: trigger with `total: true` to send a re-baseline total.
- **Unpausing**: a DAG that was paused runs the last slot it missed as soon as it is
  unpaused (Airflow's way with catch-up off: one run, not one per missed night). It is an
  ordinary guarded night; the guards judge it against what Unikum was last told.
- **Locked by another run**: runs never overlap; the message says what the holder is doing
  (e.g. waiting for approval). If the named run is dead, release it with
  `autosynk unlock <run id> --config ...`.
- The `report` task always runs; it writes the report and fails the DAG run when the
  night did not reach `commit`, so a failed, refused or rejected night is never green.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Param, dag, get_current_context, task

from autosynk_airflow import tenants
from autosynk_airflow.approval import PlanApprovalOperator
from autosynk_airflow.notifications import approval_notifiers
from autosynk_airflow.stage_tasks import (
    commit_state,
    dag_settings,
    deliver,
    delta,
    extract,
    report,
    transform_and_validate,
    write,
)

TAGS = ["autosynk", "unikum", "nightly"]
#: 20:30 in the municipality's time zone: 2.5 h before Unikum's 23:00 import
NIGHTLY_SLOT = "30 20 * * *"
#: a switch that is off unless turned on (nullable, so the form does not mark it required)
SWITCH = ["boolean", "null"]


def unikum_nightly_sync() -> None:
    @task
    def prepare() -> dict:
        from autosynk import pipeline
        from autosynk_airflow import runtime

        params = get_current_context()["params"]
        return pipeline.prepare(
            runtime.run_config(),
            runtime.current_run_id(),
            kind="total" if params["total"] else "nightly",
            dag_run_id=runtime.current_run_id(),
            evaluation_date=params["evaluation_date"],
        )

    @task
    def plan() -> dict:
        from autosynk import pipeline
        from autosynk_airflow import runtime

        params = get_current_context()["params"]
        return pipeline.plan(
            runtime.run_config(),
            runtime.current_run_id(),
            dry_run=bool(params["dry_run"]),
            allow_mass_removal=bool(params["allow_mass_removal"]),
        )

    approval = PlanApprovalOperator(task_id="approval", notifiers=approval_notifiers())

    (
        prepare()
        >> extract()
        >> transform_and_validate()
        >> delta()
        >> write()
        >> plan()
        >> approval
        >> deliver()
        >> commit_state()
        >> report()
    )


def nightly_sync_for(municipality: tenants.Municipality) -> None:
    dag(
        dag_id=municipality.dag_id("unikum_nightly_sync"),
        description=municipality.describe(
            "Nightly: register and directory to Unikum, guarded, delivered, then committed"
        ),
        schedule=municipality.timetable("unikum_nightly_sync", NIGHTLY_SLOT),
        **dag_settings(
            tags=TAGS,
            doc_md=__doc__,
            retries=3,
            retry_delay=dt.timedelta(minutes=5),
            max_retry_delay=dt.timedelta(minutes=30),
        ),
        params={
            "dry_run": Param(
                False,
                type=SWITCH,
                title="Dry run",
                description="Plan and report only: deliver nothing, commit nothing.",
            ),
            "evaluation_date": Param(
                None,
                type=["null", "string"],
                format="date",
                title="Evaluation date",
                description="Evaluate the register at this date (empty: today, Europe/Stockholm).",
            ),
            "total": Param(
                False,
                type=SWITCH,
                title="Total",
                description="Send a re-baseline total (every row and relation) instead of a delta.",
            ),
            "allow_mass_removal": Param(
                False,
                type=SWITCH,
                title="Allow mass removal",
                description="Do not hold this run to the removes guards. Prefer approving the "
                "refused plan: it delivers exactly what you read.",
            ),
        },
    )(unikum_nightly_sync)()


for municipality in tenants.municipalities():
    nightly_sync_for(municipality)
