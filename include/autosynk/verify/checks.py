"""The rules of Unikum's import files (spec §2-§4, §6), checked line by line and field by field.

Written from the spec alone, not from the writer or the mapping: the tables below repeat
the contract on purpose, so a wrong table elsewhere is caught here.

Known state (``--known-state``) is a JSON file describing what Unikum already holds::

    {"objects": ["SKOLA-1", "19900101-0017", ...],     # ids and personnummer
     "relations": [["student_in_class", "19900101-0017", "KLASS-1A"], ...],
     "organisations": ["KOMMUN-1"]}                       # optional

Relations in a delta may name objects delivered earlier (listed in ``objects``); a
``remove`` must name a relation listed in ``relations``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from personnummer import personnummer as pnr_lib

from autosynk.errors import ConfigError
from autosynk.verify.reader import TextFile, Violation

USER, CLASS, SCHOOL = "user", "class", "school"
FIELD_COUNTS = {USER: 19, CLASS: 7, SCHOOL: 15}
USER_BOOLEANS = (12, 13, 14, 15)
USER_RESERVED = (17, 18)
REQUIRED = {USER: (1, 2, 4), CLASS: (1, 2), SCHOOL: (1, 3, 4)}
KEY_FIELD = {USER: 4, CLASS: 1, SCHOOL: 1}

SCHOOL_FORMS = frozenset(
    {
        "se.forskoleverksamhet.forskola",
        "se.grundskoleutbildning.grundskola",
        "se.grundskoleutbildning.sarskola.grundsarskola",
        "se.gymnasieutbildning.gymnasieskola",
        "se.vuxenutbildning",
    }
)

# Party kinds: an object of that row type, or ORG (the organisation id, not an object).
ORG = "organisation"
RELATION_PARTIES: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "school_in_org": (frozenset({SCHOOL}), frozenset({ORG})),
    "class_in_school": (frozenset({CLASS}), frozenset({SCHOOL})),
    "student_in_school": (frozenset({USER}), frozenset({SCHOOL})),
    "staff_in_school": (frozenset({USER}), frozenset({SCHOOL})),
    "student_in_class": (frozenset({USER}), frozenset({CLASS})),
    "teacher_in_class": (frozenset({USER}), frozenset({CLASS})),
    "mentor_for": (frozenset({USER}), frozenset({USER})),
    "guardian_for": (frozenset({USER}), frozenset({USER})),
    "external_user_in_school": (frozenset({USER}), frozenset({SCHOOL})),
    "administrator_for": (frozenset({USER}), frozenset({ORG, SCHOOL, CLASS})),
}

# Dependency tiers of spec §4: adds go up the tiers, removes come down them.
TIER = {
    "school_in_org": 0,
    "class_in_school": 1,
    "student_in_school": 2,
    "staff_in_school": 2,
    "student_in_class": 3,
    "teacher_in_class": 3,
    "external_user_in_school": 4,
    "guardian_for": 5,
    "mentor_for": 6,
    "administrator_for": 7,
}

RELATION_COLUMNS = ("operation", "type", "first", "second")
_PNR_SHAPE = re.compile(r"^(\d{4})(\d{2})(\d{2})-\d{4}$")
_TF_SHAPE = re.compile(r"^(\d{4})(\d{2})(\d{2})-TF\d{2}$")
_SCHOOL_ID = re.compile(r"^\d{8}$")
_PAST = {"add": "added", "remove": "removed"}

Relation = tuple[str, str, str]
#: report(line, field, code, message)
_Reporter = Callable[[int, int | None, str, str], None]


@dataclass(frozen=True)
class KnownState:
    """What Unikum holds before this delivery (see the module docstring)."""

    objects: frozenset[str] = frozenset()
    relations: frozenset[Relation] = frozenset()
    organisations: frozenset[str] = frozenset()


def load_known_state(path: Path) -> KnownState:
    """Read a known-state JSON file; a malformed one is a :class:`ConfigError`."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"known state {path}: cannot read: {exc}") from None
    if not isinstance(raw, dict) or set(raw) - {"objects", "relations", "organisations"}:
        raise ConfigError(
            f"known state {path}: expected an object with keys objects, relations, organisations"
        )
    objects = raw.get("objects", [])
    relations = raw.get("relations", [])
    organisations = raw.get("organisations", [])
    if not _strings(objects) or not _strings(organisations):
        raise ConfigError(f"known state {path}: objects/organisations must be lists of strings")
    if not isinstance(relations, list) or not all(
        isinstance(r, list) and len(r) == 3 and _strings(r) for r in relations
    ):
        raise ConfigError(f"known state {path}: relations must be [type, first, second] lists")
    return KnownState(
        frozenset(objects),
        frozenset((r[0], r[1], r[2]) for r in relations),
        frozenset(organisations),
    )


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def identity_problem(value: str, today: dt.date | None = None) -> tuple[str, str] | None:
    """``(code, reason)`` when ``value`` is not a valid identity number as a file holds it.

    Accepted: ``YYYYMMDD-NNNN`` (personnummer, or samordningsnummer with day + 60) with a
    valid date and Luhn check digit, and TF numbers ``YYYYMMDD-TFNN`` with a valid date.
    """
    tf = _TF_SHAPE.match(value)
    shape = tf or _PNR_SHAPE.match(value)
    if shape is None:
        return "pnr-format", "not YYYYMMDD-NNNN nor YYYYMMDD-TFNN"
    year, month, day = (int(part) for part in shape.groups())
    if not tf and day > 60:
        day -= 60  # samordningsnummer
    try:
        born = dt.date(year, month, day)
    except ValueError:
        return "bad-date", "no such date of birth"
    if born > (today or dt.date.today()):
        return "bad-date", "date of birth in the future"
    if tf:
        return None
    try:
        pnr_lib.Personnummer(value)
    except pnr_lib.PersonnummerParseException:
        return "pnr-format", "serial number 000 is never issued"
    except pnr_lib.PersonnummerException:
        return "bad-check-digit", "Luhn check digit is wrong"
    return None


