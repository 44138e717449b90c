"""Notices for the people who run the sync: a night failed, was refused, or waits for approval.

Off by default. Turned on per deployment by naming an Airflow connection in an
environment variable (read when the DAG is parsed; the connection itself only when a
notice is sent):

- e-mail (the SMTP provider's ``SmtpNotifier``): ``AUTOSYNK_NOTIFY_EMAIL_CONN_ID`` names an
  SMTP connection, ``AUTOSYNK_NOTIFY_EMAIL_TO`` the recipients (comma-separated), and
  ``AUTOSYNK_NOTIFY_EMAIL_FROM`` the sender (else the connection's ``from_email``);
- Slack (the Slack provider's ``SlackWebhookNotifier``): ``AUTOSYNK_NOTIFY_SLACK_CONN_ID``
  names a Slack incoming-webhook connection (``slackwebhook``).

A notice names the DAG, the run, the reason and the report's path: texts the pipeline
writes without personal data (identity numbers masked), never rows or names.
"""

from __future__ import annotations

import os

from airflow.sdk import BaseNotifier

EMAIL_CONN_ENV = "AUTOSYNK_NOTIFY_EMAIL_CONN_ID"
EMAIL_TO_ENV = "AUTOSYNK_NOTIFY_EMAIL_TO"
EMAIL_FROM_ENV = "AUTOSYNK_NOTIFY_EMAIL_FROM"
SLACK_CONN_ENV = "AUTOSYNK_NOTIFY_SLACK_CONN_ID"

NIGHT_SUBJECT = "autosynk: {{ dag.dag_id }} run {{ run_id }} did not complete"
NIGHT_BODY = (
    "<p>autosynk: run <b>{{ run_id }}</b> of <b>{{ dag.dag_id }}</b> did not complete.</p>"
    "<p>{{ exception }}</p>"
    "<p>Nothing was committed: the staging state is as it was. See the report, and the "
    "DAG's runbook in Airflow.</p>"
)
APPROVAL_SUBJECT = (
    "autosynk: plan {{ ti.xcom_pull(task_ids='PLAN')['plan_id'] }} of {{ dag.dag_id }} "
    "waits for approval"
)
APPROVAL_BODY = (
    "<p>autosynk: run <b>{{ run_id }}</b> of <b>{{ dag.dag_id }}</b> waits for approval; "
    "nothing is delivered until someone approves it (Airflow: Required actions).</p>"
    "<pre>{{ ti.xcom_pull(task_ids='PLAN')['body'] }}</pre>"
)


NIGHT_TEXT = (
    "autosynk: run {{ run_id }} of {{ dag.dag_id }} did not complete. {{ exception }} "
    "Nothing was committed."
)
APPROVAL_TEXT = (
    "autosynk: run {{ run_id }} of {{ dag.dag_id }} waits for approval of plan "
    "{{ ti.xcom_pull(task_ids='PLAN')['plan_id'] }} (Required actions); nothing is delivered "
    "until someone approves it. Report: {{ ti.xcom_pull(task_ids='PLAN')['report'] }}"
)


def _recipients() -> list[str]:
    return [a.strip() for a in os.environ.get(EMAIL_TO_ENV, "").split(",") if a.strip()]


def _email(subject: str, body: str) -> list[BaseNotifier]:
    conn_id = os.environ.get(EMAIL_CONN_ENV, "").strip()
    recipients = _recipients()
    if not conn_id or not recipients:
        return []
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    return [
        SmtpNotifier(
            smtp_conn_id=conn_id,
            to=recipients,
            from_email=os.environ.get(EMAIL_FROM_ENV) or None,
            subject=subject,
            html_content=body,
        )
    ]


def _slack(text: str) -> list[BaseNotifier]:
    conn_id = os.environ.get(SLACK_CONN_ENV, "").strip()
    if not conn_id:
        return []
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

    return [SlackWebhookNotifier(slack_webhook_conn_id=conn_id, text=text)]


def night_notifiers() -> list[BaseNotifier]:
    """For the ``report`` task's failure: the night failed, was refused or rejected."""
    return [*_email(NIGHT_SUBJECT, NIGHT_BODY), *_slack(NIGHT_TEXT)]


def approval_notifiers(plan_task: str = "plan") -> list[BaseNotifier]:
    """For the approval task: a plan (the XCom of ``plan_task``) waits for a person."""
    return [
        *_email(
            APPROVAL_SUBJECT.replace("PLAN", plan_task), APPROVAL_BODY.replace("PLAN", plan_task)
        ),
        *_slack(APPROVAL_TEXT.replace("PLAN", plan_task)),
    ]
