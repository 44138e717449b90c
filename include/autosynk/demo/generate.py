"""Generate a demo municipality as the five SS 12000 list files.

The output is what a register's API would return (``{"data": [...]}`` per entity, SS
12000:2020 v2 field names), with the untidiness real registers have: civic numbers in
several styles, samordningsnummer and TF numbers, protected identities, a deceased
guardian, guardians with children in two schools, a teacher who is also a guardian, and
group types the default mapping ignores.

Everything is derived from one seeded PRNG, so the same seed and the same ``today`` give
byte-identical files. All dates are placed relative to ``today``: whatever is meant to be
active is active on that day.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from autosynk.demo import names
from autosynk.errors import ConfigError
from autosynk.sources import ENTITIES
from autosynk.workspace import write_private

Record = dict[str, Any]
DAY = dt.timedelta(days=1)
GUARDIAN = "Vårdnadshavare"
GY_COURSES = {
    1: ("Svenska 1", "Matematik 1c", "Engelska 5"),
    2: ("Svenska 2", "Engelska 6", "Historia 1b"),
    3: ("Svenska 3", "Gymnasiearbete", "Filosofi 1"),
}
LANGUAGES = ("Spanska", "Tyska", "Franska")


@dataclass(frozen=True)
class Scale:
    preschool_areas: int
    preschools_per_area: int
    departments: int
    two_track_schools: int  # grundskolor with classes A and B in every year
    one_track_schools: int
    gymnasier: int
    programmes: int  # classes per year in each gymnasium


SCALES = {
    "small": Scale(1, 2, 2, 1, 1, 1, 2),
    "medium": Scale(4, 4, 3, 12, 6, 2, 5),
    "large": Scale(30, 5, 3, 120, 80, 12, 8),
}


@dataclass(frozen=True)
class SchoolYear:
    first: int  # calendar year of the autumn term
    start: dt.date
    end: dt.date


def school_year(today: dt.date) -> SchoolYear:
    """The school year (1 July - 30 June) containing ``today``.

    On its first and last day the bounds move by a day, so that "started before today"
    and "ends after today" hold on every day of the year.
    """
    first = today.year if today.month >= 7 else today.year - 1
    start = min(dt.date(first, 7, 1), today - DAY)
    end = max(dt.date(first + 1, 6, 30), today + DAY)
    return SchoolYear(first, start, end)


def birth_year_for(school_type: str, year: int, sy: SchoolYear) -> int:
    """The birth year of a pupil in ``year`` (förskoleklass is 0) of this school year."""
    return sy.first - (15 if school_type == "GY" else 6) - year


def encode_entities(folder: Path, entities: dict[str, list[Record]]) -> None:
    """Write every entity list as ``<entity>.json`` = ``{"data": [...]}``, 0600."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ENTITIES:
        write_private(folder / f"{name}.json", msgspec.json.encode({"data": entities[name]}))


@dataclass
class Slot:
    """A pupil's place, decided before the pupil (and their family) exists."""

    unit_id: str
    school_type: str
    school_year: int | None
    birth: dt.date
    enrol_start: dt.date
    enrol_end: dt.date | None
    memberships: list[tuple[Record, dt.date, dt.date | None]] = field(default_factory=list)
    history: list[Record] = field(default_factory=list)
    tf: bool = False

    def join(self, group: Record, start: dt.date, end: dt.date | None) -> None:
        self.memberships.append((group, start, end))


