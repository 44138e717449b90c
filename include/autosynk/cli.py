"""The ``autosynk`` command line: the same pipeline as the DAGs, without Airflow.

autosynk run --config autosynk.yaml            one night (extract ... report)
autosynk run --config autosynk.yaml --total    a re-baseline total
autosynk run --config autosynk.yaml --dry-run  up to the plan and its report, nothing delivered
autosynk run --config autosynk.yaml --approve PLAN   deliver a refused plan's exact files
autosynk demo generate --out DIR --seed N --scale small|medium|large
autosynk demo mutate --in DIR --seed N
autosynk demo rollover --in DIR [--seed N] [--reuse-group-ids]
autosynk verify FILE...
autosynk db upgrade --config F | autosynk runs --config F | autosynk unlock RUN --config F
autosynk housekeeping --config F [--dry-run]   remove what is past retention
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from autosynk import pipeline
from autosynk.config import RunConfig, load_config
from autosynk.errors import AutosynkError, SafetyError
from autosynk.identity import mask

log = logging.getLogger("autosynk")

#: exit codes: done (nothing to deliver included), failed, usage, refused by a guard
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_REFUSED = 0, 1, 2, 3


def new_run_id(kind: str = "cli") -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{kind}__{stamp}"


def run_night(
    cfg: RunConfig,
    run_id: str,
    *,
    total: bool = False,
    allow_mass_removal: bool = False,
    commit: bool = True,
    dry_run: bool = False,
    evaluation_date: str | None = None,
) -> dict[str, Any]:
    """Every stage in order; on failure the run is reported failed and the lock released.

    A plan refused by its guards (or a dry run) stops after the plan: nothing is delivered,
    the staging state stays as it was, and the report says why.
    """
    kind = "total" if total else "nightly"
    stages: dict[str, Any] = {}
    try:
        stages["prepare"] = pipeline.prepare(
            cfg, run_id, kind=kind, evaluation_date=evaluation_date
        )
        stages["extract"] = pipeline.extract(cfg, run_id)
        stages["transform"] = pipeline.transform(cfg, run_id)
        stages["delta"] = pipeline.compute_delta(cfg, run_id, total=total)
        stages["write"] = pipeline.write(cfg, run_id)
        stages["plan"] = pipeline.plan(
            cfg, run_id, dry_run=dry_run, allow_mass_removal=allow_mass_removal
        )
        if dry_run or stages["plan"]["refused"]:
            stages["report"] = pipeline.report(cfg, run_id)
            return stages
    except Exception as exc:
        _end_early(cfg, run_id, exc, kind)
    stages.update(deliver_plan(cfg, run_id, commit=commit, kind=kind))
    return stages


def deliver_plan(
    cfg: RunConfig,
    run_id: str,
    *,
    commit: bool = True,
    approved_by: str | None = None,
    kind: str = "nightly",
) -> dict[str, Any]:
    """Deliver a planned run's package, commit it, and report (the end of every night)."""
    stages: dict[str, Any] = {}
    try:
        stages["deliver"] = pipeline.deliver(cfg, run_id, approved_by=approved_by)
        if commit:
            stages["commit"] = pipeline.commit(cfg, run_id)
        stages["report"] = pipeline.report(cfg, run_id)
    except Exception as exc:
        _end_early(cfg, run_id, exc, kind)
    return stages


def _end_early(cfg: RunConfig, run_id: str, exc: Exception, kind: str) -> NoReturn:
    """Report the run failed (a summary whatever broke) and raise its one-line error."""
    from autosynk.failure_report import end_run

    error = end_run(cfg, run_id, exc, kind=kind)
    if error is exc:
        raise exc
    raise error from exc


def _cmd_run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    if args.target:
        from autosynk.total_export import export_config

        cfg = export_config(cfg, args.target, rebaseline=not args.no_commit)
    if args.approve:
        return _approve(cfg, args.approve, commit=not args.no_commit)
    run_id = args.run_id or new_run_id("total" if args.total else "cli")
    stages = run_night(
        cfg,
        run_id,
        total=args.total,
        allow_mass_removal=args.allow_mass_removal,
        commit=not args.no_commit,
        dry_run=args.dry_run,
        evaluation_date=args.evaluation_date,
    )
    return _print_outcome(run_id, stages, args.config)


