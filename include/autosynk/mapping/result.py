"""What the mapping gives: rows, relations, quarantine entries, protected persons, counts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True)
class QuarantineEntry:
    entity: str  # organisation | group | person | duty | activity | directory
    source_id: str
    reason: str
    severity: str = "error"  # error: not sent, held; warning: sent, reported


@dataclass
class Mapped:
    """What one night's register says Unikum should hold."""

    #: (kind, key, source_id, row): the row's fields joined by tabs, row type last
    principals: list[tuple[str, str, str, str]] = field(default_factory=list)
    #: (type, first party, second party)
    relations: set[tuple[str, str, str]] = field(default_factory=set)
    quarantine: list[QuarantineEntry] = field(default_factory=list)
    #: (source_id, key or "") of protected persons: forgotten if ever delivered
    protected: list[tuple[str, str]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
