"""The register's own school-year change (läsårsbyte) on a demo municipality.

A student register changes year before the sync does: typically in June it ends the
current school year's groups, enrolments and memberships on the year's last day (30 June)
and writes next year's, starting on its first day (1 July). This module does that to the
five SS 12000 list files of ``autosynk demo generate`` (after any number of ``demo
mutate`` days), so that the mapping evaluated at a date in the old year still sees the old
year, and evaluated at the first day of the new year (the effective date) sees the new:

- the year's groups (classes, teaching groups, halves, mentor groups, fritids) end, as do
  enrolments, memberships, duty assignments and activities of the year; continuing groups
  (preschool departments, staff groups) and employments (duties) go on;
- next year's groups: classes promoted (7A -> 8A, FA -> 1A; a gymnasium class keeps its
  intake-year name), new förskoleklass classes, halves and language groups for the
  cohorts that reach them, new gymnasium courses; by default as new group objects with new
  ids, or (``reuse_group_ids``) as the same group object renamed, as some registers do;
- promoted pupils get an enrolment with ``schoolYear`` + 1 at the same unit and
  memberships in the promoted groups; the last year of grundskola (9) and of gymnasium (3)
  leave, and a pupil or two moves away;
- the oldest preschool cohort starts förskoleklass at a grundskola; a new preschool intake
  and a new gymnasium intake arrive (new families, numbers in the demo's usual styles);
- some staff leave (their duties end; new staff start in their place), mentors follow
  their class, the mentors of leaving classes take the new ones, and every new class and
  teaching group gets an activity with a teacher.

Everything comes from one PRNG seeded by ``seed`` and ``today``: the same files, seed and
day give the same bytes. The lines returned name schools, groups and counts, never a
person.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autosynk.demo import names
from autosynk.demo.generate import (
    GUARDIAN,
    GY_COURSES,
    SchoolYear,
    Slot,
    birth_year_for,
    encode_entities,
    school_year,
)
from autosynk.demo.mutate import Day
from autosynk.errors import SourceError
from autosynk.register import active, read_snapshot, ref_id

Record = dict[str, Any]

#: the last year of a school form: its pupils leave at the change
LAST_YEAR = {"GR": 9, "GRS": 9, "SP": 10, "GY": 3, "GYS": 4}
#: the school type a pupil has after the change, where it changes
NEXT_TYPE = {"FSK": "GR"}
SCHOOL_TYPES = ("FSK", "GR", "GRS", "SP", "GY", "GYS")
GYMNASIUM_TYPES = ("GY", "GYS")
#: group types that go on from year to year (their members come and go)
CONTINUING_GROUPS = ("Avdelning", "Personalgrupp")
#: duty roles whose holders may leave at the change (each gets a successor)
LEAVING_ROLES = ("Lärare", "Förskollärare", "Barnskötare")
MENTOR = "Mentor"
CLASS_LABEL = re.compile(r"^(F|[1-9]|10)([A-ZÅÄÖ]*)$")
GY_LABEL = re.compile(r"^([A-ZÅÄÖ]+)(\d{2})$")
HALF = re.compile(r"^(\S+) halvklass (\d+)$")
SUBJECTS = ("Matematik", "Engelska")  # taught by subject teachers; Svenska by the mentor


# ---- pure helpers ----------------------------------------------------------------------


def label_year(label: str) -> int | None:
    """The year in a grundskola class label: "7A" -> 7, "FB" -> 0; None if not a label."""
    match = CLASS_LABEL.match(label)
    if match is None:
        return None
    return 0 if match.group(1) == "F" else int(match.group(1))


def class_label(year: int, track: str) -> str:
    """A grundskola class label: (0, "A") -> "FA", (8, "B") -> "8B"."""
    return f"{'F' if year == 0 else year}{track}"


def next_group_name(name: str, group_type: str, school_type: str, year: int | None) -> str | None:
    """What a year-bound group is called in the next school year; None if it has no successor.

    ``year`` is the school year of its members (None: several years, as in fritids). The
    last year of a school form leaves; a gymnasium course ends with its year (next year's
    courses are other groups). In a grundskola name the first class label or year number
    moves on ("7A" -> "8A", "FA" -> "1A", "7A halvklass 2" -> "8A halvklass 2",
    "Spanska 6" -> "Spanska 7"); other names (a gymnasium class "NA25", named for its
    intake year, its mentor groups, fritids) stay as they are.
    """
    form = NEXT_TYPE.get(school_type, school_type)
    if year is not None and year >= LAST_YEAR.get(form, 99):
        return None
    if school_type in GYMNASIUM_TYPES:
        return None if group_type == "Undervisning" else name
    if year is None:
        return name
    tokens = name.split(" ")
    for index, token in enumerate(tokens):
        match = CLASS_LABEL.match(token)
        if match and label_year(token) == year and (index == 0 or group_type == "Klass"):
            tokens[index] = class_label(year + 1, match.group(2))
            return " ".join(tokens)
        if index > 0 and token == str(year):
            tokens[index] = str(year + 1)
            return " ".join(tokens)
    return name


def breakdown(counts: Counter[str], limit: int = 6) -> str:
    """``"Ekdalskolan 24, Sjöviks förskola 3"``: the largest first, the rest summed up."""
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    shown = ", ".join(f"{name} {count}" for name, count in ranked[:limit])
    rest = len(ranked) - limit
    return f"{shown} and {rest} more" if rest > 0 else shown


def as_year(value: Any) -> int | None:
    """A ``schoolYear`` as a number (registers send 7 or "7"); None if there is none."""
    try:
        return int(str(value).strip()) if value is not None else None
    except ValueError:
        return None


def birth_year(person: Record) -> int:
    """The year in ``birthDate``; a person without a readable one counts as not yet born."""
    text = str(person.get("birthDate") or "")[:4]
    return int(text) if text.isdigit() else 9999


def pupils(count: int) -> str:
    return f"{count} pupil" if count == 1 else f"{count} pupils"


def school_year_label(first: int) -> str:
    return f"{first}/{(first + 1) % 100:02d}"


# ---- the register as the change sees it -------------------------------------------------


@dataclass
class Pupil:
    person: Record
    enrolment: Record
    unit: str
    school_type: str
    year: int | None
    fate: str = "promoted"  # promoted | graduate | mover
    loose: bool = False

    @property
    def id(self) -> str:
        return str(self.person["id"])

    @property
    def new_type(self) -> str:
        return NEXT_TYPE.get(self.school_type, self.school_type)


@dataclass
class Cohort:
    """Next year's groups of one unit, as they are built."""

    classes: list[Record] = field(default_factory=list)
    new_classes: list[Record] = field(default_factory=list)  # no predecessor
    year_of: dict[str, int | None] = field(default_factory=dict)  # group id -> year


