"""The UI's default time zone: Europe/Stockholm, not the browser's (often UTC on servers).

Airflow 3's UI shows times in the zone kept in the browser's local storage (key
``timezone``) and, until someone picks one, in the browser's own zone; no server setting
changes that. This middleware adds one line of script to the UI's page that sets the
deployment's zone (``AUTOSYNK_UI_TIMEZONE``, default Europe/Stockholm) when the user has
not chosen one: a choice made in the UI's user menu is kept. API responses are untouched.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

ZONE_ENV = "AUTOSYNK_UI_TIMEZONE"
DEFAULT_ZONE = "Europe/Stockholm"
#: the UI's local-storage key for the chosen zone (airflow/ui: TimezoneProvider)
STORAGE_KEY = "timezone"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def default_zone_script(zone: str) -> bytes:
    """The ``<script>`` that sets ``zone`` unless the user chose one (JSON, as the UI stores it)."""
    key, value = json.dumps(STORAGE_KEY), json.dumps(json.dumps(zone))
    return (
        f"<script>try{{if(!localStorage.getItem({key}))"
        f"localStorage.setItem({key},{value})}}catch(e){{}}</script>"
    ).encode()


def with_default_zone(page: bytes, zone: str) -> bytes:
    """The page with the script as the first thing in ``<head>`` (before the UI's module)."""
    head = page.find(b"<head>")
    if head < 0:
        return page
    at = head + len(b"<head>")
    return page[:at] + default_zone_script(zone) + page[at:]


class UiDefaultTimezone:
    """ASGI middleware: adds the default-zone script to the UI's HTML page."""

    def __init__(self, app: App, zone: str | None = None) -> None:
        self.app = app
        self.zone = zone or os.environ.get(ZONE_ENV) or DEFAULT_ZONE

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or path.startswith(("/api/", "/execution/", "/static/")):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        body: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers") or [])
                if not headers.get(b"content-type", b"").startswith(b"text/html"):
                    await send(message)
                    return
                start = message
                return
            if start is None:  # not the HTML page: pass through as it comes
                await send(message)
                return
            body.append(message.get("body", b""))
            if message.get("more_body"):
                return
            page = with_default_zone(b"".join(body), self.zone)
            kept = [(k, v) for k, v in start.get("headers") or [] if k != b"content-length"]
            kept.append((b"content-length", str(len(page)).encode()))
            await send({**start, "headers": kept})
            await send({"type": "http.response.body", "body": page, "more_body": False})

        await self.app(scope, receive, capture)
