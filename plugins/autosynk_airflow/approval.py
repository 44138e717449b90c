"""The approval task: Airflow's human-in-the-loop ``ApprovalOperator`` over a run's plan.

A plan that passed its guards needs nobody: the task skips itself and the night goes on.
A refused plan (or one that always needs approval, as the school-year change's) waits in
the UI's *Required actions* with the plan as its body: counts, what tripped, the report's
path. *Approve* lets the deliver task send exactly that plan's files; *Reject*, or no
answer within the response timeout, skips delivery and the run ends rejected.

The timeout is read from ``AUTOSYNK_APPROVAL_TIMEOUT_HOURS`` when the DAG is parsed (an
environment variable, never a Variable or Connection); default 23 hours, so a plan
refused at night can be approved the next working day before the next night starts.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import BaseNotifier
from airflow.sdk.exceptions import AirflowSkipException

TIMEOUT_ENV = "AUTOSYNK_APPROVAL_TIMEOUT_HOURS"
DEFAULT_TIMEOUT_HOURS = 23.0
#: the school-year change's plan: a person has days, not hours (the nightly waits meanwhile)
SCHOOL_YEAR_TIMEOUT_ENV = "AUTOSYNK_SCHOOL_YEAR_APPROVAL_TIMEOUT_HOURS"
SCHOOL_YEAR_TIMEOUT_HOURS = 72.0


def approval_timeout(
    env: str = TIMEOUT_ENV, default_hours: float = DEFAULT_TIMEOUT_HOURS
) -> dt.timedelta:
    """How long a plan waits for a person before it counts as rejected."""
    text = os.environ.get(env, "").strip()
    try:
        hours = float(text) if text else default_hours
    except ValueError:
        hours = default_hours
    return dt.timedelta(hours=max(hours, 0.001))


class PlanApprovalOperator(ApprovalOperator):
    """Wait for a person only when the plan (the ``plan_task``'s XCom) needs one."""

    def __init__(
        self,
        *,
        plan_task: str = "plan",
        notifiers: list[BaseNotifier] | None = None,
        timeout: dt.timedelta | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("subject", "autosynk: a plan waits for your approval")
        kwargs.setdefault("body", "{{ ti.xcom_pull(task_ids='" + plan_task + "')['body'] }}")
        super().__init__(
            defaults="Reject",
            response_timeout=timeout or approval_timeout(),
            notifiers=notifiers,
            **kwargs,
        )
        self.plan_task = plan_task

    def execute(self, context: Any) -> Any:
        plan = context["ti"].xcom_pull(task_ids=self.plan_task) or {}
        if plan.get("status") in ("dry-run", "blocked"):
            # nothing may be delivered: this task ends skipping delivery (and so the commit)
            self.log.info("the plan is %s: nothing to approve, nothing delivered", plan["status"])
            self.skip(ti=context["ti"], tasks=context["task"].get_direct_relatives(upstream=False))
            return None  # skip() ends the task (it raises in the task runner)
        if not plan.get("needs_approval"):
            raise AirflowSkipException("the plan passed its guards: no approval needed")
        return super().execute(context)


def approver(answer: dict[str, Any] | None) -> str | None:
    """Who approved, from the approval task's XCom (None: no approval was asked for)."""
    if not answer or "Approve" not in (answer.get("chosen_options") or []):
        return None
    user = answer.get("responded_by_user") or {}
    name = user.get("name") or user.get("id") or "unknown user"
    return f"airflow:{name}"