class Rollover(Day):
    """One school-year change; ``Day`` gives the indexes, the factory and the stamps."""

    def __init__(
        self,
        entities: dict[str, list[Record]],
        seed: int,
        today: dt.date,
        reuse_group_ids: bool,
        loose_pupils: int,
    ) -> None:
        super().__init__(entities, seed, today)
        # a PRNG of its own (the factory shares this object), apart from mutate's days
        self.rng.seed(f"rollover/{seed}/{today.isoformat()}")
        self.reuse = reuse_group_ids
        self.loose_wanted = loose_pupils
        first = school_year(today).first
        self.first = first
        self.old_end = dt.date(first + 1, 6, 30)
        self.new_start = dt.date(first + 1, 7, 1)
        self.new_end = dt.date(first + 2, 6, 30)
        self.end_iso = self.old_end.isoformat()
        self.start_iso = self.new_start.isoformat()
        self.new_end_iso = self.new_end.isoformat()
        self.next_year = SchoolYear(first + 1, self.new_start, self.new_end)
        self.counts: Counter[str] = Counter()
        self.lines: list[str] = []

    # ---- small tools ---------------------------------------------------------------

    def live(self, record: Record) -> bool:
        """Active on the last day of the old school year."""
        return active(record, self.end_iso)

    def end(self, record: Record) -> bool:
        """End a record of the old year on its last day; True if that changed anything."""
        if not self.live(record) or record.get("endDate") == self.end_iso:
            return False
        record["endDate"] = self.end_iso
        return True

    def new_meta(self) -> Record:
        return {"created": self.modified, "modified": self.modified}

    def unit_kind(self, org: Record) -> str | None:
        types = set(org.get("schoolTypes") or [])
        if types & set(GYMNASIUM_TYPES):
            return "GY"
        if types & {"FSK", "GR", "GRS", "SP"}:
            return "GR"
        if "FS" in types:
            return "FS"
        return None

    def exported(self, person: Record | None) -> bool:
        """A person the default mapping sends (active, not protected)."""
        return (
            person is not None
            and person.get("personStatus") == "Aktiv"
            and person.get("securityMarking") == "Ingen"
        )

    def new_group(
        self, name: str, kind: str, school_type: str, unit: str, *, open_ended: bool = False
    ) -> Record:
        record: Record = {
            "id": self.make.new_id(),
            "displayName": name,
            "groupType": kind,
            "schoolType": school_type,
            "organisation": {"id": unit},
            "startDate": self.start_iso,
        }
        if not open_ended:
            record["endDate"] = self.new_end_iso
        record["groupMemberships"] = []
        record["meta"] = self.new_meta()
        self.entities["groups"].append(record)
        self.made.append(record)
        self.counts["new_groups"] += 1
        return record

    def join(self, group: Record, person_id: str) -> None:
        membership: Record = {"person": {"id": person_id}, "startDate": self.start_iso}
        if group.get("endDate"):
            membership["endDate"] = min(str(group["endDate"])[:10], self.new_end_iso)
        group.setdefault("groupMemberships", []).append(membership)
        self.stamp(group)

    def assign(self, duty: Record, group: Record, role: str) -> None:
        assignment: Record = {
            "group": {"id": group["id"]},
            "assignmentRoleType": role,
            "startDate": self.start_iso,
            "endDate": self.new_end_iso,
        }
        duty.setdefault("assignmentRole", []).append(assignment)
        self.assigned[str(group["id"])].append((duty, assignment))
        self.stamp(duty)

    def activity(self, name: str, unit: str, groups: list[Record], duties: list[Record]) -> None:
        self.entities["activities"].append(
            {
                "id": self.make.new_id(),
                "displayName": name,
                "activityType": "Undervisning",
                "calendarEventsRequired": False,
                "startDate": self.start_iso,
                "endDate": self.new_end_iso,
                "groups": [{"id": g["id"]} for g in groups],
                "teachers": [
                    {
                        "duty": {"id": d["id"]},
                        "startDate": self.start_iso,
                        "endDate": self.new_end_iso,
                    }
                    for d in duties
                ],
                "organisation": {"id": unit},
                "meta": self.new_meta(),
            }
        )
        self.counts["new_activities"] += 1

    # ---- the change ----------------------------------------------------------------

    def run(self) -> list[str]:
        self.refuse_twice()
        self.index()
        self.decide_pupils()
        self.decide_staff()
        self.end_old_year()
        self.build_groups()
        self.promote()
        self.start_forskoleklass()
        self.preschool_intake()
        self.gymnasium_intake()
        self.staff_assignments()
        self.teaching()
        self.report()
        return self.lines

    def refuse_twice(self) -> None:
        ahead = sum(
            1
            for person in self.entities["persons"]
            for e in person.get("enrolments") or []
            if not e.get("cancelled") and str(e.get("startDate") or "")[:10] >= self.start_iso
        )
        if ahead:
            raise SourceError(
                f"the register already holds {ahead} enrolments starting on or after "
                f"{self.start_iso}: school year {school_year_label(self.first + 1)} has been "
                "rolled over already"
            )

    def index(self) -> None:
        self.units: dict[str, str] = {}  # unit id -> FS | GR | GY
        for org in self.entities["organisations"]:
            kind = self.unit_kind(org)
            if org.get("organisationType") == "Skolenhet" and kind and self.live(org):
                self.units[str(org["id"])] = kind
        self.groups = {str(g["id"]): g for g in self.entities["groups"]}
        self.members: dict[str, list[str]] = {}  # group id -> person ids on the last day
        for group in self.entities["groups"]:
            if self.live(group):
                self.members[str(group["id"])] = [
                    pid
                    for m in group.get("groupMemberships") or []
                    if self.live(m) and (pid := ref_id(m.get("person"))) is not None
                ]
        self.pupils: dict[str, Pupil] = {}
        self.preschoolers: dict[str, tuple[Record, Record]] = {}  # id -> (person, enrolment)
        for person in self.entities["persons"]:
            for enrolment in person.get("enrolments") or []:
                if enrolment.get("cancelled") or not self.live(enrolment):
                    continue
                unit = ref_id(enrolment.get("enroledAt")) or ""
                kind = str(enrolment.get("schoolType") or "")
                pid = str(person["id"])
                if kind in SCHOOL_TYPES and pid not in self.pupils:
                    year = as_year(enrolment.get("schoolYear"))
                    if year is None and kind == "FSK":
                        year = 0
                    self.pupils[pid] = Pupil(person, enrolment, unit, kind, year)
                elif kind == "FS" and pid not in self.preschoolers:
                    self.preschoolers[pid] = (person, enrolment)
        self.guardians_of: dict[str, list[str]] = {}
        for person in self.entities["persons"]:
            self.guardians_of[str(person["id"])] = [
                gid
                for r in person.get("responsibles") or []
                if r.get("relationType") == GUARDIAN and (gid := ref_id(r.get("person")))
            ]
        self.duties_of: dict[str, list[Record]] = defaultdict(list)  # person -> live duties
        self.unit_duties: dict[str, list[Record]] = defaultdict(list)
        for duty in self.entities["duties"]:
            if self.live(duty):
                self.duties_of[ref_id(duty.get("person")) or ""].append(duty)
                self.unit_duties[ref_id(duty.get("dutyAt")) or ""].append(duty)
        self.activities_of: dict[str, list[Record]] = defaultdict(list)  # group id -> live
        for activity in self.entities["activities"]:
            if self.live(activity):
                for ref in activity.get("groups") or []:
                    self.activities_of[ref_id(ref) or ""].append(activity)
        self.assigned: dict[str, list[tuple[Record, Record]]] = defaultdict(list)
        for duty in self.entities["duties"]:
            for assignment in duty.get("assignmentRole") or []:
                self.assigned[ref_id(assignment.get("group")) or ""].append((duty, assignment))
        # as they were: a renamed group (reuse_group_ids) keeps its old year and name here
        self.old_name = {gid: str(self.groups[gid].get("displayName", "")) for gid in self.members}
        self.old_type = {gid: str(self.groups[gid].get("schoolType", "")) for gid in self.members}
        self.years = {gid: self.group_year(self.groups[gid]) for gid in self.members}
        self.made: list[Record] = []  # next year's groups, new or renamed, in order
        self.year_groups: dict[str, list[Record]] = defaultdict(list)  # unit -> old year's
        self.going_on: dict[tuple[str, str], list[Record]] = defaultdict(list)
        for group in self.entities["groups"]:
            unit = ref_id(group.get("organisation")) or ""
            kind = str(group.get("groupType"))
            if kind in CONTINUING_GROUPS:
                if active(group, self.start_iso):
                    self.going_on[(unit, kind)].append(group)
            elif str(group["id"]) in self.members:
                self.year_groups[unit].append(group)
        self.graduating_class: dict[str, Record] = {}  # new class -> leaving class (mentor)

    def year_of(self, group: Record) -> int | None:
        """The old school year of a group of the old year (None: several or unknown)."""
        return self.years.get(str(group["id"]))

    def group_year(self, group: Record) -> int | None:
        """The school year of a group's pupils at its unit (None: several or unknown)."""
        unit = ref_id(group.get("organisation"))
        years = {
            pupil.year
            for pid in self.members.get(str(group["id"]), [])
            if (pupil := self.pupils.get(pid)) is not None and pupil.unit == unit
        }
        if len(years) == 1:
            return years.pop()
        if not years:  # nobody left in it: the name may still say
            for token in str(group.get("displayName", "")).split(" "):
                if (year := label_year(token)) is not None:
                    return year
        return None

    def school_groups(self, unit: str) -> list[Record]:
        """The unit's year-bound groups of the old year (register order)."""
        return self.year_groups.get(unit, [])

    def continuing_groups(self, unit: str, kind: str) -> list[Record]:
        """The unit's departments or staff groups that go on into the new year."""
        return self.going_on.get((unit, kind), [])

    # ---- who goes where ------------------------------------------------------------

    def decide_pupils(self) -> None:
        for pupil in self.pupils.values():
            last = LAST_YEAR.get(pupil.new_type)
            if pupil.year is None:
                pupil.fate = "unknown"
            elif last is not None and pupil.year >= last:
                pupil.fate = "graduate"
        oldest = birth_year_for("FSK", 0, self.next_year)
        self.starters = [
            pid
            for pid, (person, _e) in self.preschoolers.items()
            if pid not in self.pupils and birth_year(person) <= oldest
        ]
        self.place_starters()
        self.guardian_cases()
        promoted = sorted(
            (p for p in self.pupils.values() if p.fate == "promoted" and p.new_type == "GR"),
            key=lambda p: p.id,
        )
        candidates = [p for p in promoted if self.exported(p.person)]
        for pupil in self.rng.sample(candidates, min(self.loose_wanted, len(candidates))):
            pupil.loose = True

    def place_starters(self) -> None:
        """Each starter's förskoleklass: classes of every grundskola, dealt out in turn."""
        self.fsk_classes: list[tuple[str, str]] = []  # (unit, label) of next year's FSK classes
        for unit, kind in self.units.items():
            if kind != "GR":
                continue
            for group in self.school_groups(unit):
                if group.get("groupType") == "Klass" and self.year_of(group) == 0:
                    self.fsk_classes.append((unit, self.old_name[str(group["id"])]))
        self.starter_class: dict[str, tuple[str, str]] = {}
        if not self.fsk_classes:
            self.starters = []
            return
        order = list(self.starters)
        self.rng.shuffle(order)
        slots = list(self.fsk_classes)
        self.rng.shuffle(slots)
        for index, pid in enumerate(order):
            self.starter_class[pid] = slots[index % len(slots)]

    def guardian_cases(self) -> None:
        """Make sure a guardian keeps a school through a child staying there while another
        leaves, and another loses a school when their only child there leaves; a pupil or
        two moves away where the register has no such family by itself."""
        arriving: dict[str, set[str]] = defaultdict(set)  # guardian -> units a starter joins
        for pid, (unit, _label) in self.starter_class.items():
            for gid in self.guardians_of.get(pid, []):
                arriving[gid].add(unit)
        at: dict[tuple[str, str], list[Pupil]] = defaultdict(list)  # (guardian, unit)
        for pupil in self.pupils.values():
            if pupil.fate == "unknown":
                continue
            for gid in self.guardians_of.get(pupil.id, []):
                at[(gid, pupil.unit)].append(pupil)

        def usable(gid: str, kids: list[Pupil]) -> bool:
            return self.exported(self.persons.get(gid)) and all(
                self.exported(k.person) for k in kids
            )

        def keeps(key: tuple[str, str]) -> bool:
            kids = at[key]
            return (
                usable(key[0], kids)
                and any(k.fate != "promoted" for k in kids)
                and any(k.fate == "promoted" for k in kids)
            )

        def loses(key: tuple[str, str]) -> bool:
            kids = at[key]
            return (
                usable(key[0], kids)
                and all(k.fate != "promoted" for k in kids)
                and key[1] not in arriving[key[0]]
            )

        keys = sorted(at)
        witnesses: set[str] = set()  # guardians whose case must not be undone
        keep = next((k for k in keys if keeps(k)), None)
        if keep is None:
            options = [
                k
                for k in keys
                if usable(k[0], at[k])
                and len(at[k]) >= 2
                and all(p.fate == "promoted" for p in at[k])
            ]
            if options:
                keep = self.rng.choice(options)
                self.rng.choice(sorted(at[keep], key=lambda p: p.id)).fate = "mover"
        if keep is not None:
            witnesses.add(keep[0])
        lose = next((k for k in keys if loses(k) and k[0] not in witnesses), None)
        if lose is None:
            options = [
                k
                for k in keys
                if k[0] not in witnesses
                and usable(k[0], at[k])
                and len(at[k]) == 1
                and at[k][0].fate == "promoted"
                and k[1] not in arriving[k[0]]
                and not set(self.guardians_of.get(at[k][0].id, [])) & witnesses
            ]
            if options:
                lose = self.rng.choice(options)
                at[lose][0].fate = "mover"
        if lose is not None:
            witnesses.add(lose[0])
        if not any(p.fate == "mover" for p in self.pupils.values()):
            anyone = sorted(
                (
                    p
                    for p in self.pupils.values()
                    if p.fate == "promoted"
                    and p.new_type == "GR"
                    and not set(self.guardians_of.get(p.id, [])) & witnesses
                ),
                key=lambda p: p.id,
            )
            if anyone:
                self.rng.choice(anyone).fate = "mover"
        self.counts["guardians_keeping"] = sum(1 for k in keys if keeps(k))
        self.counts["guardians_losing"] = sum(1 for k in keys if loses(k))

    def decide_staff(self) -> None:
        """Who leaves: a mentor of a class that goes on, a subject teacher of a class, a
        preschool teacher, and a few more; each gets a successor starting on the first day."""
        classes_going_on = {
            gid
            for gid in self.members
            if (g := self.groups[gid]).get("groupType") == "Klass"
            and next_group_name(self.old_name[gid], "Klass", self.old_type[gid], self.year_of(g))
            is not None
        }
        mentors: dict[str, set[str]] = {}  # duty id -> classes it mentors
        roles: dict[str, set[str]] = {}
        for duty in self.entities["duties"]:
            live = [a for a in duty.get("assignmentRole") or [] if self.live(a)]
            mentors[duty["id"]] = {
                ref_id(a.get("group")) or "" for a in live if a.get("assignmentRoleType") == MENTOR
            }
            roles[duty["id"]] = {str(a.get("assignmentRoleType")) for a in live}
        teaches_class = {
            ref_id(t.get("duty"))
            for gid, activities in self.activities_of.items()
            if self.groups.get(gid, {}).get("groupType") == "Klass"
            for activity in activities
            for t in activity.get("teachers") or []
            if self.live(t)
        }
        guardians = {gid for gids in self.guardians_of.values() for gid in gids}
        eligible = [
            duty
            for duty in self.entities["duties"]
            if self.live(duty)
            and duty.get("dutyRole") in LEAVING_ROLES
            and len(self.duties_of[ref_id(duty.get("person")) or ""]) == 1
            and ref_id(duty.get("person")) not in guardians
            and self.exported(self.persons.get(ref_id(duty.get("person")) or ""))
            and ref_id(duty.get("dutyAt")) in self.units
        ]
        picks: list[tuple[str, Record]] = []

        def pick(kind: str, options: list[Record]) -> None:
            taken = {d["id"] for _k, d in picks}
            options = [d for d in options if d["id"] not in taken]
            if options:
                picks.append((kind, self.rng.choice(options)))

        pick("mentor", [d for d in eligible if mentors[d["id"]] & classes_going_on])
        pick(
            "class teacher",
            [d for d in eligible if not mentors[d["id"]] and d["id"] in teaches_class],
        )
        pick(
            "preschool teacher",
            [d for d in eligible if roles[d["id"]] & {"Förskollärare", "Barnskötare"}],
        )
        for duty in eligible:
            if self.rng.random() < 0.03:
                pick("teacher", [duty])
        self.leaving = picks
        self.successor: dict[str, Record] = {}  # leaving duty id -> the new staff's duty
        self.leaving_persons = {ref_id(d.get("person")) or "" for _k, d in picks}
        for _kind, duty in picks:
            self.successor[duty["id"]] = self.hire(
                ref_id(duty.get("dutyAt")) or "", str(duty.get("dutyRole"))
            )

    def hire(self, unit: str, role: str) -> Record:
        """A new staff member with a duty at ``unit`` from the first day of the new year."""
        person = self.make.staff()
        person["meta"] = self.new_meta()
        self.entities["persons"].append(person)
        self.persons[str(person["id"])] = person
        given = names.fold_ascii(person["givenName"])
        family = names.fold_ascii(person["familyName"])
        duty: Record = {
            "id": self.make.new_id(),
            "person": {"id": person["id"]},
            "dutyAt": {"id": unit},
            "dutyRole": role,
            "signature": (given[:2] + family[:2]).upper(),
            "dutyPercent": self.rng.choice((100, 100, 100, 80, 75)),
            "startDate": self.start_iso,
            "assignmentRole": [],
            "meta": self.new_meta(),
        }
        self.entities["duties"].append(duty)
        self.unit_duties[unit].append(duty)
        for group in self.continuing_groups(unit, "Personalgrupp"):
            self.join(group, str(person["id"]))
        self.counts["hired"] += 1
        return duty

    def current(self, duty: Record) -> Record:
        """The duty that does this work next year (a leaving one's successor)."""
        return self.successor.get(duty["id"], duty)

    # ---- the old year ends ---------------------------------------------------------

    def end_old_year(self) -> None:
        leaving_children = set(self.starters)
        for group in self.entities["groups"]:
            if not self.live(group):
                continue
            continuing = group.get("groupType") in CONTINUING_GROUPS
            changed = False
            if not continuing and self.end(group):
                changed = True
            if not continuing:
                self.counts["ended_groups"] += 1
            for membership in group.get("groupMemberships") or []:
                pid = ref_id(membership.get("person"))
                leaves = not continuing or pid in leaving_children or pid in self.leaving_persons
                if leaves and self.live(membership):
                    self.counts["ended_memberships"] += 1
                    changed = self.end(membership) or changed
            if changed:
                self.stamp(group)
        for pupil in self.pupils.values():
            if pupil.fate != "unknown" and self.end(pupil.enrolment):
                self.stamp(pupil.person)
            if pupil.fate != "unknown":
                self.counts["ended_enrolments"] += 1
        for pid in self.starters:
            person, enrolment = self.preschoolers[pid]
            self.end(enrolment)
            self.stamp(person)
            self.counts["ended_enrolments"] += 1
        for _kind, duty in self.leaving:
            self.end(duty)
            self.stamp(duty)
        for duty in self.entities["duties"]:
            for assignment in duty.get("assignmentRole") or []:
                if self.end(assignment):
                    self.stamp(duty)
        for activity in self.entities["activities"]:
            if not self.live(activity):
                continue
            changed = self.end(activity)
            for teacher in activity.get("teachers") or []:
                changed = self.end(teacher) or changed
            if changed:
                self.stamp(activity)
            self.counts["ended_activities"] += 1

    # ---- next year's groups --------------------------------------------------------

    def build_groups(self) -> None:
        """Successors of the year's groups, and the new groups of the cohorts that enter."""
        self.next_of: dict[str, Record] = {}  # old group id -> next year's group
        self.cohorts: dict[str, Cohort] = defaultdict(Cohort)
        self.entering: dict[str, list[Record]] = defaultdict(list)  # unit -> new-cohort groups
        for unit, kind in self.units.items():
            if kind == "FS":
                continue
            old = self.school_groups(unit)
            planned: list[tuple[Record, str, int | None]] = []
            for group in old:
                year = self.year_of(group)
                name = next_group_name(
                    self.old_name[str(group["id"])],
                    str(group.get("groupType")),
                    self.old_type[str(group["id"])],
                    year,
                )
                if name is not None:
                    planned.append((group, name, None if year is None else year + 1))
            produced = {(str(g.get("groupType")), name) for g, name, _y in planned}
            cohort = self.cohorts[unit]
            for group, name, year in planned:
                school_type = self.old_type[str(group["id"])]
                if group.get("groupType") == "Klass":
                    school_type = NEXT_TYPE.get(school_type, school_type)
                nxt = self.successor_group(group, name, school_type)
                self.next_of[str(group["id"])] = nxt
                cohort.year_of[str(nxt["id"])] = year
                if nxt.get("groupType") == "Klass":
                    cohort.classes.append(nxt)
            if kind != "GR":
                continue
            # a grundskola's entry groups: förskoleklass classes, the first year's halves
            # and language groups; each takes the name of the old group it replaces
            before = {(str(g.get("groupType")), self.year_of(g)) for g in old}
            for group in old:
                key = (str(group.get("groupType")), self.old_name[str(group["id"])])
                year = self.year_of(group)
                if key in produced or year is None or group.get("groupType") == "Övrigt":
                    continue
                if (key[0] == "Klass" and year != 0) or (
                    key[0] != "Klass" and (key[0], year - 1) in before
                ):
                    continue  # not where a cohort enters: no new group in its place
                new = self.new_group(key[1], key[0], self.old_type[str(group["id"])], unit)
                cohort.year_of[str(new["id"])] = year
                self.entering[unit].append(new)
                if key[0] == "Klass":
                    cohort.classes.append(new)
                    cohort.new_classes.append(new)

    def successor_group(self, group: Record, name: str, school_type: str) -> Record:
        if not self.reuse:
            return self.new_group(
                name,
                str(group.get("groupType")),
                school_type,
                ref_id(group.get("organisation")) or "",
            )
        self.make.new_id()  # drawn all the same: both styles then make the same people
        group["displayName"] = name
        group["schoolType"] = school_type
        group["endDate"] = self.new_end_iso
        self.stamp(group)
        self.made.append(group)
        self.counts["renamed_groups"] += 1
        return group

    def promote(self) -> None:
        by_unit: Counter[str] = Counter()
        for pupil in self.pupils.values():
            if pupil.fate != "promoted" or pupil.year is None:
                continue
            enrolment: Record = {
                "enroledAt": {"id": pupil.unit},
                "schoolType": pupil.new_type,
                "schoolYear": pupil.year + 1,
                "startDate": self.start_iso,
                "endDate": self.new_end_iso,
                "cancelled": False,
            }
            pupil.person.setdefault("enrolments", []).append(enrolment)
            self.stamp(pupil.person)
            by_unit[self.school(pupil.unit)] += 1
        self.promoted_at = by_unit
        # memberships: each old group's staying members join its successor
        for gid, members in self.members.items():
            nxt = self.next_of.get(gid)
            if nxt is None:
                continue
            unit = ref_id(self.groups[gid].get("organisation"))
            mixed = self.year_of(self.groups[gid]) is None
            # a group of several years (fritids) keeps its age span
            span = max((p.year or 0 for p in self.pupils_in(members)), default=99)
            for member in self.pupils_in(members):
                if member.fate != "promoted" or member.loose or member.unit != unit:
                    continue
                if mixed and (member.year or 0) >= span:
                    continue
                self.join(nxt, member.id)
        # entry groups: halves split their class, language groups their year
        for unit, groups in self.entering.items():
            cohort = self.cohorts[unit]
            classes = {str(c.get("displayName")): c for c in cohort.classes}
            halves: dict[str, list[Record]] = defaultdict(list)
            languages: dict[int, list[Record]] = defaultdict(list)
            for group in groups:
                match = HALF.match(str(group.get("displayName")))
                if group.get("groupType") == "Schema" and match and match.group(1) in classes:
                    halves[match.group(1)].append(group)
                elif group.get("groupType") == "Undervisning":
                    year = cohort.year_of.get(str(group["id"]))
                    if year is not None:
                        languages[year].append(group)
            for label, parts in halves.items():
                self.split(self.member_ids(classes[label]), parts)
            for year, parts in languages.items():
                cohort_ids = [
                    pid
                    for c in cohort.classes
                    if cohort.year_of.get(str(c["id"])) == year
                    for pid in self.member_ids(c)
                ]
                self.split(cohort_ids, parts)
        # a pupil whose old class has no successor (none live on the last day): any class
        # of their new year at the unit
        in_class = {
            pid
            for cohort in self.cohorts.values()
            for c in cohort.classes
            for pid in self.member_ids(c)
        }
        for pupil in self.pupils.values():
            if (
                pupil.fate != "promoted"
                or pupil.loose
                or pupil.id in in_class
                or pupil.year is None
            ):
                continue
            place = self.cohorts.get(pupil.unit) or Cohort()
            fitting = [
                c for c in place.classes if place.year_of.get(str(c["id"])) == pupil.year + 1
            ]
            if fitting:
                self.join(self.rng.choice(fitting), pupil.id)
                self.counts["placed_without_class"] += 1

    def pupils_in(self, person_ids: list[str]) -> list[Pupil]:
        return [p for pid in person_ids if (p := self.pupils.get(pid)) and p.year is not None]

    def member_ids(self, group: Record) -> list[str]:
        return [
            pid
            for m in group.get("groupMemberships") or []
            if str(m.get("startDate", ""))[:10] == self.start_iso
            and (pid := ref_id(m.get("person"))) is not None
        ]

    def split(self, person_ids: list[str], groups: list[Record]) -> None:
        ordered = sorted(groups, key=lambda g: str(g.get("displayName")))
        shuffled = list(person_ids)
        self.rng.shuffle(shuffled)
        for index, pid in enumerate(shuffled):
            self.join(ordered[index % len(ordered)], pid)

    def start_forskoleklass(self) -> None:
        classes: dict[tuple[str, str], Record] = {}
        for unit, cohort in self.cohorts.items():
            for group in cohort.new_classes:
                if cohort.year_of.get(str(group["id"])) == 0:
                    classes[(unit, str(group.get("displayName")))] = group
        fritids: dict[str, list[Record]] = defaultdict(list)
        for gid, nxt in self.next_of.items():
            if self.groups[gid].get("groupType") == "Övrigt":
                fritids[ref_id(nxt.get("organisation")) or ""].append(nxt)
        self.starters_at: Counter[str] = Counter()
        for pid in self.starters:
            unit, label = self.starter_class[pid]
            person = self.preschoolers[pid][0]
            person.setdefault("enrolments", []).append(
                {
                    "enroledAt": {"id": unit},
                    "schoolType": "FSK",
                    "schoolYear": 0,
                    "startDate": self.start_iso,
                    "endDate": self.new_end_iso,
                    "cancelled": False,
                }
            )
            self.stamp(person)
            self.join(classes[(unit, label)], pid)
            for group in fritids.get(unit, []):
                if self.rng.random() < 0.8:
                    self.join(group, pid)
            self.starters_at[f"{self.school(unit)} {label}"] += 1

    # ---- new people ----------------------------------------------------------------

    def family_for(self, slots: list[Slot], existing: list[str] | None = None) -> list[Record]:
        """New children (and guardians, unless ``existing`` guardians take them); returns
        every new person record."""
        if existing:
            guardians = [self.persons[gid] for gid in existing]
            culture = names.pick_culture(self.rng)
            home = (guardians[0].get("addresses") or [None])[0]
            children = []
            for slot in slots:
                child = self.make.child(culture, str(guardians[0]["familyName"]), slot)
                if home:
                    child["addresses"] = [dict(home)]
                child["responsibles"] = [
                    {"person": {"id": gid}, "relationType": GUARDIAN} for gid in existing
                ]
                children.append(child)
            new = children
        else:
            count = 2 if self.rng.random() < 0.82 else 1
            guardians, children = self.make.family(slots, count)
            new = [*guardians, *children]
        for record in new:
            record["meta"] = self.new_meta()
            self.persons[str(record["id"])] = record
        self.entities["persons"] += new
        return new

    def sibling_families(self) -> list[list[str]]:
        """Guardians of exported children, every one of them exported (register order)."""
        seen: set[tuple[str, ...]] = set()
        families = []
        for pid, gids in self.guardians_of.items():
            key = tuple(gids)
            if not gids or key in seen or not self.exported(self.persons.get(pid)):
                continue
            if all(self.exported(self.persons.get(g)) for g in gids):
                seen.add(key)
                families.append(gids)
        return families

    def preschool_intake(self) -> None:
        self.intake_at: Counter[str] = Counter()
        self.intake_siblings = 0
        families = self.sibling_families()
        for unit, kind in self.units.items():
            if kind != "FS":
                continue
            for department in self.continuing_groups(unit, "Avdelning"):
                for _ in range(self.rng.randint(2, 5)):
                    birth = self.make.birth_in(self.next_year.first - self.rng.randint(1, 2))
                    slot = Slot(unit, "FS", None, birth, self.new_start, None)
                    slot.join(department, self.new_start, None)
                    existing = None
                    if families and self.rng.random() < 0.15:
                        existing = self.rng.choice(families)
                        self.intake_siblings += 1
                    new = self.family_for([slot], existing)
                    self.counts["new_guardians"] += len(new) - 1
                    self.stamp(department)
                    self.intake_at[self.school(unit)] += 1

    def gymnasium_intake(self) -> None:
        self.gy_intake: dict[str, list[str]] = defaultdict(list)  # school -> class names
        self.gy_intake_pupils = 0
        intake_year = (self.first + 1) % 100
        for unit, kind in self.units.items():
            if kind != "GY":
                continue
            programmes: list[str] = []
            graduating: dict[str, Record] = {}
            for group in self.school_groups(unit):
                match = GY_LABEL.match(self.old_name[str(group["id"])])
                if group.get("groupType") != "Klass" or not match:
                    continue
                if match.group(1) not in programmes:
                    programmes.append(match.group(1))
                if str(group["id"]) not in self.next_of:
                    graduating[match.group(1)] = group
            cohort = self.cohorts[unit]
            for programme in programmes:
                label = f"{programme}{intake_year:02d}"
                klass = self.new_group(label, "Klass", "GY", unit)
                cohort.classes.append(klass)
                cohort.new_classes.append(klass)
                cohort.year_of[str(klass["id"])] = 1
                if programme in graduating:
                    self.graduating_class[str(klass["id"])] = graduating[programme]
                slots = []
                for _ in range(self.rng.randint(15, 20)):
                    birth = self.make.birth_in(birth_year_for("GY", 1, self.next_year))
                    slot = Slot(unit, "GY", 1, birth, self.new_start, self.new_end)
                    slot.join(klass, self.new_start, self.new_end)
                    slot.tf = self.rng.random() < 0.004
                    slots.append(slot)
                for half, members in enumerate(self.halves(slots), start=1):
                    group = self.new_group(f"Mentor {label} {half}", MENTOR, "GY", unit)
                    for slot in members:
                        slot.join(group, self.new_start, self.new_end)
                for slot in slots:
                    self.counts["new_guardians"] += len(self.family_for([slot])) - 1
                self.gy_intake[self.school(unit)].append(label)
                self.gy_intake_pupils += len(slots)

    def halves(self, slots: list[Slot]) -> list[list[Slot]]:
        shuffled = list(slots)
        self.rng.shuffle(shuffled)
        return [shuffled[0::2], shuffled[1::2]]

    # ---- staff on next year's groups -----------------------------------------------

    def staff_assignments(self) -> None:
        """Assignments go on with their group (mentors follow their class, preschool staff
        stay on their department); leaving classes' mentors take the new classes."""
        for duty in list(self.entities["duties"]):
            for assignment in list(duty.get("assignmentRole") or []):
                if str(assignment.get("endDate") or "")[:10] != self.end_iso:
                    continue
                gid = ref_id(assignment.get("group")) or ""
                group = self.groups.get(gid)
                if group is None:
                    continue
                if group.get("groupType") in CONTINUING_GROUPS:
                    target: Record | None = group if active(group, self.start_iso) else None
                else:
                    target = self.next_of.get(gid)
                if target is not None:
                    self.assign(self.current(duty), target, str(assignment["assignmentRoleType"]))
        self.mentored = 0
        for unit, cohort in self.cohorts.items():
            graduating = [
                g
                for g in self.school_groups(unit)
                if g.get("groupType") == "Klass" and str(g["id"]) not in self.next_of
            ]
            for klass in cohort.classes:
                if self.mentors_of(klass):
                    continue
                source = self.graduating_class.get(str(klass["id"])) or self.paired(
                    klass, graduating
                )
                duties = self.mentors_of(source, old=True) if source is not None else []
                if source in graduating:
                    graduating.remove(source)
                if not duties:
                    duties = [self.hire(unit, "Lärare")]
                for duty in duties:
                    self.assign(duty, klass, MENTOR)
            self.mentored += len(cohort.classes)
        for unit, kind in self.units.items():
            if kind != "FS":
                continue
            for department in self.continuing_groups(unit, "Avdelning"):
                if not self.mentors_of(department, roles=("Förskollärare", "Barnskötare")):
                    self.assign(self.hire(unit, "Förskollärare"), department, "Förskollärare")

    def paired(self, klass: Record, graduating: list[Record]) -> Record | None:
        """The leaving class whose mentor takes a new class: same track letter first."""
        if not graduating:
            return None
        track = str(klass.get("displayName"))[-1:]
        same = [g for g in graduating if str(g.get("displayName")).endswith(track)]
        return (same or graduating)[0]

    def mentors_of(
        self, group: Record, old: bool = False, roles: tuple[str, ...] = (MENTOR,)
    ) -> list[Record]:
        """Duties with a (next year's, or with ``old`` the old year's) assignment on ``group``."""
        when = self.end_iso if old else self.start_iso
        found: dict[str, Record] = {}
        for duty, assignment in self.assigned.get(str(group["id"]), []):
            if str(assignment.get("assignmentRoleType")) in roles and active(assignment, when):
                duty = self.current(duty) if old else duty
                found.setdefault(str(duty["id"]), duty)
        return list(found.values())

    def teaching(self) -> None:
        """An activity with a teacher for every new class and teaching group."""
        self.duty_by_id = {str(d["id"]): d for d in self.entities["duties"]}
        mentoring = {
            str(duty["id"])
            for duties in self.assigned.values()
            for duty, a in duties
            if a.get("assignmentRoleType") == MENTOR and active(a, self.start_iso)
        }
        predecessor = {str(nxt["id"]): gid for gid, nxt in self.next_of.items()}
        made = list(self.made)  # course groups made below get their own activity
        for unit, cohort in self.cohorts.items():
            pool = self.pool(unit, mentoring)
            for group in made:
                if ref_id(group.get("organisation")) != unit:
                    continue
                kind = group.get("groupType")
                name = str(group.get("displayName"))
                year = cohort.year_of.get(str(group["id"]))
                before = self.teachers_by_subject(predecessor.get(str(group["id"])))
                if kind == "Klass":
                    mentors = self.mentors_of(group) or [self.rng.choice(pool)]
                    if self.units[unit] == "GY":
                        self.activity(f"Mentorstid {name}", unit, [group], mentors)
                        self.courses(unit, group, year or 1, pool)
                    elif year == 0:
                        self.activity(f"Förskoleklass {name}", unit, [group], mentors)
                    else:
                        self.activity(f"Svenska {name}", unit, [group], mentors)
                        for subject in SUBJECTS:
                            teachers = before.get(subject) or [self.rng.choice(pool)]
                            self.activity(f"{subject} {name}", unit, [group], teachers)
                elif kind == "Undervisning":
                    subject = name.rsplit(" ", 1)[0]
                    same_name = self.old_group_named(unit, kind, name)
                    teachers = (
                        before.get(subject)
                        or self.teachers_by_subject(same_name).get(subject)
                        or [self.rng.choice(pool)]
                    )
                    self.activity(name, unit, [group], teachers)

    def courses(self, unit: str, klass: Record, year: int, pool: list[Record]) -> None:
        """A gymnasium class's courses of the year, each a teaching group with teachers."""
        name = str(klass.get("displayName"))
        members = self.member_ids(klass)
        for course in GY_COURSES.get(year, ())[:2]:
            group = self.new_group(f"{course} {name}", "Undervisning", "GY", unit)
            for pid in members:
                self.join(group, pid)
            count = 2 if self.rng.random() < 0.1 else 1
            teachers = self.rng.sample(pool, min(count, len(pool)))
            self.activity(str(group["displayName"]), unit, [group], teachers)

    def old_group_named(self, unit: str, kind: str, name: str) -> str | None:
        for group in self.school_groups(unit):
            if group.get("groupType") == kind and self.old_name[str(group["id"])] == name:
                return str(group["id"])
        return None

    def teachers_by_subject(self, group_id: str | None) -> dict[str, list[Record]]:
        """The old year's teachers of a group's activities by subject ("Matematik 7A" ->
        "Matematik"), each the duty that does the work next year."""
        if group_id is None:
            return {}
        found: dict[str, list[Record]] = {}
        for activity in self.activities_of.get(group_id, []):
            subject = str(activity.get("displayName", "")).rsplit(" ", 1)[0]
            duties = [
                self.current(self.duty_by_id[did])
                for t in activity.get("teachers") or []
                if active(t, self.end_iso)
                and (did := ref_id(t.get("duty")) or "") in self.duty_by_id
            ]
            if duties:
                found[subject] = duties
        return found

    def pool(self, unit: str, mentoring: set[str]) -> list[Record]:
        """The unit's teachers next year who mentor no class (one hired if there are none)."""
        pool: dict[str, Record] = {}
        for duty in self.unit_duties.get(unit, []):
            if duty.get("dutyRole") != "Lärare" or not self.live(duty):
                continue
            duty = self.current(duty)
            if str(duty["id"]) not in mentoring:
                pool.setdefault(str(duty["id"]), duty)
        return list(pool.values()) or [self.hire(unit, "Lärare")]

    # ---- what happened -------------------------------------------------------------

    def report(self) -> None:
        old, new = school_year_label(self.first), school_year_label(self.first + 1)
        style = "groups renamed, ids kept" if self.reuse else "new groups, new ids"
        counts = self.counts
        lines = self.lines
        lines.append(
            f"school year {old} ends {self.end_iso}, {new} starts {self.start_iso} ({style})"
        )
        lines.append(
            f"ended on {self.end_iso}: {counts['ended_groups']} groups, "
            f"{counts['ended_enrolments']} enrolments, {counts['ended_memberships']} "
            f"memberships, {counts['ended_activities']} activities"
        )
        classes = Counter(
            self.school(unit) for unit, cohort in self.cohorts.items() for _c in cohort.classes
        )
        renamed = f", {counts['renamed_groups']} renamed" if self.reuse else ""
        lines.append(
            f"groups for {new}: {counts['new_groups']} new{renamed}; classes: {breakdown(classes)}"
        )
        lines.append(
            f"promoted {pupils(sum(self.promoted_at.values()))} to the next year: "
            f"{breakdown(self.promoted_at)}"
        )
        for fate, text in (("graduate", "graduating year left"), ("mover", "moved away")):
            at = Counter(
                f"{self.school(p.unit)} year {p.year}"
                for p in self.pupils.values()
                if p.fate == fate
            )
            lines.append(f"{text}: {pupils(sum(at.values()))} ({breakdown(at) or 'none'})")
        lines.append(
            f"guardians: {counts['guardians_losing']} lose a school when their child there "
            f"leaves, {counts['guardians_keeping']} keep it through another child"
        )
        lines.append(
            f"förskoleklass: {len(self.starters)} preschool children start "
            f"({breakdown(self.starters_at) or 'no förskoleklass'})"
        )
        lines.append(
            f"new preschool intake: {sum(self.intake_at.values())} children "
            f"({self.intake_siblings} with guardians already in the register) "
            f"({breakdown(self.intake_at)})"
        )
        gy = "; ".join(f"{school} {', '.join(labels)}" for school, labels in self.gy_intake.items())
        lines.append(
            f"new gymnasium intake: {pupils(self.gy_intake_pupils)} ({gy or 'no gymnasium'})"
        )
        lines.append(f"new guardians in the register: {counts['new_guardians']}")
        left = Counter(
            f"{kind} at {self.school(ref_id(duty.get('dutyAt')))}" for kind, duty in self.leaving
        )
        lines.append(
            f"staff leaving: {len(self.leaving)} duties end ({breakdown(left)}); "
            f"{counts['hired']} new staff start"
        )
        lines.append(
            f"mentors and teachers for {new}: {self.mentored} classes with a mentor, "
            f"{counts['new_activities']} activities"
        )
        loose = Counter(self.school(p.unit) for p in self.pupils.values() if p.loose)
        if loose:
            lines.append(
                f"left without a group on purpose: {pupils(sum(loose.values()))} "
                f"({breakdown(loose)})"
            )
        unknown = Counter(self.school(p.unit) for p in self.pupils.values() if p.fate == "unknown")
        if unknown:
            lines.append(
                f"left as they are (no schoolYear): {pupils(sum(unknown.values()))} "
                f"({breakdown(unknown)})"
            )


def rollover(
    in_dir: Path,
    seed: int,
    *,
    today: dt.date | None = None,
    reuse_group_ids: bool = False,
    loose_pupils: int = 0,
) -> list[str]:
    """Roll the list files in ``in_dir`` over to the next school year, in place (0600).

    The school year is the one containing ``today`` (1 July - 30 June); its records end
    on 30 June and the next year's start on 1 July, the effective date. Deterministic for
    the same files, seed and ``today``. ``reuse_group_ids``: keep each group's id and
    rename it instead of making new groups. ``loose_pupils``: that many promoted pupils
    get no group at all (for tests of the school-year checklist). Returns one line per
    kind of change, naming schools, groups and counts, never a person. A register that
    already holds the next year is refused (:class:`autosynk.errors.SourceError`).
    """
    folder = Path(in_dir)
    entities = read_snapshot(folder).entities
    change = Rollover(entities, seed, today or dt.date.today(), reuse_group_ids, loose_pupils)
    lines = change.run()
    encode_entities(folder, change.entities)
    return lines
