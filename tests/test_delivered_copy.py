"""The Parquet copy of the delivered state: written at commit, used only when current.

Whole nights through the command line on SQLite and PostgreSQL staging (the tiny register):
after every commit the copy in the work base holds exactly the database's delivered
state; a copy of any other state is never used (the delta reads the database and says so)
and the night's files are the same as with no copy at all.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from autosynk.cli import main
from autosynk.config import load_config
from autosynk.staging.snapshot import FOLDER, DeliveredCopy, StateTag
from tests import tiny_register as tiny
from tests.test_night_cli import YESTERDAY, Night

READ_COPY = "delivered state read from its copy"
READ_STAGING = "reading staging"


def copy_state(night: Night, run_id: str) -> tuple[set, set]:
    """The copy's principals and relations, if it is the state ``run_id`` committed."""
    cfg = load_config(night.config)
    sources = DeliveredCopy(cfg.work_base).sources(StateTag.of(night.staging(), run_id))
    assert sources is not None, f"no copy of the state committed by {run_id}"
    tables = [s if isinstance(s, pa.Table) else pq.read_table(s) for s in sources]
    principals = tables[0].select(["kind", "key", "source_id", "hash"])
    relations = tables[1].select(["type", "a", "b"])
    return (
        set(zip(*(c.to_pylist() for c in principals.columns), strict=True)),
        set(zip(*(c.to_pylist() for c in relations.columns), strict=True)),
    )


def database_state(night: Night) -> tuple[set, set]:
    staging = night.staging()
    principals = staging.delivered_principals()
    relations = staging.delivered_relations()
    return (
        set(principals.itertuples(index=False, name=None)),
        set(relations.itertuples(index=False, name=None)),
    )


def end_7a_for_c1(data: dict) -> None:
    data["groups"][0]["groupMemberships"][0]["endDate"] = YESTERDAY


def protect_c1(data: dict) -> None:
    data["persons"][0]["securityMarking"] = "Sekretessmarkering"


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="autosynk")
    return caplog


def test_the_copy_follows_the_database_and_the_next_delta_reads_it(tmp_path, staging_url, logs):
    night = Night(tmp_path, staging_url)
    assert night.run("--run-id", "night-1") == 0
    assert copy_state(night, "night-1") == database_state(night)
    assert database_state(night)[1] == tiny.EXPECTED_RELATIONS

    night.change(end_7a_for_c1)
    logs.clear()
    assert night.run("--run-id", "night-2") == 0
    assert READ_COPY in logs.text and READ_STAGING not in logs.text
    assert copy_state(night, "night-2") == database_state(night)
    assert ("student_in_class", tiny.C1, "7a") not in database_state(night)[1]

    night.change(protect_c1)  # forgotten: deletes and removes of a kind of their own
    assert night.run("--run-id", "night-3") == 0
    assert copy_state(night, "night-3") == database_state(night)

    private = [*(tmp_path / "work" / FOLDER).iterdir(), *(tmp_path / "work" / "night-3").rglob("*")]
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in private if p.is_file())


def test_a_copy_of_another_state_is_not_used(tmp_path, logs):
    reference = Night(tmp_path / "reference", f"sqlite:///{tmp_path}/reference.db")
    night = Night(tmp_path / "stale", f"sqlite:///{tmp_path}/stale.db")
    saved = tmp_path / "saved-copy"
    for n in (reference, night):
        assert n.run("--run-id", "night-1") == 0
        n.new_files()
    shutil.copytree(night.root / "work" / FOLDER, saved)
    for n in (reference, night):
        n.change(end_7a_for_c1)
        assert n.run("--run-id", "night-2") == 0
        n.new_files()
    # the copy is night-1's again, as if night-2's commit had died before updating it
    shutil.rmtree(night.root / "work" / FOLDER)
    shutil.copytree(saved, night.root / "work" / FOLDER)

    for n in (reference, night):
        n.change(protect_c1)
    logs.clear()
    assert night.run("--run-id", "night-3") == 0
    assert READ_STAGING in logs.text and READ_COPY not in logs.text
    assert reference.run("--run-id", "night-3") == 0
    assert night.new_files() == reference.new_files() != {}
    assert copy_state(night, "night-3") == database_state(night)


@pytest.mark.parametrize("damage", ["truncated", "emptied", "deleted"])
def test_a_damaged_copy_is_not_used(tmp_path, logs, damage):
    night = Night(tmp_path, f"sqlite:///{tmp_path}/staging.db")
    assert night.run("--run-id", "night-1") == 0
    folder = tmp_path / "work" / FOLDER
    (relations,) = folder.glob("relations-*.parquet")
    if damage == "deleted":
        relations.unlink()
    else:
        data = relations.read_bytes()
        relations.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"")
    night.change(end_7a_for_c1)
    logs.clear()
    assert night.run("--run-id", "night-2") == 0
    assert READ_STAGING in logs.text and READ_COPY not in logs.text
    assert ("student_in_class", tiny.C1, "7a") not in database_state(night)[1]
    assert copy_state(night, "night-2") == database_state(night)


def test_a_retried_commit_brings_the_copy_up_to_date(tmp_path, staging_url):
    night = Night(tmp_path, staging_url)
    assert night.run("--run-id", "night-1") == 0
    night.change(end_7a_for_c1)
    config = str(night.config)
    for name in ("prepare", "extract", "transform", "delta", "write", "plan", "deliver"):
        assert main(["stage", name, "--config", config, "--run-id", "night-2"]) == 0
    saved = tmp_path / "saved-copy"
    shutil.copytree(tmp_path / "work" / FOLDER, saved)
    assert main(["stage", "commit", "--config", config, "--run-id", "night-2"]) == 0
    # the process died after the database commit, before the copy was advanced
    shutil.rmtree(tmp_path / "work" / FOLDER)
    shutil.copytree(saved, tmp_path / "work" / FOLDER)
    assert main(["stage", "commit", "--config", config, "--run-id", "night-2"]) == 0
    assert copy_state(night, "night-2") == database_state(night)


def test_the_copy_lives_in_a_shared_work_base(tmp_path: Path, logs):
    night = Night(tmp_path, f"sqlite:///{tmp_path}/staging.db")
    text = night.config.read_text().replace("work_base: work", "work_base: memory://copy-base")
    night.config.write_text(text)
    assert night.run("--run-id", "night-1") == 0
    night.change(end_7a_for_c1)
    logs.clear()
    assert night.run("--run-id", "night-2") == 0
    assert READ_COPY in logs.text
    assert copy_state(night, "night-2") == database_state(night)
    assert not (tmp_path / "work").exists()
