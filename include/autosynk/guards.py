"""The guards: does a run's delta look like a school day, or like a catastrophe?

Every principals row type (new, changed, dropped rows) and every relation type (adds,
removes) is measured against its limit (``safety:`` in the run configuration, see
:class:`autosynk.config.Guards`), and all relations removed together against
``max_remove_fraction``. A count trips its guard when it is above the limit's
``max_rows``, or at least ``min_rows`` and more than ``max_share`` of what is delivered
for its type. What a guard said is kept for every type, tripped or not: the report shows
each measure against its limit.

A first night (nothing delivered yet) and a total are not held to the adds guards;
``--allow-mass-removal`` waives the removes guards. This module is pure: counts in,
verdicts out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from autosynk.config import Guards, Limit

#: what the delta counts, by the guard operation it is measured by
PRINCIPAL_MEASURES = {"new": "add", "changed": "change", "dropped": "remove"}
RELATION_MEASURES = {"add": "add", "remove": "remove"}
ALL_RELATIONS = "all relation types"


@dataclass(frozen=True)
class GuardResult:
    """One guard's measure: ``count`` rows of ``operation`` on ``type`` against its limit."""

    scope: str  # principals | relations
    type: str
    operation: str  # add | change | remove
    count: int
    delivered: int
    max_share: float | None
    min_rows: int
    max_rows: int | None
    tripped: bool
    waived: str | None = None  # why the guard did not apply (first night, total, ...)

    @property
    def share(self) -> float | None:
        return self.count / self.delivered if self.delivered else None

    def describe(self) -> str:
        """One line for people: what was measured, against what, and what it means."""
        noun = {"add": "adds", "change": "changes", "remove": "removes"}[self.operation]
        measured = f"{self.scope} {self.type}: {self.count} {noun} of {self.delivered} delivered"
        if self.share is not None:
            measured += f" ({self.share:.1%})"
        limit = limit_text(self.max_share, self.min_rows, self.max_rows)
        if self.waived:
            return f"{measured}; not guarded ({self.waived})"
        return f"{measured}; limit {limit}" + ("; REFUSED" if self.tripped else "")

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "share": self.share, "text": self.describe()}


def limit_text(max_share: float | None, min_rows: int, max_rows: int | None) -> str:
    parts = []
    if max_share is not None:
        parts.append(f"{max_share:.0%} of what is delivered once at least {min_rows} rows")
    if max_rows is not None:
        parts.append(f"at most {max_rows} rows")
    return " and ".join(parts) or "none"


def trips(limit: Limit, count: int, delivered: int) -> bool:
    """Does ``count`` rows against ``delivered`` cross ``limit``?"""
    if limit.max_rows is not None and count > limit.max_rows:
        return True
    if limit.max_share is None or count == 0 or count < limit.min_rows:
        return False
    return delivered == 0 or count / delivered > limit.max_share


def evaluate(
    by_type: dict[str, dict[str, dict[str, int]]],
    guards: Guards,
    *,
    max_remove_fraction: float | None,
    min_removes_to_guard: int,
    first_night: bool = False,
    total: bool = False,
    allow_removes: bool = False,
) -> list[GuardResult]:
    """Every guard's measure for a delta's counts per type (see ``TableDelta.by_type``)."""

    def waived(operation: str) -> str | None:
        if operation == "add" and first_night:
            return "first night"
        if operation == "add" and total:
            return "total"
        if operation == "remove" and allow_removes:
            return "mass removal allowed"
        return None

    results = []
    for scope, measures in (("principals", PRINCIPAL_MEASURES), ("relations", RELATION_MEASURES)):
        for type_name, counts in sorted(by_type.get(scope, {}).items()):
            delivered = counts.get("delivered", 0)
            for measure, operation in measures.items():
                count = counts.get(measure, 0)
                if count == 0 and delivered == 0:
                    continue
                limit = guards.limit(type_name, operation)
                why = waived(operation)
                results.append(
                    GuardResult(
                        scope=scope,
                        type=type_name,
                        operation=operation,
                        count=count,
                        delivered=delivered,
                        max_share=limit.max_share,
                        min_rows=limit.min_rows,
                        max_rows=limit.max_rows,
                        tripped=why is None and trips(limit, count, delivered),
                        waived=why,
                    )
                )
    if max_remove_fraction is None:
        return results
    relations = by_type.get("relations", {}).values()
    removed = sum(c.get("remove", 0) for c in relations)
    delivered = sum(c.get("delivered", 0) for c in relations)
    overall = Limit(max_share=max_remove_fraction, min_rows=max(min_removes_to_guard, 1))
    why = waived("remove")
    results.append(
        GuardResult(
            scope="relations",
            type=ALL_RELATIONS,
            operation="remove",
            count=removed,
            delivered=delivered,
            max_share=overall.max_share,
            min_rows=overall.min_rows,
            max_rows=None,
            tripped=why is None and delivered > 0 and trips(overall, removed, delivered),
            waived=why,
        )
    )
    return results


def tripped(results: list[GuardResult]) -> list[GuardResult]:
    return [r for r in results if r.tripped]
