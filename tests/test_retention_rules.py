"""The rules of retention and of the total export's target, as literal tables."""

from __future__ import annotations

import datetime as dt

import pytest

from autosynk.config import load_config
from autosynk.errors import ConfigError
from autosynk.housekeeping import describe, evaluation_moment, expired, outbox_kind, runs_to_keep
from autosynk.staging.retention import LedgerRun
from autosynk.total_export import export_config

NOW = dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.UTC)


def ago(days: float) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


@pytest.mark.parametrize(
    ("when", "days", "expected"),
    [
        (ago(15), 14, True),
        (ago(14) + dt.timedelta(seconds=1), 14, False),
        (ago(13), 14, False),
        (ago(3650), None, False),  # null: kept until removed by hand
        (None, 1, False),  # cannot be dated: kept
        (ago(1.5), 1, True),
    ],
)
def test_expired(when, days, expected):
    assert expired(when, days, NOW) is expected


def run(run_id, status, started, committed=None, base=None):
    return LedgerRun(
        run_id=run_id,
        status=status,
        started_at=ago(started),
        committed_at=None if committed is None else ago(committed),
        base_run=base,
    )


@pytest.mark.parametrize(
    ("runs", "keep"),
    [
        ([], set()),
        # a failed first night (nothing committed yet) can still be retried
        ([run("a", "failed", 5)], {"a"}),
        # every committed run is done with
        ([run("a", "committed", 9, 9), run("b", "committed", 5, 5, "a")], set()),
        # waiting on the last commit: kept; on an earlier one: stale
        (
            [
                run("a", "committed", 9, 9),
                run("x", "refused", 8, base="a"),
                run("b", "committed", 5, 5, "a"),
                run("y", "packaged", 4, base="b"),
                run("z", "rejected", 3, base="b"),
            ],
            {"y", "z"},
        ),
        # no delta yet: judged by the last commit before it started
        (
            [
                run("a", "committed", 9, 9),
                run("early", "failed", 8),
                run("b", "committed", 5, 5, "a"),
                run("late", "extracted", 4),
            ],
            {"late"},
        ),
        # a delta against an empty state, then a first commit by another run
        ([run("x", "delivered", 9), run("b", "committed", 5, 5)], set()),
        # delivered without commit (a test-server total): kept until the next commit
        ([run("a", "committed", 9, 9), run("t", "delivered", 2, base="a")], {"t"}),
    ],
)
def test_runs_to_keep(runs, keep):
    assert runs_to_keep(runs) == keep


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("Exempelby_20261128_2030.principals", "outbox"),
        ("Exempelby_20261128_2030.relations", "outbox"),
        ("Exempelby_20261128_2030.zip.pgp", "outbox"),
        (".Exempelby_20261128_2030.relations.a1b2c3.part", "outbox"),
        ("run-summary.json", "reports"),
        ("run-summary-scheduled__2026-11-28T19_30_00_00_00.json", "reports"),
        ("report.html", "reports"),
        ("report-night-1.html", "reports"),
        ("Annanby_20261128_2030.principals", None),  # another municipality's
        ("Exempelby_2026112_2030.principals", None),
        ("Exempelby-notes.txt", None),
        ("README", None),
        (".Exempelby_20261128_2030.relations", None),
    ],
)
def test_outbox_kind(name, kind):
    assert outbox_kind(name, "Exempelby") == kind


@pytest.mark.parametrize(
    ("day", "zone", "expected"),
    [
        (dt.date(2026, 12, 1), "Europe/Stockholm", dt.datetime(2026, 12, 1, 23, 0, tzinfo=dt.UTC)),
        (dt.date(2026, 6, 30), "Europe/Stockholm", dt.datetime(2026, 6, 30, 22, 0, tzinfo=dt.UTC)),
        (dt.date(2026, 12, 31), "UTC", dt.datetime(2027, 1, 1, 0, 0, tzinfo=dt.UTC)),
    ],
)
def test_evaluation_moment_is_the_end_of_that_local_day(day, zone, expected):
    assert evaluation_moment(day, zone) == expected


CONFIG = """\
municipality: Exempelby
organisation_id: exempelby-kommun
source: {kind: ss12000-files, path: register}
target: {kind: directory, path: out}
"""


