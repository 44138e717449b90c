"""Guarded nights, tried as a new user would, through the CLI on the demo municipality.

A partial export is refused (exit 3) with nothing delivered; approving its plan delivers
exactly the plan's bytes, after which Unikum (the importer model replaying every
delivery) holds what a fresh total of that register would give it; a plan made stale by a
later commit is refused; a surge of new pupils is refused on the adds guard after a dry
run that delivered nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import re
import shutil
from pathlib import Path

import pytest

from autosynk.cli import main
from autosynk.demo.mutate import mutate
from autosynk.demo.names import CivicNumbers
from autosynk.simulator import UnikumModel
from tests.demo_municipality import DATE, Municipality, lines_of, replay


def vanish_children(town: Municipality, share: float, seed: int = 5) -> None:
    """A partial export: ``share`` of the enrolled children are missing from persons."""
    persons = town.persons()
    children = [p["id"] for p in persons if p.get("enrolments")]
    gone = set(random.Random(seed).sample(children, int(len(children) * share)))
    town.save_persons([p for p in persons if p["id"] not in gone])


def test_a_partial_export_is_refused_then_exactly_its_plan_is_approved(tmp_path, capsys):
    town = Municipality(tmp_path / "town")
    assert town.run() == 0
    first = town.new_files()
    before = town.delivered_state()

    vanish_children(town, 0.4)
    at_plan = tmp_path / "register-at-plan"
    shutil.copytree(town.register, at_plan)
    capsys.readouterr()
    assert town.run() == 3
    out = capsys.readouterr().out
    (plan_id,) = lines_of(out, "plan: ")
    (report,) = lines_of(out, "report: ")
    assert "refused: nothing delivered, the staging state is unchanged" in out
    assert re.search(r"relations student_in_school: \d+ removes of \d+ delivered", out)
    assert town.new_files() == {}
    assert town.delivered_state() == before
    assert Path(report).is_file() and "REFUSED" in Path(report).read_text(encoding="utf-8")

    # the plan's frozen package, in the refused run's work directory
    run = town.staging().run_by_plan(plan_id)
    assert run is not None and run["status"] == "refused"
    package = tmp_path / "town" / "work" / run["run_id"] / "package" / "out"
    plan = json.loads((package.parent.parent / "plan" / "plan.json").read_text())
    frozen = {f["name"]: (package / f["name"]).read_bytes() for f in plan["files"]}
    assert sorted(Path(name).suffix for name in frozen) == [".principals", ".relations"]
    assert {f["name"]: f["sha256"] for f in plan["files"]} == {
        name: hashlib.sha256(data).hexdigest() for name, data in frozen.items()
    }

    # the register moves on before anyone approves: the approval still sends the plan
    mutate(town.register, seed=9, today=dt.date.fromisoformat(DATE))
    capsys.readouterr()
    assert town.run("--approve", plan_id, date=False) == 0
    assert lines_of(capsys.readouterr().out, "plan: ") == [plan_id]
    approved = town.new_files()
    assert approved == frozen  # byte for byte: no recomputation
    assert town.staging().run_by_plan(plan_id)["status"] == "committed"
    assert "approved_by" in json.loads((package.parent.parent / "plan" / "plan.json").read_text())

    # Unikum after the approval holds what a fresh total of the register at plan time gives
    unikum = UnikumModel()
    replay(unikum, first)
    replay(unikum, approved)
    fresh = Municipality(tmp_path / "fresh")
    shutil.rmtree(fresh.register)
    shutil.copytree(at_plan, fresh.register)
    assert fresh.run("--total") == 0
    total = UnikumModel()
    replay(total, fresh.new_files())
    assert unikum.errors == [] and total.errors == []
    assert unikum.relations() == total.relations()
    # objects are never deleted in Unikum: the vanished children stay, detached
    assert {k: v for k, v in unikum.snapshot()["objects"].items() if k in total.objects} == (
        total.snapshot()["objects"]
    )


def test_approving_twice_or_an_unknown_plan(tmp_path, capsys):
    town = Municipality(tmp_path)
    assert town.run() == 0
    town.new_files()
    vanish_children(town, 0.4)
    capsys.readouterr()
    assert town.run() == 3
    (plan_id,) = lines_of(capsys.readouterr().out, "plan: ")
    assert town.run("--approve", plan_id, date=False) == 0
    assert len(town.new_files()) == 2
    assert town.run("--approve", plan_id, date=False) == 0  # harmless: nothing sent again
    assert town.new_files() == {}
    capsys.readouterr()
    assert town.run("--approve", "0123456789ab", date=False) == 1
    assert capsys.readouterr().err.startswith("error: no plan 0123456789ab")
    with pytest.raises(SystemExit) as usage:
        town.run("--approve", plan_id, "--dry-run", date=False)
    assert usage.value.code == 2


def test_a_plan_made_stale_by_a_later_commit_is_refused(tmp_path, capsys):
    town = Municipality(tmp_path)
    assert town.run() == 0
    town.new_files()
    whole = town.persons()
    vanish_children(town, 0.4)
    capsys.readouterr()
    assert town.run() == 3
    (stale,) = lines_of(capsys.readouterr().out, "plan: ")

    town.save_persons(whole)  # the export is whole again, and a day of changes happens
    mutate(town.register, seed=31, today=dt.date.fromisoformat(DATE))
    assert town.run() == 0
    assert town.new_files()
    state = town.delivered_state()

    capsys.readouterr()
    assert town.run("--approve", stale, date=False) == 3
    err = capsys.readouterr().err
    assert err.startswith(f"refused: plan {stale} is stale")
    assert "make a new plan" in err
    assert town.new_files() == {}
    assert town.delivered_state() == state


def add_pupils(town: Municipality, count: int, seed: int = 3) -> None:
    """A surge: ``count`` new pupils, each enrolled like an existing one."""
    rng = random.Random(seed)
    persons = town.persons()
    children = [p for p in persons if p.get("enrolments")]
    numbers = CivicNumbers(rng)
    for n in range(count):
        model = rng.choice(children)
        pupil = json.loads(json.dumps(model))
        pupil["id"] = f"surge-{n}"
        birth = dt.date.fromisoformat(model["birthDate"])
        pupil["civicNo"] = {"value": numbers.personnummer(birth, n % 2 == 0, style="12-hyphen")}
        pupil["responsibles"] = []
        pupil.pop("emails", None)
        persons.append(pupil)
    town.save_persons(persons)


def test_a_surge_of_new_pupils_is_refused_on_adds_after_a_dry_run(tmp_path, capsys):
    town = Municipality(tmp_path)
    assert town.run() == 0
    town.new_files()
    before = town.delivered_state()
    add_pupils(town, 300)

    capsys.readouterr()
    assert town.run("--dry-run") == 0
    out = capsys.readouterr().out
    assert "dry run: nothing delivered, nothing committed; a real run would be refused" in out
    assert re.search(r"relations student_in_school: 2\d\d adds of \d+ delivered .*REFUSED", out)
    (dry_plan,) = lines_of(out, "plan: ")
    assert town.new_files() == {}
    assert town.delivered_state() == before
    assert town.staging().run_by_plan(dry_plan)["status"] == "dry-run"

    assert town.run() == 3
    out = capsys.readouterr().out
    tripped = [line for line in out.splitlines() if line.endswith("REFUSED")]
    assert tripped and all(" adds of " in line for line in tripped)
    assert town.new_files() == {}
    assert town.delivered_state() == before


def test_progress_lines_and_the_evaluation_date(tmp_path, capsys):
    town = Municipality(tmp_path)
    assert town.run() == 0
    out = capsys.readouterr().out
    stages = [line.split()[0] for line in out.splitlines() if re.match(r"^\w+ +\d+\.\d s", line)]
    assert stages == [
        "prepare",
        "extract",
        "transform",
        "delta",
        "write",
        "plan",
        "deliver",
        "commit",
    ]
    run = town.staging().runs(1)[0]
    assert town.staging().get_run(run["run_id"])["evaluation_date"] == DATE
    summary = json.loads((town.out / "run-summary.json").read_text())
    assert summary["evaluation_date"] == DATE
    assert set(summary["stages"]) >= {"extract", "transform", "deliver"}
    capsys.readouterr()
    assert main(["-q", "run", "--config", str(town.config)]) == 0
    out = capsys.readouterr().out
    assert not any(re.match(r"^\w+ +\d+\.\d s", line) for line in out.splitlines())
    assert lines_of(out, "report: ")
