"""The run summary: what a night did, in numbers, without personal data (spec §10)."""

from __future__ import annotations

import io
import json
import logging
from collections import Counter
from typing import Any

import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq

from autosynk.config import DirectoryTarget, RunConfig
from autosynk.staging.store import Staging
from autosynk.workspace import RunWorkspace, safe_run_dir, write_private

MAX_LISTED_QUARANTINE = 1000
log = logging.getLogger("autosynk")


def _frame(ws: RunWorkspace, *parts: str) -> pd.DataFrame | None:
    try:
        return pd.read_parquet(io.BytesIO(ws.read_bytes(*parts)))
    except FileNotFoundError:
        return None


def _counts(ws: RunWorkspace, column: str, *parts: str) -> dict[str, int] | None:
    """How often each value of ``column`` occurs in a Parquet file of the run (None: no
    such file), in the order values first occur; nulls are not counted. Read batch by
    batch, one column: a first night's millions of rows never sit in memory."""
    path = ws.path(*parts)
    if not path.exists():
        return None
    found: dict[str, int] = {}
    with path.open("rb") as handle:
        for batch in pq.ParquetFile(handle).iter_batches(columns=[column]):
            counted = pc.value_counts(batch.column(0).drop_null())
            values = counted.field("values").to_pylist()
            for value, count in zip(values, counted.field("counts").to_pylist(), strict=True):
                found[value] = found.get(value, 0) + count
    return found


def _rows(ws: RunWorkspace, *parts: str) -> int | None:
    """A Parquet file's rows, from its footer (None: no such file)."""
    path = ws.path(*parts)
    if not path.exists():
        return None
    with path.open("rb") as handle:
        return int(pq.ParquetFile(handle).metadata.num_rows)


def build_summary(
    cfg: RunConfig, st: Staging, run: dict[str, Any], ws: RunWorkspace
) -> dict[str, Any]:
    package = run.get("package") or {}
    nothing = bool(package.get("nothing_to_deliver"))
    counts: dict[str, Any] = {}
    by_kind = _counts(ws, "kind", "delta", "principals.parquet")
    if by_kind is not None:
        counts["principals_by_type"] = {str(k): int(v) for k, v in sorted(by_kind.items())}
    relation_counts: dict[str, dict[str, int]] = {}
    for operation, name in (("add", "adds.parquet"), ("remove", "removes.parquet")):
        by_type = _counts(ws, "type", "delta", name)
        for rel_type, count in (by_type or {}).items():
            relation_counts.setdefault(str(rel_type), {})[operation] = int(count)
    counts["relations_by_type"] = dict(sorted(relation_counts.items()))
    quarantine = _frame(ws, "mapped", "quarantine.parquet")
    quarantine_section: dict[str, Any] = {"quarantined": 0, "warnings": 0, "reasons": {}}
    if quarantine is not None and len(quarantine):
        errors = quarantine[quarantine["severity"] == "error"]
        warnings = quarantine[quarantine["severity"] == "warning"]
        quarantine_section = {
            "quarantined": len(errors),
            "warnings": len(warnings),
            "reasons": dict(Counter(errors["reason"]).most_common()),
            "warning_reasons": dict(Counter(warnings["reason"]).most_common()),
            "entries": errors.head(MAX_LISTED_QUARANTINE).to_dict("records"),
        }
    delta_counts = package.get("delta_counts", {})
    deliveries = [
        {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in d.items() if k != "id"}
        for d in st.deliveries(run["run_id"])
    ]
    status = run["status"]
    checklist = None
    if ws.exists("plan", "checklist.json"):
        checklist = ws.read_json("plan", "checklist.json")
    return {
        "checklist": checklist,
        "run_id": run["run_id"],
        "kind": run["kind"],
        "status": status,
        "municipality": cfg.municipality,
        "evaluation_date": run.get("evaluation_date"),
        "plan": run.get("plan"),
        "stages": run.get("stages") or {},
        "started_at": _iso(run.get("started_at")),
        "committed_at": _iso(run.get("committed_at")),
        "message": run.get("message"),
        "nothing_to_deliver": nothing,
        "note": "nothing to deliver: Unikum is already in step" if nothing else None,
        "files": package.get("files", []),
        "deliveries": deliveries,
        "late": any(d.get("late") for d in deliveries),
        "counts": {**counts, "delta": delta_counts, **_mapping_counts(ws)},
        "quarantine": quarantine_section,
    }