def config(tmp_path, extra=""):
    path = tmp_path / "autosynk.yaml"
    path.write_text(CONFIG + extra, encoding="utf-8")
    return load_config(path)


def test_retention_defaults_and_overrides(tmp_path):
    cfg = config(tmp_path)
    assert cfg.retention.model_dump() == {
        "work_days": 14,
        "reports_days": 90,
        "outbox_days": 14,
        "history_days": 365,
        "ledger_days": 730,
    }
    changed = config(tmp_path, "retention: {work_days: 3, ledger_days: null}\n")
    assert changed.retention.work_days == 3 and changed.retention.ledger_days is None
    assert changed.retention.reports_days == 90


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("retention: {work_days: 0}\n", "line 5: retention.work_days"),
        ("retention: {keep_forever: true}\n", "retention.keep_forever: unknown key"),
        (
            "extra_targets: {configured: {kind: directory, path: x}}\n",
            "'configured' cannot name a target",
        ),
        ("extra_targets: {'a b': {kind: directory, path: x}}\n", "'a b' cannot name a target"),
        ("extra_targets: {test: {kind: ftp, path: x}}\n", "extra_targets.test"),
    ],
)
def test_bad_retention_or_target_names_say_where(tmp_path, extra, message):
    with pytest.raises(ConfigError) as caught:
        config(tmp_path, extra)
    assert message in str(caught.value)


EXTRA = "extra_targets:\n  test: {kind: directory, path: test-server}\n"


@pytest.mark.parametrize(
    ("target", "rebaseline", "folder"),
    [
        (None, False, "out"),
        ("", True, "out"),
        ("configured", True, "out"),
        ("configured", False, "out"),
        ("test", False, "test-server"),
        (" test ", False, "test-server"),
    ],
)
def test_export_target(tmp_path, target, rebaseline, folder):
    cfg = export_config(config(tmp_path, EXTRA), target, rebaseline=rebaseline)
    assert cfg.target.path == tmp_path / folder


@pytest.mark.parametrize(
    ("target", "rebaseline", "message"),
    [
        ("test", True, "a re-baseline advances the staging state"),
        ("prod2", False, "no target named 'prod2' in extra_targets (known: configured, test)"),
    ],
)
def test_export_target_refused(tmp_path, target, rebaseline, message):
    with pytest.raises(ConfigError) as caught:
        export_config(config(tmp_path, EXTRA), target, rebaseline=rebaseline)
    assert message in str(caught.value)


def test_describe_names_each_kind_with_its_retention():
    result = {
        "municipality": "Exempelby",
        "as_of": "2026-12-01T04:00:00+01:00",
        "dry_run": False,
        "removed": {
            "work": {"unit": "files", "count": 52, "bytes": 4_194_304, "retention_days": 14},
            "history": {"unit": "rows", "count": 3, "bytes": None, "retention_days": 365},
            "runs": {"unit": "rows", "count": 0, "bytes": None, "retention_days": None},
        },
        "kept": {"runs": ["night-9"], "files": 12, "bytes": 2048},
    }
    assert describe(result) == [
        "housekeeping of Exempelby as of 2026-12-01T04:00:00+01:00",
        "  run work directories (kept 14 days): removed 52 files, 4.0 MB",
        "  history rows of keys no longer delivered (kept 365 days): removed 3 rows",
        "  run ledger rows (kept until removed by hand): removed 0 rows",
        "  kept past their time: 1 run(s) that can still be finished, retried or approved "
        "(12 files, 2.0 KB): night-9",
    ]


def test_the_documented_defaults_are_the_defaults():
    """docs/retention.md is what a data-protection officer checks: it must not drift."""
    import re
    from pathlib import Path

    import yaml

    from autosynk.config import Retention
    from autosynk.housekeeping import KINDS

    doc = (Path(__file__).resolve().parent.parent / "docs" / "retention.md").read_text()
    block = re.search(r"```yaml\n(retention:.*?)```", doc, re.S)
    assert block is not None
    assert yaml.safe_load(block.group(1))["retention"] == Retention().model_dump()
    for label, _, setting in KINDS.values():
        assert setting in doc and label in doc
    for days, setting in ((14, "work_days"), (90, "reports_days"), (365, "history_days")):
        assert f"**{days} days**" in doc and getattr(Retention(), setting) == days
