"""Whole nights through the ``autosynk`` command line, on SQLite and PostgreSQL staging.

The register is the hand-written one in ``tests/tiny_register.py``, so every expected line
is known. Faults are driven through the CLI, as an operator would meet them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from autosynk.cli import main
from autosynk.config import load_config
from autosynk.staging.store import Staging
from tests import tiny_register as tiny

YESTERDAY = "2000-01-01"  # any date in the past ends a membership


class Night:
    """A municipality in a temp folder: register, config, staging, target."""

    def __init__(self, root: Path, staging_url: str, extra: str = "") -> None:
        self.root = root
        self.register = tiny.write(root / "register")
        self.out = root / "out"
        self.config = root / "autosynk.yaml"
        self.config.write_text(
            "municipality: Exempelby\n"
            f"organisation_id: {tiny.ORG}\n"
            "source: {kind: ss12000-files, path: register}\n"
            f"staging: {{url: '{staging_url}'}}\n"
            "target: {kind: directory, path: out}\n"
            "work_base: work\n" + extra,
            encoding="utf-8",
        )
        self.seen: set[str] = set()

    def run(self, *args: str) -> int:
        return main(["run", "--config", str(self.config), *args])

    def new_files(self) -> dict[str, list[str]]:
        """Data files delivered since the last call, by suffix."""
        found = {}
        for path in sorted(self.out.glob("Exempelby_*")):
            if path.name not in self.seen:
                self.seen.add(path.name)
                found[path.suffix] = path.read_text(encoding="utf-8").splitlines()
        return found

    def summary(self) -> dict:
        return json.loads((self.out / "run-summary.json").read_text(encoding="utf-8"))

    def change(self, edit) -> None:
        data = tiny.edit(self.register)
        edit(data)
        tiny.write(self.register, data)

    def staging(self) -> Staging:
        return Staging(load_config(self.config).staging.url)

    def delivered_relations(self) -> set[tuple[str, str, str]]:
        return set(self.staging().delivered_relations().itertuples(index=False, name=None))


@pytest.fixture
def night(tmp_path, staging_url) -> Night:
    return Night(tmp_path, staging_url)


def relations_of(lines: list[str]) -> set[tuple[str, ...]]:
    return {tuple(line.split("\t")) for line in lines}


def test_first_night_is_a_total_then_nothing(night, capsys):
    assert night.run() == 0
    files = night.new_files()
    assert relations_of(files[".relations"]) == {("add", *r) for r in tiny.EXPECTED_RELATIONS}
    principals = [line.split("\t") for line in files[".principals"]]
    assert [p[-1] for p in principals] == ["school"] * 2 + ["class"] * 3 + ["user"] * 6
    summary = night.summary()
    assert summary["status"] == "committed"
    assert summary["counts"]["relations_by_type"]["guardian_for"] == {"add": 2}
    assert summary["counts"]["principals_by_type"] == {"class": 3, "school": 2, "user": 6}
    assert summary["quarantine"]["quarantined"] == 3
    assert sorted(Path(f["name"]).suffix for f in summary["files"]) == [".principals", ".relations"]
    assert all(len(f["sha256"]) == 64 for f in summary["files"])
    assert night.delivered_relations() == tiny.EXPECTED_RELATIONS

    capsys.readouterr()
    assert night.run() == 0
    assert night.new_files() == {}
    assert night.summary()["nothing_to_deliver"] is True
    assert "nothing to deliver" in capsys.readouterr().out


def test_class_change_sends_exactly_the_change_in_order(night):
    assert night.run() == 0
    night.new_files()

    def move_to_7b(data):
        seven_a = data["groups"][0]
        seven_a["groupMemberships"][0]["endDate"] = YESTERDAY
        data["groups"].append(
            {
                "id": "7b",
                "displayName": "7B",
                "groupType": "Klass",
                "schoolType": "GR",
                "organisation": {"id": "u1"},
                "groupMemberships": [{"person": {"id": "c1"}}],
            }
        )

    night.change(move_to_7b)
    assert night.run() == 0
    files = night.new_files()
    assert files[".principals"] == ["7b\t7B\t\t\t\t\tclass"]
    assert files[".relations"] == [
        "add\tclass_in_school\t7b\tu1",
        f"add\tstudent_in_class\t{tiny.C1}\t7b",
        f"remove\tmentor_for\t{tiny.T1}\t{tiny.C1}",
        f"remove\tstudent_in_class\t{tiny.C1}\t7a",
    ]


def test_protected_after_delivery_is_forgotten_never_named(night):
    assert night.run() == 0
    night.new_files()
    night.change(lambda d: d["persons"][0].update(securityMarking="Sekretessmarkering"))
    assert night.run() == 0
    files = night.new_files()
    everything = "\n".join(files.get(".principals", []) + files.get(".relations", []))
    assert tiny.C1 not in everything and tiny.C1.replace("-", "") not in everything
    # presence derived from that child goes; the guardians' own rows are untouched
    assert relations_of(files[".relations"]) == {
        ("remove", "external_user_in_school", tiny.G1, "u1"),
        ("remove", "external_user_in_school", tiny.G2, "u1"),
    }
    assert not any(tiny.C1 in rel for rel in night.delivered_relations())
    assert night.summary()["counts"]["protected_persons_not_exported"] == 2


def test_quarantined_record_keeps_its_state_and_sends_no_removes(night):
    assert night.run() == 0
    night.new_files()
    before = night.delivered_relations()
    night.change(lambda d: d["persons"][0].update(civicNo={"value": "20130315-2380"}))
    assert night.run() == 0
    assert night.new_files() == {}
    assert night.delivered_relations() == before
    reasons = night.summary()["quarantine"]["reasons"]
    assert reasons["identity number: personnummer check digit or date is wrong"] == 2


def test_empty_register_is_refused_and_state_untouched(night, capsys):
    assert night.run() == 0
    night.new_files()
    before = night.delivered_relations()
    night.change(lambda d: d.update(persons=[]))
    assert night.run() == 1
    err = capsys.readouterr().err
    assert "error: the register snapshot has no persons" in err
    assert "Traceback" not in err
    assert night.new_files() == {}
    assert night.delivered_relations() == before
    assert night.staging().lock_holder() is None


def test_mass_removal_is_refused_unless_allowed(tmp_path, staging_url, capsys):
    night = Night(
        tmp_path, staging_url, "safety: {max_remove_fraction: 0.3, min_removes_to_guard: 5}\n"
    )
    assert night.run() == 0
    night.new_files()
    before = night.delivered_relations()
    night.change(lambda d: [p.update(enrolments=[]) for p in d["persons"]])
    capsys.readouterr()
    assert night.run() == 3
    out = capsys.readouterr().out
    assert "refused: nothing delivered" in out
    assert "relations all relation types: 10 removes of 19 delivered (52.6%)" in out
    assert night.new_files() == {}
    assert night.delivered_relations() == before
    assert night.summary()["status"] == "refused"
    assert night.run("--allow-mass-removal") == 0
    assert any(
        line.startswith("remove\tstudent_in_school") for line in night.new_files()[".relations"]
    )


def test_failed_delivery_leaves_state_untouched_and_next_run_catches_up(night, capsys):
    night.out.parent.mkdir(parents=True, exist_ok=True)
    night.out.write_text("not a folder")  # the target cannot receive files
    assert night.run() == 1
    assert "error:" in capsys.readouterr().err
    assert night.delivered_relations() == set()
    night.out.unlink()
    assert night.run() == 0
    assert relations_of(night.new_files()[".relations"]) == {
        ("add", *r) for r in tiny.EXPECTED_RELATIONS
    }


def stage(night: Night, name: str, run_id: str) -> int:
    return main(["stage", name, "--config", str(night.config), "--run-id", run_id])


@pytest.mark.parametrize(
    "stopped_after",
    ["prepare", "extract", "transform", "delta", "write", "plan", "deliver", "commit"],
)
def test_a_run_killed_at_any_stage_resumes_to_the_same_delta(tmp_path, stopped_after, staging_url):
    reference = Night(tmp_path / "reference", f"sqlite:///{tmp_path}/reference.db")
    interrupted = Night(tmp_path / "interrupted", staging_url)
    for n in (reference, interrupted):
        assert n.run("--run-id", "night-1") == 0
        n.new_files()
        n.change(lambda d: d["groups"][0]["groupMemberships"][0].update(endDate=YESTERDAY))
    assert reference.run("--run-id", "night-2") == 0
    order = ["prepare", "extract", "transform", "delta", "write", "plan", "deliver", "commit"]
    for name in order[: order.index(stopped_after) + 1]:
        assert stage(interrupted, name, "night-2") == 0
    # the process died here; the operator reruns the whole night with the same run id
    assert interrupted.run("--run-id", "night-2") == 0
    assert interrupted.new_files() == reference.new_files() != {}
    assert interrupted.delivered_relations() == reference.delivered_relations()


def test_retried_write_and_deliver_send_the_same_bytes_once(night, capsys):
    run_id = "retry-night"
    for name in ["prepare", "extract", "transform", "delta", "write", "plan"]:
        assert stage(night, name, run_id) == 0
    capsys.readouterr()
    assert stage(night, "write", run_id) == 0
    first = json.loads(capsys.readouterr().out)
    assert stage(night, "write", run_id) == 0
    assert json.loads(capsys.readouterr().out) == first
    assert stage(night, "deliver", run_id) == 0
    capsys.readouterr()
    assert stage(night, "deliver", run_id) == 0  # retry after a success: nothing re-sent
    assert json.loads(capsys.readouterr().out)["already_there"] == 2
    assert stage(night, "commit", run_id) == 0
    assert stage(night, "commit", run_id) == 0
    history = night.staging()
    with history.engine.connect() as conn:
        adds = conn.execute(
            sa.text("select count(*) from delivered_relation where run_id = :r"), {"r": run_id}
        ).scalar()
        logged = conn.execute(sa.text("select count(*) from change")).scalar()
    assert adds == len(tiny.EXPECTED_RELATIONS)  # applied once
    assert logged == 0  # a first night's adds are recorded by the delivered rows themselves
    assert [h["op"] for h in history.history(tiny.C1) if h["b"] == "7a"] == ["add"]


def test_overlapping_run_fails_clearly_and_unlock_frees_it(night, capsys):
    assert stage(night, "prepare", "stuck-run") == 0
    capsys.readouterr()
    assert night.run() == 1
    err = capsys.readouterr().err
    assert "staging is locked by run stuck-run" in err and "autosynk unlock stuck-run" in err
    assert main(["unlock", "stuck-run", "--config", str(night.config)]) == 0
    assert night.run() == 0


def test_stages_share_nothing_but_the_configured_work_base(tmp_path):
    """With an fsspec work base (here in-memory), no stage relies on a local work folder."""
    night = Night(tmp_path, f"sqlite:///{tmp_path}/staging.db")
    text = night.config.read_text().replace("work_base: work", "work_base: memory://autosynk-e2e")
    night.config.write_text(text)
    assert night.run("--run-id", "remote-night") == 0
    assert relations_of(night.new_files()[".relations"]) == {
        ("add", *r) for r in tiny.EXPECTED_RELATIONS
    }
    assert not (tmp_path / "work").exists()
    from upath import UPath

    assert (UPath("memory://autosynk-e2e") / "remote-night" / "run-summary.json").exists()


def test_total_rebaselines_everything_and_removes_what_is_gone(night):
    assert night.run() == 0
    night.new_files()
    night.change(lambda d: d["groups"][0]["groupMemberships"][0].update(endDate=YESTERDAY))
    # a total for Unikum's test server changes nothing in staging
    assert night.run("--total", "--no-commit") == 0
    assert night.delivered_relations() == tiny.EXPECTED_RELATIONS
    night.new_files()
    assert night.run("--total") == 0
    files = night.new_files()
    expected_now = tiny.EXPECTED_RELATIONS - {
        ("student_in_class", tiny.C1, "7a"),
        ("mentor_for", tiny.T1, tiny.C1),
    }
    assert relations_of(files[".relations"]) == {("add", *r) for r in expected_now} | {
        ("remove", "student_in_class", tiny.C1, "7a"),
        ("remove", "mentor_for", tiny.T1, tiny.C1),
    }
    assert len(files[".principals"]) == 11  # every object, changed or not
    assert night.delivered_relations() == expected_now
    assert night.run() == 0
    assert night.new_files() == {}


def test_history_answers_when_a_pupil_left_a_class(night, capsys):
    assert night.run("--run-id", "night-1") == 0
    night.change(lambda d: d["groups"][0]["groupMemberships"][0].update(endDate=YESTERDAY))
    assert night.run("--run-id", "night-2") == 0
    capsys.readouterr()
    assert main(["history", tiny.C1, "--config", str(night.config)]) == 0
    out = capsys.readouterr().out
    assert "night-2\tremove\tstudent_in_class\t20130315-****\t7a" in out
    assert "night-1\tadd\tstudent_in_class\t20130315-****\t7a" in out
    assert tiny.C1 not in out
