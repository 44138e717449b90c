"""Whole nights from the local SS 12000 server, with its faults, through the CLI.

Each injected fault ends either in a correct night or in a clear failure that leaves the
staging state exactly as it was; the next night then delivers the right delta.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from autosynk.cli import main
from autosynk.config import load_config
from autosynk.demo.generate import generate
from autosynk.demo.mutate import mutate
from autosynk.sources import ENTITIES
from autosynk.ss12000_server import Fault, FaultPlan
from autosynk.staging.store import Staging
from tests import tiny_register as tiny
from tests.services.ss12000 import CLIENT_ID, CLIENT_SECRET


def setup_night(tmp_path, start_ss12000, faults: FaultPlan | None = None, **source):
    data = tiny.write(tmp_path / "served")
    server = start_ss12000(data, faults)
    config = {
        "municipality": "Exempelby",
        "organisation_id": tiny.ORG,
        "source": {
            "kind": "ss12000",
            "base_url": server.url,
            "token_url": server.token_url,
            "client_id": CLIENT_ID,
            "client_secret_env": "TEST_SS12000_SECRET",
            "page_size": 2,
            "timeout_seconds": 1.0,
            "max_retries": 2,
            "max_backoff_seconds": 0.05,
            **source,
        },
        "staging": {"url": f"sqlite:///{tmp_path}/staging.db"},
        "target": {"kind": "directory", "path": "out"},
    }
    path = tmp_path / "autosynk.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return server, str(path)


def relations(config: str) -> set:
    rows = Staging(load_config(config).staging.url).delivered_relations()
    return set(rows.itertuples(index=False, name=None))


@pytest.fixture(autouse=True)
def secret(monkeypatch):
    monkeypatch.setenv("TEST_SS12000_SECRET", CLIENT_SECRET)


@pytest.mark.parametrize(
    "fault",
    [
        Fault("status", path="/persons", status=429, retry_after="0"),
        Fault("status", path="/groups", status=503),
        Fault("truncate", path="/persons", nth=2),
        Fault("expire_token", path="/duties"),
        Fault("slow", path="/organisations", seconds=1.5),
        Fault("stale_page_token", path="/persons", nth=2),
    ],
    ids=lambda f: f.kind,
)
def test_a_passing_fault_still_gives_the_right_night(tmp_path, start_ss12000, fault):
    _server, config = setup_night(tmp_path, start_ss12000, FaultPlan([fault]))
    assert main(["run", "--config", config]) == 0
    assert fault.fired >= 1
    assert relations(config) == tiny.EXPECTED_RELATIONS


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (Fault("status", path="/persons", status=500, nth=None), "/persons"),
        (Fault("truncate", path="/groups", nth=None), "/groups"),
    ],
    ids=["persistent-500", "always-truncated"],
)
def test_a_lasting_fault_fails_clearly_and_keeps_state(
    tmp_path, start_ss12000, capsys, fault, message
):
    server, config = setup_night(tmp_path, start_ss12000)
    assert main(["run", "--config", config]) == 0
    before = relations(config)
    server.faults = FaultPlan([fault])
    server.delete("persons", "g2")  # a guardian left; tonight the register cannot be read
    capsys.readouterr()
    assert main(["run", "--config", config]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err and "Traceback" not in err
    assert relations(config) == before
    assert len(list((tmp_path / "out").glob("*.relations"))) == 1  # only the first night's
    server.faults = FaultPlan([])
    assert main(["run", "--config", config]) == 0  # the next night delivers the right delta
    assert before - relations(config) == {
        ("guardian_for", tiny.G2, tiny.C1),
        ("external_user_in_school", tiny.G2, "u1"),
    }


def test_wrong_credentials_name_the_token_endpoint(tmp_path, start_ss12000, capsys, monkeypatch):
    _server, config = setup_night(tmp_path, start_ss12000)
    monkeypatch.setenv("TEST_SS12000_SECRET", "wrong")
    assert main(["run", "--config", config]) == 1
    assert "token" in capsys.readouterr().err
    assert relations(config) == set()


# --- servers met in the wild -------------------------------------------------------------------

#: label -> (server's client authentication, its page tokens, our page size)
SERVERS = {
    "well-behaved, one page per list": ("any", "opaque", 10000),
    "form fields only, offset tokens, one page per list": ("post", "offset", 10000),
    "form fields only, offset tokens, pages of 7": ("post", "offset", 7),
    "well-behaved, pages of 7": ("any", "opaque", 7),
}


def serve_day(server, before: Path, after: Path) -> int:
    """Serve a day's changes: what ``after`` holds differently from ``before`` is put
    (stamped now, so an incremental read sees it), what it no longer holds is deleted."""
    changes = 0
    for name in ENTITIES:
        old = {e["id"]: e for e in json.loads((before / f"{name}.json").read_bytes())["data"]}
        new = {e["id"]: e for e in json.loads((after / f"{name}.json").read_bytes())["data"]}
        for entity_id, entity in new.items():
            if old.get(entity_id) != entity:
                server.put(name, entity)
                changes += 1
        for entity_id in old.keys() - new.keys():
            server.delete(name, entity_id)
            changes += 1
    return changes


def delivered_since(out: Path, seen: set[str]) -> dict[str, str]:
    """The content of the data files delivered since the last call, by suffix."""
    found = {}
    for path in sorted(out.glob("Exempelby_*")):
        if path.name not in seen:
            seen.add(path.name)
            found[path.suffix] = path.read_text(encoding="utf-8")
    return found


def test_a_night_is_the_same_against_every_server(tmp_path, start_ss12000):
    """Full and incremental nights give the same files whatever the server's client
    authentication and page tokens, and however the lists are cut into pages."""
    register = tmp_path / "register"
    generate(register, seed=11, scale="small")
    day_after = tmp_path / "day-after"
    shutil.copytree(register, day_after)
    for seed in (12, 13, 14):  # three days' changes, so that they fill several pages of 7
        mutate(day_after, seed=seed)

    nights: dict[str, list[dict[str, str]]] = {}
    for n, (label, (client_auth, page_tokens, page_size)) in enumerate(SERVERS.items()):
        server = start_ss12000(register, client_auth=client_auth, page_tokens=page_tokens)
        root = tmp_path / f"m{n}"
        root.mkdir()
        config = root / "autosynk.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "municipality": "Exempelby",
                    "organisation_id": "exempelby-kommun",
                    "source": {
                        "kind": "ss12000",
                        "base_url": server.url,
                        "token_url": server.token_url,
                        "client_id": CLIENT_ID,
                        "client_secret_env": "TEST_SS12000_SECRET",
                        "page_size": page_size,
                        "incremental": True,
                    },
                    "target": {"kind": "directory", "path": "out"},
                }
            ),
            encoding="utf-8",
        )
        seen: set[str] = set()
        assert main(["run", "--config", str(config)]) == 0, label
        full = delivered_since(root / "out", seen)
        assert serve_day(server, register, day_after) > 2 * 7
        server.log.clear()
        assert main(["run", "--config", str(config)]) == 0, label
        incremental = delivered_since(root / "out", seen)
        persons = server.requests_to("/persons")
        assert "meta.modified.after" in persons[0].params, label  # an incremental read
        if page_tokens == "offset":
            assert all("meta.modified.after" in r.params for r in persons), label
        if page_size == 7:
            assert len(persons) >= 3, "the changes span several pages"
        if client_auth == "post":
            assert [r.auth for r in server.token_requests] == ["basic", "post", "basic", "post"]
        nights[label] = [full, incremental]

    reference = nights["well-behaved, one page per list"]
    assert set(reference[0]) == {".principals", ".relations"} == set(reference[1])
    for label, files in nights.items():
        assert files == reference, label
