"""The school-year change (läsårsbyte) end to end through the CLI, on the demo municipality.

A night; the register's own year change (``demo rollover``); a plain night in the new year
that is refused; the school-year plan with its checklist; its apply; the next night, which
delivers nothing. Unikum afterwards (the importer model replaying every delivery) holds
what a fresh total of the rolled register at the effective date gives it, and the checker
of Unikum files accepts every file. Both register styles: new group objects each year,
and the same group renamed (with ``{school_year}`` in the class template).
"""

from __future__ import annotations

import datetime as dt
import html
import json
import shutil
from pathlib import Path

import pytest

from autosynk.demo.rollover import rollover
from autosynk.pipeline import local_now
from autosynk.simulator import UnikumModel
from autosynk.verify import verify_paths
from tests.demo_municipality import Municipality, lines_of, replay

#: a register that keeps a class's id each year: the school year in the template makes it new
RENAMED_GROUPS_MAPPING = 'external_ids: {school: "{id}", class: "{id}-{school_year}"}\n'


def demo_town(root: Path, *, reuse_group_ids: bool, day: dt.date) -> Municipality:
    mapping = RENAMED_GROUPS_MAPPING if reuse_group_ids else ""
    return Municipality(root, seed=41, day=day, mapping=mapping)


def effective_after(day: dt.date) -> dt.date:
    first = day.year if day.month >= 7 else day.year - 1
    return dt.date(first + 1, 7, 1)


@pytest.mark.parametrize("reuse_group_ids", [False, True], ids=["new-group-objects", "renamed"])
def test_the_school_year_change_end_to_end(tmp_path, capsys, reuse_group_ids):
    day = local_now(load_config_stub()).date()
    effective = effective_after(day)
    town = demo_town(tmp_path / "town", reuse_group_ids=reuse_group_ids, day=day)
    assert town.cli("run") == 0
    first = town.new_files()
    assert first

    rollover(town.register, seed=5, today=day, reuse_group_ids=reuse_group_ids)
    rolled = tmp_path / "rolled"
    shutil.copytree(town.register, rolled)

    # today the register still shows the old year: no relation changes (a register that
    # renames its groups in place shows the new names at once: only those rows go)
    capsys.readouterr()
    assert town.cli("run") == 0
    june = town.new_files()
    if reuse_group_ids:
        texts = {Path(name).suffix: data.decode() for name, data in june.items()}
        assert texts[".relations"] == ""
        assert {line.split("\t")[-1] for line in texts[".principals"].splitlines()} == {"class"}
    else:
        assert june == {}
    # a plain night in the new year refuses the year change
    assert town.cli("run", "--evaluation-date", effective.isoformat()) == 3
    out = capsys.readouterr().out
    assert "relations student_in_class" in out and "REFUSED" in out
    assert town.new_files() == {}

    year = f"{effective.year}/{(effective.year + 1) % 100:02d}"
    assert town.cli("school-year", "plan", "--school-year", year) == 0
    out = capsys.readouterr().out
    (plan_id,) = lines_of(out, "plan: ")
    (report,) = lines_of(out, "report: ")
    assert f"school year {year}, effective {effective}: awaiting-approval" in out
    assert town.new_files() == {}

    # while the plan waits, the nightly cannot run, and says why
    assert town.cli("run") == 1
    assert f"waiting for approval of plan {plan_id}" in capsys.readouterr().err

    run = town.staging().run_by_plan(plan_id)
    checklist = json.loads(
        (town.root / "work" / run["run_id"] / "plan" / "checklist.json").read_text()
    )
    items = {item["id"]: item for item in checklist["items"]}
    assert_checklist(items, town, first)
    page = Path(report).read_text(encoding="utf-8")
    assert all(html.escape(item["title"]) in page for item in checklist["items"])

    assert town.cli("school-year", "apply", "--plan", plan_id) == 0
    applied = town.new_files()
    assert len(applied) == 2
    assert town.staging().lock_holder() is None

    # the next night, at the later of today and the effective date: nothing to deliver
    capsys.readouterr()
    assert town.cli("run") == 0
    assert "nothing to deliver" in capsys.readouterr().out
    assert town.new_files() == {}
    latest = town.staging().runs(1)[0]
    assert town.staging().get_run(latest["run_id"])["evaluation_date"] == effective.isoformat()

    # every delivered file passes the checker; Unikum holds a fresh total of the rolled
    # register at the effective date
    unikum = UnikumModel()
    for delivery in (first, june, applied):
        if not delivery:
            continue
        known = tmp_path / "known.json"
        known.write_text(
            json.dumps(
                {
                    "objects": sorted(unikum.objects),
                    "relations": sorted(unikum.relations()),
                    "organisations": sorted(unikum.organisations),
                }
            )
        )
        paths = [town.out / name for name in sorted(delivery)]
        assert [str(v) for v in verify_paths(paths, known_state=known)] == []
        replay(unikum, delivery)
    fresh = demo_town(tmp_path / "fresh", reuse_group_ids=reuse_group_ids, day=day)
    shutil.rmtree(fresh.register)
    shutil.copytree(rolled, fresh.register)
    assert fresh.cli("run", "--total", "--evaluation-date", effective.isoformat()) == 0
    total = UnikumModel()
    replay(total, fresh.new_files())
    assert unikum.errors == [] == total.errors
    assert unikum.relations() == total.relations()
    assert {k: v for k, v in unikum.snapshot()["objects"].items() if k in total.objects} == (
        total.snapshot()["objects"]
    )