@dataclass
class PrincipalIndex:
    """Objects of one delivery: key -> (row type, file, line)."""

    objects: dict[str, tuple[str, str, int]] = field(default_factory=dict)


def check_principals(doc: TextFile, index: PrincipalIndex) -> list[Violation]:
    """Check every principals row; register their keys in ``index`` (shared across files)."""
    out: list[Violation] = []
    seen_rows: dict[str, int] = {}

    def bad(line: int, fld: int | None, code: str, message: str) -> None:
        out.append(Violation(doc.name, line, fld, code, message))

    for line in doc.lines:
        fields = line.text.split("\t")
        kind = fields[-1]
        if kind not in FIELD_COUNTS:
            bad(
                line.number,
                len(fields),
                "unknown-row-type",
                f"row type {kind[:20]!r} is not user, class or school (it is the last field)",
            )
            continue
        if line.text in seen_rows:
            bad(line.number, None, "duplicate-row", f"same row as line {seen_rows[line.text]}")
            continue
        seen_rows[line.text] = line.number
        _register_key(doc, line.number, kind, fields, index, bad)
        if len(fields) != FIELD_COUNTS[kind]:
            bad(
                line.number,
                None,
                "field-count",
                f"{kind} row has {len(fields)} fields, {FIELD_COUNTS[kind]} expected "
                "(a tab inside a value shows up as extra fields)",
            )
            continue
        for number in REQUIRED[kind]:
            if not fields[number - 1].strip():
                bad(line.number, number, "empty-required", f"{kind} field {number} is required")
        if kind == USER:
            _check_user(line.number, fields, bad)
        elif kind == SCHOOL:
            _check_school(line.number, fields, bad)
        elif fields[2] and fields[2] not in SCHOOL_FORMS:
            bad(line.number, 3, "bad-school-form", f"unknown school form {fields[2][:60]!r}")
    return out


