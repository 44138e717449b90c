"""The SS 12000 API server on loopback, with a small synthetic register and fault plans.

Fixtures:

- ``ss12000_data``: a folder with a small register (five list files, several pages each);
- ``start_ss12000``: ``start_ss12000(data_dir, faults=FaultPlan(...), **serve_kwargs)``
  starts a server on a free port (stopped after the test);
- ``ss12000_config``: ``ss12000_config(server, **overrides)`` -> ``SS12000ApiSource`` with
  small page size, short timeouts and tiny backoff caps so fault tests stay fast.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from autosynk.config import SS12000ApiSource
from autosynk.ss12000_server import FaultPlan, SS12000Server, serve

CLIENT_ID = "autosynk-test"
CLIENT_SECRET = "s3cret-for-tests"
OLD = "2024-01-15T08:00:00Z"


def _meta(modified: str = OLD) -> dict[str, str]:
    return {"created": OLD, "modified": modified}


def build_register(persons: int = 23) -> dict[str, list[dict[str, Any]]]:
    """A small, internally consistent register; ``persons`` students plus their guardians."""
    orgs = [
        {
            "id": "org-hm",
            "displayName": "Testkommun",
            "organisationType": "Huvudman",
            "meta": _meta(),
        },
        {
            "id": "org-a",
            "displayName": "Aspskolan",
            "organisationType": "Skolenhet",
            "schoolUnitCode": "12345678",
            "schoolTypes": ["GR"],
            "parentOrganisation": {"id": "org-hm"},
            "meta": _meta(),
        },
        # a naive timestamp, as some registers send them (taken as UTC)
        {
            "id": "org-b",
            "displayName": "Björkskolan",
            "organisationType": "Skolenhet",
            "schoolUnitCode": "87654321",
            "schoolTypes": ["GR"],
            "parentOrganisation": {"id": "org-hm"},
            "meta": {"created": "2024-01-15T08:00:00", "modified": "2024-01-15T08:00:00"},
        },
    ]
    people: list[dict[str, Any]] = []
    for n in range(persons):
        guardian_id = f"p-guardian-{n:03d}"
        people.append(
            {
                "id": f"p-student-{n:03d}",
                "givenName": f"Elev{n}",
                "familyName": "Testsson",
                "civicNo": {"value": f"20150101{n:04d}"},
                "securityMarking": "Ingen",
                "enrolments": [
                    {
                        "enroledAt": {"id": "org-a" if n % 2 else "org-b"},
                        "schoolType": "GR",
                        "schoolYear": 3,
                    }
                ],
                "responsibles": [{"person": {"id": guardian_id}, "relationType": "Vårdnadshavare"}],
                "meta": _meta(),
            }
        )
        people.append(
            {
                "id": guardian_id,
                "givenName": f"Förälder{n}",
                "familyName": "Testsson",
                "civicNo": {"value": f"19800101{n:04d}"},
                "securityMarking": "Ingen",
                "meta": _meta(),
            }
        )
    groups = [
        {
            "id": f"g-{n:02d}",
            "displayName": f"3{chr(65 + n)}",
            "groupType": "Klass",
            "organisation": {"id": "org-a"},
            "groupMemberships": [{"person": {"id": f"p-student-{n:03d}"}}],
            "meta": _meta(),
        }
        for n in range(7)
    ]
    duties = [
        {
            "id": f"d-{n}",
            "person": {"id": f"p-guardian-{n:03d}"},
            "dutyAt": {"id": "org-a"},
            "dutyRole": "Lärare",
            "meta": _meta(),
        }
        for n in range(4)
    ]
    activities = [
        {
            "id": f"a-{n}",
            "groups": [{"id": f"g-{n:02d}"}],
            "teachers": [{"duty": {"id": "d-0"}}],
            "organisation": {"id": "org-a"},
            "meta": _meta(),
        }
        for n in range(3)
    ]
    return {
        "organisations": orgs,
        "persons": people,
        "groups": groups,
        "duties": duties,
        "activities": activities,
    }


def write_register(folder: Path, register: dict[str, list[dict[str, Any]]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, items in register.items():
        (folder / f"{name}.json").write_text(
            json.dumps({"data": items}, ensure_ascii=False), encoding="utf-8"
        )
    return folder


@pytest.fixture
def ss12000_data(tmp_path: Path) -> Path:
    return write_register(tmp_path / "register", build_register())


@pytest.fixture
def start_ss12000() -> Iterator[Callable[..., SS12000Server]]:
    running: list[SS12000Server] = []

    def start(data_dir: Path, faults: FaultPlan | None = None, **kwargs: Any) -> SS12000Server:
        kwargs.setdefault("client_id", CLIENT_ID)
        kwargs.setdefault("client_secret", CLIENT_SECRET)
        server = serve(data_dir, "127.0.0.1", 0, faults=faults, **kwargs)
        running.append(server)
        return server

    yield start
    for server in running:
        server.stop()


@pytest.fixture
def ss12000_config() -> Callable[..., SS12000ApiSource]:
    def make(server: SS12000Server, **overrides: Any) -> SS12000ApiSource:
        values: dict[str, Any] = {
            "kind": "ss12000",
            "base_url": server.url,
            "token_url": server.token_url,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "page_size": 10,
            "timeout_seconds": 2.0,
            "max_retries": 3,
            "max_backoff_seconds": 0.05,
        }
        values.update(overrides)
        return SS12000ApiSource.model_validate(values)

    return make
