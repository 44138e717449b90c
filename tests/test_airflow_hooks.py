"""The thin Airflow adapters: the SS 12000 connection hook and the failure callback.

Connections come from ``AIRFLOW_CONN_*`` environment variables (JSON form), which Airflow
reads before the metadata DB; the webhook is a real HTTP server on loopback.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from autosynk.config import SS12000ApiSource
from autosynk.errors import ConfigError
from autosynk_airflow.callbacks import WEBHOOK_ENV, on_failure
from autosynk_airflow.ss12000_hook import AutosynkSS12000Hook, base_url
from tests.services.webhook import Webhook

PNR = "19900101-0017"
CONN_ENV = "AIRFLOW_CONN_AUTOSYNK_SS12000"


def set_connection(monkeypatch: pytest.MonkeyPatch, env: str, **conn: Any) -> None:
    monkeypatch.setenv(env, json.dumps({"conn_type": "http", **conn}))


# --- the hook ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "schema", "port", "expected"),
    [
        ("register.example.se", "https", None, "https://register.example.se"),
        ("register.example.se/ss12000/v2", None, None, "https://register.example.se/ss12000/v2"),
        ("register.example.se/api/", "http", 8080, "http://register.example.se:8080/api"),
        ("https://r.example.se/v2", "http", None, "https://r.example.se/v2"),
        ("https://r.example.se/v2", None, 8443, "https://r.example.se:8443/v2"),
        ("https://r.example.se:9443/v2", None, 8443, "https://r.example.se:9443/v2"),
    ],
)
def test_base_url(host: str, schema: str | None, port: int | None, expected: str) -> None:
    assert base_url(host, schema, port) == expected


def test_source_config_from_env_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    set_connection(
        monkeypatch,
        CONN_ENV,
        host="register.example.se/ss12000/v2",
        schema="https",
        port=8443,
        login="autosynk-client",
        password="s3cret-from-conn",
        extra={
            "token_url": "https://register.example.se/oauth2/token",
            "scope": "ss12000.read",
            "page_size": 250,
            "timeout_seconds": 12.5,
            "incremental": True,
        },
    )
    source = AutosynkSS12000Hook().get_source_config()
    assert source == SS12000ApiSource(
        kind="ss12000",
        base_url="https://register.example.se:8443/ss12000/v2",
        token_url="https://register.example.se/oauth2/token",
        client_id="autosynk-client",
        client_secret="s3cret-from-conn",
        scope="ss12000.read",
        page_size=250,
        timeout_seconds=12.5,
        incremental=True,
        airflow_connection="autosynk_ss12000",
    )


def test_connection_overrides_the_run_config_and_keeps_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_connection(
        monkeypatch,
        "AIRFLOW_CONN_REGISTER_PROD",
        host="https://prod.example.se/v2",
        login="prod-client",
        password="prod-secret",
    )
    base = SS12000ApiSource(
        kind="ss12000",
        base_url="https://test.example.se/v2",
        token_url="https://test.example.se/token",
        client_id="test-client",
        client_secret_env="SS12000_SECRET",
        page_size=100,
        max_retries=2,
        airflow_connection="register_prod",
    )
    source = AutosynkSS12000Hook("register_prod").get_source_config(base=base)
    assert (source.base_url, source.client_id) == ("https://prod.example.se/v2", "prod-client")
    # the connection's password wins; the env var it replaces is no longer consulted
    assert (source.client_secret, source.client_secret_env) == ("prod-secret", None)
    assert (source.token_url, source.page_size, source.max_retries) == (
        "https://test.example.se/token",
        100,
        2,
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"token_url": "https://t", "page_sise": 10}, "unknown extra key(s) page_sise"),
        ({}, "token_url: Field required"),
        ({"token_url": "https://t", "page_size": 0}, "page_size: Input should be greater"),
    ],
)
def test_bad_connection_is_one_clear_config_error(
    monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any], message: str
) -> None:
    set_connection(monkeypatch, CONN_ENV, host="r.example.se", login="c", extra=extra)
    with pytest.raises(ConfigError) as caught:
        AutosynkSS12000Hook().get_source_config()
    text = str(caught.value)
    assert "'autosynk_ss12000'" in text and message in text and "\n" not in text


def test_construction_does_no_lookup_and_a_missing_connection_is_named() -> None:
    hook = AutosynkSS12000Hook("no_such_connection")  # must not raise: no I/O at parse time
    assert hook.autosynk_ss12000_conn_id == "no_such_connection"
    with pytest.raises(ConfigError, match="'no_such_connection' is not defined"):
        hook.get_source_config()


def test_provider_style_attributes() -> None:
    assert AutosynkSS12000Hook.default_conn_name == "autosynk_ss12000"
    assert AutosynkSS12000Hook.conn_type == "http"
    assert AutosynkSS12000Hook().autosynk_ss12000_conn_id == "autosynk_ss12000"
    assert getattr(AutosynkSS12000Hook(), AutosynkSS12000Hook.conn_name_attr) == "autosynk_ss12000"


# --- the failure callback ------------------------------------------------------------------


def failure_context(error: BaseException) -> dict[str, Any]:
    ti = SimpleNamespace(dag_id="unikum_nightly_sync", task_id="extract", try_number=2)
    return {
        "dag": SimpleNamespace(dag_id="unikum_nightly_sync"),
        "task_instance": ti,
        "run_id": "scheduled__2026-11-28T19:30:00+00:00",
        "exception": error,
    }


EXPECTED_SUMMARY = {
    "dag_id": "unikum_nightly_sync",
    "task_id": "extract",
    "run_id": "scheduled__2026-11-28T19:30:00+00:00",
    "try_number": 2,
    "error": "person 19900101-**** has no school",
}


def test_callback_logs_one_masked_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv(WEBHOOK_ENV, raising=False)
    with caplog.at_level(logging.INFO, logger="autosynk_airflow.callbacks"):
        on_failure(failure_context(ValueError(f"person {PNR} has no school\nmore detail")))
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "autosynk failure: dag=unikum_nightly_sync task=extract "
        "run=scheduled__2026-11-28T19:30:00+00:00 try=2 error=person 19900101-**** has no school"
    ]
    assert PNR not in caplog.text


def test_callback_posts_the_summary_to_the_webhook(
    monkeypatch: pytest.MonkeyPatch, webhook: Webhook
) -> None:
    monkeypatch.setenv(WEBHOOK_ENV, webhook.url)
    on_failure(failure_context(RuntimeError(f"person {PNR} has no school")))
    assert webhook.received == [EXPECTED_SUMMARY]


def test_callback_survives_a_failing_or_absent_webhook(
    monkeypatch: pytest.MonkeyPatch, webhook: Webhook, caplog: pytest.LogCaptureFixture
) -> None:
    webhook.status = 500
    monkeypatch.setenv(WEBHOOK_ENV, webhook.url + "?token=hush")
    with caplog.at_level(logging.INFO, logger="autosynk_airflow.callbacks"):
        on_failure(failure_context(RuntimeError("boom")))  # must not raise
        monkeypatch.setenv(WEBHOOK_ENV, "http://127.0.0.1:1/alert")  # nothing listens there
        on_failure(failure_context(RuntimeError("boom")))
        monkeypatch.setenv(WEBHOOK_ENV, "not a url")
        on_failure(failure_context(RuntimeError("boom")))
        on_failure({})  # even an empty context only logs
    assert len(webhook.received) == 1
    failures = [r.getMessage() for r in caplog.records if "webhook failed" in r.getMessage()]
    assert failures == [
        "autosynk alert webhook failed: HTTPError (HTTP 500)",
        "autosynk alert webhook failed: ConnectionError (HTTP None)",
        "autosynk alert webhook failed: InvalidURL (HTTP None)",
        "autosynk alert webhook failed: InvalidURL (HTTP None)",
    ]
    assert "hush" not in caplog.text  # a token in the webhook URL never reaches the log


def test_the_documented_example_connection_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    """.env.example's SS 12000 connection is one this hook reads without complaint."""
    env_example = Path(__file__).resolve().parent.parent / ".env.example"
    line = next(x for x in env_example.read_text().splitlines() if x.startswith(CONN_ENV + "="))
    monkeypatch.setenv(CONN_ENV, line.partition("=")[2].strip("'"))
    source = AutosynkSS12000Hook().get_source_config()
    assert source.base_url == "https://register.example.se/ss12000/v2"
    assert source.token_url == "https://register.example.se/oauth2/token"
    assert source.page_size == 500
