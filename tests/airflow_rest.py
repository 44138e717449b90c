"""A small client of Airflow 3's REST API (v2) for tests against a running deployment.

It does what a person does in the UI, with the requests the UI itself sends (checked
against the UI bundle of Airflow 3.3.2): unpause, trigger, watch a run, clear a task
(the task instance's *Clear* dialog: downstream on, "prevent running task" on), read a
task's log, and answer a human-in-the-loop request (*Required actions*). Run ids hold
``:`` and ``+``: every path segment is URL-encoded here.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

import requests

#: run states after which a DAG run does nothing more
RUN_ENDED = frozenset({"success", "failed"})
#: task instance states after which it does nothing more (until cleared)
TASK_ENDED = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})


def _seg(value: str | int) -> str:
    return quote(str(value), safe="")


class AirflowError(AssertionError):
    """The API answered with an error; the message holds the method, path and answer."""


class AirflowRest:
    def __init__(self, base_url: str, username: str, password: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password
        self.timeout = timeout
        self.session = requests.Session()
        self._token_at = 0.0

    # -- plumbing -------------------------------------------------------------------------

    def token(self) -> str:
        """A JWT from ``POST /auth/token`` (the simple auth manager's login)."""
        response = requests.post(
            f"{self.base_url}/auth/token",
            json={"username": self.username, "password": self.password},
            timeout=self.timeout,
        )
        if response.status_code not in (200, 201):
            raise AirflowError(f"POST /auth/token: {response.status_code} {response.text[:300]}")
        token = str(response.json()["access_token"])
        self.session.headers["Authorization"] = f"Bearer {token}"
        self._token_at = time.monotonic()
        return token

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        if time.monotonic() - self._token_at > 600:  # tokens last longer; renew early
            self.token()
        kwargs.setdefault("timeout", self.timeout)
        response = self.session.request(method, f"{self.base_url}{path}", **kwargs)
        if response.status_code >= 400:
            raise AirflowError(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params or None).json()

    # -- DAGs and runs --------------------------------------------------------------------

    def dag(self, dag_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.get(f"/api/v2/dags/{_seg(dag_id)}")
        return found

    def dag_details(self, dag_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.get(f"/api/v2/dags/{_seg(dag_id)}/details")
        return found

    def dag_ids(self, pattern: str | None = None) -> list[str]:
        params = {"limit": 1000, **({"dag_id_pattern": pattern} if pattern else {})}
        return [d["dag_id"] for d in self.get("/api/v2/dags", **params)["dags"]]

    def unpause(self, dag_id: str) -> None:
        self.request("PATCH", f"/api/v2/dags/{_seg(dag_id)}", json={"is_paused": False})

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> str:
        """Trigger a run now (as the UI's Trigger button does); return its run id."""
        body = {"logical_date": None, "conf": dict(conf or {})}
        answer = self.request("POST", f"/api/v2/dags/{_seg(dag_id)}/dagRuns", json=body).json()
        return str(answer["dag_run_id"])

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.get(f"/api/v2/dags/{_seg(dag_id)}/dagRuns/{_seg(run_id)}")
        return found

    def wait_for_run(
        self, dag_id: str, run_id: str, timeout: float = 300.0, states: Iterable[str] = RUN_ENDED
    ) -> str:
        """Wait until the run reaches one of ``states``; return it."""
        wanted = set(states)
        deadline = time.monotonic() + timeout
        state = None
        while time.monotonic() < deadline:
            state = self.run(dag_id, run_id)["state"]
            if state in wanted:
                return str(state)
            time.sleep(1.0)
        states_now = self.task_states(dag_id, run_id)
        raise AirflowError(f"{dag_id} {run_id} still {state} after {timeout:.0f} s: {states_now}")

    # -- task instances -------------------------------------------------------------------

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        path = f"/api/v2/dags/{_seg(dag_id)}/dagRuns/{_seg(run_id)}/taskInstances"
        found: list[dict[str, Any]] = self.get(path, limit=1000)["task_instances"]
        return found

    def task_instance(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        path = f"/api/v2/dags/{_seg(dag_id)}/dagRuns/{_seg(run_id)}/taskInstances/{_seg(task_id)}"
        found: dict[str, Any] = self.get(path)
        return found

    def tries(self, dag_id: str, run_id: str, task_id: str) -> list[dict[str, Any]]:
        """Every try of a task instance, the current one included (its *Tries* in the UI)."""
        path = (
            f"/api/v2/dags/{_seg(dag_id)}/dagRuns/{_seg(run_id)}/taskInstances/"
            f"{_seg(task_id)}/tries"
        )
        found: list[dict[str, Any]] = self.get(path)["task_instances"]
        return sorted(found, key=lambda ti: ti["try_number"])

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        return {ti["task_id"]: ti["state"] for ti in self.task_instances(dag_id, run_id)}

    def wait_for_task(
        self, dag_id: str, run_id: str, task_id: str, states: Iterable[str], timeout: float = 300.0
    ) -> dict[str, Any]:
        wanted = set(states)
        deadline = time.monotonic() + timeout
        ti: dict[str, Any] = {}
        while time.monotonic() < deadline:
            ti = self.task_instance(dag_id, run_id, task_id)
            if ti["state"] in wanted:
                return ti
            time.sleep(0.25)
        raise AirflowError(f"{dag_id} {run_id} {task_id} still {ti.get('state')} ({wanted})")

    def explain(self, dag_id: str, run_id: str, lines: int = 8) -> str:
        """Task states and the last log lines of each failed try: for assertion messages."""
        parts = [f"{dag_id} {run_id}: {self.task_states(dag_id, run_id)}"]
        for ti in self.task_instances(dag_id, run_id):
            if ti["state"] not in ("failed", "up_for_retry"):
                continue
            for attempt in range(1, int(ti["try_number"]) + 1):
                with contextlib.suppress(AirflowError):
                    log = self.task_log(dag_id, run_id, ti["task_id"], attempt)
                    tail = "\n    ".join(log[-lines:])
                    parts.append(f"  {ti['task_id']} try {attempt}:\n    {tail}")
        return "\n".join(parts)

    def expect_run(self, dag_id: str, run_id: str, state: str, timeout: float = 300.0) -> None:
        """Wait for the run's end and assert it is ``state``, explaining when it is not."""
        ended = self.wait_for_run(dag_id, run_id, timeout)
        assert ended == state, f"ended {ended}, not {state}:\n{self.explain(dag_id, run_id)}"

    def clear_task(
        self, dag_id: str, run_id: str, task_id: str, *, map_index: int = -1
    ) -> list[dict[str, Any]]:
        """Clear one task instance exactly as the UI's *Clear* dialog does, downstream on.

        The dialog first asks for the affected task instances (``dry_run``), then clears
        with the same body. Returns what the dry run listed.
        """
        body = {
            "dag_run_id": run_id,
            "include_downstream": True,
            "include_future": False,
            "include_past": False,
            "include_upstream": False,
            "only_failed": False,
            "run_on_latest_version": False,
            "task_ids": [[task_id, map_index]],
            "prevent_running_task": True,
        }
        path = f"/api/v2/dags/{_seg(dag_id)}/clearTaskInstances"
        affected = self.request("POST", path, json={**body, "dry_run": True}).json()
        self.request("POST", path, json={**body, "dry_run": False})
        found: list[dict[str, Any]] = affected["task_instances"]
        return found

    def task_log_entries(
        self, dag_id: str, run_id: str, task_id: str, try_number: int
    ) -> list[Any]:
        """The task's log as the UI reads it (``Accept: application/json``): one entry a line,
        structured (``event``, ``level``, ``logger``, ...) where the line was."""
        path = (
            f"/api/v2/dags/{_seg(dag_id)}/dagRuns/{_seg(run_id)}/taskInstances/"
            f"{_seg(task_id)}/logs/{try_number}"
        )
        answer = self.request(
            "GET", path, params={"full_content": "true"}, headers={"Accept": "application/json"}
        ).json()
        found: list[Any] = answer.get("content", [])
        return found

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> list[str]:
        """The task's log as lines of text, roughly as the UI shows them."""
        entries = self.task_log_entries(dag_id, run_id, task_id, try_number)
        return [_log_line(entry) for entry in entries]

    # -- human in the loop ----------------------------------------------------------------

    def hitl_requests(
        self, dag_id: str = "~", run_id: str = "~", *, pending_only: bool = True
    ) -> list[dict[str, Any]]:
        """Human-in-the-loop requests, as the UI's *Required actions* lists them.

        Airflow 3.3.2 lists them at ``GET /api/v2/dags/{dag_id}/dagRuns/{run}/hitlDetails``
        (``~`` for any DAG or run); there is no top-level ``/api/v2/hitlDetails``.
        """
        params: dict[str, Any] = {"limit": 1000}
        if pending_only:
            params["response_received"] = "false"
        path = f"/api/v2/dags/{_seg(dag_id)}/dagRuns/{_seg(run_id)}/hitlDetails"
        found: list[dict[str, Any]] = self.get(path, **params)["hitl_details"]
        return found

    def hitl_request(
        self, dag_id: str, run_id: str, task_id: str, *, map_index: int = -1
    ) -> dict[str, Any]:
        path = (
            f"/api/v2/dags/{_seg(dag_id)}/dagRuns/{_seg(run_id)}/taskInstances/"
            f"{_seg(task_id)}/{map_index}/hitlDetails"
        )
        found: dict[str, Any] = self.get(path)
        return found

    def answer_hitl(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        chosen_options: list[str],
        params_input: Mapping[str, Any] | None = None,
        *,
        map_index: int = -1,
    ) -> dict[str, Any]:
        """Answer a request as *Required actions* does: ``PATCH .../hitlDetails``.

        The body is ``{"chosen_options": [...], "params_input": {...}}``; an option the
        request does not offer is a 400, a second answer a 409.
        """
        path = (
            f"/api/v2/dags/{_seg(dag_id)}/dagRuns/{_seg(run_id)}/taskInstances/"
            f"{_seg(task_id)}/{map_index}/hitlDetails"
        )
        body = {"chosen_options": list(chosen_options), "params_input": dict(params_input or {})}
        found: dict[str, Any] = self.request("PATCH", path, json=body).json()
        return found


#: keys every line of a task log carries; the UI does not repeat them on each line
_CONTEXT_KEYS = frozenset(
    {"event", "level", "timestamp", "logger", "loc", "sources", "filename", "lineno"}
    | {"task_id", "ti_id", "try_number", "dag_id", "run_id", "map_index"}
)


def _log_line(entry: Any) -> str:
    """One structured log entry as the UI shows it: ``[level] event key=value ...``."""
    if isinstance(entry, str):
        return entry
    if not isinstance(entry, dict):
        return str(entry)
    event = str(entry.get("event", ""))
    level = entry.get("level")
    extras = " ".join(f"{k}={v}" for k, v in entry.items() if k not in _CONTEXT_KEYS)
    return " ".join(part for part in (f"[{level}]" if level else "", event, extras) if part)
