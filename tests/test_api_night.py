"""Whole nights from the local SS 12000 server, with its faults, through the CLI.

Each injected fault ends either in a correct night or in a clear failure that leaves the
staging state exactly as it was; the next night then delivers the right delta.
"""

from __future__ import annotations

import pytest
import yaml

from autosynk.cli import main
from autosynk.config import load_config
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
