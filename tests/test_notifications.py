"""Notices through Airflow's notifier mechanism, to a real SMTP server on loopback."""

from __future__ import annotations

import json
import re

import pytest

pytestmark = pytest.mark.airflow


def test_a_failed_night_sends_one_notice_with_run_reason_and_report(
    tmp_path, monkeypatch, airflow_db, smtp_server, webhook
):
    from airflow.dag_processing.dagbag import DagBag

    from tests.test_dags import DAGS

    register = tmp_path / "register"
    register.mkdir()
    for name in ("organisations", "persons", "groups", "duties", "activities"):
        (register / f"{name}.json").write_text('{"data": []}')
    config = tmp_path / "autosynk.yaml"
    config.write_text(
        "municipality: Exempelby\norganisation_id: x\n"
        "source: {kind: ss12000-files, path: register}\n"
        "target: {kind: directory, path: out}\nwork_base: work\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("AUTOSYNK_CONFIG", str(config))
    monkeypatch.setenv("AUTOSYNK_NOTIFY_EMAIL_CONN_ID", "autosynk_mail")
    monkeypatch.setenv("AUTOSYNK_NOTIFY_EMAIL_TO", "integration@exempelby.example")
    monkeypatch.setenv("AUTOSYNK_NOTIFY_EMAIL_FROM", "autosynk@exempelby.example")
    monkeypatch.setenv("AIRFLOW_CONN_AUTOSYNK_MAIL", smtp_server.connection())
    monkeypatch.setenv("AUTOSYNK_NOTIFY_SLACK_CONN_ID", "autosynk_slack")
    # a Slack incoming webhook, answered by a server on loopback
    monkeypatch.setenv(
        "AIRFLOW_CONN_AUTOSYNK_SLACK",
        json.dumps({"conn_type": "slackwebhook", "password": webhook.url}),
    )
    dag = DagBag(str(DAGS)).dags["unikum_nightly_sync"]  # notifiers are set when parsed
    for task in dag.tasks:
        task.retries = 0
    run = dag.test()
    assert run.state == "failed"

    (text,) = smtp_server.texts()
    assert run.run_id in text
    assert "the register snapshot has no organisations" in text
    report = tmp_path / "out" / "report.html"
    assert f"report: {report}" in text and report.is_file()
    assert not re.search(r"\d{6}[-+]?\d{4}", text.replace(run.run_id, ""))

    (posted,) = webhook.received  # the same notice in Slack
    assert run.run_id in posted["text"] and "the register snapshot has no" in posted["text"]
    assert f"report: {report}" in posted["text"]
    assert not re.search(r"\d{6}[-+]?\d{4}", posted["text"].replace(run.run_id, ""))


def test_notices_are_off_unless_a_connection_is_named(monkeypatch):
    from autosynk_airflow.notifications import approval_notifiers, night_notifiers

    monkeypatch.delenv("AUTOSYNK_NOTIFY_SLACK_CONN_ID", raising=False)
    monkeypatch.delenv("AUTOSYNK_NOTIFY_EMAIL_CONN_ID", raising=False)
    assert night_notifiers() == [] and approval_notifiers() == []
    monkeypatch.setenv("AUTOSYNK_NOTIFY_EMAIL_CONN_ID", "mail")
    monkeypatch.delenv("AUTOSYNK_NOTIFY_EMAIL_TO", raising=False)
    assert night_notifiers() == []  # nobody to tell
    monkeypatch.setenv("AUTOSYNK_NOTIFY_EMAIL_TO", "a@example.se, b@example.se")
    (notifier,) = night_notifiers()
    assert notifier.to == ["a@example.se", "b@example.se"]
