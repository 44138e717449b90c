"""Housekeeping: remove what is past retention, and say what was removed.

The ``retention:`` section of the run configuration says how many days each kind of data is
kept; ``docs/retention.md`` says the same in words. :func:`housekeeping` removes what is
older, under the run lock (so it never races a night), and returns per kind how many files
or rows it removed and how many bytes: counts only, never personal data. A dry run lists
the same without removing anything (the database part runs in a transaction that is rolled
back, so its counts are exactly what a real pass would remove).

The kinds, in the order every report lists them:

======================  =================================================  ===============
kind                    what                                               kept for
======================  =================================================  ===============
``work``                a run's work directory but its reports: register   ``work_days``
                        snapshot, mapped rows, delta, package, plan
``reports``             ``run-summary.json``, ``report.html`` of a run,     ``reports_days``
                        in the work base and beside delivered files
``outbox``              delivered files in a local folder target           ``outbox_days``
``source_cache``        the API source's incremental-read cache            ``work_days``
``history``             history rows of keys no longer delivered           ``history_days``
``quarantine``          quarantine ledger rows (ids and reasons)           ``reports_days``
``deliveries``          delivery ledger rows                               ``ledger_days``
``runs``                run ledger rows                                    ``ledger_days``
``records``             housekeeping's own records (``_housekeeping/``)    ``ledger_days``
======================  =================================================  ===============

A run's age is counted from its last moment in the run ledger (its end, its commit, or else
its start); a run's work directory without a ledger row (the ledger was reset), from the
newest modification time of its files. What cannot be dated is kept, and so is a folder of
the work base that is not a run's work directory.

Never removed, whatever their age: the delivered state (the ``delivered_*`` tables and
``<work_base>/_delivered-state/``), the last committed run's ledger row and every ledger row
the history or the delivered state names, and everything of a run that can still be
finished, retried or approved (:func:`runs_to_keep`): its whole work directory, its report,
its delivered files, its ledger rows.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from upath import UPath

from autosynk.config import DirectoryTarget, RunConfig
from autosynk.errors import StateError
from autosynk.staging import retention, schema
from autosynk.staging.retention import LedgerRun
from autosynk.staging.store import Staging
from autosynk.unikum.naming import municipality_part
from autosynk.workspace import RunWorkspace, safe_run_dir

log = logging.getLogger("autosynk")

#: every kind, in report order: (label, unit, the ``retention`` field that keeps it)
KINDS: dict[str, tuple[str, str, str]] = {
    "work": ("run work directories", "files", "work_days"),
    "reports": ("run summaries and reports", "files", "reports_days"),
    "outbox": ("delivered files in the outbox", "files", "outbox_days"),
    "source_cache": ("source cache of incremental reads", "files", "work_days"),
    "history": ("history rows of keys no longer delivered", "rows", "history_days"),
    "quarantine": ("quarantine ledger rows", "rows", "reports_days"),
    "deliveries": ("delivery ledger rows", "rows", "ledger_days"),
    "runs": ("run ledger rows", "rows", "ledger_days"),
    "records": ("housekeeping records", "files", "ledger_days"),
}
#: a run's reports, at the top of its work directory
REPORT_FILES = ("run-summary.json", "report.html")
#: what a run's work directory holds: a folder without a ledger row is judged as a run's
#: only if it holds one of these
_RUN_ENTRIES = {"extract", "mapped", "delta", "package", "plan", *REPORT_FILES}
#: folders of the work base that are not runs' work directories
RECORDS = "_housekeeping"
SOURCE_CACHE = "source-cache"
#: statuses after which a run is done with: it never delivers or commits again
_FINAL = ("committed",)
_REPORT_COPY = re.compile(r"(run-summary(-.+)?\.json|report(-.+)?\.html)")


# -- the rules (pure) -------------------------------------------------------------------


def expired(when: dt.datetime | None, days: int | None, now: dt.datetime) -> bool:
    """Is something last seen at ``when`` past a retention of ``days`` (None: forever)?"""
    if when is None or days is None:
        return False
    return when < now - dt.timedelta(days=days)


def runs_to_keep(runs: Iterable[LedgerRun]) -> set[str]:
    """The runs that can still be finished, retried or approved: keep all they have.

    A run that has not committed can still be finished only while the delivered state is
    the one its delta was (or will be) computed against: its ``base_run`` or, before it
    has a delta, the last commit before it started, is still the last committed run.
    Once another run has committed, its delta is stale (a commit would be refused) and
    only its records remain, subject to retention like any other run's.
    """
    runs = list(runs)
    commits = sorted(
        (r for r in runs if r.status == "committed" and r.committed_at is not None),
        key=lambda r: r.committed_at or r.started_at,
    )
    last = commits[-1].run_id if commits else None
    keep = set()
    for run in runs:
        if run.status in _FINAL:
            continue
        base = run.base_run
        if base is None:
            before = [c for c in commits if c.committed_at and c.committed_at < run.started_at]
            base = before[-1].run_id if before else None
        if base == last:
            keep.add(run.run_id)
    return keep


def outbox_kind(name: str, municipality: str) -> str | None:
    """Which kind a file in a local folder target is (``municipality``: its name part)."""
    if _REPORT_COPY.fullmatch(name):
        return "reports"
    stem = re.escape(municipality) + r"_\d{8}_\d{4}\."
    # a finished delivery, or the hidden temporary copy of an interrupted one
    if re.match(stem, name) or re.match(r"\." + stem + r".*\.part$", name):
        return "outbox"
    return None


def evaluation_moment(day: dt.date, timezone: str) -> dt.datetime:
    """``--evaluation-date``: housekeeping as it would be at the end of that local day."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), ZoneInfo(timezone))


