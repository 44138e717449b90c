"""
# autosynk_housekeeping

Every day at 04:00 Europe/Stockholm, well after the nightly window (20:30, Unikum's import
at 23:00, retries), remove what is past retention: old runs' work directories (register
snapshots, mapped rows, packages), old run summaries and reports, old files in a local
outbox, the history of persons and objects no longer delivered, and old ledger rows. How
long each is kept is the `retention:` section of the run configuration; docs/retention.md
says what is kept where, in words a data-protection officer can check.

Never removed, whatever its age: the delivered state, and everything a run that can still
be finished, retried or approved needs (its package, its plan, its report).

The task returns (and logs) per kind how many files or rows it removed and how many bytes:
counts only, no personal data. A record of each pass is written to
`<work_base>/_housekeeping/`. With many municipalities, each has its own run of this DAG
against its own configuration.

## Runbook
- **Configuration**: the Airflow Variable `autosynk_config` (or `AUTOSYNK_CONFIG`) names
  the run configuration; change how long things are kept in its `retention:` section.
- **To see what would go**: trigger with `dry_run: true` (nothing is removed), or run
  `autosynk housekeeping --config ... --dry-run` on a worker.
- **Failed with "staging is locked by run ..."**: a night (or a total) is running, or
  waiting for an approval. Housekeeping never races a night; the retries try again, and
  tomorrow's run catches up. If the named run is dead, release it with
  `autosynk unlock <run id> --config ...`.
- **Failed otherwise**: read the log's one line (an unreachable staging database, a work
  base that cannot be listed), fix the cause and *Clear* the task. A pass that stopped
  half-way is safe to repeat: each removal stands on its own, and the database part is one
  transaction.
- **Nothing is removed although it is old**: it belongs to a run that can still be
  finished, retried or approved (the log lists such runs). Finish, retry or reject that
  run; once another night has committed, it is subject to retention like any other.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Param, dag, get_current_context, task

from autosynk_airflow import tenants
from autosynk_airflow.stage_tasks import dag_settings

TAGS = ["autosynk", "housekeeping"]
#: a switch that is off unless turned on (nullable, so the form does not mark it required)
SWITCH = ["boolean", "null"]


def autosynk_housekeeping() -> None:
    @task
    def remove_what_is_past_retention() -> dict:
        from autosynk.housekeeping import housekeeping
        from autosynk_airflow import runtime

        dry_run = bool(get_current_context()["params"]["dry_run"])
        return housekeeping(runtime.run_config(), dry_run=dry_run)

    remove_what_is_past_retention()


def housekeeping_for(municipality: tenants.Municipality) -> None:
    dag(
        dag_id=municipality.dag_id("autosynk_housekeeping"),
        description=municipality.describe(
            "Daily: remove what is past the retention the configuration sets"
        ),
        schedule=municipality.timetable("autosynk_housekeeping", "0 4 * * *"),
        **dag_settings(
            tags=TAGS,
            doc_md=__doc__,
            retries=3,
            retry_delay=dt.timedelta(minutes=15),
            max_retry_delay=dt.timedelta(hours=1),
        ),
        params={
            "dry_run": Param(
                False,
                type=SWITCH,
                title="Dry run",
                description="List what would go; remove nothing.",
            )
        },
    )(autosynk_housekeeping)()


for municipality in tenants.municipalities():
    housekeeping_for(municipality)
