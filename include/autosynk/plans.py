"""Plans: what a run would deliver, frozen, with what the guards said of it.

Every run that computes a delta has a plan, made once its package is built: the exact
bytes to deliver (the package, with each file's size and sha256), the delivered state they
were computed against (``base_run``, the last committed run), the counts per principals
row type and per relation type, and every guard's measure (:mod:`autosynk.guards`).

A plan that trips a guard is *refused*: nothing is delivered and the staging state stays
as it was, until a person approves it (``autosynk run --approve PLAN``, or the approval
task in Airflow). An approval delivers the frozen plan's bytes, never a recomputation, and
only while the delivered state is still the one the plan was computed against; a plan made
stale by a later commit is refused and a new plan is needed.

The plan is kept in the run's work directory (``plan/plan.json``) and in the run ledger
(``run.plan_id``, ``run.plan``). It holds counts and texts, never personal data.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import logging
from typing import Any

from autosynk import guards
from autosynk.config import Guards, RunConfig
from autosynk.errors import SafetyError, StateError
from autosynk.staging.store import AWAITING_APPROVAL, Staging
from autosynk.workspace import RunWorkspace

log = logging.getLogger("autosynk")

PLAN_FILE = ("plan", "plan.json")
#: statuses of a planned run whose plan an approval may deliver
APPROVABLE = (*AWAITING_APPROVAL, "dry-run", "approved", "delivered", "failed")


class StalePlanError(SafetyError):
    """The delivered state moved on since the plan was made: it can no longer be delivered."""


def plan_id_for(run_id: str, base_run: str | None, package: dict[str, Any]) -> str:
    """A short id naming the run, the state it was computed against, and its exact bytes."""
    digest = hashlib.sha256()
    for part in (run_id, base_run or "", *(f["sha256"] for f in package.get("files", []))):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:12]


def make_plan(
    cfg: RunConfig,
    run_id: str,
    *,
    dry_run: bool = False,
    allow_mass_removal: bool = False,
    limits: Guards | None = None,
    overall_removes: bool = True,
    needs_approval: bool = False,
    blocking: list[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Make the run's plan from its delta and package; judge it by the guards.

    ``limits`` replaces the configured guard limits (the school-year change has its own)
    and ``overall_removes`` False drops ``max_remove_fraction``; ``needs_approval`` makes
    every plan wait for a person, guards passed or not; ``blocking`` (one line each) makes
    a plan that cannot be approved at all; ``extra`` is kept in the plan as it is (counts
    only). Idempotent: a plan once made stands.
    """
    st = Staging(cfg.staging.url)
    st.acquire(run_id, cfg.staging.lock_wait_seconds)
    run = st.get_run(run_id)
    if run is None:
        raise StateError(f"run {run_id} is not in the run ledger: start it with prepare")
    if run["plan"] is not None:
        log.info("run %s: plan %s already made; it stands", run_id, run["plan_id"])
        return outline(run["plan"])
    package = run["package"]
    if package is None:
        raise StateError(f"run {run_id} has no package yet: run the write stage first")
    ws = RunWorkspace(cfg.work_base, run_id)
    delta = ws.read_json("delta", "delta.json")
    base_run = delta.get("base_run")
    results = guards.evaluate(
        delta["by_type"],
        limits or cfg.safety,
        max_remove_fraction=cfg.safety.max_remove_fraction if overall_removes else None,
        min_removes_to_guard=cfg.safety.min_removes_to_guard,
        first_night=base_run is None,
        total=bool(delta["counts"].get("total")),
        allow_removes=allow_mass_removal,
    )
    tripped = guards.tripped(results)
    refused = bool(tripped)
    blocked = list(blocking or [])
    if dry_run:
        status = "dry-run"
    elif blocked:
        status = "blocked"
    elif refused:
        status = "refused"
    elif needs_approval and not package.get("nothing_to_deliver"):
        status = "awaiting-approval"
    else:
        status = "planned"
    plan = {
        "plan_id": plan_id_for(run_id, base_run, package),
        "run_id": run_id,
        "kind": run["kind"],
        "municipality": cfg.municipality,
        "made_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "evaluation_date": run.get("evaluation_date"),
        "base_run": base_run,
        "status": status,
        "dry_run": dry_run,
        "refused": refused,
        "tripped": [r.describe() for r in tripped],
        "blocking": blocked,
        "guards": [r.as_dict() for r in results],
        "counts": delta["by_type"],
        "totals": totals(delta["by_type"]),
        "nothing_to_deliver": bool(package.get("nothing_to_deliver")),
        "files": package.get("files", []),
        **(extra or {}),
    }
    ws.write_json(plan, *PLAN_FILE)
    st.update_run(run_id, plan_id=plan["plan_id"], plan=plan, status=status, message=_why(plan))
    log.info("run %s: plan %s, %s", run_id, plan["plan_id"], status)
    return outline(plan)