# -- one pass ---------------------------------------------------------------------------


@dataclass
class Tally:
    count: int = 0
    bytes: int = 0


@dataclass
class _Pass:
    cfg: RunConfig
    now: dt.datetime
    runs: list[LedgerRun]
    keep: set[str]
    removed: dict[str, Tally] = field(default_factory=lambda: {k: Tally() for k in KINDS})
    kept: Tally = field(default_factory=Tally)
    kept_runs: set[str] = field(default_factory=set)
    actions: list[Callable[[], None]] = field(default_factory=list)
    _inodes: set[tuple[int, int]] = field(default_factory=set)

    def days(self, kind: str) -> int | None:
        value: int | None = getattr(self.cfg.retention, KINDS[kind][2])
        return value

    def past(self, kind: str, when: dt.datetime | None) -> bool:
        return expired(when, self.days(kind), self.now)

    def count(self, kind: str, files: Iterable[dict[str, Any]]) -> None:
        tally = self.removed[kind]
        for info in files:
            tally.count += 1
            tally.bytes += self._size(info)

    def _size(self, info: dict[str, Any]) -> int:
        # hard links (a delta file is its mapped file) count once
        inode = info.get("ino")
        if inode:
            key = (int(info.get("dev") or 0), int(inode))
            if key in self._inodes:
                return 0
            self._inodes.add(key)
        return int(info.get("size") or 0)


def housekeeping(
    cfg: RunConfig,
    *,
    dry_run: bool = False,
    now: dt.datetime | None = None,
    lock_id: str | None = None,
) -> dict[str, Any]:
    """Remove what is past retention (or, ``dry_run``, only list it); returns the counts.

    Takes the run lock for the whole pass (waiting as ``staging.lock_wait_seconds`` says),
    and writes a record of what it did to ``<work_base>/_housekeeping/``.
    """
    started = dt.datetime.now(dt.UTC)
    moment = (now or started).astimezone(dt.UTC)
    lock_id = lock_id or f"housekeeping__{started.strftime('%Y%m%dT%H%M%S%fZ')}"
    st = Staging(cfg.staging.url)
    st.upgrade()
    st.acquire(lock_id, cfg.staging.lock_wait_seconds)
    try:
        with st.engine.connect() as conn:
            runs = retention.ledger_runs(conn)
        work = _Pass(cfg, moment, runs, runs_to_keep(runs))
        try:
            _work_base(work)
            _outboxes(work)
            if not dry_run:
                for action in work.actions:
                    action()
        except OSError as exc:
            raise StateError(f"housekeeping stopped: {exc}") from None
        _database(work, st, remove=not dry_run)
        result = _result(work, lock_id, dry_run)
        result["record"] = _write_record(cfg, result, started, dry_run)
    finally:
        st.release(lock_id)
    for line in describe(result):
        log.info("%s", line)
    return result