def _approve(cfg: RunConfig, plan_id: str, *, commit: bool) -> int:
    from autosynk import plans

    run_id = plans.approve(cfg, plan_id)
    kind = pipeline.staging_for(cfg).get_run(run_id)["kind"]  # type: ignore[index]
    stages = deliver_plan(cfg, run_id, commit=commit, approved_by=None, kind=kind)
    print(f"plan: {plan_id}")
    print(f"approved plan {plan_id} of run {run_id}: {stages['report']['status']}")
    _print_files(stages)
    print(f"report: {stages['report']['report']}")
    return 0


def _print_files(stages: dict[str, Any]) -> None:
    delivered = stages.get("deliver") or {}
    if delivered.get("nothing_to_deliver"):
        print("nothing to deliver: Unikum is already in step with the register")
    for name in delivered.get("files", []):
        print(f"  delivered {name}")


def _print_outcome(run_id: str, stages: dict[str, Any], config: str) -> int:
    plan = stages["plan"]
    print(f"plan: {plan['plan_id']}")
    status = stages["report"]["status"]
    print(f"run {run_id}: {status}")
    counts = stages["delta"]
    line = (
        f"  principals {counts['to_send_principals']}, relations added "
        f"{counts['to_send_adds']}, removed {counts['to_send_removes']}, quarantined "
        f"{stages['transform']['quarantined']}"
    )
    code = 0
    if plan["dry_run"]:
        verdict = "would be refused" if plan["refused"] else "would pass every guard"
        print(f"dry run: nothing delivered, nothing committed; a real run {verdict}")
        for text in plan["tripped"]:
            print(f"  {text}")
        print(line)
    elif plan["refused"]:
        print("refused: nothing delivered, the staging state is unchanged")
        for text in plan["tripped"]:
            print(f"  {text}")
        print(line)
        print(
            "  if this change is real, deliver exactly this plan with: autosynk run "
            f"--config {config} --approve {plan['plan_id']}"
        )
        code = EXIT_REFUSED
    else:
        if stages["write"].get("nothing_to_deliver"):
            print("nothing to deliver: Unikum is already in step with the register")
        else:
            for entry in stages["write"]["files"]:
                print(
                    f"  delivered {entry['name']} ({entry['size']} bytes, sha256 {entry['sha256']})"
                )
        print(line)
    print(f"  summary: {stages['report']['summary']}")
    print(f"report: {stages['report']['report']}")
    return code


def _cmd_school_year_plan(args: argparse.Namespace) -> int:
    """Plan the school-year change; deliver nothing. The plan keeps the run lock while it
    waits for approval, so no nightly run moves the delivered state under it."""
    from autosynk import school_year

    cfg = load_config(args.config)
    run_id = args.run_id or new_run_id("school-year")
    mentor_links = None if args.mentor_links is None else args.mentor_links == "yes"
    stages: dict[str, Any] = {}
    try:
        stages["prepare"] = school_year.prepare(
            cfg, run_id, school_year=args.school_year, effective=args.effective_date
        )
        stages["extract"] = pipeline.extract(cfg, run_id)
        stages["transform"] = pipeline.transform(cfg, run_id, mentor_links=mentor_links)
        stages["delta"] = pipeline.compute_delta(cfg, run_id)
        stages["write"] = pipeline.write(cfg, run_id)
        school_year.plan(cfg, run_id, mentor_links=mentor_links)
        stages["plan"] = school_year.checklist_report(cfg, run_id)
        waits = stages["plan"]["needs_approval"]
        stages["report"] = pipeline.report(cfg, run_id, release=not waits)
    except Exception as exc:
        _end_early(cfg, run_id, exc, school_year.KIND)
    plan = stages["plan"]
    print(f"plan: {plan['plan_id']}")
    print(
        f"school year {stages['prepare']['school_year']}, effective "
        f"{stages['prepare']['evaluation_date']}: {plan['status']}"
    )
    checklist = school_year.read_checklist(cfg, run_id) or {"items": []}
    for item in checklist["items"]:
        print(f"  {item['title']}: {item['count']} ({item['status']})")
    for text in plan["blocking"]:
        print(f"  BLOCKING: {text}")
    for text in plan["tripped"]:
        print(f"  {text}")
    code = 0
    if plan["blocking"]:
        print("blocked: this plan cannot be applied; fix the register, then plan again")
        code = EXIT_REFUSED
    elif plan["nothing_to_deliver"]:
        print("nothing to deliver: the register at the effective date is what Unikum has")
    else:
        if plan["refused"]:
            print("refused by the school-year guards: read the report before you approve")
        print(
            f"nothing delivered yet; the run lock is held for this plan. Apply it with: "
            f"autosynk school-year apply --config {args.config} --plan {plan['plan_id']}  "
            f"(or reject it: autosynk school-year reject --config {args.config} "
            f"--plan {plan['plan_id']})"
        )
        code = EXIT_REFUSED if plan["refused"] else EXIT_OK
    print(f"report: {plan['report']}")
    return code