class Factory:
    """Ids, time stamps and people, all from one PRNG; used by generate and mutate."""

    def __init__(
        self,
        rng: random.Random,
        today: dt.date,
        used_ids: set[str] | None = None,
        used_numbers: set[str] | None = None,
        used_mails: set[str] | None = None,
    ) -> None:
        self.rng = rng
        self.today = today
        self.year = school_year(today)
        self.ids: set[str] = used_ids if used_ids is not None else set()
        self.numbers = names.CivicNumbers(rng, used_numbers)
        self.mails: set[str] = used_mails if used_mails is not None else set()

    def new_id(self) -> str:
        while True:
            value = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
            if value not in self.ids:
                self.ids.add(value)
                return value

    def past(self, day: dt.date) -> dt.date:
        """``day``, or yesterday if ``day`` is not in the past."""
        return min(day, self.today - DAY)

    def stamp(self, day: dt.date) -> str:
        rng = self.rng
        return f"{day.isoformat()}T{rng.randint(5, 20):02d}:{rng.randint(0, 59):02d}:00Z"

    def meta(self, created: dt.date) -> Record:
        created = self.past(created)
        span = (self.today - DAY - created).days
        modified = created + dt.timedelta(days=self.rng.randint(0, max(span, 0)))
        created_at, modified_at = self.stamp(created), self.stamp(modified)
        return {"created": created_at, "modified": max(created_at, modified_at)}

    def birth_in(self, year: int) -> dt.date:
        day = dt.date(year, 1, 1) + dt.timedelta(days=self.rng.randint(0, 364))
        return self.past(day)

    def days_ago(self, low: int, high: int) -> dt.date:
        return self.today - dt.timedelta(days=self.rng.randint(low, high))

    def civic_number(self, birth: dt.date, male: bool, tf: bool = False) -> str:
        if tf:
            return self.numbers.tf_number(birth)
        return self.numbers.personnummer(birth, male, coordination=self.rng.random() < 0.02)

    def mail(self, given: str, family: str, domain: str, numbered: bool = False) -> str:
        base = f"{names.fold_ascii(given)}.{names.fold_ascii(family)}"
        suffix = f"{self.rng.randint(1, 99)}" if numbered else ""
        counter = 1
        while f"{base}{suffix}@{domain}" in self.mails:
            counter += 1
            suffix = str(counter) if not numbered else f"{self.rng.randint(1, 999)}"
        value = f"{base}{suffix}@{domain}"
        self.mails.add(value)
        return value

    def person(
        self, given: str, family: str, birth: dt.date, male: bool, tf: bool = False
    ) -> Record:
        return {
            "id": self.new_id(),
            "givenName": given,
            "familyName": family,
            "birthDate": birth.isoformat(),
            "sex": "Man" if male else "Kvinna",
            "civicNo": {"value": self.civic_number(birth, male, tf), "nationality": "SE"},
            "securityMarking": "Ingen",
            "personStatus": "Aktiv",
            "meta": self.meta(max(self.days_ago(30, 3000), birth + dt.timedelta(days=7))),
        }

    def private_contacts(self, person: Record) -> None:
        """A guardian's own e-mail and phones (most have them; registers lack some)."""
        rng = self.rng
        if rng.random() < 0.96:
            value = self.mail(
                person["givenName"],
                person["familyName"],
                rng.choice(names.PRIVATE_DOMAINS),
                numbered=rng.random() < 0.5,
            )
            if rng.random() < 0.05:  # some registers keep the capitals people typed
                value = value.capitalize()
            person.setdefault("emails", []).append({"value": value, "type": "Privat"})
        phones = person.setdefault("phoneNumbers", [])
        phones.append({"value": names.mobile_number(rng), "type": "Privat", "mobile": True})
        if rng.random() < 0.25:
            phones.append({"value": names.landline_number(rng), "type": "Hem", "mobile": False})

    def guardian(self, culture: names.Culture, family: str, male: bool, birth: dt.date) -> Record:
        given = self.rng.choice(culture.male if male else culture.female)
        person = self.person(given, family, birth, male)
        self.private_contacts(person)
        return person

    def staff(self) -> Record:
        rng = self.rng
        culture = names.pick_culture(rng)
        male = rng.random() < 0.3
        given = rng.choice(culture.male if male else culture.female)
        family = rng.choice(culture.family)
        birth = self.birth_in(self.today.year - rng.randint(24, 64))
        person = self.person(given, family, birth, male)
        mail = self.mail(given, family, names.MUNICIPALITY_DOMAIN)
        person["emails"] = [{"value": mail, "type": "Personal"}]
        person["phoneNumbers"] = [
            {"value": names.landline_number(rng), "type": "Arbete", "mobile": False},
            {"value": names.mobile_number(rng), "type": "Arbete", "mobile": True},
        ]
        if rng.random() < 0.95:
            person["addresses"] = [names.street_address(rng)]
        person["eduPersonPrincipalNames"] = [mail]
        return person

    def child(self, culture: names.Culture, family: str, slot: Slot) -> Record:
        rng = self.rng
        male = rng.random() < 0.5
        given = rng.choice(culture.male if male else culture.female)
        person = self.person(given, family, slot.birth, male, tf=slot.tf)
        year = slot.school_year or 0
        if slot.school_type == "GY" or (slot.school_type == "GR" and year >= 4):
            mail = self.mail(given, family, names.PUPIL_DOMAIN, numbered=True)
            person["emails"] = [{"value": mail, "type": "Skola"}]
        if slot.school_type == "GY" or (year >= 6 and rng.random() < 0.7):
            number = names.mobile_number(rng)
            person["phoneNumbers"] = [{"value": number, "type": "Privat", "mobile": True}]
        enrolment: Record = {
            "enroledAt": {"id": slot.unit_id},
            "schoolType": slot.school_type,
            "startDate": slot.enrol_start.isoformat(),
            "cancelled": False,
        }
        if slot.school_year is not None:
            enrolment["schoolYear"] = slot.school_year
        if slot.enrol_end is not None:
            enrolment["endDate"] = slot.enrol_end.isoformat()
        person["enrolments"] = [*slot.history, enrolment]
        for group, start, end in slot.memberships:
            membership: Record = {"person": {"id": person["id"]}, "startDate": start.isoformat()}
            if end is not None:
                membership["endDate"] = end.isoformat()
            group["groupMemberships"].append(membership)
        return person

    def family(
        self, slots: list[Slot], guardian_count: int, first_guardian: Record | None = None
    ) -> tuple[list[Record], list[Record]]:
        """Guardians and children of one household; children get guardian 1's family name.

        ``first_guardian`` is an existing person (e.g. a teacher) who becomes guardian 1.
        """
        rng = self.rng
        culture = names.pick_culture(rng)
        oldest = min(slot.birth.year for slot in slots)
        address = names.street_address(rng) if rng.random() < 0.97 else None
        guardians: list[Record] = []
        if first_guardian is not None:
            first = first_guardian
            male = first["sex"] == "Man"
            self.private_contacts(first)
        else:
            male = rng.random() < 0.45
            first = self.guardian(
                culture,
                rng.choice(culture.family),
                male,
                self.birth_in(oldest - rng.randint(22, 40)),
            )
            if address:
                first["addresses"] = [address]
        guardians.append(first)
        family_name = first["familyName"]
        if guardian_count == 2:
            second_male = (not male) if rng.random() < 0.95 else male
            second_name = family_name if rng.random() < 0.7 else rng.choice(culture.family)
            second = self.guardian(
                culture, second_name, second_male, self.birth_in(oldest - rng.randint(22, 42))
            )
            # most parents share a home; some live apart
            home = address if rng.random() < 0.85 else names.street_address(rng)
            if home:
                second["addresses"] = [home]
            guardians.append(second)
        children = []
        for slot in slots:
            child = self.child(culture, family_name, slot)
            if address:
                child["addresses"] = [address]
            child["responsibles"] = [
                {"person": {"id": g["id"]}, "relationType": GUARDIAN} for g in guardians
            ]
            children.append(child)
        return guardians, children


