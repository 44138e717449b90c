"""Failure callback: one personal-data-free line in the log, and optionally a webhook alert.

Set ``AUTOSYNK_ALERT_WEBHOOK`` to an http(s) URL (a chat or on-call webhook) to have the
same summary POSTed there as JSON. A callback must never fail the thing it reports on, so
every error in here is logged and swallowed.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from autosynk.identity import mask

WEBHOOK_ENV = "AUTOSYNK_ALERT_WEBHOOK"
WEBHOOK_TIMEOUT_SECONDS = 5.0
MAX_MESSAGE_CHARS = 500

log = logging.getLogger(__name__)


def failure_summary(context: dict[str, Any]) -> dict[str, Any]:
    """Who failed and why, with every identity number in the message masked."""
    ti = context.get("task_instance") or context.get("ti")
    dag = context.get("dag")
    error = context.get("exception") or context.get("reason") or "unknown"
    message = str(error).splitlines()[0] if str(error).strip() else type(error).__name__
    return {
        "dag_id": getattr(dag, "dag_id", None) or getattr(ti, "dag_id", None),
        "task_id": getattr(ti, "task_id", None),
        "run_id": context.get("run_id"),
        "try_number": getattr(ti, "try_number", None),
        "error": mask(message)[:MAX_MESSAGE_CHARS],
    }


def on_failure(context: dict[str, Any]) -> None:
    """Task or DAG ``on_failure_callback``."""
    try:
        summary = failure_summary(context)
        log.error(
            "autosynk failure: dag=%s task=%s run=%s try=%s error=%s",
            summary["dag_id"],
            summary["task_id"],
            summary["run_id"],
            summary["try_number"],
            summary["error"],
        )
        url = os.environ.get(WEBHOOK_ENV)
        if url:
            post_alert(url, summary)
    except Exception:  # a broken callback must not hide the failure it reports
        log.exception("autosynk failure callback itself failed")


def post_alert(url: str, summary: dict[str, Any]) -> None:
    import requests

    try:
        response = requests.post(url, json=summary, timeout=WEBHOOK_TIMEOUT_SECONDS)
        response.raise_for_status()
    except requests.RequestException as exc:  # bad URL, refused, timeout, HTTP error
        # the exception text would name the URL, and webhook URLs often embed a token
        status = getattr(exc.response, "status_code", None)
        log.error("autosynk alert webhook failed: %s (HTTP %s)", type(exc).__name__, status)
