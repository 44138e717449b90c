"""Whole nights delivered to a real sshd: through the CLI, and through the DAG's SFTP hook."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from autosynk.cli import main
from tests import tiny_register as tiny
from tests.services.sshd import Sshd

pytestmark = pytest.mark.sshd


def write_config(tmp_path, sshd: Sshd, remote: str, **target_extra) -> str:
    tiny.write(tmp_path / "register")
    target = {
        k: str(v) if hasattr(v, "is_absolute") else v
        for k, v in sshd.target_fields(remote, **target_extra).items()
    }
    config = {
        "municipality": "Exempelby",
        "organisation_id": tiny.ORG,
        "source": {"kind": "ss12000-files", "path": "register"},
        "staging": {"url": f"sqlite:///{tmp_path}/staging.db"},
        "target": target,
        "work_base": "work",
    }
    path = tmp_path / "autosynk.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return str(path)


def names(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def delivered_relations(config: str) -> set:
    from autosynk.config import load_config
    from autosynk.staging.store import Staging

    rows = Staging(load_config(config).staging.url).delivered_relations()
    return set(rows.itertuples(index=False, name=None))


def test_night_over_sftp_then_nothing(sshd, sftp_dir, tmp_path, capsys):
    local, remote = sftp_dir
    config = write_config(tmp_path, sshd, remote)
    assert main(["run", "--config", config, "--run-id", "n1"]) == 0
    delivered = names(local)
    assert [n.rsplit(".", 1)[1] for n in delivered] == ["principals", "relations"]
    relations = (local / delivered[1]).read_text().splitlines()
    assert {tuple(r.split("\t")[1:]) for r in relations} == tiny.EXPECTED_RELATIONS
    summary = json.loads((tmp_path / "work" / "n1" / "run-summary.json").read_text())
    assert [d["remote_path"] for d in summary["deliveries"]] == [f"{remote}/{n}" for n in delivered]
    assert all(len(d["sha256"]) == 64 and d["size"] > 0 for d in summary["deliveries"])
    assert "late" in summary
    assert main(["run", "--config", config, "--run-id", "n2"]) == 0
    assert names(local) == delivered
    assert "nothing to deliver" in capsys.readouterr().out


def _zone_at_noon() -> str:
    """A fixed-offset zone where it is now between 12:00 and 13:00, so a deadline decides."""
    import datetime as dt

    offset = 12 - dt.datetime.now(dt.UTC).hour  # -11 .. +12; Etc/GMT signs are inverted
    return f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT"


@pytest.mark.parametrize(("deadline", "late"), [("11:00", True), ("14:00", False)])
def test_a_late_night_says_so_in_one_warning_line(sshd, sftp_dir, tmp_path, caplog, deadline, late):
    local, remote = sftp_dir
    config = write_config(tmp_path, sshd, remote)
    path = Path(config)
    settings = yaml.safe_load(path.read_text(encoding="utf-8"))
    settings.update(timezone=_zone_at_noon(), deadline=deadline)
    path.write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")
    with caplog.at_level("WARNING", logger="autosynk"):
        assert main(["run", "--config", config, "--run-id", "n1"]) == 0
    summary = json.loads((tmp_path / "work" / "n1" / "run-summary.json").read_text())
    assert summary["late"] is late
    warned = [r.getMessage() for r in caplog.records if "deadline" in r.getMessage()]
    if late:
        assert warned == [
            f"run n1: 2 file(s) arrived after the {deadline} deadline: {', '.join(names(local))}"
        ]
    else:
        assert warned == []


def test_server_down_fails_clearly_and_the_retry_delivers_exactly_once(
    sshd, sftp_dir, tmp_path, capsys
):
    local, remote = sftp_dir
    config = write_config(tmp_path, sshd, remote)
    for stage in ["prepare", "extract", "transform", "delta", "write", "plan"]:
        assert main(["stage", stage, "--config", config, "--run-id", "n1"]) == 0
    sshd.stop()
    try:
        capsys.readouterr()
        assert main(["stage", "deliver", "--config", config, "--run-id", "n1"]) == 1
        assert "error:" in capsys.readouterr().err
        assert main(["stage", "commit", "--config", config, "--run-id", "n1"]) == 1
        assert delivered_relations(config) == set()
    finally:
        sshd.start()
    # the operator clears the deliver task: the same package goes, once
    assert main(["stage", "deliver", "--config", config, "--run-id", "n1"]) == 0
    assert main(["stage", "deliver", "--config", config, "--run-id", "n1"]) == 0
    assert main(["stage", "commit", "--config", config, "--run-id", "n1"]) == 0
    assert len(names(local)) == 2 and not any(n.endswith(".part") for n in names(local))
    assert delivered_relations(config) == tiny.EXPECTED_RELATIONS


def test_wrong_host_key_refuses_and_keeps_state(sshd, sftp_dir, tmp_path, capsys):
    local, remote = sftp_dir
    other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    config = write_config(tmp_path, sshd, remote, host_key=other)
    assert main(["run", "--config", config]) == 1
    err = capsys.readouterr().err
    assert "SHA256:" in err and "Traceback" not in err
    assert names(local) == []
    assert delivered_relations(config) == set()


@pytest.mark.airflow
def test_nightly_dag_delivers_to_sshd_through_the_provider_hook(
    sshd, sftp_dir, tmp_path, monkeypatch, airflow_db
):
    local, remote = sftp_dir
    config = write_config(
        tmp_path,
        sshd,
        remote,
        airflow_connection="autosynk_sftp_e2e",
        host="unused.invalid",
        private_key_file="/nonexistent",
    )
    conn = {
        "conn_type": "sftp",
        "host": sshd.host,
        "port": sshd.port,
        "login": sshd.username,
        "extra": {"key_file": str(sshd.private_key), "host_key": sshd.host_key},
    }
    monkeypatch.setenv("AIRFLOW_CONN_AUTOSYNK_SFTP_E2E", json.dumps(conn))
    monkeypatch.setenv("AUTOSYNK_CONFIG", config)
    from tests.test_dag_nightly_e2e import _dag

    run = _dag().test()
    assert run.state == "success"
    delivered = names(local)
    assert len(delivered) == 2
    assert delivered_relations(config) == tiny.EXPECTED_RELATIONS
