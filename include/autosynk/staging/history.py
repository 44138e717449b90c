"""A key's history: its history rows, completed from the delivered state.

A commit writes history rows only for what the delivered state cannot show once it has
moved on (a principal's change, delete or forget; a relation's remove or forget), each
with ``since_run``, the run that had added what it changed or removed. The adds are in the
delivered state itself (``delivered_principal.added_run``, ``delivered_relation.run_id``)
or in ``since_run``. So a key's events are:

- every history row naming the key (change, delete, forget, remove; and, from before
  revision 0002, upsert and add);
- for a row with ``since_run``: the add (``upsert`` / ``add``) in that run;
- for the key's delivered row: its ``upsert`` in ``added_run`` and, when ``run_id``
  differs, its ``change`` in ``run_id``;
- for each delivered relation naming the key: its ``add`` in its ``run_id``.

An event counts once per (run, scope, put-or-drop, kind, a, b), a recorded row first, so
rows from before revision 0002 and derived events never repeat each other. Events are
ordered by their run's commit time, then within a run as a commit applies them (principal
deletes, principal upserts, relation removes, relation adds), then by kind, a, b. Runs
missing from the run ledger are left out, as a join with it always did.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: run_id, scope, op, kind, a, b
Event = tuple[str, str, str, str, str, str]

#: the op that adds what a scope's row changes or removes
_ADD_OP = {"principal": "upsert", "relation": "add"}
#: an op puts something into the delivered state or drops it from it
_OP_CLASS = {
    "upsert": "put",
    "change": "put",
    "add": "put",
    "delete": "drop",
    "forget": "drop",
    "remove": "drop",
}
#: within one run, the order in which a commit applies its changes
_APPLY_ORDER = {
    ("principal", "drop"): 0,
    ("principal", "put"): 1,
    ("relation", "drop"): 2,
    ("relation", "put"): 3,
}


def events(
    key: str,
    recorded: Iterable[tuple[str, str, str, str, str, str, str | None]],
    principal: tuple[str, str, str] | None,
    relations: Iterable[tuple[str, str, str, str]],
) -> list[Event]:
    """The key's events, each once (unordered).

    ``recorded``: its history rows (run_id, scope, op, kind, a, b, since_run), in id order;
    ``principal``: its delivered row (kind, added_run, run_id), if any; ``relations``: the
    delivered relations naming it (run_id, type, a, b).
    """
    found: list[Event] = []
    for run_id, scope, op, kind, a, b, since in recorded:
        found.append((run_id, scope, op, kind, a, b))
        if since is not None:
            found.append((since, scope, _ADD_OP[scope], kind, a, b))
    if principal is not None:
        kind, added_run, run_id = principal
        found.append((added_run, "principal", "upsert", kind, key, ""))
        if run_id != added_run:
            found.append((run_id, "principal", "change", kind, key, ""))
    found.extend((run_id, "relation", "add", kind, a, b) for run_id, kind, a, b in relations)
    seen: set[Event] = set()
    out: list[Event] = []
    for event in found:
        run_id, scope, op, kind, a, b = event
        identity = (run_id, scope, _OP_CLASS[op], kind, a, b)
        if identity not in seen:
            seen.add(identity)
            out.append(event)
    return out


def ordered(found: Iterable[Event], committed: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The events of committed runs as history dicts, oldest first.

    ``committed``: run_id -> committed_at for the runs in the run ledger.
    """
    out = [
        {
            "run_id": run_id,
            "committed_at": committed[run_id],
            "scope": scope,
            "op": op,
            "kind": kind,
            "a": a,
            "b": b,
        }
        for run_id, scope, op, kind, a, b in found
        if run_id in committed
    ]
    out.sort(
        key=lambda e: (
            e["committed_at"] is None,  # a ledger row without a commit time: last
            e["committed_at"] or 0,
            e["run_id"],
            _APPLY_ORDER[(e["scope"], _OP_CLASS[e["op"]])],
            e["kind"],
            e["a"],
            e["b"],
        )
    )
    return out