def _mapping_counts(ws: RunWorkspace) -> dict[str, Any]:
    protected = _rows(ws, "mapped", "protected.parquet")
    out: dict[str, Any] = {}
    if protected is not None:
        out["protected_persons_not_exported"] = protected
    return out


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def history(st: Staging, limit: int = 30) -> list[dict[str, Any]]:
    """Adds, changes and removes of the last ``limit`` runs that made a delta, oldest first."""
    points = []
    for run in reversed(st.runs(limit)):
        plan, counts = run.get("plan"), (run.get("counts") or {}).get("delta")
        if plan:
            totals = plan["totals"]
        elif counts:  # runs from before plans were kept
            totals = {
                "adds": counts.get("principals_new", 0) + counts.get("relations_added", 0),
                "changes": counts.get("principals_changed", 0),
                "removes": counts.get("principals_dropped", 0) + counts.get("relations_removed", 0),
            }
        else:
            continue
        points.append(
            {
                "run_id": run["run_id"],
                "status": run["status"],
                "started_at": _iso(run["started_at"]),
                **totals,
            }
        )
    return points


def write_reports(
    cfg: RunConfig, st: Staging, run: dict[str, Any], ws: RunWorkspace
) -> dict[str, Any]:
    """The run's summary and report from the run ledger (see :func:`write_summary`)."""
    summary = build_summary(cfg, st, run, ws)
    return {**write_summary(cfg, ws, summary, history(st)), "data": summary}


def write_summary(
    cfg: RunConfig,
    ws: RunWorkspace,
    summary: dict[str, Any],
    recent: list[dict[str, Any]] | None = None,
    *,
    latest: bool = True,
) -> dict[str, str | None]:
    """``run-summary.json`` and ``report.html`` in the run's work directory (and, for a
    local-folder target, beside the files); returns both paths (``summary``, ``html``;
    None for a report a full disk kept from being written). ``latest`` False keeps the
    target folder's ``run-summary.json`` and ``report.html`` (the latest run's) as they are:
    a run that never got the lock must not hide the report of the run that holds it."""
    from autosynk.report_html import render

    data = json.dumps(summary, ensure_ascii=False, indent=2, sort_keys=True, default=str).encode()
    contents = {"summary": data + b"\n", "html": render(summary, recent or []).encode()}
    names = {"summary": "run-summary.json", "html": "report.html"}
    ws.write_bytes(contents["summary"], names["summary"])
    written: dict[str, str | None] = {"summary": str(ws.path(names["summary"]))}
    try:
        ws.write_bytes(contents["html"], names["html"])
        written["html"] = str(ws.path(names["html"]))
    except OSError as exc:  # a full work base: the summary, written first, must be enough
        log.warning("run %s: report.html not written (%s)", ws.run_id, exc.strerror or exc)
        written["html"] = None
        del names["html"]
    if isinstance(cfg.target, DirectoryTarget):
        folder = cfg.target.path
        run_dir = safe_run_dir(ws.run_id)
        try:
            for what, name in names.items():
                stem, suffix = name.rsplit(".", 1)
                write_private(folder / f"{stem}-{run_dir}.{suffix}", contents[what])
                written[what] = str(folder / f"{stem}-{run_dir}.{suffix}")
                if latest:
                    write_private(folder / name, contents[what])
                    written[what] = str(folder / name)
        except OSError as exc:  # the target itself may be what failed tonight
            log.warning(
                "run summary and report not written to %s (%s); they are in %s",
                folder,
                exc.strerror or exc,
                ws.path(),
            )
            written.update({what: str(ws.path(name)) for what, name in names.items()})
    return written
