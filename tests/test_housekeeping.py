"""Housekeeping over aged runs, on SQLite and PostgreSQL staging.

Six runs of the tiny register, aged along a timeline (days before now), against a
retention of work 7, reports 60, outbox 30, history 150, ledger 170 days:

=========  ====  ==========================================================================
run        age   what it is
=========  ====  ==========================================================================
night-1    200   the first total
stale      190   planned, its delivery failed; superseded when night-2 committed
night-2    180   staff member P1 leaves; pupil C1's e-mail changes
night-3     40   guardian G2 leaves (the last commit)
refused     35   a plan a guard refused: waits for an approval (base: night-3)
waiting     30   planned, its delivery failed: waits for a retry (base: night-3)
=========  ====  ==========================================================================

A reference municipality runs the same nights without housekeeping; after the retry of
``waiting`` and one more night, both have delivered the same files.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from dataclasses import asdict
from pathlib import Path

import pytest
import sqlalchemy as sa

from autosynk import pipeline, plans
from autosynk.cli import main
from autosynk.config import Guards, Limit, Limits, load_config
from autosynk.housekeeping import housekeeping
from autosynk.staging import schema
from autosynk.staging.snapshot import FOLDER, MANIFEST, StateTag
from autosynk.workspace import safe_run_dir
from tests import tiny_register as tiny
from tests.test_night_cli import Night, stage

RETENTION = (
    "retention: {work_days: 7, reports_days: 60, outbox_days: 30, history_days: 150, "
    "ledger_days: 170}\n"
)
AGES = {"night-1": 200, "stale": 190, "night-2": 180, "night-3": 40, "refused": 35, "waiting": 30}
NOW = dt.datetime.now(dt.UTC)
STAGES = ["prepare", "extract", "transform", "delta", "write"]
#: a guard that any changed principal trips
STRICT = Guards(defaults=Limits(change=Limit(max_share=0.0, min_rows=1)))


def p1_leaves(data):
    data["persons"] = [p for p in data["persons"] if p["id"] != "p1"]
    data["duties"] = [d for d in data["duties"] if d["id"] != "d2"]
    c1 = data["persons"][0]
    c1["emails"] = [{"value": "asa.oberg2@elev.exempelby.se", "type": "Skola"}]


def g2_leaves(data):
    c1 = data["persons"][0]
    c1["responsibles"] = [r for r in c1["responsibles"] if r["person"]["id"] != "g2"]


def t1_new_phone(data):
    t1 = next(p for p in data["persons"] if p["id"] == "t1")
    t1["phoneNumbers"] = [{"value": "070-765 43 21", "type": "Mobil", "mobile": True}]


def c3_leaves(data):
    data["persons"] = [p for p in data["persons"] if p["id"] != "c3"]


def stop_before_delivery(night: Night, run_id: str) -> None:
    """Planned, then the delivery failed: the run waits for a retry."""
    for name in [*STAGES, "plan"]:
        assert stage(night, name, run_id) == 0
    cfg = load_config(night.config)
    pipeline.report(cfg, run_id, failed="the SFTP server did not answer")


def refuse(night: Night, run_id: str) -> None:
    """A guard refused the plan: the run waits for an approval (as the CLI leaves it)."""
    for name in STAGES:
        assert stage(night, name, run_id) == 0
    cfg = load_config(night.config)
    assert plans.make_plan(cfg, run_id, limits=STRICT)["refused"]
    pipeline.report(cfg, run_id)
    assert night.staging().get_run(run_id)["status"] == "refused"


def timeline(night: Night) -> None:
    assert night.run("--run-id", "night-1") == 0
    stop_before_delivery(night, "stale")
    night.change(p1_leaves)
    assert night.run("--run-id", "night-2") == 0
    night.change(g2_leaves)
    assert night.run("--run-id", "night-3") == 0
    night.change(t1_new_phone)
    refuse(night, "refused")
    stop_before_delivery(night, "waiting")


def age(night: Night) -> None:
    """Move every run (ledger, work directory, delivered files) to its age on the timeline."""
    st = night.staging()
    for run_id, days in AGES.items():
        run = st.get_run(run_id)
        start = NOW - dt.timedelta(days=days)
        values = {"started_at": start, "ended_at": start + dt.timedelta(minutes=5)}
        if run["committed_at"] is not None:
            values["committed_at"] = start + dt.timedelta(minutes=4)
        st.update_run(run_id, **values)
        stamp = start.timestamp()
        names = [f["name"] for f in (run["package"] or {}).get("files", [])]
        names += [f"run-summary-{safe_run_dir(run_id)}.json", f"report-{safe_run_dir(run_id)}.html"]
        for name in names:
            if (night.out / name).exists():
                os.utime(night.out / name, (stamp, stamp))
        for path in (night.root / "work" / run_id).rglob("*"):
            os.utime(path, (stamp, stamp))
    waiting = (NOW - dt.timedelta(days=AGES["waiting"])).timestamp()
    for latest in ("run-summary.json", "report.html"):
        os.utime(night.out / latest, (waiting, waiting))
    # the delivered-state copy names its run by id and commit time: follow the new time
    manifest = night.root / "work" / FOLDER / MANIFEST
    found = json.loads(manifest.read_text())
    found["tag"] = asdict(StateTag.of(st, found["tag"]["run_id"]))
    manifest.write_text(json.dumps(found))


def tree(root: Path) -> dict[str, tuple[int, float]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime)
        for p in sorted(root.rglob("*"))
        if p.is_file() and "_housekeeping" not in p.parts
    }


def tables(night: Night) -> dict[str, list[tuple]]:
    with night.staging().engine.connect() as conn:
        return {
            t.name: sorted(tuple(map(str, r)) for r in conn.execute(sa.select(t)).all())
            for t in schema.metadata.sorted_tables
            if t.name != "run_lock"
        }


def history_rows(night: Night) -> set[tuple[str, str, str, str]]:
    with night.staging().engine.connect() as conn:
        c = schema.change
        rows = conn.execute(sa.select(c.c.run_id, c.c.op, c.c.a, c.c.b)).all()
    return {tuple(r) for r in rows}


def run_ids(night: Night, table: sa.Table) -> list[str]:
    with night.staging().engine.connect() as conn:
        return sorted(r for (r,) in conn.execute(sa.select(table.c.run_id)))


@pytest.fixture
def night(tmp_path, staging_url) -> Night:
    return Night(tmp_path, staging_url)


@pytest.fixture
def aged(tmp_path, staging_url) -> tuple[Night, Night]:
    cleaned = Night(tmp_path / "cleaned", staging_url, RETENTION)
    reference = Night(tmp_path / "reference", f"sqlite:///{tmp_path}/reference.db", RETENTION)
    for night in (cleaned, reference):
        timeline(night)
        night.new_files()
    age(cleaned)
    return cleaned, reference


def test_housekeeping_removes_exactly_what_is_past_retention(aged, capsys):
    cleaned, reference = aged
    work, out = cleaned.root / "work", cleaned.out
    cfg = load_config(cleaned.config)
    before_files = {"work": tree(work), "out": tree(out)}
    before_rows = tables(cleaned)
    history_before = history_rows(cleaned)

    # a dry run lists, and removes nothing
    dry = housekeeping(cfg, dry_run=True)
    assert {"work": tree(work), "out": tree(out)} == before_files
    assert tables(cleaned) == before_rows
    assert cleaned.staging().lock_holder() is None

    done = housekeeping(cfg)
    assert cleaned.staging().lock_holder() is None
    counted = {kind: (v["count"], v["bytes"]) for kind, v in done["removed"].items()}
    assert counted == {kind: (v["count"], v["bytes"]) for kind, v in dry["removed"].items()}

    # work base: old runs gone, night-3 keeps only its summary, waiting runs keep all
    kept = {"refused", "waiting"}
    after = tree(work)
    assert {Path(p).parts[0] for p in after} == {FOLDER, "night-3", *kept}
    assert [p for p in after if p.startswith("night-3")] == [
        "night-3/report.html",
        "night-3/run-summary.json",
    ]
    for name, entry in before_files["work"].items():
        if Path(name).parts[0] in {FOLDER, *kept}:
            assert after[name] == entry, name
    assert "refused/plan/plan.json" in after
    assert any(p.startswith("refused/package/out/") for p in after)
    assert any(p.startswith("waiting/package/out/") for p in after)
    removed_work = {
        n: s for n, s in before_files["work"].items() if Path(n).parts[0] not in {FOLDER, *kept}
    }
    assert done["removed"]["work"]["count"] == len(removed_work) - 4 * 2  # 4 runs' reports
    # the reports of night-1, stale and night-2, in the work base and beside the files
    assert done["removed"]["reports"]["count"] == 3 * 2 + 3 * 2
    assert done["kept"]["runs"] == ["refused", "waiting"]

    # the outbox: every delivered file is older than 30 days; summaries of night-3 and
    # later are younger than 60
    assert sorted(tree(out)) == sorted(
        f"{stem}{run}.{suffix}"
        for stem, suffix in (("run-summary", "json"), ("report", "html"))
        for run in ("-night-3", "-refused", "-waiting", "")
    )
    assert done["removed"]["outbox"]["count"] == 6  # night-1, night-2, night-3: 2 files each
    assert done["removed"]["outbox"]["bytes"] == sum(
        size for name, (size, _) in before_files["out"].items() if name.startswith("Exempelby_")
    )

    # history: P1 left 180 days ago, so every row naming P1 goes; C1's change (still
    # delivered) and G2's leaving (40 days ago) stay
    gone = {row for row in history_before if tiny.P1 in row[2:]}
    assert len(gone) == 3
    assert history_rows(cleaned) == history_before - gone
    assert ("night-2", "change", tiny.C1, "") in history_rows(cleaned)
    assert {r for r in history_rows(cleaned) if tiny.G2 in r[2:]} != set()
    assert done["removed"]["history"]["count"] == 3

    # ledgers: quarantine rows past 60 days, deliveries past 170; run rows past 170 unless
    # the history or the delivered state names them
    assert set(run_ids(cleaned, schema.quarantine)) == {"night-3", *kept}
    assert set(run_ids(cleaned, schema.delivery)) == {"night-3"}
    assert run_ids(cleaned, schema.run) == sorted(["night-1", "night-2", "night-3", *kept])
    assert done["removed"]["runs"]["count"] == 1
    old = {"night-1", "stale", "night-2"}
    quarantined = [r for r in before_rows["quarantine"] if r[1] in old]
    assert done["removed"]["quarantine"]["count"] == len(quarantined) > 0
    assert done["removed"]["deliveries"]["count"] == 4  # night-1, night-2: 2 files each
    # the delivered state is untouched
    for table in ("delivered_principal", "delivered_relation"):
        assert tables(cleaned)[table] == before_rows[table]

    # a second pass finds nothing more
    again = housekeeping(cfg)
    assert all(v["count"] == 0 for v in again["removed"].values())
    assert Path(again["record"]).parent.name == "_housekeeping"

    # the waiting run is retried and commits; then a night: same files as the reference
    for night in (cleaned, reference):
        for name in ("deliver", "commit", "report"):
            assert stage(night, name, "waiting") == 0
    capsys.readouterr()
    retried = cleaned.new_files()
    assert retried == reference.new_files()
    assert retried[".principals"] and tiny.T1 in "\n".join(retried[".principals"])
    for night in (cleaned, reference):
        night.change(c3_leaves)
        # housekeeping freed names of this test's minutes: look at what is there now
        night.seen = {p.name for p in night.out.glob("Exempelby_*")}
        assert night.run("--run-id", "night-4") == 0
    assert cleaned.new_files() == reference.new_files() != {}
    assert cleaned.delivered_relations() == reference.delivered_relations()


def test_cli_dry_run_prints_counts_and_no_personal_data(aged, capsys):
    cleaned, _ = aged
    before = tree(cleaned.root / "work")
    capsys.readouterr()
    assert main(["housekeeping", "--config", str(cleaned.config), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert tree(cleaned.root / "work") == before
    assert "dry run, nothing removed" in printed
    assert "history rows of keys no longer delivered (kept 150 days): would remove 3 rows" in (
        printed
    )
    assert "delivered files in the outbox (kept 30 days): would remove 6 files" in printed
    assert "kept past their time: 2 run(s)" in printed
    assert printed.splitlines()[-1].startswith("report: ")
    for number in (tiny.P1, tiny.C1, tiny.G2, tiny.T1):
        assert number not in printed and number.replace("-", "") not in printed
    record = Path(printed.splitlines()[-1].removeprefix("report: "))
    assert record.stat().st_mode & 0o777 == 0o600
    assert json.loads(record.read_text())["dry_run"] is True


def test_housekeeping_waits_for_no_night(night, capsys):
    assert night.run() == 0
    assert stage(night, "prepare", "tonight") == 0
    capsys.readouterr()
    assert main(["housekeeping", "--config", str(night.config)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: staging is locked by run tonight") and "Traceback" not in err
    assert night.staging().lock_holder() == "tonight"


def test_evaluation_date_counts_ages_from_that_day(night, capsys):
    assert night.run() == 0
    work = night.root / "work"
    run_dirs = [p for p in work.iterdir() if not p.name.startswith("_")]
    assert len(run_dirs) == 1
    later = (dt.date.today() + dt.timedelta(days=15)).isoformat()
    assert main(["housekeeping", "--config", str(night.config), "--evaluation-date", later]) == 0
    # 15 days on: the work directory (14 days) is gone but for its summary (90 days)
    assert sorted(p.name for p in run_dirs[0].iterdir()) == ["report.html", "run-summary.json"]
    with pytest.raises(SystemExit) as usage:
        main(["housekeeping", "--config", str(night.config), "--evaluation-date", "x"])
    assert usage.value.code == 2


def test_source_cache_goes_once_no_night_has_refreshed_it(tmp_path):
    night = Night(tmp_path, f"sqlite:///{tmp_path}/staging.db")
    cache = tmp_path / "work" / "source-cache"
    cache.mkdir(parents=True)
    (cache / "persons.json").write_text('{"data": []}')
    cfg = load_config(night.config)
    assert housekeeping(cfg)["removed"]["source_cache"]["count"] == 0
    assert cache.is_dir()
    stamp = (NOW - dt.timedelta(days=15)).timestamp()  # work_days: 14
    os.utime(cache / "persons.json", (stamp, stamp))
    found = housekeeping(cfg)["removed"]["source_cache"]
    assert (found["count"], found["bytes"]) == (1, len('{"data": []}'))
    assert not cache.exists()


def test_a_work_base_on_object_storage_is_kept_the_same_way(tmp_path):
    from upath import UPath

    night = Night(tmp_path, f"sqlite:///{tmp_path}/staging.db")
    base = f"memory://housekeeping-{tmp_path.name}"
    night.config.write_text(
        night.config.read_text().replace("work_base: work", f"work_base: {base}")
    )
    assert night.run("--run-id", "remote-night") == 0
    cfg = load_config(night.config)
    old = NOW - dt.timedelta(days=20)
    night.staging().update_run("remote-night", started_at=old, ended_at=old, committed_at=old)
    found = housekeeping(cfg)["removed"]
    run_dir = UPath(base) / "remote-night"
    assert sorted(p.name for p in run_dir.iterdir()) == ["report.html", "run-summary.json"]
    assert found["work"]["count"] > 0 and found["work"]["bytes"] > 0
    assert (UPath(base) / FOLDER / MANIFEST).exists()
    assert (UPath(base) / "_housekeeping").is_dir()


def _immovable(path: Path, on: bool) -> None:
    """Make ``path`` impossible to remove (root removes a read-only folder's entries too)."""
    if os.geteuid() != 0:
        path.parent.chmod(0o500 if on else 0o700)
        return
    found = subprocess.run(["chattr", "+i" if on else "-i", str(path)], check=False)
    if found.returncode != 0:
        pytest.skip("chattr is not available on this file system")


def test_a_file_that_cannot_be_removed_is_one_clear_line(tmp_path, capsys):
    night = Night(tmp_path, f"sqlite:///{tmp_path}/staging.db")
    assert night.run("--run-id", "old") == 0
    old = NOW - dt.timedelta(days=20)
    night.staging().update_run("old", started_at=old, ended_at=old, committed_at=old)
    stuck = tmp_path / "work" / "old" / "extract" / "persons.json"
    _immovable(stuck, True)
    try:
        capsys.readouterr()
        assert main(["housekeeping", "--config", str(night.config)]) == 1
    finally:
        _immovable(stuck, False)
    err = capsys.readouterr().err
    assert err.startswith("error: housekeeping stopped: ") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert stuck.exists()
    assert night.staging().lock_holder() is None


def test_run_directories_without_a_ledger_row_go_by_their_files_age(tmp_path):
    """After the staging database was replaced: old run folders are still found; other
    folders in the work base are left alone."""
    night = Night(tmp_path, f"sqlite:///{tmp_path}/staging.db")
    work = tmp_path / "work"
    stamp = (NOW - dt.timedelta(days=100)).timestamp()
    for name, entries in {
        "orphan-old": ["extract/persons.json", "run-summary.json"],
        "orphan-young": ["mapped/principals.parquet"],
        "notes": ["old.txt"],
    }.items():
        for entry in entries:
            path = work / name / entry
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("x")
            if name != "orphan-young":
                os.utime(path, (stamp, stamp))
    found = housekeeping(load_config(night.config))["removed"]
    assert sorted(p.name for p in work.iterdir()) == ["_housekeeping", "notes", "orphan-young"]
    assert (found["work"]["count"], found["reports"]["count"]) == (1, 1)
