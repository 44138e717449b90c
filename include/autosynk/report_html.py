"""The run report for people: one self-contained HTML page beside ``run-summary.json``.

Inline CSS and an inline SVG chart, no scripts and nothing loaded from the network, so the
page opens the same from a mail attachment, a file share or the Airflow task log's path.
It shows the run's status and why, the plan and what each guard measured against its
limit, counts per type and operation, the last runs' adds, changes and removes as a chart,
quarantined records by reason (ids masked), warnings, files with sizes and checksums, and
time per stage. Built from the run summary only: no personal data that the summary does
not already hold, and identity numbers masked again on the way out.
"""

from __future__ import annotations

import math
from collections import defaultdict
from html import escape
from typing import Any

from autosynk.identity import mask, mask_shaped

#: the chart's series: key, label, colour
SERIES = (
    ("adds", "adds", "#2e7d32"),
    ("changes", "changes", "#ef8f00"),
    ("removes", "removes", "#c62828"),
)
MAX_LISTED_PER_REASON = 50

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem;color:#1d2733;
background:#fff;max-width:72rem}
h1{font-size:1.5rem;margin:0 0 .25rem}h2{font-size:1.15rem;margin:2rem 0 .5rem;
border-bottom:1px solid #d7dde4;padding-bottom:.25rem}
.meta{color:#4f5d6b;margin:0 0 1rem}
.status{display:inline-block;padding:.35rem .8rem;border-radius:.3rem;font-weight:600;color:#fff}
.ok{background:#2e7d32}.refused{background:#c62828}.waiting{background:#ef8f00}
.failed{background:#6a1b9a}.neutral{background:#455a64}
table{border-collapse:collapse;margin:.5rem 0;font-size:.92rem}
th,td{border:1px solid #d7dde4;padding:.3rem .6rem;text-align:left;vertical-align:top}
th{background:#f1f4f7}td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.tripped td{background:#fdecea;font-weight:600}tr.waived td{color:#6b7785}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85rem;word-break:break-all}
.why{background:#fdecea;border-left:4px solid #c62828;padding:.6rem 1rem;margin:1rem 0}
.note{background:#f1f4f7;border-left:4px solid #455a64;padding:.6rem 1rem;margin:1rem 0}
.legend span{display:inline-block;margin-right:1rem}
.legend i{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:-1px}
"""

_STATUS_CLASS = {
    "committed": "ok",
    "planned": "ok",
    "delivered": "ok",
    "approved": "waiting",
    "refused": "refused",
    "rejected": "refused",
    "awaiting-approval": "waiting",
    "blocked": "refused",
    "dry-run": "neutral",
    "failed": "failed",
}

_STATUS_TEXT = {
    "committed": "delivered and committed",
    "refused": "refused by its guards: waiting for approval, nothing delivered",
    "awaiting-approval": "waiting for approval, nothing delivered",
    "rejected": "rejected: nothing delivered",
    "blocked": "blocked: this plan cannot be applied, nothing delivered",
    "dry-run": "dry run: nothing delivered, nothing committed",
    "failed": "failed: nothing committed",
    "approved": "approved, being delivered",
    "delivered": "delivered, not committed",
}


def _cell(value: Any, numeric: bool = False) -> str:
    text = "" if value is None else str(value)
    return f'<td class="n">{escape(text)}</td>' if numeric else f"<td>{escape(text)}</td>"


def _table(headers: list[str], rows: list[list[Any]], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(_cell(v, i in numeric) for i, v in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render(summary: dict[str, Any], history: list[dict[str, Any]]) -> str:
    """The whole page for one run's ``summary`` and the recent runs' ``history``."""
    status = str(summary.get("status") or "unknown")
    plan = summary.get("plan") or None
    title = f"autosynk: {summary.get('municipality', '')}, run {summary.get('run_id', '')}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(str(summary.get('municipality', '')))}: run report</h1>",
        '<p class="meta">'
        + " · ".join(
            escape(str(x))
            for x in (
                f"run {summary.get('run_id')}",
                f"{summary.get('kind')}",
                f"register evaluated at {summary.get('evaluation_date') or 'unknown'}",
                f"started {summary.get('started_at')}",
            )
        )
        + "</p>",
        f'<p><span class="status {_STATUS_CLASS.get(status, "neutral")}" id="status">'
        f"{escape(status)}</span> {escape(_STATUS_TEXT.get(status, ''))}</p>",
    ]
    parts += _why(summary, plan)
    parts += _checklist_section(summary.get("checklist"))
    parts += _plan_section(plan)
    parts += _counts_section(summary, plan)
    parts += _chart_section(history, str(summary.get("run_id")))
    parts += _quarantine_section(summary.get("quarantine") or {})
    parts += _files_section(summary)
    parts += _stages_section(summary.get("stages") or {})
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _why(summary: dict[str, Any], plan: dict[str, Any] | None) -> list[str]:
    out = []
    message = summary.get("message")
    tripped = (plan or {}).get("tripped") or []
    blocking = (plan or {}).get("blocking") or []
    if blocking:
        items = "".join(f"<li>{escape(mask(str(b)))}</li>" for b in blocking)
        out.append(
            '<div class="why"><strong>Blocked: this plan cannot be applied.</strong>'
            f"<ul>{items}</ul>Fix the register, then make a new plan.</div>"
        )
    if tripped and summary.get("status") in ("refused", "rejected", "dry-run", "blocked"):
        items = "".join(f"<li>{escape(mask(str(t)))}</li>" for t in tripped)
        head = "Would be refused" if summary.get("status") == "dry-run" else "Refused"
        extra = f"<p>{escape(mask(str(message)))}</p>" if summary["status"] == "rejected" else ""
        out.append(
            f'<div class="why"><strong>{head} by its guards:</strong><ul>{items}</ul>{extra}</div>'
        )
    elif message:
        out.append(f'<div class="why"><strong>Why:</strong> {escape(mask(str(message)))}</div>')
    if summary.get("nothing_to_deliver"):
        out.append('<div class="note">Nothing to deliver: Unikum is already in step.</div>')
    if plan and summary.get("status") in ("refused", "awaiting-approval", "dry-run"):
        verb = "would be refused" if plan.get("refused") else "would pass every guard"
        if summary.get("status") == "dry-run":
            out.append(f'<div class="note">Dry run: a real run {verb}.</div>')
        else:
            plan_id = escape(plan["plan_id"])
            command = (
                f"autosynk school-year apply --config &lt;config&gt; --plan {plan_id}"
                if plan.get("school_year")
                else f"autosynk run --config &lt;config&gt; --approve {plan_id}"
            )
            out.append(
                f'<div class="note">To deliver exactly this plan: <code>{command}</code>, or '
                "approve the run's approval task in Airflow. Reject it, or let it time out, "
                "and nothing is delivered.</div>"
            )
    return out


_ITEM_CLASS = {
    "ok": "ok",
    "info": "neutral",
    "removed": "neutral",
    "manual": "waiting",
    "attention": "waiting",
    "blocking": "refused",
}
MAX_LISTED_PER_ITEM = 200


def _checklist_section(checklist: dict[str, Any] | None) -> list[str]:
    """The school-year checklist (spec §9), item by item, lists masked and cut short."""
    if not checklist:
        return []
    out = [
        f"<h2>School-year checklist: {escape(str(checklist.get('school_year')))}, effective "
        f"{escape(str(checklist.get('effective_date')))}</h2>",
        '<table id="checklist"><thead><tr><th>item</th><th>count</th><th>status</th>'
        "</tr></thead><tbody>",
    ]
    for item in checklist.get("items", []):
        status = str(item["status"])
        out.append(
            f'<tr><td><a href="#item-{escape(item["id"])}">{escape(item["title"])}</a></td>'
            f'<td class="n">{int(item["count"])}</td><td><span class="status '
            f'{_ITEM_CLASS.get(status, "neutral")}">{escape(status)}</span></td></tr>'
        )
    out.append("</tbody></table>")
    for item in checklist.get("items", []):
        out.append(f'<h3 id="item-{escape(item["id"])}">{escape(item["title"])}</h3>')
        if item.get("note"):
            out.append(f"<p>{escape(mask(str(item['note'])))}</p>")
        rows = item.get("rows") or []
        if not rows:
            out.append("<p>None.</p>")
            continue
        shown = [[mask_shaped(str(v)) for v in row] for row in rows[:MAX_LISTED_PER_ITEM]]
        out.append(_table([str(c) for c in item["columns"]], shown))
        if len(rows) > MAX_LISTED_PER_ITEM:
            out.append(
                f"<p>… and {len(rows) - MAX_LISTED_PER_ITEM} more in "
                "<code>plan/checklist.json</code> in the run's work directory.</p>"
            )
    return out


def _plan_section(plan: dict[str, Any] | None) -> list[str]:
    if not plan:
        return []
    out = [
        "<h2>Plan and guards</h2>",
        f'<p>Plan <code id="plan-id">{escape(plan["plan_id"])}</code>, computed against the '
        f"delivered state of run <code>{escape(str(plan.get('base_run') or 'none'))}</code>"
        + (
            f"; approved by {escape(str(plan['approved_by']))} at "
            f"{escape(str(plan.get('approved_at')))}"
            if plan.get("approved_by")
            else ""
        )
        + ".</p>",
    ]
    rows = []
    for guard in plan.get("guards", []):
        share = guard.get("share")
        limit_parts = []
        if guard.get("max_share") is not None:
            limit_parts.append(f"{guard['max_share']:.0%} (from {guard['min_rows']} rows)")
        if guard.get("max_rows") is not None:
            limit_parts.append(f"≤ {guard['max_rows']} rows")
        verdict = (
            f"not guarded: {guard['waived']}"
            if guard.get("waived")
            else ("REFUSED" if guard.get("tripped") else "ok")
        )
        rows.append(
            (
                "tripped" if guard.get("tripped") else ("waived" if guard.get("waived") else ""),
                [
                    guard["scope"],
                    guard["type"],
                    guard["operation"],
                    guard["count"],
                    guard["delivered"],
                    "" if share is None else f"{share:.1%}",
                    " and ".join(limit_parts) or "none",
                    verdict,
                ],
            )
        )
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "scope",
            "type",
            "operation",
            "count",
            "delivered",
            "share",
            "limit",
            "verdict",
        )
    )
    body = "".join(
        f'<tr class="{cls}">'
        + "".join(_cell(v, i in (3, 4, 5)) for i, v in enumerate(values))
        + "</tr>"
        for cls, values in rows
    )
    out.append(f'<table id="guards"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>')
    return out


def _counts_section(summary: dict[str, Any], plan: dict[str, Any] | None) -> list[str]:
    out = ["<h2>Counts per type and operation</h2>"]
    if plan:
        principals = plan.get("counts", {}).get("principals", {})
        relations = plan.get("counts", {}).get("relations", {})
        out.append(
            _table(
                ["principals row type", "new", "changed", "dropped", "delivered before"],
                [
                    [k, c["new"], c["changed"], c["dropped"], c["delivered"]]
                    for k, c in principals.items()
                ],
                {1, 2, 3, 4},
            )
        )
        out.append(
            _table(
                ["relation type", "add", "remove", "delivered before"],
                [[k, c["add"], c["remove"], c["delivered"]] for k, c in relations.items()],
                {1, 2, 3},
            )
        )
    else:
        counts = summary.get("counts") or {}
        by_type = counts.get("relations_by_type") or {}
        out.append(
            _table(
                ["relation type", "add", "remove"],
                [[k, v.get("add", 0), v.get("remove", 0)] for k, v in by_type.items()],
                {1, 2},
            )
        )
    protected = (summary.get("counts") or {}).get("protected_persons_not_exported")
    if protected is not None:
        out.append(f"<p>Persons with protected identity, not exported: {int(protected)}.</p>")
    return out


def _chart_section(history: list[dict[str, Any]], current: str) -> list[str]:
    out = ["<h2>The last runs: adds, changes and removes</h2>"]
    if not history:
        out.append("<p>No runs with a delta yet.</p>")
        return out
    out.append(chart_svg(history, current))
    legend = "".join(
        f'<span><i style="background:{colour}"></i>{label}</span>' for _, label, colour in SERIES
    )
    out.append(f'<p class="legend">{legend} (bar heights on a logarithmic scale)</p>')
    return out


def chart_svg(history: list[dict[str, Any]], current: str) -> str:
    """Grouped bars per run, heights ∝ log10(1 + count), the current run outlined."""
    width, height, left, bottom, top = 760, 240, 56, 28, 12
    plot_w, plot_h = width - left - 8, height - bottom - top
    peak = max((max(p[k] for k, _, _ in SERIES) for p in history), default=0)
    scale = math.log10(1 + peak) or 1.0
    slot = plot_w / max(len(history), 1)
    bar = max(min(slot / 4, 14.0), 1.0)
    items = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="chart" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" '
        'aria-label="adds, changes and removes of the last runs">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
    ]
    for power in range(int(math.log10(1 + peak)) + 1 if peak else 1):
        y = top + plot_h - plot_h * math.log10(1 + 10**power) / scale
        items.append(
            f'<line x1="{left}" x2="{width - 8}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e8ee"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end" '
            f'fill="#4f5d6b">{10**power:,}</text>'
        )
    items.append(
        f'<line x1="{left}" x2="{width - 8}" y1="{top + plot_h}" y2="{top + plot_h}" '
        'stroke="#4f5d6b"/>'
    )
    for i, point in enumerate(history):
        x0 = left + i * slot + (slot - 3 * bar) / 2
        if point["run_id"] == current:
            items.append(
                f'<rect x="{left + i * slot + 1:.1f}" y="{top}" width="{slot - 2:.1f}" '
                f'height="{plot_h}" fill="#f1f4f7" stroke="#90a4ae"/>'
            )
        for j, (key, label, colour) in enumerate(SERIES):
            value = int(point[key])
            h = plot_h * math.log10(1 + value) / scale
            items.append(
                f'<rect class="bar {key}" x="{x0 + j * bar:.1f}" y="{top + plot_h - h:.1f}" '
                f'width="{bar:.1f}" height="{h:.1f}" fill="{colour}">'
                f"<title>{escape(point['run_id'])}: {value} {label}</title></rect>"
            )
    items.append(
        f'<text x="{left}" y="{height - 8}" font-size="10" fill="#4f5d6b">oldest</text>'
        f'<text x="{width - 8}" y="{height - 8}" font-size="10" text-anchor="end" '
        'fill="#4f5d6b">newest</text></svg>'
    )
    return "".join(items)


def _quarantine_section(quarantine: dict[str, Any]) -> list[str]:
    out = ["<h2>Quarantined records</h2>"]
    reasons = quarantine.get("reasons") or {}
    if not reasons:
        out.append("<p>None: every record could be sent.</p>")
    else:
        out.append(
            f"<p>{int(quarantine.get('quarantined', 0))} records were not sent; each keeps "
            "what Unikum was last told about it.</p>"
        )
        listed: dict[str, list[str]] = defaultdict(list)
        for entry in quarantine.get("entries") or []:
            ids = listed[entry.get("reason", "")]
            if len(ids) < MAX_LISTED_PER_REASON:
                ids.append(f"{entry.get('entity')} {mask_shaped(str(entry.get('source_id')))}")
        out.append(
            _table(
                ["reason", "records", "which (masked, at most 50)"],
                [
                    [mask_shaped(str(reason)), count, ", ".join(listed.get(reason, []))]
                    for reason, count in reasons.items()
                ],
                {1},
            )
        )
    warnings = quarantine.get("warning_reasons") or {}
    out.append("<h2>Warnings (transliterations and other changed values)</h2>")
    if warnings:
        out.append(
            _table(["warning", "values"], [[mask(str(k)), v] for k, v in warnings.items()], {1})
        )
    else:
        out.append("<p>None.</p>")
    return out


def _files_section(summary: dict[str, Any]) -> list[str]:
    out = ["<h2>Files</h2>"]
    files = summary.get("files") or []
    if not files:
        out.append("<p>No data files.</p>")
        return out
    delivered = {d.get("name"): d for d in summary.get("deliveries") or []}
    rows = []
    for f in files:
        d = delivered.get(f["name"])
        where = d.get("remote_path") if d else "not delivered"
        rows.append([f["name"], f["size"], f["sha256"], where])
    out.append(_table(["file", "bytes", "sha256", "delivered to"], rows, {1}))
    return out


def _stages_section(stages: dict[str, Any]) -> list[str]:
    out = ["<h2>Time per stage</h2>"]
    if not stages:
        out.append("<p>No stage finished.</p>")
        return out
    rows = [
        [name, f"{s['seconds']:.1f}", "" if s.get("count") is None else f"{s['count']} {s['unit']}"]
        for name, s in stages.items()
    ]
    total = sum(s["seconds"] for s in stages.values())
    rows.append(["all stages", f"{total:.1f}", ""])
    out.append(_table(["stage", "seconds", "handled"], rows, {1, 2}))
    return out