def _why(plan: dict[str, Any]) -> str | None:
    if plan["blocking"]:
        return f"blocked: {'; '.join(plan['blocking'])}"[:2000]
    if plan["tripped"]:
        return f"refused by its guards: {'; '.join(plan['tripped'])}"[:2000]
    return None


def totals(by_type: dict[str, dict[str, dict[str, int]]]) -> dict[str, int]:
    """Adds, changes and removes of a delta, all types together (the report's chart)."""
    principals = by_type.get("principals", {}).values()
    relations = by_type.get("relations", {}).values()
    return {
        "adds": sum(c.get("new", 0) for c in principals) + sum(c.get("add", 0) for c in relations),
        "changes": sum(c.get("changed", 0) for c in principals),
        "removes": sum(c.get("dropped", 0) for c in principals)
        + sum(c.get("remove", 0) for c in relations),
    }


def outline(plan: dict[str, Any]) -> dict[str, Any]:
    """What a task hands on (XCom): ids, verdict, counts and texts, no personal data."""
    return {
        "plan_id": plan["plan_id"],
        "status": plan["status"],
        "refused": plan["refused"],
        "dry_run": plan["dry_run"],
        "needs_approval": plan["status"] in AWAITING_APPROVAL,
        "tripped": plan["tripped"],
        "blocking": plan.get("blocking", []),
        "totals": plan["totals"],
        "nothing_to_deliver": plan["nothing_to_deliver"],
    }


def describe(plan: dict[str, Any], report: str | None = None) -> str:
    """The plan for a person deciding on it (Markdown: the approval's body, notices)."""
    lines = [f"**Plan {plan['plan_id']}** of run `{plan['run_id']}` ({plan['municipality']})"]
    if plan.get("evaluation_date"):
        lines.append(f"Register evaluated at {plan['evaluation_date']}.")
    lines.append(
        f"Computed against the delivered state of run `{plan['base_run'] or 'none (first night)'}`."
    )
    if plan.get("blocking"):
        lines += ["", "**BLOCKED: this plan cannot be applied:**"]
        lines += [f"- {b}" for b in plan["blocking"]]
    if plan["tripped"]:
        lines += ["", "**Refused by its guards:**", *(f"- {t}" for t in plan["tripped"])]
    if plan.get("checklist"):
        lines += ["", f"**School-year checklist** ({plan.get('school_year')}, effective "]
        lines[-1] += f"{plan.get('effective_date')}):"
        for item in plan["checklist"].values():
            lines.append(f"- {item['title']}: {item['count']} ({item['status']})")
    t = plan["totals"]
    lines += ["", f"Adds {t['adds']}, changes {t['changes']}, removes {t['removes']}.", ""]
    lines += ["| type | new/add | changed | dropped/remove | delivered |", "|---|---|---|---|---|"]
    for kind, c in plan["counts"].get("principals", {}).items():
        lines.append(
            f"| {kind} | {c['new']} | {c['changed']} | {c['dropped']} | {c['delivered']} |"
        )
    for rel_type, c in plan["counts"].get("relations", {}).items():
        lines.append(f"| {rel_type} | {c['add']} | | {c['remove']} | {c['delivered']} |")
    if report:
        lines += ["", f"Report: {report}"]
    lines += [
        "",
        "*Approve* delivers exactly this plan's files; *Reject* delivers nothing.",
    ]
    return "\n".join(lines)