def _cmd_school_year_apply(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    return _approve(cfg, args.plan, commit=True)


def _cmd_school_year_reject(args: argparse.Namespace) -> int:
    from autosynk import plans

    cfg = load_config(args.config)
    st = pipeline.staging_for(cfg)
    run = plans.find(st, args.plan)
    plans.reject(cfg, run["run_id"], f"rejected by {plans.who()}")
    result = pipeline.report(cfg, run["run_id"])
    print(f"plan: {args.plan}")
    print(f"rejected plan {args.plan}: nothing delivered, the run lock is free")
    print(f"report: {result['report']}")
    return 0


def _cmd_stage(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    functions = {
        "prepare": pipeline.prepare,
        "extract": pipeline.extract,
        "transform": pipeline.transform,
        "delta": pipeline.compute_delta,
        "write": pipeline.write,
        "plan": pipeline.plan,
        "deliver": pipeline.deliver,
        "commit": pipeline.commit,
        "report": pipeline.report,
    }
    # the evaluation date is prepare's (main refuses it for the others)
    given = {"evaluation_date": args.evaluation_date} if args.evaluation_date else {}
    result = functions[args.stage](cfg, args.run_id, **given)
    print(json.dumps(result, indent=2, sort_keys=True, default=str))
    return 0


def _cmd_demo_generate(args: argparse.Namespace) -> int:
    from autosynk.demo.generate import generate

    counts = generate(Path(args.out), args.seed, args.scale)
    print(json.dumps(counts, indent=2, sort_keys=True))
    return 0


def _cmd_demo_mutate(args: argparse.Namespace) -> int:
    from autosynk.demo.mutate import mutate

    for line in mutate(Path(args.in_dir), args.seed):
        print(f"  {line}")
    return 0


def _cmd_demo_rollover(args: argparse.Namespace) -> int:
    from autosynk.demo.rollover import rollover

    for line in rollover(Path(args.in_dir), args.seed, reuse_group_ids=args.reuse_group_ids):
        print(f"  {line}")
    return 0


def _cmd_demo_serve(args: argparse.Namespace) -> int:
    from autosynk.ss12000_server import main_serve

    return int(main_serve(args.rest) or 0)


def _cmd_verify(args: argparse.Namespace) -> int:
    from autosynk.verify import main_verify

    return int(main_verify(args.rest))


def _cmd_db_upgrade(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    print(f"staging at revision {pipeline.staging_for(cfg).upgrade()}")
    return 0


def _cmd_runs(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    st = pipeline.staging_for(cfg)
    st.require_current()
    holder = st.lock_holder()
    print(f"lock: {'held by ' + holder if holder else 'free'}")
    for row in st.runs(args.limit):
        print(
            f"{row['run_id']}\t{row['kind']}\t{row['status']}\t{row['started_at']}\t"
            f"{row['committed_at'] or ''}\t{row['message'] or ''}"
        )
    return 0


def _cmd_unlock(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    st = pipeline.staging_for(cfg)
    if st.release(args.run_id):
        print(f"released the lock held by {args.run_id}")
        return 0
    print(f"the lock is not held by {args.run_id} (holder: {st.lock_holder() or 'nobody'})")
    return 1


def _cmd_history(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    st = pipeline.staging_for(cfg)
    from autosynk.identity import InvalidIdentity, normalise

    key = args.key
    with contextlib.suppress(InvalidIdentity):
        key = normalise(key).value
    for row in st.history(key):
        print(
            f"{row['committed_at']}\t{row['run_id']}\t{row['op']}\t{row['kind']}\t"
            f"{mask(row['a'])}\t{mask(row['b'])}"
        )
    return 0


def _cmd_housekeeping(args: argparse.Namespace) -> int:
    from autosynk.housekeeping import describe, evaluation_moment, housekeeping

    cfg = load_config(args.config)
    now = None
    if args.evaluation_date is not None:
        now = evaluation_moment(dt.date.fromisoformat(args.evaluation_date), cfg.timezone)
    result = housekeeping(cfg, dry_run=args.dry_run, now=now)
    for line in describe(result):
        print(line)
    print(f"report: {result['record']}")
    return 0


def _date(text: str) -> str:
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autosynk", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log everything")
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress lines (one per finished stage)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run one night end to end")
    run.add_argument("--config", required=True)
    run.add_argument("--run-id", help="resume or name a run (default: a new id)")
    run.add_argument("--total", action="store_true", help="send a re-baseline total")
    run.add_argument(
        "--no-commit",
        action="store_true",
        help="deliver without advancing the staging state (e.g. Unikum's test server)",
    )
    run.add_argument(
        "--target",
        metavar="NAME",
        help="deliver to this target of extra_targets (with --no-commit: e.g. a test server)",
    )
    run.add_argument(
        "--allow-mass-removal",
        action="store_true",
        help="do not hold this run to the removes guards (prefer --approve: it delivers "
        "exactly the plan a person read)",
    )
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="everything up to the plan and its report; deliver and commit nothing",
    )
    run.add_argument(
        "--evaluation-date",
        type=_date,
        metavar="YYYY-MM-DD",
        help="evaluate the register at this date (default: today in the configured time zone)",
    )
    run.add_argument(
        "--approve",
        metavar="PLAN",
        help="deliver exactly this refused plan's files, if the delivered state is still the "
        "one it was computed against",
    )
    run.set_defaults(func=_cmd_run, progress=True)

    year = sub.add_parser("school-year", help="the school-year change (läsårsbyte)")
    year_sub = year.add_subparsers(dest="school_year_command", required=True)
    year_plan = year_sub.add_parser(
        "plan", help="plan the change at its effective date: the checklist; deliver nothing"
    )
    year_plan.add_argument("--config", required=True)
    year_plan.add_argument("--school-year", required=True, metavar="YYYY/YY", help="e.g. 2027/28")
    year_plan.add_argument(
        "--effective-date",
        type=_date,
        metavar="YYYY-MM-DD",
        help="evaluate the register at this date (default: the school year's first day, "
        "the mapping's school_year_starts)",
    )
    year_plan.add_argument(
        "--mentor-links",
        choices=["yes", "no"],
        help="does the sync own mentor links (default: the mapping's mentor_links)",
    )
    year_plan.add_argument("--run-id", help="name the run (default: a new id)")
    year_plan.set_defaults(func=_cmd_school_year_plan, progress=True)
    year_apply = year_sub.add_parser("apply", help="deliver exactly this plan's files")
    year_apply.add_argument("--config", required=True)
    year_apply.add_argument("--plan", required=True)
    year_apply.set_defaults(func=_cmd_school_year_apply, progress=True)
    year_reject = year_sub.add_parser(
        "reject", help="drop this plan: nothing is delivered, the run lock is freed"
    )
    year_reject.add_argument("--config", required=True)
    year_reject.add_argument("--plan", required=True)
    year_reject.set_defaults(func=_cmd_school_year_reject)

    stage = sub.add_parser("stage", help="run one stage of a run (as a DAG task would)")
    stage.add_argument(
        "stage",
        choices=[
            "prepare",
            "extract",
            "transform",
            "delta",
            "write",
            "plan",
            "deliver",
            "commit",
            "report",
        ],
    )
    stage.add_argument("--config", required=True)
    stage.add_argument("--run-id", required=True)
    stage.add_argument(
        "--evaluation-date",
        type=_date,
        metavar="YYYY-MM-DD",
        help="prepare only: the date the run evaluates the register at (default: today)",
    )
    stage.set_defaults(func=_cmd_stage)

    demo = sub.add_parser("demo", help="the bundled demo municipality")
    demo_sub = demo.add_subparsers(dest="demo_command", required=True)
    gen = demo_sub.add_parser("generate", help="write SS 12000 list files for a demo municipality")
    gen.add_argument("--out", required=True)
    gen.add_argument("--seed", type=int, default=1)
    gen.add_argument("--scale", choices=["small", "medium", "large"], default="small")
    gen.set_defaults(func=_cmd_demo_generate)
    mut = demo_sub.add_parser("mutate", help="apply one realistic day of changes")
    mut.add_argument("--in", dest="in_dir", required=True)
    mut.add_argument("--seed", type=int, default=1)
    mut.set_defaults(func=_cmd_demo_mutate)
    roll = demo_sub.add_parser(
        "rollover", help="the register's own change to the next school year (1 July)"
    )
    roll.add_argument("--in", dest="in_dir", required=True)
    roll.add_argument("--seed", type=int, default=1)
    roll.add_argument(
        "--reuse-group-ids",
        action="store_true",
        help="keep each group's id and rename it (7A -> 8A) instead of new groups",
    )
    roll.set_defaults(func=_cmd_demo_rollover)
    serve = demo_sub.add_parser(
        "serve", help="serve a folder over the SS 12000 API", add_help=False
    )
    serve.add_argument("rest", nargs=argparse.REMAINDER)
    serve.set_defaults(func=_cmd_demo_serve)

    verify = sub.add_parser("verify", help="check Unikum files strictly", add_help=False)
    verify.add_argument("rest", nargs=argparse.REMAINDER)
    verify.set_defaults(func=_cmd_verify)

    db = sub.add_parser("db", help="staging database")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_sub.add_parser("upgrade", help="apply migrations")
    upgrade.add_argument("--config", required=True)
    upgrade.set_defaults(func=_cmd_db_upgrade)

    runs = sub.add_parser("runs", help="list recent runs and the lock")
    runs.add_argument("--config", required=True)
    runs.add_argument("--limit", type=int, default=20)
    runs.set_defaults(func=_cmd_runs)

    unlock = sub.add_parser("unlock", help="release the lock of a run that is no longer running")
    unlock.add_argument("run_id")
    unlock.add_argument("--config", required=True)
    unlock.set_defaults(func=_cmd_unlock)

    keeping = sub.add_parser("housekeeping", help="remove what is past retention")
    keeping.add_argument("--config", required=True)
    keeping.add_argument(
        "--dry-run", action="store_true", help="list what would be removed; remove nothing"
    )
    keeping.add_argument(
        "--evaluation-date",
        type=_date,
        metavar="YYYY-MM-DD",
        help="count ages as at the end of this day (default: now)",
    )
    keeping.set_defaults(func=_cmd_housekeeping)

    history = sub.add_parser("history", help="what Unikum was told about a person or object")
    history.add_argument("key", help="identity number or external id")
    history.add_argument("--config", required=True)
    history.set_defaults(func=_cmd_history)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "approve", None) and (
        args.total or args.dry_run or args.evaluation_date or args.run_id
    ):
        parser.error("--approve delivers a plan as it was made: it takes no other run options")
    if getattr(args, "stage", None) not in (None, "prepare") and args.evaluation_date:
        parser.error("--evaluation-date is given to prepare: the later stages read it from the run")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    _show_progress(quiet=args.quiet or not getattr(args, "progress", False), verbose=args.verbose)
    try:
        return int(args.func(args))
    except AutosynkError as exc:
        return _one_line_error(exc, args.verbose)
    except MemoryError:
        print(
            "error: out of memory: this register is too large for this machine's memory "
            "(see bench/RESULTS.md for sizes); nothing was delivered or committed",
            file=sys.stderr,
        )
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a failure not foreseen by type: still one line, no traceback
        return _one_line_error(exc, args.verbose)


def _one_line_error(exc: BaseException, verbose: bool) -> int:
    """``error: <one line>`` (``refused: ...`` for a guard) on stderr, the traceback before
    it with ``-v``; the run's plan, report and summary on stdout. Exit 3 for a refusal by a
    guard, else 1."""
    from autosynk.failure_report import explain, one_line

    if verbose:
        traceback.print_exception(exc, file=sys.stderr)
    known = explain(exc)
    if known is not None:
        text = str(known)  # several lines only where a configuration has several problems
    else:
        hint = "" if verbose else " (run with -v for the traceback)"
        text = f"unexpected {type(exc).__name__}: {one_line(exc)}{hint}"
    refused = isinstance(known, SafetyError)
    print(f"{'refused' if refused else 'error'}: {mask(text)}", file=sys.stderr)
    for note in getattr(exc, "__notes__", ()):
        # added by autosynk.failure_report.end_run
        if str(note).startswith(("plan: ", "report: ")):
            print(note)
        elif str(note).startswith("summary: "):
            print(f"  {note}")
    return EXIT_REFUSED if refused else EXIT_FAILED


def _show_progress(*, quiet: bool, verbose: bool) -> None:
    """Progress lines (``autosynk.progress``) on standard output, unless ``-q``."""
    progress = logging.getLogger("autosynk.progress")
    for handler in list(progress.handlers):
        progress.removeHandler(handler)
    if quiet:
        progress.setLevel(logging.WARNING)
        return
    progress.setLevel(logging.INFO)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    progress.addHandler(handler)
    progress.propagate = verbose


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
