"""The run summary: what a night did, in numbers, without personal data (spec §10)."""

from __future__ import annotations

import io
import json
import logging
from collections import Counter
from typing import Any

import pandas as pd

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


def build_summary(
    cfg: RunConfig, st: Staging, run: dict[str, Any], ws: RunWorkspace
) -> dict[str, Any]:
    package = run.get("package") or {}
    nothing = bool(package.get("nothing_to_deliver"))
    counts: dict[str, Any] = {}
    principals = _frame(ws, "delta", "principals.parquet")
    if principals is not None:
        by_kind = principals["kind"].value_counts()
        counts["principals_by_type"] = {str(k): int(v) for k, v in sorted(by_kind.items())}
    relation_counts: dict[str, dict[str, int]] = {}
    for operation, name in (("add", "adds.parquet"), ("remove", "removes.parquet")):
        frame = _frame(ws, "delta", name)
        if frame is not None:
            for rel_type, count in frame["type"].value_counts().items():
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
    return {
        "run_id": run["run_id"],
        "kind": run["kind"],
        "status": status,
        "municipality": cfg.municipality,
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
    protected = _frame(ws, "mapped", "protected.parquet")
    out: dict[str, Any] = {}
    if protected is not None:
        out["protected_persons_not_exported"] = len(protected)
    return out


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def write_summary(cfg: RunConfig, ws: RunWorkspace, summary: dict[str, Any]) -> str:
    data = json.dumps(summary, ensure_ascii=False, indent=2, sort_keys=True, default=str).encode()
    ws.write_bytes(data + b"\n", "run-summary.json")
    where = str(ws.path("run-summary.json"))
    if isinstance(cfg.target, DirectoryTarget):
        folder = cfg.target.path
        try:
            write_private(folder / f"run-summary-{safe_run_dir(ws.run_id)}.json", data + b"\n")
            write_private(folder / "run-summary.json", data + b"\n")
            where = str(folder / "run-summary.json")
        except OSError as exc:  # the target itself may be what failed tonight
            log.warning(
                "run summary not written to %s (%s); it is in %s",
                folder,
                exc.strerror or exc,
                where,
            )
    return where
