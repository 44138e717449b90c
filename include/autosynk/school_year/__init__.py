"""The school-year change (läsårsbyte): a plan a person reads, approves and applies.

The register is evaluated at the change's *effective date* (by default the first day of
the new school year as the mapping spec defines it, ``school_year_starts``); the delta
against the delivered state is frozen as a plan with its own change budget
(``safety.school_year``) and the checklist of spec §9 (:mod:`.checklist`); every such plan
waits for a person's approval, and a plan with blocking items cannot be applied. The run
holds the one run lock from the start until it is applied or rejected, so no nightly run
changes the delivered state under it. After it is applied, nightly runs evaluate the
register at the later of today and the effective date (:func:`autosynk.pipeline.prepare`).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from autosynk import delta as delta_engine
from autosynk import pipeline, plans
from autosynk.config import RunConfig
from autosynk.errors import ConfigError, StateError
from autosynk.mapping.spec import MappingSpec, load_mapping
from autosynk.mapping.values import school_year_of
from autosynk.progress import stage
from autosynk.school_year import checklist
from autosynk.staging import snapshot

KIND = "school-year"
CHECKLIST_FILE = ("plan", "checklist.json")
_YEAR = re.compile(r"^\s*(\d{4})\s*/\s*(\d{2}|\d{4})\s*$")


def parse_school_year(text: str) -> int:
    """``2027/28`` (or ``2027/2028``) -> 2027, the calendar year the school year starts in."""
    found = _YEAR.match(str(text))
    if not found:
        raise ConfigError(f"school year {text!r} is not of the form 2027/28")
    first, second = int(found.group(1)), found.group(2)
    if int(second) % 100 != (first + 1) % 100 or (len(second) == 4 and int(second) != first + 1):
        raise ConfigError(f"school year {text!r}: the second year must follow the first")
    return first


def label(year: int) -> str:
    """2027 -> ``2027/28``."""
    return f"{year}/{(year + 1) % 100:02d}"


def first_day(spec: MappingSpec, year: int) -> dt.date:
    """The first day of the school year starting in ``year`` (``school_year_starts``)."""
    return dt.date.fromisoformat(f"{year:04d}-{spec.school_year_starts}")


def effective_date(spec: MappingSpec, year: int, given: str | dt.date | None = None) -> str:
    """The change's effective date: ``given``, else the school year's first day; it must
    fall within that school year."""
    if given in (None, ""):
        return first_day(spec, year).isoformat()
    date = pipeline.evaluation_date_for_text(str(given))
    if school_year_of(date, spec.school_year_starts) != year:
        raise ConfigError(
            f"effective date {date} is not in the school year {label(year)} "
            f"(it starts on {first_day(spec, year)})"
        )
    return date


def prepare(
    cfg: RunConfig,
    run_id: str,
    *,
    school_year: str,
    effective: str | dt.date | None = None,
    dag_run_id: str | None = None,
) -> dict[str, Any]:
    """Start a school-year run: its register is evaluated at the effective date."""
    year = parse_school_year(school_year)
    date = effective_date(load_mapping(cfg.mapping), year, effective)
    result = pipeline.prepare(cfg, run_id, kind=KIND, dag_run_id=dag_run_id, evaluation_date=date)
    if result["evaluation_date"] != date:  # a retry keeps what the run started with
        raise StateError(
            f"run {run_id} was started for the effective date {result['evaluation_date']}, "
            f"not {date}: start a new run"
        )
    return {**result, "school_year": label(year)}


@stage("plan", lambda result: (sum(result["totals"].values()), "changes"))
def plan(cfg: RunConfig, run_id: str, *, mentor_links: bool | None = None) -> dict[str, Any]:
    """The school-year plan: the checklist, the school-year guards, always an approval."""
    st = pipeline.staging_for(cfg)
    st.acquire(run_id, cfg.staging.lock_wait_seconds)
    run = st.get_run(run_id)
    if run is None:
        raise StateError(f"run {run_id} is not in the run ledger: start it with prepare")
    if run["kind"] != KIND:
        raise StateError(f"run {run_id} is a {run['kind']} run, not a school-year change")
    if run["plan"] is not None:
        return plans.outline(run["plan"])
    spec = load_mapping(cfg.mapping)
    owned = spec.mentor_links if mentor_links is None else mentor_links
    ws = pipeline.workspace_for(cfg, run_id)
    meta = ws.read_json("delta", "delta.json")
    guards = cfg.safety.school_year
    items = _checklist(cfg, run_id, meta["base_run"], owned, guards.block_on_students_without_group)
    date = run["evaluation_date"]
    year = school_year_of(date, spec.school_year_starts)
    ws.write_json(
        {"school_year": label(year), "effective_date": date, "items": items}, *CHECKLIST_FILE
    )
    return plans.make_plan(
        cfg,
        run_id,
        limits=guards,
        overall_removes=False,
        needs_approval=True,
        blocking=checklist.blocking(items),
        extra={
            "school_year": label(year),
            "effective_date": date,
            "mentor_links_owned": owned,
            "checklist": checklist.outline(items),
        },
    )


def _checklist(
    cfg: RunConfig, run_id: str, base_run: str | None, owned: bool, block: bool
) -> list[dict[str, Any]]:
    st = pipeline.staging_for(cfg)
    ws = pipeline.workspace_for(cfg, run_id)
    principals, relations = snapshot.delivered_state(cfg.work_base, st, base_run, run_id)
    con = delta_engine.connection()
    try:
        delta_engine.view(
            con,
            "tp",
            pipeline.mapped_source(ws, "principals.parquet"),
            delta_engine.PRINCIPAL_COLUMNS,
        )
        delta_engine.view(con, "dr", relations, delta_engine.RELATION_COLUMNS)
        delta_engine.view(con, "dp", principals, delta_engine.DELIVERED_PRINCIPAL_COLUMNS)
        checklist.register_inputs(
            con,
            st.delivered_rows(("user", "class", "school")),
            pipeline.read_table(ws, "delta", "removes.parquet"),
            pipeline.read_table(ws, "delta", "adds.parquet"),
        )
        return checklist.compute(con, mentor_links_owned=owned, block_on_loose=block)
    finally:
        con.close()


def checklist_report(cfg: RunConfig, run_id: str) -> dict[str, Any]:
    """Write the plan's report (the checklist with the counts); its text for the approval."""
    run = pipeline.staging_for(cfg).get_run(run_id)
    if run is None or run["plan"] is None:
        raise StateError(f"run {run_id} has no plan yet: run the plan stage first")
    return pipeline.with_report(cfg, run_id, plans.outline(run["plan"]))


def read_checklist(cfg: RunConfig, run_id: str) -> dict[str, Any] | None:
    ws = pipeline.workspace_for(cfg, run_id)
    if not ws.exists(*CHECKLIST_FILE):
        return None
    found: dict[str, Any] = ws.read_json(*CHECKLIST_FILE)
    return found
