"""One realistic day of changes in a demo municipality's SS 12000 list files.

A new pupil arrives with two guardians, a pupil leaves, a pupil changes class, a child
gets another guardian, a staff member's e-mail changes, an activity gets a new teacher and
a teaching group closes. Each change is dated so that it takes effect on ``today``
(ends are set to yesterday, starts to today) and stamps ``meta.modified`` on what it
touched. The descriptions returned name schools and groups only, never a person.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from autosynk.demo import names
from autosynk.demo.generate import (
    DAY,
    GUARDIAN,
    Factory,
    Slot,
    birth_year_for,
    encode_entities,
)
from autosynk.identity import InvalidIdentity, normalise
from autosynk.register import active, read_snapshot, ref_id

Record = dict[str, Any]
PUPIL_TYPES = ("FSK", "GR", "GY")


class Day:
    """The register as loaded, with the indexes the changes need."""

    def __init__(self, entities: dict[str, list[Record]], seed: int, today: dt.date) -> None:
        self.entities = entities
        self.today = today
        self.iso = today.isoformat()
        self.yesterday = (today - DAY).isoformat()
        self.modified = f"{self.iso}T12:00:00Z"
        self.rng = random.Random(seed * 1_000_003 + today.toordinal())
        used_ids = {str(r["id"]) for records in entities.values() for r in records if "id" in r}
        self.make = Factory(self.rng, today, used_ids, self._numbers(), self._mails())
        self.persons = {str(p["id"]): p for p in entities["persons"]}
        self.orgs = {str(o["id"]): o for o in entities["organisations"]}
        self.touched: set[str] = set()  # persons already changed today

    def _numbers(self) -> set[str]:
        """Numbers in use, in the canonical form :class:`names.CivicNumbers` keeps."""
        used = set()
        for person in self.entities["persons"]:
            value = str((person.get("civicNo") or {}).get("value") or "")
            digits = value.replace("-", "")
            if len(digits) == 12 and digits.isdigit():  # most; skip the slower full parse
                used.add(digits)
                continue
            try:
                identity = normalise(value, self.today)
            except InvalidIdentity:
                continue
            used.add(identity.value if identity.kind == "tf" else identity.value.replace("-", ""))
        return used

    def _mails(self) -> set[str]:
        return {
            str(mail.get("value"))
            for person in self.entities["persons"]
            for mail in person.get("emails") or []
        }

    def school(self, org_id: str | None) -> str:
        return str(self.orgs.get(org_id or "", {}).get("displayName", "unknown school"))

    def stamp(self, record: Record) -> None:
        record.setdefault("meta", {})["modified"] = self.modified

    def live_groups(self, kind: str) -> list[Record]:
        return [
            g
            for g in self.entities["groups"]
            if g.get("groupType") == kind and active(g, self.iso) and g.get("endDate") != self.iso
        ]

    def pupil_enrolment(self, person: Record) -> Record | None:
        """The person's active enrolment in a school (not preschool), started before today."""
        for enrolment in person.get("enrolments") or []:
            if (
                enrolment.get("schoolType") in PUPIL_TYPES
                and not enrolment.get("cancelled")
                and active(enrolment, self.iso)
                and str(enrolment.get("startDate", "")) < self.iso
            ):
                return enrolment
        return None

    def is_ordinary(self, person: Record) -> bool:
        return (
            str(person["id"]) not in self.touched
            and person.get("personStatus") == "Aktiv"
            and person.get("securityMarking") == "Ingen"
        )

    def class_year(self, group: Record) -> int | None:
        """A class's school year, as its members' enrolments there say."""
        org_id = ref_id(group.get("organisation"))
        for membership in group.get("groupMemberships") or []:
            person = self.persons.get(ref_id(membership.get("person")) or "")
            enrolment = self.pupil_enrolment(person) if person else None
            if enrolment and ref_id(enrolment.get("enroledAt")) == org_id:
                year = enrolment.get("schoolYear")
                return int(year) if year is not None else None
        return None

    # ---- the changes -----------------------------------------------------------------

    def new_pupil(self) -> str:
        classes = [g for g in self.live_groups("Klass") if g.get("schoolType") == "GR"]
        klass = self.rng.choice(classes) if classes else None
        year = self.class_year(klass) if klass else None
        if klass is None or year is None:
            return "skipped new pupil: no class to join"
        org_id = ref_id(klass.get("organisation")) or ""
        birth = self.make.birth_in(birth_year_for("GR", year, self.make.year))
        slot = Slot(org_id, "GR", year, birth, self.today, self.make.year.end)
        slot.join(klass, self.today, self.make.year.end)
        guardians, children = self.make.family([slot], 2)
        for record in (*guardians, *children):
            record["meta"] = {"created": self.modified, "modified": self.modified}
            self.touched.add(str(record["id"]))
            self.persons[str(record["id"])] = record
        self.entities["persons"] += [*guardians, *children]
        self.stamp(klass)
        return (
            f"new pupil in class {klass.get('displayName')} with 2 guardians at "
            f"{self.school(org_id)}"
        )

    def leaver(self) -> str:
        pupils = [
            (p, e)
            for p in self.entities["persons"]
            if self.is_ordinary(p) and (e := self.pupil_enrolment(p)) is not None
        ]
        if not pupils:
            return "skipped leaver: no pupil enrolled"
        person, enrolment = self.rng.choice(pupils)
        enrolment["endDate"] = self.yesterday
        # a register already rolled over to next year (demo rollover) has planned
        # enrolments and memberships starting later: they are called off as well
        for planned in person.get("enrolments") or []:
            if str(planned.get("startDate", ""))[:10] > self.iso:
                planned["cancelled"] = True
        ended = 0
        for group in self.entities["groups"]:
            memberships = group.get("groupMemberships") or []
            for membership in memberships:
                if ref_id(membership.get("person")) == person["id"] and active(
                    membership, self.iso
                ):
                    membership["endDate"] = self.yesterday
                    self.stamp(group)
                    ended += 1
            kept = [
                m
                for m in memberships
                if ref_id(m.get("person")) != person["id"]
                or str(m.get("startDate", ""))[:10] <= self.iso
            ]
            if len(kept) < len(memberships):
                group["groupMemberships"] = kept
                self.stamp(group)
        self.stamp(person)
        self.touched.add(str(person["id"]))
        school = self.school(ref_id(enrolment.get("enroledAt")))
        return f"leaver at {school}: enrolment and {ended} group memberships ended"

    def class_change(self) -> str:
        classes = self.live_groups("Klass")
        by_year: dict[tuple[str, int], list[Record]] = {}
        for group in classes:
            year = self.class_year(group)
            if year is not None:
                key = (ref_id(group.get("organisation")) or "", year)
                by_year.setdefault(key, []).append(group)
        moves = []
        for siblings in by_year.values():
            for old in siblings if len(siblings) > 1 else []:
                for membership in old.get("groupMemberships") or []:
                    person = self.persons.get(ref_id(membership.get("person")) or "")
                    if (
                        person
                        and self.is_ordinary(person)
                        and active(membership, self.iso)
                        and str(membership.get("startDate", "")) < self.iso
                    ):
                        moves.append((old, membership, [g for g in siblings if g is not old]))
        if not moves:
            return "skipped class change: no school with two classes in a year"
        old, membership, others = self.rng.choice(moves)
        new = self.rng.choice(others)
        membership["endDate"] = self.yesterday
        joined: Record = {"person": dict(membership["person"]), "startDate": self.iso}
        if new.get("endDate"):
            joined["endDate"] = new["endDate"]
        new.setdefault("groupMemberships", []).append(joined)
        self.stamp(old)
        self.stamp(new)
        self.touched.add(str(ref_id(membership.get("person"))))
        school = self.school(ref_id(old.get("organisation")))
        return f"class change at {school}: {old.get('displayName')} -> {new.get('displayName')}"

    def new_guardian(self) -> str:
        children = [
            p
            for p in self.entities["persons"]
            if self.is_ordinary(p)
            and self.pupil_enrolment(p) is not None
            and sum(1 for r in p.get("responsibles") or [] if r.get("relationType") == GUARDIAN)
            == 1
        ]
        if not children:
            return "skipped new guardian: no child with a single guardian"
        child = self.rng.choice(children)
        rng = self.rng
        culture = names.pick_culture(rng)
        family = child["familyName"] if rng.random() < 0.5 else rng.choice(culture.family)
        birth_year = int(str(child.get("birthDate", "2010"))[:4]) - rng.randint(22, 40)
        guardian = self.make.guardian(
            culture, family, rng.random() < 0.5, self.make.birth_in(birth_year)
        )
        guardian["addresses"] = [names.street_address(rng)]
        guardian["meta"] = {"created": self.modified, "modified": self.modified}
        self.entities["persons"].append(guardian)
        child.setdefault("responsibles", []).append(
            {"person": {"id": guardian["id"]}, "relationType": GUARDIAN}
        )
        self.stamp(child)
        self.touched.update((str(child["id"]), str(guardian["id"])))
        enrolment = self.pupil_enrolment(child) or {}
        school = self.school(ref_id(enrolment.get("enroledAt")))
        return f"new guardian for an existing pupil at {school}"

    def staff_email(self) -> str:
        duty_of: dict[str, Record] = {}
        for duty in self.entities["duties"]:
            if active(duty, self.iso):
                duty_of.setdefault(ref_id(duty.get("person")) or "", duty)
        staff = [
            p
            for p in self.entities["persons"]
            if str(p["id"]) in duty_of
            and self.is_ordinary(p)
            and any(m.get("type") == "Personal" for m in p.get("emails") or [])
        ]
        if not staff:
            return "skipped e-mail change: no staff member with a work e-mail"
        person = self.rng.choice(staff)
        mail = next(m for m in person["emails"] if m.get("type") == "Personal")
        mail["value"] = self.make.mail(
            person["givenName"], person["familyName"], names.MUNICIPALITY_DOMAIN
        )
        self.stamp(person)
        self.touched.add(str(person["id"]))
        school = self.school(ref_id(duty_of[str(person["id"])].get("dutyAt")))
        return f"changed work e-mail of a staff member at {school}"

    def teacher_change(self) -> str:
        teachers_at: dict[str, list[Record]] = {}
        for duty in self.entities["duties"]:
            if duty.get("dutyRole") == "Lärare" and active(duty, self.iso):
                teachers_at.setdefault(ref_id(duty.get("dutyAt")) or "", []).append(duty)
        options = []
        for activity in self.entities["activities"]:
            if not active(activity, self.iso):
                continue
            current = [
                t
                for t in activity.get("teachers") or []
                if active(t, self.iso) and str(t.get("startDate", "")) < self.iso
            ]
            taken = {ref_id(t.get("duty")) for t in activity.get("teachers") or []}
            free = [
                d
                for d in teachers_at.get(ref_id(activity.get("organisation")) or "", [])
                if d["id"] not in taken
            ]
            if current and free:
                options.append((activity, current, free))
        if not options:
            return "skipped teacher change: no activity with a teacher to replace"
        activity, current, free = self.rng.choice(options)
        leaving = self.rng.choice(current)
        leaving["endDate"] = self.yesterday
        arriving: Record = {"duty": {"id": self.rng.choice(free)["id"]}, "startDate": self.iso}
        if activity.get("endDate"):
            arriving["endDate"] = activity["endDate"]
        activity["teachers"].append(arriving)
        self.stamp(activity)
        school = self.school(ref_id(activity.get("organisation")))
        return f"teacher replaced on activity {activity.get('displayName')} at {school}"

    def closed_group(self) -> str:
        groups = self.live_groups("Undervisning")
        if not groups:
            return "skipped closed group: no teaching group"
        group = self.rng.choice(groups)
        group["endDate"] = self.yesterday
        self.stamp(group)
        school = self.school(ref_id(group.get("organisation")))
        return f"closed teaching group {group.get('displayName')} at {school}"

    def changes(self) -> list[Callable[[], str]]:
        return [
            self.new_pupil,
            self.leaver,
            self.class_change,
            self.new_guardian,
            self.staff_email,
            self.teacher_change,
            self.closed_group,
        ]


def mutate(in_dir: Path, seed: int, today: dt.date | None = None) -> list[str]:
    """Apply one day of changes to the list files in ``in_dir``, in place (0600).

    Deterministic for the same files, seed and ``today``. Returns one line per change,
    naming schools and groups but no person. A missing or malformed file raises
    :class:`autosynk.errors.SourceError`.
    """
    folder = Path(in_dir)
    day = Day(read_snapshot(folder).entities, seed, today or dt.date.today())
    lines = [change() for change in day.changes()]
    encode_entities(folder, day.entities)
    return lines