def _register_key(
    doc: TextFile,
    number: int,
    kind: str,
    fields: list[str],
    index: PrincipalIndex,
    bad: _Reporter,
) -> None:
    key_field = KEY_FIELD[kind]
    if kind == USER and len(fields) != FIELD_COUNTS[USER]:
        # A stray tab shifts the fields: find the number itself so relations still match.
        shaped = [n for n, v in enumerate(fields, 1) if _PNR_SHAPE.match(v) or _TF_SHAPE.match(v)]
        key_field = shaped[0] if shaped else 0
    if key_field == 0 or len(fields) < key_field or not fields[key_field - 1]:
        return
    key = fields[key_field - 1]
    earlier = index.objects.get(key)
    if earlier is not None:
        bad(
            number,
            key_field,
            "duplicate-id",
            f"{key} already used by the {earlier[0]} on {earlier[1]} line {earlier[2]}; "
            "external ids are unique across all object types",
        )
        return
    index.objects[key] = (kind, doc.name, number)


def _check_user(number: int, fields: list[str], bad: _Reporter) -> None:
    if fields[3]:
        problem = identity_problem(fields[3])
        if problem:
            bad(number, 4, problem[0], f"personnummer {fields[3]}: {problem[1]}")
    for position in USER_BOOLEANS:
        if fields[position - 1] not in ("true", "false"):
            bad(
                number,
                position,
                "bad-boolean",
                f"field {position} must be true or false, not {fields[position - 1][:20]!r}",
            )
    for position in USER_RESERVED:
        if fields[position - 1]:
            bad(number, position, "reserved-not-empty", f"field {position} must be empty")


def _check_school(number: int, fields: list[str], bad: _Reporter) -> None:
    if fields[1] and not _SCHOOL_ID.match(fields[1]):
        bad(number, 2, "bad-school-id", f"school id {fields[1][:20]!r} is not 8 digits")
    if fields[3] and fields[3] not in SCHOOL_FORMS:
        bad(number, 4, "bad-school-form", f"unknown school form {fields[3][:60]!r}")


@dataclass
class _RelationLine:
    number: int
    operation: str
    type: str
    first: str
    second: str

    @property
    def relation(self) -> Relation:
        return (self.type, self.first, self.second)


def check_relations(
    doc: TextFile,
    index: PrincipalIndex,
    known: KnownState | None,
    *,
    columns: tuple[str, str, str, str] = RELATION_COLUMNS,
    removes_after_adds: bool = True,
) -> list[Violation]:
    """Check every relations row against the spec, this delivery's objects and the state."""
    if sorted(columns) != sorted(RELATION_COLUMNS):
        raise ConfigError(f"relation columns must be an order of {', '.join(RELATION_COLUMNS)}")
    position = {name: columns.index(name) + 1 for name in RELATION_COLUMNS}
    out: list[Violation] = []

    def bad(line: int, fld: int | None, code: str, message: str) -> None:
        out.append(Violation(doc.name, line, fld, code, message))

    parsed: list[_RelationLine] = []
    for line in doc.lines:
        fields = line.text.split("\t")
        if len(fields) != len(columns):
            bad(
                line.number,
                None,
                "field-count",
                f"relation row has {len(fields)} fields, {len(columns)} expected "
                "(a tab inside a value shows up as extra fields)",
            )
            continue
        values = {name: fields[position[name] - 1] for name in RELATION_COLUMNS}
        row = _RelationLine(
            line.number, values["operation"], values["type"], values["first"], values["second"]
        )
        ok = True
        if row.operation not in ("add", "remove"):
            bad(
                line.number,
                position["operation"],
                "bad-operation",
                f"operation {row.operation[:20]!r} is not add or remove",
            )
            ok = False
        if row.type not in RELATION_PARTIES:
            bad(
                line.number,
                position["type"],
                "unknown-relation-type",
                f"relation type {row.type[:40]!r} is not in the spec",
            )
            ok = False
        if ok:
            parsed.append(row)
    organisations = _organisations(parsed, known)
    for row in parsed:
        kinds = RELATION_PARTIES[row.type]
        for slot, value, allowed in (
            ("first", row.first, kinds[0]),
            ("second", row.second, kinds[1]),
        ):
            _check_party(
                row, slot, value, allowed, position[slot], index, known, organisations, bad
            )
        if row.first and row.first == row.second:
            bad(row.number, position["second"], "self-relation", "both parties are the same")
    _check_order(parsed, removes_after_adds, position["type"], bad)
    _check_repeats(parsed, known, bad)
    return out


