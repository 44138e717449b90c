"""A run that ends early: one line that says why, and a run summary whatever broke.

The usual summary (:func:`autosynk.pipeline.report`) reads the run ledger in the staging
database. When that database is what failed, or the run never got into the ledger (another
run holds the lock), the summary is written without it, from what is known here, into the
run's work directory (and beside the delivered files on a directory target), so an operator
always finds one. Nothing in here may hide the failure it reports: its own errors are
logged and swallowed.
"""

from __future__ import annotations

import datetime as dt
import errno
import logging
import traceback
from typing import Any

from autosynk.config import RunConfig
from autosynk.errors import AutosynkError, LockError, StagingUnreachable, StateError
from autosynk.identity import mask

log = logging.getLogger("autosynk")

#: the stage functions of :mod:`autosynk.pipeline`, by the name a run's stages go by
STAGES = {
    "prepare": "prepare",
    "extract": "extract",
    "transform": "transform",
    "compute_delta": "delta",
    "write": "write",
    "plan": "plan",
    "deliver": "deliver",
    "commit": "commit",
    "report": "report",
}
_FULL = {errno.ENOSPC, errno.EDQUOT}


def explain(exc: BaseException, work_base: str | None = None) -> AutosynkError | None:
    """An operator's one line for a failure that is not an :class:`AutosynkError` by type
    (a full disk, a file that cannot be written, a database error), else None."""
    if isinstance(exc, AutosynkError):
        return exc
    if isinstance(exc, OSError) and exc.errno in _FULL:
        names = [str(name) for name in (exc.filename, exc.filename2) if name]
        inside = [name for name in names if work_base and name.startswith(str(work_base))]
        if inside:
            return StateError(
                f"the work base {work_base} is full: free space there, or point work_base at "
                f"a larger disk, then retry the run (no space left writing {inside[-1]})"
            )
        writing = f" writing {names[-1]}" if names else ""
        return StateError(f"no space left on a device{writing}: free space, then retry the run")
    if isinstance(exc, OSError) and exc.filename:
        return StateError(f"{exc.strerror or type(exc).__name__}: {exc.filename}")
    import sqlalchemy.exc

    if isinstance(exc, sqlalchemy.exc.SQLAlchemyError):
        first = str(getattr(exc, "orig", None) or exc).splitlines()
        return StateError(f"staging database error: {first[0] if first else type(exc).__name__}")
    return None


def stage_of(exc: BaseException) -> str | None:
    """The pipeline stage ``exc`` was raised in, read from its traceback."""
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.endswith("pipeline.py") and frame.name in STAGES:
            return STAGES[frame.name]
    return None


def end_run(cfg: RunConfig, run_id: str, exc: BaseException, *, kind: str) -> BaseException:
    """Report a run that ended early; return the error to raise in place of ``exc``.

    The error says in one line what went wrong (and, when the staging database could not
    be reached, how to finish the run once it is back); a note ``summary: <path>`` tells
    where its run summary was written.
    """
    error: BaseException = explain(exc, cfg.work_base) or exc
    stage = stage_of(exc)
    if isinstance(error, StagingUnreachable):
        error = StagingUnreachable(
            f"{error}; run {run_id} stopped at {stage or 'its start'}: when the database is "
            f"back, finish it with `autosynk run --run-id {run_id}`"
        )
    written = report_failure(cfg, run_id, error, stage=stage, kind=kind)
    if written:
        if written.get("plan_id"):
            error.add_note(f"plan: {written['plan_id']}")
        error.add_note(f"summary: {written['summary']}")
        if written.get("report"):
            error.add_note(f"report: {written['report']}")
    return error


def report_failure(
    cfg: RunConfig, run_id: str, error: BaseException, *, stage: str | None, kind: str
) -> dict[str, Any] | None:
    """Write the failed run's summary and report: through the run ledger if it can, else
    without it. Returns where they are (``summary``, ``report``) and the run's ``plan_id``,
    or None when nothing could be written anywhere.
    """
    from autosynk import pipeline

    message = mask(str(error) or type(error).__name__)
    if isinstance(error, StagingUnreachable):
        why = "the staging database cannot be reached"  # asking again would only wait again
    else:
        try:
            return pipeline.report(cfg, run_id, failed=message)
        except Exception as exc:  # the database is down, the run is not in its ledger, ...
            why = one_line(explain(exc, cfg.work_base) or exc)
    try:
        return write_summary_without_staging(
            cfg,
            run_id,
            message,
            stage=stage,
            kind=kind,
            staging=mask(why),
            # a run the lock kept out leaves the latest report (the lock holder's) in place
            latest=not isinstance(error, LockError),
        )
    except Exception as exc:  # a full disk: the one line must still come out
        log.warning("run %s: no run summary could be written: %s", run_id, mask(one_line(exc)))
        return None


def write_summary_without_staging(
    cfg: RunConfig,
    run_id: str,
    message: str,
    *,
    stage: str | None,
    kind: str,
    staging: str,
    latest: bool = True,
) -> dict[str, Any]:
    """A failed run's summary from what is known without the staging database."""
    from autosynk.pipeline import workspace_for
    from autosynk.report import write_summary

    if stage in ("commit", "report"):
        state = "whether this run's commit completed: see `autosynk runs` once it can be read"
    else:
        state = "the staging state was not advanced: only a commit after delivery does that"
    summary: dict[str, Any] = {
        "run_id": run_id,
        "kind": kind,
        "status": "failed",
        "municipality": cfg.municipality,
        "stage": stage,
        "started_at": None,
        "ended_at": dt.datetime.now(dt.UTC).isoformat(),
        "committed_at": None,
        "message": message,
        "nothing_to_deliver": False,
        "note": f"written without the run ledger, which could not be read ({staging}); {state}",
        "files": [],
        "deliveries": [],
        "late": False,
        "counts": {},
        "quarantine": {"quarantined": 0, "warnings": 0, "reasons": {}},
    }
    written = write_summary(cfg, workspace_for(cfg, run_id), summary, latest=latest)
    return {"summary": written["summary"], "report": written["html"], "plan_id": None}


def one_line(exc: BaseException) -> str:
    """The first line of an error's message (its type when it has none)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