def assert_checklist(items: dict, town: Municipality, first: dict[str, bytes]) -> None:
    first_classes = {
        line.split("\t")[0]
        for name, data in first.items()
        if name.endswith(".principals")
        for line in data.decode().splitlines()
        if line.endswith("\tclass")
    }
    detached = items["groups_detached"]
    assert detached["count"] > 0 and {r[0] for r in detached["rows"]} <= first_classes
    assert sum(r[3] for r in detached["rows"]) > 0  # memberships go with them
    new = items["groups_new"]
    assert new["count"] > 0 and not {r[0] for r in new["rows"]} & first_classes
    grades = items["grade_changes"]
    assert grades["count"] > 0 and "4 → 5" in grades["note"] and "– → F" in grades["note"]
    leavers = items["leavers"]
    assert {r[3] for r in leavers["rows"]} >= {"graduating"}
    assert all(r[0].endswith("-****") for r in leavers["rows"])
    assert items["guardians_staying"]["count"] >= 1
    assert items["staff_leaving"]["count"] >= 1
    assert items["mentor_links"]["status"] == "removed" and items["mentor_links"]["count"] >= 1
    assert items["administrators_on_old_groups"]["status"] == "ok"
    assert items["pupils_without_grade"]["count"] == 0
    assert items["pupils_without_group"]["count"] == 0


def load_config_stub():
    """A run configuration only for the clock's time zone (Europe/Stockholm)."""
    from autosynk.config import RunConfig

    return RunConfig.model_validate(
        {
            "municipality": "x",
            "organisation_id": "x",
            "source": {"kind": "ss12000-files", "path": "."},
            "target": {"kind": "directory", "path": "."},
        }
    )


def test_a_pupil_without_a_group_blocks_the_plan(tmp_path, capsys):
    day = local_now(load_config_stub()).date()
    effective = effective_after(day)
    town = demo_town(tmp_path, reuse_group_ids=False, day=day)
    assert town.cli("run") == 0
    town.new_files()
    rollover(town.register, seed=5, today=day, loose_pupils=1)
    capsys.readouterr()
    year = f"{effective.year}/{(effective.year + 1) % 100:02d}"
    assert town.cli("school-year", "plan", "--school-year", year) == 3
    out = capsys.readouterr().out
    (plan_id,) = lines_of(out, "plan: ")
    assert "BLOCKING: Pupils who would be at a school without any group: 1" in out
    assert town.staging().lock_holder() is None  # nothing to approve: the lock is free
    assert town.cli("school-year", "apply", "--plan", plan_id) == 3
    assert "cannot be applied" in capsys.readouterr().err
    assert town.new_files() == {}