def _result(work: _Pass, lock_id: str, dry_run: bool) -> dict[str, Any]:
    removed = {
        kind: {
            "unit": KINDS[kind][1],
            "count": tally.count,
            "bytes": tally.bytes if KINDS[kind][1] == "files" else None,
            "retention_days": work.days(kind),
        }
        for kind, tally in work.removed.items()
    }
    return {
        "housekeeping": lock_id,
        "municipality": work.cfg.municipality,
        "dry_run": dry_run,
        "as_of": work.now.astimezone(ZoneInfo(work.cfg.timezone)).isoformat(timespec="seconds"),
        "removed": removed,
        "kept": {
            "runs": sorted(work.kept_runs),
            "files": work.kept.count,
            "bytes": work.kept.bytes,
        },
    }


# -- files ------------------------------------------------------------------------------


def _mtime(info: dict[str, Any]) -> float | None:
    for name in ("mtime", "created", "LastModified", "last_modified", "updated"):
        value = info.get(name)
        if value is None:
            continue
        if isinstance(value, dt.datetime):
            return value.timestamp()
        if isinstance(value, str):
            try:
                return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
        return float(value)
    return None


def _newest(infos: Iterable[dict[str, Any]]) -> dt.datetime | None:
    times = [t for t in (_mtime(i) for i in infos) if t is not None]
    return dt.datetime.fromtimestamp(max(times), dt.UTC) if times else None


def _work_base(work: _Pass) -> None:
    base = UPath(work.cfg.work_base)
    if not base.exists():
        return
    fs = base.fs
    by_dir = {safe_run_dir(r.run_id): r for r in work.runs}
    for entry in fs.ls(base.path, detail=True):
        name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
        if entry.get("type") != "directory" or name.startswith("."):
            continue
        path = entry["name"]
        files = list(fs.find(path, detail=True).values())
        if name == SOURCE_CACHE:
            if work.past("source_cache", _newest(files)):
                work.count("source_cache", files)
                work.actions.append(_remove(fs, path))
        elif name == RECORDS:
            for info in files:
                if work.past("records", _newest([info])):
                    work.count("records", [info])
                    work.actions.append(_remove(fs, info["name"]))
        elif not name.startswith("_"):  # _delivered-state and the like: never
            _run_directory(work, fs, path, by_dir.get(name), files)


def _run_directory(
    work: _Pass, fs: Any, path: str, run: LedgerRun | None, files: list[dict[str, Any]]
) -> None:
    """One run's work directory: its work and its reports, each by its own retention."""
    files = [f for f in files if f.get("type") == "file"]
    prefix = path.rstrip("/") + "/"
    if run is None and not _RUN_ENTRIES & {f["name"][len(prefix) :].split("/")[0] for f in files}:
        return  # not a run's work directory: not ours to judge
    if run is not None and run.run_id in work.keep:
        if work.past("work", run.last_seen):
            work.kept_runs.add(run.run_id)
            work.kept.count += len(files)
            work.kept.bytes += sum(int(f.get("size") or 0) for f in files)
        return
    when = run.last_seen if run is not None else _newest(files)
    reports = [f for f in files if f["name"][len(prefix) :] in REPORT_FILES]
    rest = [f for f in files if f["name"][len(prefix) :] not in REPORT_FILES]
    work_due, reports_due = work.past("work", when), work.past("reports", when)
    if work_due and reports_due:
        work.count("work", rest)
        work.count("reports", reports)
        work.actions.append(_remove(fs, path))
    elif work_due:
        work.count("work", rest)
        for child in fs.ls(path, detail=False):
            if child[len(prefix) :] not in REPORT_FILES:
                work.actions.append(_remove(fs, child))
    elif reports_due:
        work.count("reports", reports)
        work.actions.extend(_remove(fs, f["name"]) for f in reports)


def _remove(fs: Any, path: str) -> Callable[[], None]:
    def remove() -> None:
        if fs.exists(path):
            fs.rm(path, recursive=True)

    return remove


