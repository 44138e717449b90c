"""The UI's default time zone: a script in the page, API responses untouched."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from autosynk_airflow.ui_timezone import UiDefaultTimezone, default_zone_script, with_default_zone

SCRIPT = (
    b'<script>try{if(!localStorage.getItem("timezone"))'
    b'localStorage.setItem("timezone","\\"Europe/Stockholm\\"")}catch(e){}</script>'
)


def test_the_script_stores_the_zone_as_the_ui_does() -> None:
    # the UI keeps JSON in local storage: the zone is a JSON string inside a JS string
    assert default_zone_script("Europe/Stockholm") == SCRIPT


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        (
            b"<html><head><title>Airflow</title></head></html>",
            b"<html><head>" + SCRIPT + b"<title>Airflow</title></head></html>",
        ),
        (
            b'<head>\n<script type="module" src="x.js"></script>',
            b"<head>" + SCRIPT + b'\n<script type="module" src="x.js"></script>',
        ),
        (b"<html><body>no head</body></html>", b"<html><body>no head</body></html>"),
        (b"", b""),
    ],
)
def test_with_default_zone(page: bytes, expected: bytes) -> None:
    assert with_default_zone(page, "Europe/Stockholm") == expected


def _inner(path: str) -> list[dict[str, Any]]:
    """What the api-server would send for ``path``: the UI's page, JSON, or a streamed page."""
    if path.startswith("/api/"):
        body = b'{"html": "<head>"}'
        kind, parts = b"application/json", [body]
    elif path == "/stream":
        kind, parts = b"text/html; charset=utf-8", [b"<html><head>", b"<title>x</title></head>"]
    else:
        kind, parts = b"text/html; charset=utf-8", [b"<html><head><title>Airflow</title></head>"]
    headers = [(b"content-type", kind)]
    if len(parts) == 1:
        headers.append((b"content-length", str(len(parts[0])).encode()))
    messages: list[dict[str, Any]] = [
        {"type": "http.response.start", "status": 200, "headers": headers}
    ]
    for n, part in enumerate(parts):
        more = n < len(parts) - 1
        messages.append({"type": "http.response.body", "body": part, "more_body": more})
    return messages


def _get(path: str, zone: str | None = None) -> tuple[dict[bytes, bytes], bytes]:
    """GET ``path`` through the middleware: (headers, body) as the browser gets them."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        for message in _inner(scope["path"]):
            await send(message)

    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": path, "headers": []}
    asyncio.run(UiDefaultTimezone(app, zone)(scope, receive, send))
    assert sent[0]["type"] == "http.response.start"
    body = b"".join(m.get("body", b"") for m in sent[1:])
    assert not sent[-1].get("more_body")
    return dict(sent[0]["headers"]), body


def test_the_page_gets_the_script_with_a_right_length() -> None:
    headers, body = _get("/dags")
    assert body == b"<html><head>" + SCRIPT + b"<title>Airflow</title></head>"
    assert int(headers[b"content-length"]) == len(body)


def test_a_streamed_page_too() -> None:
    headers, body = _get("/stream")
    assert body == b"<html><head>" + SCRIPT + b"<title>x</title></head>"
    assert int(headers[b"content-length"]) == len(body)


def test_another_zone_can_be_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOSYNK_UI_TIMEZONE", "Europe/Helsinki")
    assert b"Europe/Helsinki" in _get("/dags")[1]
    assert b"Europe/Oslo" in _get("/dags", "Europe/Oslo")[1]


def test_api_answers_are_untouched() -> None:
    headers, body = _get("/api/v2/version")
    assert body == b'{"html": "<head>"}'
    assert headers[b"content-length"] == b"18"