@dataclass
class Unit:
    record: Record
    kind: str  # FS, GR or GY
    staff: list[Record] = field(default_factory=list)  # person records
    teachers: list[Record] = field(default_factory=list)  # Lärare duty records

    @property
    def id(self) -> str:
        return str(self.record["id"])


class Municipality:
    """Builds the whole register in a fixed order (the order is part of determinism)."""

    def __init__(self, seed: int, scale: Scale, today: dt.date) -> None:
        self.rng = random.Random(seed)
        self.scale = scale
        self.make = Factory(self.rng, today)
        self.sy = self.make.year
        self.entities: dict[str, list[Record]] = {name: [] for name in ENTITIES}
        self.units: list[Unit] = []
        self.slots: list[Slot] = []
        self.codes: set[str] = set()
        self.places = self._place_names()
        self.taken_names: set[str] = set()
        self.tf_due = 1  # at least one pupil gets a TF number

    # ---- building blocks -------------------------------------------------------------

    def _place_names(self) -> Iterator[str]:
        combos = [
            stem + ending
            for stem in names.PLACE_STEMS
            for ending in names.PLACE_ENDINGS
            if stem.lower() != ending
        ]
        self.rng.shuffle(combos)
        while True:
            yield from combos

    def unique_name(self, template: str) -> str:
        """A school name from the next place name; a repeated one gets a number."""
        base = template.format(next(self.places))
        name, number = base, 1
        while name in self.taken_names:
            number += 1
            name = f"{base} {number}"
        self.taken_names.add(name)
        return name

    def organisation(
        self,
        name: str,
        kind: str,
        parent: Record | None,
        school_types: list[str] | None = None,
    ) -> Record:
        make, rng = self.make, self.rng
        record: Record = {"id": make.new_id(), "displayName": name, "organisationType": kind}
        if school_types is not None:
            while (code := f"{rng.randint(10_000_000, 99_999_999)}") in self.codes:
                pass
            self.codes.add(code)
            record["schoolUnitCode"] = code
            record["schoolTypes"] = school_types
        if parent is not None:
            record["parentOrganisation"] = {"id": parent["id"]}
        slug = names.fold_ascii(name.replace(" ", "-"))
        record["email"] = f"{slug}@{names.MUNICIPALITY_DOMAIN}"
        record["phoneNumber"] = names.landline_number(rng)
        record["url"] = f"https://{names.MUNICIPALITY_DOMAIN}/{slug}"
        address = names.street_address(rng)
        record["address"] = {k: address[k] for k in ("streetAddress", "postalCode", "locality")}
        record["startDate"] = make.days_ago(3000, 9000).isoformat()
        record["meta"] = make.meta(make.days_ago(400, 3000))
        self.entities["organisations"].append(record)
        return record

    def group(
        self,
        name: str,
        kind: str,
        school_type: str,
        unit: Unit,
        start: dt.date | None = None,
        end: dt.date | None = None,
    ) -> Record:
        start = start or self.sy.start
        record: Record = {
            "id": self.make.new_id(),
            "displayName": name,
            "groupType": kind,
            "schoolType": school_type,
            "organisation": {"id": unit.id},
            "startDate": start.isoformat(),
        }
        if end is not None:
            record["endDate"] = end.isoformat()
        record["groupMemberships"] = []
        record["meta"] = self.make.meta(start)
        self.entities["groups"].append(record)
        return record

    def duty(
        self,
        unit: Unit,
        role: str,
        person: Record | None = None,
        assignments: tuple[tuple[Record, str], ...] = (),
    ) -> Record:
        make, rng = self.make, self.rng
        if person is None:
            person = make.staff()
            self.entities["persons"].append(person)
        if person not in unit.staff:
            unit.staff.append(person)
        given, family = (
            names.fold_ascii(person["givenName"]),
            names.fold_ascii(person["familyName"]),
        )
        record: Record = {
            "id": make.new_id(),
            "person": {"id": person["id"]},
            "dutyAt": {"id": unit.id},
            "dutyRole": role,
            "signature": (given[:2] + family[:2]).upper(),
            "dutyPercent": rng.choice((100, 100, 100, 100, 80, 75, 50)),
            "startDate": make.days_ago(60, 6000).isoformat(),
            "assignmentRole": [
                {
                    "group": {"id": group["id"]},
                    "assignmentRoleType": kind,
                    "startDate": self.sy.start.isoformat(),
                    "endDate": self.sy.end.isoformat(),
                }
                for group, kind in assignments
            ],
            "meta": make.meta(make.days_ago(60, 2000)),
        }
        if role == "Lärare":
            unit.teachers.append(record)
        self.entities["duties"].append(record)
        return record

    def activity(self, name: str, unit: Unit, groups: list[Record], duties: list[Record]) -> None:
        start, end = self.sy.start.isoformat(), self.sy.end.isoformat()
        self.entities["activities"].append(
            {
                "id": self.make.new_id(),
                "displayName": name,
                "activityType": "Undervisning",
                "calendarEventsRequired": False,
                "startDate": start,
                "endDate": end,
                "groups": [{"id": g["id"]} for g in groups],
                "teachers": [
                    {"duty": {"id": d["id"]}, "startDate": start, "endDate": end} for d in duties
                ],
                "organisation": {"id": unit.id},
                "meta": self.make.meta(self.sy.start),
            }
        )

    def pupils(
        self, unit: Unit, school_type: str, year: int, group: Record, size: int
    ) -> list[Slot]:
        make, sy = self.make, self.sy
        slots = []
        for _ in range(size):
            birth = make.birth_in(birth_year_for(school_type, year, sy))
            slot = Slot(unit.id, school_type, year, birth, sy.start, sy.end)
            slot.join(group, sy.start, sy.end)
            # newly arrived pupils may have only a TF number for a while
            if school_type != "FSK" and (self.tf_due or self.rng.random() < 0.004):
                slot.tf, self.tf_due = True, 0
            slots.append(slot)
        self.slots.extend(slots)
        return slots

    def split(self, slots: list[Slot], parts: int) -> list[list[Slot]]:
        shuffled = list(slots)
        self.rng.shuffle(shuffled)
        return [shuffled[i::parts] for i in range(parts)]

    def staff_group(self, unit: Unit, school_type: str) -> None:
        group = self.group(
            f"Personal {unit.record['displayName']}", "Personalgrupp", school_type, unit
        )
        for person in unit.staff:
            group["groupMemberships"].append(
                {"person": {"id": person["id"]}, "startDate": self.sy.start.isoformat()}
            )

    # ---- school forms ----------------------------------------------------------------

    def preschool_area(self, owner: Record) -> None:
        make, rng, sy = self.make, self.rng, self.sy
        area = self.organisation(self.unique_name("Förskoleområde {}"), "Skola", owner)
        head = make.staff()  # one rektor leads every preschool of the area
        self.entities["persons"].append(head)
        for _ in range(self.scale.preschools_per_area):
            name = self.unique_name("{}s förskola")
            unit = Unit(self.organisation(name, "Skolenhet", area, ["FS"]), "FS")
            self.units.append(unit)
            self.duty(unit, "Rektor", head)
            offset = rng.randrange(len(names.DEPARTMENTS))
            for index in range(self.scale.departments):
                label = names.DEPARTMENTS[(offset + index) % len(names.DEPARTMENTS)]
                department = self.group(label, "Avdelning", "FS", unit, make.days_ago(800, 4000))
                for _ in range(rng.randint(11, 16)):
                    birth = make.birth_in(sy.first - rng.randint(2, 5))
                    start = make.past(birth + dt.timedelta(days=rng.randint(380, 700)))
                    slot = Slot(unit.id, "FS", None, birth, start, None)
                    slot.join(department, start, None)
                    self.slots.append(slot)
                self.duty(unit, "Förskollärare", assignments=((department, "Förskollärare"),))
                self.duty(unit, "Barnskötare", assignments=((department, "Barnskötare"),))
            self.staff_group(unit, "FS")

    def grundskola(self, owner: Record, tracks: int) -> None:
        rng, sy = self.rng, self.sy
        name = self.unique_name("{}skolan")
        school = self.organisation(name, "Skola", owner)
        unit = Unit(self.organisation(name, "Skolenhet", school, ["FSK", "GR", "FTH"]), "GR")
        self.units.append(unit)
        self.duty(unit, "Rektor")
        subject = [self.duty(unit, "Lärare") for _ in range(2 + 2 * tracks)]
        young: list[Slot] = []
        for year in range(10):
            year_slots: list[Slot] = []
            school_type = "FSK" if year == 0 else "GR"
            for letter in "AB"[:tracks]:
                label = f"{'F' if year == 0 else year}{letter}"
                klass = self.group(label, "Klass", school_type, unit, end=sy.end)
                slots = self.pupils(unit, school_type, year, klass, rng.randint(12, 17))
                year_slots += slots
                mentor = self.duty(unit, "Lärare", assignments=((klass, "Mentor"),))
                if year == 0:
                    self.activity(f"Förskoleklass {label}", unit, [klass], [mentor])
                    continue
                self.activity(f"Svenska {label}", unit, [klass], [mentor])
                for subject_name in ("Matematik", "Engelska"):
                    self.activity(f"{subject_name} {label}", unit, [klass], [rng.choice(subject)])
                if year >= 7:
                    for half, members in enumerate(self.split(slots, 2), start=1):
                        part = self.group(
                            f"{label} halvklass {half}", "Schema", "GR", unit, end=sy.end
                        )
                        for slot in members:
                            slot.join(part, sy.start, sy.end)
            if year <= 3:
                young += year_slots
            if year >= 6:
                languages = LANGUAGES[: 1 + tracks]
                for language, members in zip(
                    languages, self.split(year_slots, len(languages)), strict=True
                ):
                    teaching = self.group(
                        f"{language} {year}", "Undervisning", "GR", unit, end=sy.end
                    )
                    for slot in members:
                        slot.join(teaching, sy.start, sy.end)
                    self.activity(teaching["displayName"], unit, [teaching], [rng.choice(subject)])
        leisure = self.group(f"Fritids {name}", "Övrigt", "FTH", unit, end=sy.end)
        for slot in young:
            if rng.random() < 0.8:
                slot.join(leisure, sy.start, sy.end)
        self.duty(unit, "Fritidspedagog", assignments=((leisure, "Fritidspedagog"),))
        self.duty(unit, "Skoladministratör")
        self.staff_group(unit, "GR")

    def gymnasium(self, owner: Record) -> None:
        rng, sy = self.rng, self.sy
        name = self.unique_name("{}gymnasiet")
        school = self.organisation(name, "Skola", owner)
        unit = Unit(self.organisation(name, "Skolenhet", school, ["GY"]), "GY")
        self.units.append(unit)
        self.duty(unit, "Rektor")
        self.duty(unit, "Studie- och yrkesvägledare")
        pool = [self.duty(unit, "Lärare") for _ in range(3 + self.scale.programmes)]
        for year in (1, 2, 3):
            for programme in names.GY_PROGRAMMES[: self.scale.programmes]:
                label = f"{programme}{(sy.first - year + 1) % 100:02d}"
                klass = self.group(label, "Klass", "GY", unit, end=sy.end)
                slots = self.pupils(unit, "GY", year, klass, rng.randint(15, 20))
                mentor = self.duty(unit, "Lärare", assignments=((klass, "Mentor"),))
                self.activity(f"Mentorstid {label}", unit, [klass], [mentor])
                for half, members in enumerate(self.split(slots, 2), start=1):
                    mentor_group = self.group(
                        f"Mentor {label} {half}", "Mentor", "GY", unit, end=sy.end
                    )
                    for slot in members:
                        slot.join(mentor_group, sy.start, sy.end)
                for course in GY_COURSES[year][:2]:
                    teaching = self.group(
                        f"{course} {label}", "Undervisning", "GY", unit, end=sy.end
                    )
                    for slot in slots:
                        slot.join(teaching, sy.start, sy.end)
                    teachers = rng.sample(pool, 2 if rng.random() < 0.1 else 1)
                    self.activity(teaching["displayName"], unit, [teaching], teachers)
                for slot in slots:
                    if rng.random() < 0.03:  # changed their mind before term started
                        other = rng.choice([u for u in self.units if u.kind == "GY"])
                        slot.history.append(
                            {
                                "enroledAt": {"id": other.id},
                                "schoolType": "GY",
                                "schoolYear": year,
                                "startDate": sy.start.isoformat(),
                                "endDate": sy.end.isoformat(),
                                "cancelled": True,
                            }
                        )
        self.staff_group(unit, "GY")

    # ---- people ----------------------------------------------------------------------

    def households(self) -> None:
        rng, sy = self.rng, self.sy
        preschools = [u for u in self.units if u.kind == "FS"]
        for slot in self.slots:
            if slot.school_type == "FSK" and preschools:  # came from a preschool
                slot.history.append(
                    {
                        "enroledAt": {"id": rng.choice(preschools).id},
                        "schoolType": "FS",
                        "startDate": self.make.past(
                            slot.birth.replace(day=1) + dt.timedelta(days=400)
                        ).isoformat(),
                        "endDate": dt.date(sy.first, 6, 30).isoformat(),
                        "cancelled": False,
                    }
                )
        slots = list(self.slots)
        rng.shuffle(slots)
        plans: list[tuple[list[Slot], int]] = []
        index = 0
        while index < len(slots):
            size = rng.choices((1, 2, 3), weights=(50, 35, 15))[0]
            plans.append((slots[index : index + size], 2 if rng.random() < 0.82 else 1))
            index += size
        pairs = [i for i, (_, count) in enumerate(plans) if count == 2]
        teacher_home, protected_home, deceased_home, secret_home = rng.sample(pairs, 4)
        teachers = [d for u in self.units if u.kind == "GR" for d in u.teachers]
        persons_by_id = {p["id"]: p for p in self.entities["persons"]}
        oldest = min(slot.birth.year for slot in plans[teacher_home][0])
        old_enough = [
            persons_by_id[d["person"]["id"]]
            for d in teachers
            if int(persons_by_id[d["person"]["id"]]["birthDate"][:4]) <= oldest - 20
        ]
        teacher = rng.choice(old_enough or [persons_by_id[d["person"]["id"]] for d in teachers])
        for number, (members, count) in enumerate(plans):
            first = teacher if number == teacher_home else None
            guardians, children = self.make.family(members, count, first)
            if number == protected_home:
                for person in (guardians[0], *children):
                    person["securityMarking"] = "Skyddad folkbokföring"
                    person.pop("addresses", None)  # a protected address is never released
            if number == deceased_home:
                guardians[1]["personStatus"] = "Avliden"
            for child in children:
                if number == secret_home or rng.random() < 0.008:
                    child["securityMarking"] = "Sekretessmarkering"
            self.entities["persons"] += [g for g in guardians if g is not teacher] + children

    def build(self) -> None:
        owner = self.organisation(names.MUNICIPALITY, "Huvudman", None)
        owner["organisationNumber"] = "212000-1499"
        owner["municipalityCode"] = "1499"
        for _ in range(self.scale.preschool_areas):
            self.preschool_area(owner)
        for tracks, count in ((2, self.scale.two_track_schools), (1, self.scale.one_track_schools)):
            for _ in range(count):
                self.grundskola(owner, tracks)
        for _ in range(self.scale.gymnasier):
            self.gymnasium(owner)
        self.households()

    def counts(self) -> dict[str, int]:
        persons = self.entities["persons"]
        result = {name: len(self.entities[name]) for name in ENTITIES}
        result["schools"] = sum(
            1 for o in self.entities["organisations"] if o["organisationType"] == "Skolenhet"
        )
        result["children"] = sum(1 for p in persons if p.get("enrolments"))
        result["guardians"] = len(
            {r["person"]["id"] for p in persons for r in p.get("responsibles", [])}
        )
        result["staff"] = len({d["person"]["id"] for d in self.entities["duties"]})
        result["protected"] = sum(1 for p in persons if p["securityMarking"] != "Ingen")
        return result


def generate(
    out_dir: Path, seed: int, scale: str = "small", today: dt.date | None = None
) -> dict[str, int]:
    """Write a demo municipality's five SS 12000 list files into ``out_dir`` (0600).

    Returns the number of records per file plus headline counts (no personal data).
    """
    if scale not in SCALES:
        raise ConfigError(f"demo scale {scale!r} is not one of {', '.join(SCALES)}")
    municipality = Municipality(seed, SCALES[scale], today or dt.date.today())
    municipality.build()
    encode_entities(Path(out_dir), municipality.entities)
    return municipality.counts()