def _outboxes(work: _Pass) -> None:
    """Delivered files and report copies in every local folder target."""
    cfg = work.cfg
    folders = {
        t.path for t in (cfg.target, *cfg.extra_targets.values()) if isinstance(t, DirectoryTarget)
    }
    part = municipality_part(cfg.municipality, ascii_only=cfg.naming.ascii_only)
    needed: set[str] = set()
    for run in work.runs:
        if run.run_id in work.keep:
            safe = safe_run_dir(run.run_id)
            needed.update(run.package_files)
            needed.update({f"run-summary-{safe}.json", f"report-{safe}.html"})
    for folder in sorted(folders):
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            kind = outbox_kind(path.name, part)
            if kind is None or path.name in needed:
                continue
            info = path.lstat()
            if not stat.S_ISREG(info.st_mode):
                continue
            when = dt.datetime.fromtimestamp(info.st_mtime, dt.UTC)
            if work.past(kind, when):
                work.count(kind, [{"size": info.st_size, "ino": info.st_ino, "dev": info.st_dev}])
                work.actions.append(_unlink(path))


def _unlink(path: Path) -> Callable[[], None]:
    return lambda: path.unlink(missing_ok=True)


# -- the staging database ---------------------------------------------------------------


def _database(work: _Pass, st: Staging, *, remove: bool) -> None:
    """History and ledger rows, in one transaction (rolled back on a dry run)."""
    last = st.last_committed_run()
    old_reports = [r.run_id for r in _unneeded(work) if work.past("quarantine", r.last_seen)]
    old_ledger = [r for r in _unneeded(work) if work.past("runs", r.last_seen)]
    conn = st.engine.connect()
    try:
        with conn.begin() as transaction:
            history_cutoff = work.days("history")
            if history_cutoff is not None:
                work.removed["history"].count = retention.expire_history(
                    conn, work.now - dt.timedelta(days=history_cutoff)
                )
            work.removed["quarantine"].count += retention.rows_of_runs(
                conn, schema.quarantine, old_reports
            )
            work.removed["deliveries"].count += retention.rows_of_runs(
                conn, schema.delivery, [r.run_id for r in old_ledger]
            )
            candidates = [r.run_id for r in old_ledger if r.run_id != last]
            if candidates:
                named = retention.referenced_runs(conn)
                gone = [r for r in candidates if r not in named]
                # a run's quarantine rows never outlive its ledger row
                work.removed["quarantine"].count += retention.rows_of_runs(
                    conn, schema.quarantine, gone
                )
                work.removed["runs"].count = retention.rows_of_runs(conn, schema.run, gone)
            if not remove:
                transaction.rollback()
    finally:
        conn.close()


def _unneeded(work: _Pass) -> list[LedgerRun]:
    return [r for r in work.runs if r.run_id not in work.keep]


def _write_record(cfg: RunConfig, result: dict[str, Any], started: dt.datetime, dry: bool) -> str:
    folder = RunWorkspace(cfg.work_base, RECORDS, directory=RECORDS)
    name = f"housekeeping-{started.strftime('%Y%m%dT%H%M%S%fZ')}{'-dry-run' if dry else ''}.json"
    return str(folder.write_json(result, name))


# -- words ------------------------------------------------------------------------------


def describe(result: dict[str, Any]) -> list[str]:
    """The pass in lines for a person: what went (or would go), per kind."""
    verb = "would remove" if result["dry_run"] else "removed"
    head = f"housekeeping of {result['municipality']} as of {result['as_of']}"
    lines = [f"{head}: dry run, nothing removed" if result["dry_run"] else head]
    for kind, found in result["removed"].items():
        label = KINDS[kind][0]
        days = found["retention_days"]
        kept_for = "kept until removed by hand" if days is None else f"kept {days} days"
        amount = f"{found['count']} {found['unit']}"
        if found["bytes"] is not None:
            amount += f", {_size(found['bytes'])}"
        lines.append(f"  {label} ({kept_for}): {verb} {amount}")
    kept = result["kept"]
    if kept["runs"]:
        lines.append(
            f"  kept past their time: {len(kept['runs'])} run(s) that can still be finished, "
            f"retried or approved ({kept['files']} files, {_size(kept['bytes'])}): "
            + ", ".join(kept["runs"])
        )
    return lines


def _size(count: int) -> str:
    value = float(count)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{count} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} bytes"  # pragma: no cover
