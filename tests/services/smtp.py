"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, for notices."""

from __future__ import annotations

import contextlib
import email
import email.policy
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest


@dataclass
class Mailbox:
    host: str
    port: int
    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 Message accepted for delivery"

    def texts(self) -> list[str]:
        """Each message as its subject and its plain or HTML body."""
        out = []
        for message in self.messages:
            body = message.get_body(preferencelist=("html", "plain"))
            out.append(f"{message['Subject']}\n{body.get_content() if body else ''}")
        return out

    def connection(self) -> str:
        """An Airflow SMTP connection to this server (``AIRFLOW_CONN_*`` JSON)."""
        return json.dumps(
            {
                "conn_type": "smtp",
                "host": self.host,
                "port": self.port,
                "extra": {"disable_tls": True, "disable_ssl": True, "retry_limit": 0},
            }
        )


@contextlib.contextmanager
def running_smtp() -> Iterator[Mailbox]:
    from aiosmtpd.controller import Controller

    with socket.socket() as probe:  # aiosmtpd checks its own port: it must be known
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    box = Mailbox("127.0.0.1", port)
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@pytest.fixture
def smtp_server() -> Iterator[Mailbox]:
    with running_smtp() as box:
        yield box