def find(st: Staging, plan_id: str) -> dict[str, Any]:
    run = st.run_by_plan(plan_id.strip())
    if run is None:
        raise StateError(f"no plan {plan_id} in this staging database (see `autosynk runs`)")
    return run


def require_current(st: Staging, run: dict[str, Any]) -> None:
    """Refuse a plan whose delivered state is no longer the staging database's."""
    latest = st.last_committed_run()
    if latest != run["base_run"]:
        raise StalePlanError(
            f"plan {run['plan_id']} is stale: it was computed against "
            f"{run['base_run'] or 'an empty state'}, but run {latest} has committed since; "
            "nothing was delivered: make a new plan (run again)"
        )


def approve(cfg: RunConfig, plan_id: str, approved_by: str | None = None) -> str:
    """Approve a plan: check it can still be delivered, take the lock, mark it approved.

    Returns the plan's run id; its deliver, commit and report stages then deliver the
    frozen package. Approving again a plan already approved or delivered is harmless.
    """
    st = Staging(cfg.staging.url)
    st.require_current()
    run = find(st, plan_id)
    if run["status"] == "committed":
        return str(run["run_id"])
    if run["status"] == "rejected":
        raise SafetyError(f"plan {plan_id} was rejected; nothing was delivered: make a new plan")
    if run["status"] == "blocked":
        raise SafetyError(
            f"plan {plan_id} cannot be applied: {run['message']}; fix the register "
            "and make a new plan"
        )
    if run["status"] not in APPROVABLE:
        raise StateError(f"plan {plan_id} cannot be approved: its run is {run['status']}")
    st.acquire(run["run_id"], cfg.staging.lock_wait_seconds)
    require_current(st, run)
    record_approval(cfg, st, run, approved_by or who())
    return str(run["run_id"])


def record_approval(cfg: RunConfig, st: Staging, run: dict[str, Any], approved_by: str) -> None:
    """Mark the run's plan approved (by whom, when), in the ledger and in ``plan.json``."""
    if run["status"] in ("approved", "delivered", "committed"):
        return
    plan = dict(run["plan"])
    plan["approved_by"] = approved_by
    plan["approved_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    plan["status"] = "approved"
    RunWorkspace(cfg.work_base, run["run_id"]).write_json(plan, *PLAN_FILE)
    st.update_run(run["run_id"], status="approved", plan=plan, message=None)
    log.info("plan %s approved by %s", plan["plan_id"], approved_by)


def ready_to_deliver(
    cfg: RunConfig, st: Staging, run: dict[str, Any], approved_by: str | None = None
) -> bool:
    """May the run's package go out now? False for a dry run; raises when it may not."""
    status = run["status"]
    if status == "dry-run" and approved_by is None:
        return False
    if run["plan"] is None:
        raise StateError(f"run {run['run_id']} has no plan yet: run the plan stage first")
    if status == "rejected":
        raise SafetyError(f"plan {run['plan_id']} was rejected; nothing is delivered")
    if status == "blocked":
        raise SafetyError(f"plan {run['plan_id']} cannot be applied: {run['message']}")
    require_current(st, run)
    if status in (*AWAITING_APPROVAL, "dry-run"):
        if approved_by is None:
            raise SafetyError(
                f"plan {run['plan_id']} waits for approval; nothing was delivered. "
                f"Approve it with `autosynk run --approve {run['plan_id']}` (Airflow: the "
                "run's approval task) or make a new plan"
            )
        record_approval(cfg, st, run, approved_by)
    return True


def reject(cfg: RunConfig, run_id: str, reason: str) -> None:
    """A plan nobody approved: the run ends rejected, its package never delivered."""
    st = Staging(cfg.staging.url)
    run = st.get_run(run_id)
    if run is None or run["status"] not in AWAITING_APPROVAL:
        return
    plan = dict(run["plan"])
    plan["status"] = "rejected"
    plan["rejected"] = reason
    RunWorkspace(cfg.work_base, run_id).write_json(plan, *PLAN_FILE)
    st.update_run(run_id, status="rejected", plan=plan, message=f"rejected: {reason}"[:2000])


def who() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name in a container
        return "cli"
