"""
# unikum_school_year_change

The school-year change (läsårsbyte) with a sync, as Unikum's checklist asks: last year's
groups detached, next year's created with new ids, every pupil's årskurs moved on, leavers
detached with their links, mentor links and group administrators handled, and no pupil
left without a group. Triggered by hand only, once the register has made its own year
change. It **plans** the change at its effective date, shows the plan and the checklist
for **approval**, and only then delivers exactly that plan and advances the staging state.

The run holds the one run lock from `prepare` until it ends: while it waits for approval
or applies, the nightly sync cannot run (its `prepare` fails saying it is locked by this
run, waiting for approval). After it is applied, nightly runs evaluate the register at the
later of today and the effective date, so a change applied in June for August is not
undone by the June nights.

## Trigger form
- **School year**: the new school year, e.g. `2027/28`.
- **Effective date**: when the new year starts for Unikum (empty: the first day of that
  school year, the mapping spec's `school_year_starts`, default 1 July).
- **Sync owns mentor links**: empty takes the mapping spec's `mentor_links`. Owned: the
  plan removes the leavers' mentor links. Not owned: the checklist lists the leavers whose
  links must be handled by hand in Unikum. (Changing it from the mapping's value changes
  ownership: `false` removes every mentor link the sync had delivered.)

## Runbook
- **Approval (`approval`, *Required actions* in the UI)**: the body holds the counts and
  the checklist; the report (`report.html`, path in the body and in the `checklist_report`
  log) lists every item with masked identity numbers. Check: the groups detached and the
  new groups are the ones you expect; årskurs moved on (e.g. `4 → 5`); the leavers are the
  graduating years and those moving away; staff leaving; the mentor links; administrators
  on last year's groups (remove hand-made ones in Unikum first); no pupil without an
  årskurs. **Approve** delivers exactly this plan; **Reject** (or no answer within
  `AUTOSYNK_SCHOOL_YEAR_APPROVAL_TIMEOUT_HOURS`, default 72 h) delivers nothing, frees the
  lock and ends the run as rejected.
- **Blocked** (the run fails at `report`, approval and delivery skipped): pupils would be
  at a school without any group (spec §9.4). Fix the register (give them a group), then
  trigger again. `safety.school_year.block_on_students_without_group: false` makes this a
  warning instead.
- **Refused by the school-year guards** (shown in the approval's body): more leavers or new
  records than a year change explains (`safety.school_year` limits), e.g. a partial export.
  Approve only if the report shows the register is right.
- **Nothing to deliver**: the register has not made its year change yet, or it was
  already applied.
- **A task failed**: read its log (one line says why), fix the cause, *Clear* it. Every
  task is idempotent; after `write` a retry re-sends the same bytes. `deliver` refuses a
  stale plan (another run committed since): trigger again.
- **CLI** (same functions): `autosynk school-year plan --config F --school-year 2027/28`,
  then `autosynk school-year apply --config F --plan <id>` or `... reject ...`.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Param, dag, get_current_context, task

from autosynk_airflow import tenants
from autosynk_airflow.approval import (
    SCHOOL_YEAR_TIMEOUT_ENV,
    SCHOOL_YEAR_TIMEOUT_HOURS,
    PlanApprovalOperator,
    approval_timeout,
)
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

TAGS = ["autosynk", "unikum", "school-year"]


def unikum_school_year_change() -> None:
    @task
    def prepare() -> dict:
        from autosynk import school_year
        from autosynk_airflow import runtime

        params = get_current_context()["params"]
        return school_year.prepare(
            runtime.run_config(),
            runtime.current_run_id(),
            school_year=params["school_year"],
            effective=params["effective_date"],
            dag_run_id=runtime.current_run_id(),
        )

    @task
    def plan() -> dict:
        from autosynk import school_year
        from autosynk_airflow import runtime

        return school_year.plan(
            runtime.run_config(),
            runtime.current_run_id(),
            mentor_links=get_current_context()["params"]["mentor_links"],
        )

    @task
    def checklist_report() -> dict:
        from autosynk import school_year
        from autosynk_airflow import runtime

        return school_year.checklist_report(runtime.run_config(), runtime.current_run_id())

    approval = PlanApprovalOperator(
        task_id="approval",
        plan_task="checklist_report",
        subject="autosynk: the school-year change waits for your approval",
        timeout=approval_timeout(SCHOOL_YEAR_TIMEOUT_ENV, SCHOOL_YEAR_TIMEOUT_HOURS),
        notifiers=approval_notifiers(plan_task="checklist_report"),
    )

    transform_at_effective_date = transform_and_validate.override(
        task_id="transform_at_effective_date"
    )

    (
        prepare()
        >> extract()
        >> transform_at_effective_date()
        >> delta()
        >> write()
        >> plan()
        >> checklist_report()
        >> approval
        >> deliver()
        >> commit_state()
        >> report()
    )


def school_year_change_for(municipality: tenants.Municipality) -> None:
    dag(
        dag_id=municipality.dag_id("unikum_school_year_change"),
        description=municipality.describe(
            "Läsårsbyte: plan the school-year change, approve it, deliver exactly that plan"
        ),
        schedule=None,
        **dag_settings(
            tags=TAGS,
            doc_md=__doc__,
            retries=2,
            retry_delay=dt.timedelta(minutes=5),
            max_retry_delay=dt.timedelta(minutes=30),
        ),
        params={
            "school_year": Param(
                type="string",
                pattern=r"^\d{4}/\d{2}$",
                title="School year",
                description="The new school year, e.g. 2027/28.",
            ),
            "effective_date": Param(
                None,
                type=["null", "string"],
                format="date",
                title="Effective date",
                description="When the new year starts for Unikum (empty: the school year's "
                "first day as the mapping spec defines it).",
            ),
            "mentor_links": Param(
                None,
                type=["null", "boolean"],
                title="Sync owns mentor links",
                description="Empty: the mapping spec's mentor_links. Owned: leavers' mentor "
                "links are removed; not owned: they are listed for manual work.",
            ),
        },
    )(unikum_school_year_change)()


for municipality in tenants.municipalities():
    school_year_change_for(municipality)
