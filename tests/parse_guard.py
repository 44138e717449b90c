"""A secrets backend that turns any Variable or Connection lookup at DAG parse time into an
error, so the integrity test *fails* on one instead of mocking it away.

Configured for the whole test session in ``conftest.py``; armed only while DAG files are
being parsed, otherwise it defers to the next backend (environment, metadata DB). The class
is built on first access because Airflow imports this module while it starts up. It raises
Airflow's "access denied" error, the one failure Airflow does not swallow and fall through.
"""

from __future__ import annotations

from typing import Any

ARMED = False
LOOKUPS: list[str] = []


def _guard_class() -> type:
    from airflow.sdk.exceptions import AirflowSecretsBackendAccessDenied
    from airflow.secrets.base_secrets import BaseSecretsBackend

    def refuse(what: str) -> None:
        LOOKUPS.append(what)
        raise AirflowSecretsBackendAccessDenied(f"{what} looked up at DAG parse time")

    class ParseTimeLookupGuard(BaseSecretsBackend):
        def get_conn_value(self, conn_id: str) -> Any:
            if ARMED:
                refuse(f"connection {conn_id!r}")
            return None

        def get_variable(self, key: str) -> Any:
            if ARMED:
                refuse(f"variable {key!r}")
            return None

    return ParseTimeLookupGuard


def __getattr__(name: str) -> Any:
    if name == "ParseTimeLookupGuard":
        cls = _guard_class()
        globals()[name] = cls
        return cls
    raise AttributeError(name)
