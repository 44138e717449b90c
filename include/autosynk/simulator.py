"""A small model of Unikum's importer, to test what a series of deliveries does to it.

It applies ``.principals`` and ``.relations`` text the way spec §1-§5 says Unikum does:
a principals row upserts its object (the whole row overwrites), ``add`` creates a
relation, ``remove`` deletes it when present, and a row naming an object Unikum does not
know is an import error (recorded in :attr:`UnikumModel.errors`, the row skipped).
Relations made by hand in Unikum (``add_manual``) are not the sync's business: any
``remove`` that hits one is recorded in :attr:`UnikumModel.removed_manual`, never silently.

Independent of the writer and of ``autosynk.verify`` on purpose: its own tiny parser.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from autosynk.identity import mask_shaped

Origin = Literal["sync", "manual"]
Relation = tuple[str, str, str]

_ROW_KEY_FIELD = {"user": 4, "class": 1, "school": 1}
_ROW_FIELDS = {"user": 19, "class": 7, "school": 15}
# Second parties that are Unikum's organisation id rather than an object of the files.
_ORG_SECOND = {"school_in_org"}
_ORG_OR_OBJECT_SECOND = {"administrator_for"}
_RELATION_TYPES = {
    "school_in_org",
    "class_in_school",
    "student_in_school",
    "staff_in_school",
    "student_in_class",
    "teacher_in_class",
    "mentor_for",
    "guardian_for",
    "external_user_in_school",
    "administrator_for",
}


@dataclass(frozen=True)
class UnikumObject:
    kind: str
    fields: tuple[str, ...]


@dataclass
class UnikumModel:
    """What Unikum holds: objects by key (personnummer or external id) and relations."""

    organisations: set[str] = field(default_factory=set)
    relation_columns: tuple[str, str, str, str] = ("operation", "type", "first", "second")
    objects: dict[str, UnikumObject] = field(default_factory=dict)
    origins: dict[Relation, Origin] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    removed_manual: list[Relation] = field(default_factory=list)

    def apply(self, principals_text: str, relations_text: str) -> None:
        """Import one delivery: principals first, then relations in file order."""
        for number, line in _lines(principals_text):
            self._apply_principal(number, line)
        for number, line in _lines(relations_text):
            self._apply_relation(number, line)

    def add_manual(self, rel_type: str, first: str, second: str) -> None:
        """A relation an administrator made by hand in Unikum."""
        self.origins[(rel_type, first, second)] = "manual"

    def relations(self, origin: Origin | None = None) -> set[Relation]:
        return {rel for rel, made in self.origins.items() if origin in (None, made)}

    def snapshot(self) -> dict[str, Any]:
        """A comparable copy of the whole state (objects, relations with origin)."""
        return {
            "objects": {key: (obj.kind, obj.fields) for key, obj in self.objects.items()},
            "relations": dict(self.origins),
        }

    def _error(self, where: str, number: int, message: str) -> None:
        self.errors.append(mask_shaped(f"{where}:{number}: {message}"))

    def _apply_principal(self, number: int, line: str) -> None:
        fields = tuple(line.split("\t"))
        kind = fields[-1]
        if kind not in _ROW_FIELDS or len(fields) != _ROW_FIELDS[kind]:
            self._error("principals", number, f"unreadable {kind[:20]!r} row")
            return
        key = fields[_ROW_KEY_FIELD[kind] - 1]
        if not key:
            self._error("principals", number, f"{kind} row without a key")
            return
        held = self.objects.get(key)
        if held is not None and held.kind != kind:
            self._error("principals", number, f"{key} is a {held.kind}, not a {kind}")
            return
        self.objects[key] = UnikumObject(kind, fields)

    def _apply_relation(self, number: int, line: str) -> None:
        values = line.split("\t")
        if len(values) != len(self.relation_columns):
            self._error("relations", number, "wrong number of fields")
            return
        row = dict(zip(self.relation_columns, values, strict=True))
        operation, rel_type = row["operation"], row["type"]
        relation = (rel_type, row["first"], row["second"])
        if operation not in ("add", "remove") or rel_type not in _RELATION_TYPES:
            self._error("relations", number, f"unknown {operation[:10]!r} {rel_type[:30]!r}")
            return
        if rel_type == "school_in_org":
            self.organisations.add(row["second"])
        missing = [party for party in self._parties(relation) if party not in self.objects]
        if missing:
            self._error("relations", number, f"{operation} {rel_type}: unknown {missing[0]}")
            return
        if operation == "add":
            self.origins.setdefault(relation, "sync")  # a hand-made twin stays manual
            return
        if self.origins.get(relation) == "manual":
            self.removed_manual.append(relation)
        self.origins.pop(relation, None)

    def _parties(self, relation: Relation) -> list[str]:
        rel_type, first, second = relation
        if rel_type in _ORG_SECOND:
            return [first]
        if rel_type in _ORG_OR_OBJECT_SECOND and second in self.organisations:
            return [first]
        return [first, second]


def _lines(text: str) -> list[tuple[int, str]]:
    return [
        (number, line.rstrip("\r"))
        for number, line in enumerate(text.split("\n"), start=1)
        if line.strip()
    ]
