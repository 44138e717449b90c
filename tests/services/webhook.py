"""A real HTTP server on loopback that records the JSON bodies POSTed to it (webhooks:
the failure alert, Slack's incoming webhooks)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Webhook:
    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    """A real HTTP server on loopback that records the JSON bodies POSTed to it."""
    hook = Webhook(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            hook.received.append(json.loads(self.rfile.read(length)))
            self.send_response(hook.status)
            self.end_headers()
            self.wfile.write(b"ok")  # what Slack answers

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/alert"
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()