def _organisations(parsed: Iterable[_RelationLine], known: KnownState | None) -> set[str]:
    found = {row.second for row in parsed if row.type == "school_in_org" and row.second}
    if known:
        found |= set(known.organisations)
        found |= {rel[2] for rel in known.relations if rel[0] == "school_in_org"}
    return found


def _check_party(
    row: _RelationLine,
    slot: str,
    value: str,
    allowed: frozenset[str],
    fld: int,
    index: PrincipalIndex,
    known: KnownState | None,
    organisations: set[str],
    bad: _Reporter,
) -> None:
    if not value.strip():
        bad(row.number, fld, "empty-party", f"{slot} party of {row.type} is empty")
        return
    if allowed == {USER}:
        problem = identity_problem(value)
        if problem:
            bad(row.number, fld, problem[0], f"{slot} party {value}: {problem[1]}")
            return
    if allowed == {ORG}:
        return  # the organisation is Unikum's own, not an object of the files
    delivered = index.objects.get(value)
    if delivered is not None:
        if delivered[0] not in allowed:
            bad(
                row.number,
                fld,
                "party-kind",
                f"{slot} party of {row.type} must be a {' or '.join(sorted(allowed))}, "
                f"{value} is a {delivered[0]} ({delivered[1]} line {delivered[2]})",
            )
        return
    if row.operation == "remove":
        return  # a remove may name an object that this delivery does not resend
    if known and value in known.objects:
        return
    if ORG in allowed and value in organisations:
        return
    bad(
        row.number,
        fld,
        "dangling-party",
        f"{slot} party {value} of {row.type} is neither in this delivery's principals "
        "nor in the known state",
    )


def _check_order(
    parsed: list[_RelationLine], removes_after_adds: bool, fld: int, bad: _Reporter
) -> None:
    """Adds up the dependency tiers, removes down them; the two blocks in the set order."""
    later_block = "add" if not removes_after_adds else "remove"
    first_of_later: int | None = None
    misplaced: list[_RelationLine] = []
    last: dict[str, _RelationLine] = {}
    for row in parsed:
        if row.operation == later_block:
            first_of_later = first_of_later or row.number
        elif first_of_later is not None:
            misplaced.append(row)
            continue
        previous = last.get(row.operation)
        step = TIER[row.type] - TIER[previous.type] if previous else 0
        if (step < 0 and row.operation == "add") or (step > 0 and row.operation == "remove"):
            assert previous is not None
            rule = "dependency order" if row.operation == "add" else "reverse dependency order"
            bad(
                row.number,
                fld,
                "order",
                f"{row.operation} {row.type} after {previous.operation} {previous.type} "
                f"(line {previous.number}); {row.operation}s go in {rule}",
            )
        last[row.operation] = row
    if misplaced:
        early, late = ("adds", "removes") if removes_after_adds else ("removes", "adds")
        more = f" ({len(misplaced) - 1} more line(s) like it)" if len(misplaced) > 1 else ""
        bad(
            misplaced[0].number,
            None,
            "order",
            f"{misplaced[0].operation} after the {later_block} on line {first_of_later}; "
            f"all {early} come before the {late}{more}",
        )


def _check_repeats(parsed: list[_RelationLine], known: KnownState | None, bad: _Reporter) -> None:
    seen: dict[tuple[str, Relation], int] = {}
    for row in parsed:
        key = (row.operation, row.relation)
        if key in seen:
            bad(row.number, None, "duplicate-relation", f"same relation as line {seen[key]}")
            continue
        seen[key] = row.number
        other = ("remove" if row.operation == "add" else "add", row.relation)
        if other in seen:
            bad(
                row.number,
                None,
                "add-and-remove",
                f"this relation is also {_PAST[other[0]]} on line {seen[other]}",
            )
        if known is not None and row.operation == "remove" and row.relation not in known.relations:
            bad(
                row.number,
                None,
                "remove-unknown-relation",
                "removes a relation the known state does not hold",
            )
