"""Hypothesis strategies: a small municipality's SS 12000 register, night after night.

A fixed pool of schools, groups, pupils, guardians and staff (valid personnummer, so a key
never depends on the draw); each night draws who is enrolled where, who is in which group,
who is whose guardian, who works where and mentors or teaches what, and sometimes: a
person becomes protected, a record carries a wrong check digit for a night, a group
closes, a person leaves the register, a number comes in another written form.

``register(night, allow_invalid)`` turns one drawn night into the five SS 12000 lists.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from autosynk.demo.names import luhn_digit

ORG = "exempelby-kommun"
START = "2020-08-15"
ENDED = "2000-01-01"  # an end date in the past: the record is not active on any night


def _pnr(date8: str, serial: str) -> str:
    return f"{date8}-{serial}{luhn_digit(date8[2:] + serial)}"


PUPILS = {
    "p1": _pnr("20130315", "238"),
    "p2": _pnr("20140422", "246"),
    "p3": _pnr("20150611", "123"),
    "p4": _pnr("20160707", "452"),
    "p5": _pnr("20190912", "331"),
    "p6": _pnr("20100128", "564"),
}
GUARDIANS = {
    "g1": _pnr("19870202", "456"),
    "g2": _pnr("19790303", "789"),
    "g3": _pnr("19800404", "321"),
    "g4": _pnr("19910519", "148"),
}
STAFF = {
    "s1": _pnr("19850101", "123"),  # may also be a pupil's guardian
    "s2": _pnr("19750505", "111"),
    "s3": _pnr("19681130", "272"),
}
NUMBERS = {**PUPILS, **GUARDIANS, **STAFF}

#: school id -> (school types, enrolment school type, school years an enrolment may name)
SCHOOLS: dict[str, tuple[list[str], str, tuple[int | None, ...]]] = {
    "u1": (["FSK", "GR", "FTH"], "GR", (1, 4, 7, 9)),
    "u2": (["FS"], "FS", (None,)),
    "u3": (["GY"], "GY", (1, 2, 3)),
}
SCHOOL_CODES = {"u1": "12345678", "u2": "87654321", "u3": "11223344"}
#: group id -> (school, group type, school type)
GROUPS = {
    "k1": ("u1", "Klass", "GR"),
    "k2": ("u1", "Undervisning", "GR"),
    "m1": ("u1", "Mentor", "GR"),
    "a1": ("u2", "Avdelning", "FS"),
    "y1": ("u3", "Klass", "GY"),
}
#: hand-made relations an administrator keeps in Unikum; the sync can never produce them
MANUAL_RELATIONS = (
    ("administrator_for", STAFF["s3"], ORG),
    ("guardian_for", STAFF["s2"], PUPILS["p1"]),  # a foster parent, handled by hand
    ("teacher_in_class", STAFF["s2"], "HANDGRUPP-1"),  # a staff group made in Unikum
)

NAMES = ("Åsa", "Anna", "Bo", "Liam", "Karin", "Per")
#: what may be unusual about a person tonight (most nights: nothing)
CONDITIONS = ("ok",) * 16 + (
    "protected",  # securityMarking Skyddad folkbokföring
    "confidential",  # securityMarking Sekretessmarkering
    "invalid",  # the number carries a wrong check digit tonight
    "emigrated",  # personStatus Utvandrad: never exported
    "absent",  # the record is not in the register at all
)
_MARKINGS = {"protected": "Skyddad folkbokföring", "confidential": "Sekretessmarkering"}
#: the forms a register writes a number in; the key must not depend on it
NUMBER_FORMS = ("12-hyphen", "12-plain", "10-hyphen")


@dataclass(frozen=True)
class Person:
    name: int  # index into NAMES: a rename resends the row
    condition: str
    number_form: str

    @property
    def marking(self) -> str:
        return _MARKINGS.get(self.condition, "Ingen")

    @property
    def present(self) -> bool:
        return self.condition != "absent"

    @property
    def invalid(self) -> bool:
        return self.condition == "invalid"

    @property
    def status(self) -> str:
        return "Utvandrad" if self.condition == "emigrated" else "Aktiv"


@dataclass(frozen=True)
class Pupil:
    person: Person
    school: str | None
    year_index: int
    groups: frozenset[str]
    guardians: tuple[str, ...]


@dataclass(frozen=True)
class Staff:
    person: Person
    school: str | None  # None: the duty has ended
    role: str
    assignments: frozenset[tuple[str, str]]  # (group, assignment role)


@dataclass(frozen=True)
class NightRegister:
    """One night's register, in the terms drawn."""

    school_names: tuple[int, ...]
    groups_open: frozenset[str]
    group_names: tuple[int, ...]
    pupils: tuple[Pupil, ...]
    guardians: tuple[Person, ...]
    staff: tuple[Staff, ...]
    activities: tuple[tuple[frozenset[str], frozenset[str]], ...]  # (groups, staff ids)
    #: deliver this night as a re-baseline total (night 0 always is one)
    rebaseline: bool = False

    def protected_keys(self) -> set[str]:
        """Identity numbers of persons protected tonight (they may never be named)."""
        return {
            NUMBERS[pid]
            for pid, person in self.persons()
            if person.present and person.marking != "Ingen"
        }

    def persons(self) -> list[tuple[str, Person]]:
        return (
            [(pid, p.person) for pid, p in zip(PUPILS, self.pupils, strict=True)]
            + list(zip(GUARDIANS, self.guardians, strict=True))
            + [(pid, s.person) for pid, s in zip(STAFF, self.staff, strict=True)]
        )


def _persons() -> st.SearchStrategy[Person]:
    return st.builds(
        Person,
        name=st.integers(0, len(NAMES) - 1),
        condition=st.sampled_from(CONDITIONS),
        number_form=st.sampled_from(NUMBER_FORMS),
    )


_RESPONSIBLES = (*GUARDIANS, "s1")


def _pupils() -> st.SearchStrategy[Pupil]:
    return st.builds(
        Pupil,
        person=_persons(),
        school=st.sampled_from((None, *SCHOOLS)),
        year_index=st.integers(0, 3),
        groups=st.frozensets(st.sampled_from(tuple(GROUPS)), max_size=3),
        guardians=st.lists(st.sampled_from(_RESPONSIBLES), max_size=2, unique=True).map(tuple),
    )


def _staff() -> st.SearchStrategy[Staff]:
    return st.builds(
        Staff,
        person=_persons(),
        school=st.sampled_from((None, *SCHOOLS)),
        role=st.sampled_from(("Lärare", "Förskollärare", "Rektor")),
        assignments=st.frozensets(
            st.tuples(
                st.sampled_from(tuple(GROUPS)),
                st.sampled_from(("Mentor", "Förskollärare", "Barnskötare", "Annan")),
            ),
            max_size=2,
        ),
    )


def nights() -> st.SearchStrategy[NightRegister]:
    return st.builds(
        NightRegister,
        school_names=st.tuples(*[st.integers(0, 1)] * len(SCHOOLS)),
        groups_open=st.frozensets(st.sampled_from(tuple(GROUPS))).map(
            lambda closed: (
                frozenset(GROUPS) - closed if len(closed) <= 2 else frozenset(GROUPS)
            )  # most nights, most groups are open
        ),
        group_names=st.tuples(*[st.integers(0, 1)] * len(GROUPS)),
        pupils=st.tuples(*[_pupils()] * len(PUPILS)),
        guardians=st.tuples(*[_persons()] * len(GUARDIANS)),
        staff=st.tuples(*[_staff()] * len(STAFF)),
        activities=st.tuples(
            *[
                st.tuples(
                    st.frozensets(st.sampled_from(tuple(GROUPS)), min_size=1, max_size=2),
                    st.frozensets(st.sampled_from(tuple(STAFF)), max_size=2),
                )
            ]
            * 2
        ),
        rebaseline=st.sampled_from((False,) * 7 + (True,)),
    )


def sequences(max_nights: int = 6) -> st.SearchStrategy[list[NightRegister]]:
    """Nights S0..Sn (n < max_nights): night 0 is the total, the others deltas."""
    return st.lists(nights(), min_size=1, max_size=max_nights)


# -- to SS 12000 ---------------------------------------------------------------------------


def _written(number: str, form: str, invalid: bool) -> str:
    if invalid:  # same person, wrong check digit
        number = number[:-1] + str((int(number[-1]) + 1) % 10)
    if form == "12-plain":
        return number.replace("-", "")
    if form == "10-hyphen":
        return number[2:]
    return number


def _person(pid: str, person: Person, allow_invalid: bool, **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": pid,
        "givenName": NAMES[person.name],
        "familyName": f"Efternamn{pid.upper()}",
        "civicNo": {
            "value": _written(NUMBERS[pid], person.number_form, person.invalid and allow_invalid)
        },
        "securityMarking": person.marking,
        "personStatus": person.status,
    }
    record.update(extra)
    return record


def register(night: NightRegister, allow_invalid: bool = True) -> dict[str, list[dict[str, Any]]]:
    """The five SS 12000 lists of ``night``; ``allow_invalid=False`` writes every number right."""
    organisations: list[dict[str, Any]] = [
        {"id": "hm", "displayName": "Exempelby kommun", "organisationType": "Huvudman"}
    ]
    for index, (unit, (types, _type, _years)) in enumerate(SCHOOLS.items()):
        organisations.append(
            {
                "id": unit,
                "displayName": f"Skola {unit} {'ny' if night.school_names[index] else 'gammal'}",
                "organisationType": "Skolenhet",
                "schoolUnitCode": SCHOOL_CODES[unit],
                "schoolTypes": types,
                "parentOrganisation": {"id": "hm"},
                "startDate": START,
            }
        )
    members: dict[str, list[str]] = {gid: [] for gid in GROUPS}
    persons: list[dict[str, Any]] = []
    for pid, pupil in zip(PUPILS, night.pupils, strict=True):
        for gid in sorted(pupil.groups):
            members[gid].append(pid)
        enrolments = []
        if pupil.school is not None:
            _types, school_type, years = SCHOOLS[pupil.school]
            year = years[pupil.year_index % len(years)]
            enrolment: dict[str, Any] = {
                "enroledAt": {"id": pupil.school},
                "schoolType": school_type,
                "startDate": START,
            }
            if year is not None:
                enrolment["schoolYear"] = year
            enrolments.append(enrolment)
        if pupil.person.present:
            persons.append(
                _person(
                    pid,
                    pupil.person,
                    allow_invalid,
                    emails=[{"value": f"{pid}@elev.exempelby.se", "type": "Skola"}],
                    enrolments=enrolments,
                    responsibles=[
                        {"person": {"id": gid}, "relationType": "Vårdnadshavare"}
                        for gid in pupil.guardians
                    ],
                )
            )
    for gid, guardian in zip(GUARDIANS, night.guardians, strict=True):
        if guardian.present:
            persons.append(
                _person(
                    gid,
                    guardian,
                    allow_invalid,
                    emails=[{"value": f"{gid}@example.se", "type": "Privat"}],
                )
            )
    duties = []
    for sid, staff in zip(STAFF, night.staff, strict=True):
        if staff.person.present:
            persons.append(
                _person(
                    sid,
                    staff.person,
                    allow_invalid,
                    emails=[{"value": f"{sid}@exempelby.se", "type": "Personal"}],
                )
            )
        duties.append(  # the duty record stays; an ended duty is simply not active
            {
                "id": f"d-{sid}",
                "person": {"id": sid},
                "dutyAt": {"id": staff.school or "u1"},
                "dutyRole": staff.role,
                "startDate": START,
                **({} if staff.school else {"endDate": ENDED}),
                "assignmentRole": [
                    {"group": {"id": gid}, "assignmentRoleType": role}
                    for gid, role in sorted(staff.assignments)
                ],
            }
        )
    groups = []
    for index, (gid, (unit, group_type, school_type)) in enumerate(GROUPS.items()):
        groups.append(
            {
                "id": gid,
                "displayName": f"{gid.upper()}{'b' if night.group_names[index] else ''}",
                "groupType": group_type,
                "schoolType": school_type,
                "organisation": {"id": unit},
                "startDate": START,
                **({} if gid in night.groups_open else {"endDate": ENDED}),
                "groupMemberships": [
                    {"person": {"id": pid}, "startDate": START} for pid in members[gid]
                ],
            }
        )
    activities = [
        {
            "id": f"act{index}",
            "displayName": f"Aktivitet {index}",
            "organisation": {"id": "u1"},
            "groups": [{"id": gid} for gid in sorted(group_ids)],
            "teachers": [{"duty": {"id": f"d-{sid}"}} for sid in sorted(teachers)],
        }
        for index, (group_ids, teachers) in enumerate(night.activities)
    ]
    return {
        "organisations": organisations,
        "persons": persons,
        "groups": groups,
        "duties": duties,
        "activities": activities,
    }


# -- dirty registers: anything a real export has been seen to send -------------------------
#
# Free-form registers over small pools of ids, so that ids repeat, references dangle and
# persons share numbers by chance: values missing, empty, blank, numbers as text and text
# as numbers, dates with and without time (or not dates at all), lone objects instead of
# arrays, entries that are not objects, control characters and letters Latin-1 lacks.

_ORG_IDS = ("hm", "u1", "u2", "u3")
_PERSON_IDS = ("p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8")
_GROUP_IDS = ("k1", "k2", "k3", "k4")
_DUTY_IDS = ("d1", "d2", "d3", "d4")


def _weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, each drawn with its weight (``one_of`` draws unevenly)."""
    table = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.integers(0, len(table) - 1).flatmap(lambda n: table[n])


def _maybe_lone(entries: st.SearchStrategy[Any], max_size: int) -> st.SearchStrategy[Any]:
    """An array, mostly; sometimes null, a lone object, or with a junk entry."""
    array = st.lists(entries, max_size=max_size)
    return _weighted(
        (8, array),
        (1, st.none()),
        (1, entries),
        (1, array.map(lambda items: [*items, "junk", 3])),
    )


def _id(pool: tuple[str, ...]) -> st.SearchStrategy[Any]:
    """An id from the pool; or missing, blank, padded or a number."""
    return _weighted(
        (3, st.sampled_from(pool)),
        (1, st.sampled_from((None, "", "  "))),
        (1, st.sampled_from(pool).map(lambda i: f" {i} ")),
        (1, st.integers(1, 3)),
    )


def _ref(pool: tuple[str, ...]) -> st.SearchStrategy[Any]:
    """A reference: ``{"id": ...}`` mostly, or a bare id, or a dangling one."""
    ids = st.sampled_from((*pool * 6, "gone", None, " "))
    return _weighted((4, ids.map(lambda i: {"id": i})), (1, ids))


_DATES = st.sampled_from(
    (
        *(None,) * 24,
        "2020-08-15",
        "2020-08-15",
        "2020-08-15",
        "2099-12-31",
        "2099-12-31",
        "",
        "2020-08-15",
        "2020-08-15T00:00:00Z",
        "2026-03-02",
        "2026-03-02T23:59:59",
        "2026-03-01",
        "2026-03-03",
        "2000-01-01",
        "2099-12-31",
        "soon",
        20200815,
    )
)
_TEXT = st.sampled_from(
    (
        *("Anna", "Bo", "Liam", "Karin", "Åsa") * 6,
        "Anna",
        "Åsa",
        "ANNA-KARIN",
        "mcDonald",
        " Bo ",
        "",
        "   ",
        None,
        "Nguyễn",
        "李",
        "Lars\tOla",
        "Per\nPaul",
        "Ève\u00a0Marie",
        "x\u0085y",
        "Łukasz",
        "O’Brien",
        42,
    )
)


def _civic() -> st.SearchStrategy[Any]:
    numbers = st.sampled_from(
        (
            *NUMBERS.values(),
            PUPILS["p1"],  # shared, now and then
            GUARDIANS["g1"],
            "20130315-2382",  # wrong check digit
            "130315-2381",  # 10 digits
            "201303152381",  # 12, no hyphen
            "130315+2381",  # 100 years or older
            "19870262-4563",  # samordningsnummer (day + 60)
            "20130315-TF12",  # TF number
            "20131315-TF12",  # TF number with a month 13
            "20130315 - 2381",
            "20131332-2381",  # no such day
            "20130315-0000",  # serial 000
            "abc",
            "",
            "  ",
        )
    )
    return _weighted(
        (6, numbers.map(lambda n: {"value": n})),
        (2, numbers),
        (1, st.sampled_from((None, {"value": None}, 201303152381))),
    )


def _org(org_id: Any) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "id": st.just(org_id),
            "displayName": _TEXT,
            "organisationType": st.sampled_from(("Skolenhet",) * 6 + ("Skola", None)),
            "parentOrganisation": _ref(_ORG_IDS),
            "schoolTypes": _weighted(
                (4, st.sampled_from((["GR"], ["FSK", "GR"], ["FS"], ["GY"], ["GY", "GR"]))),
                (
                    1,
                    _maybe_lone(
                        st.sampled_from(("GR", "FSK", "FS", "GY", "GYS", "VUX", "X", " GR ")), 3
                    ),
                ),
            ),
        },
        optional={
            "schoolUnitCode": st.sampled_from(("12345678", "1234", "", None, 12345678)),
            "startDate": _DATES,
            "endDate": _DATES,
            "url": _TEXT,
            "addresses": _maybe_lone(
                st.fixed_dictionaries(
                    {}, optional={"streetAddress": _TEXT, "postalCode": _TEXT, "locality": _TEXT}
                ),
                2,
            ),
            "phoneNumbers": _maybe_lone(
                st.one_of(st.fixed_dictionaries({"value": _TEXT}), _TEXT), 2
            ),
            "phoneNumber": _TEXT,
        },
    )


def _person_record(person_id: Any) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "id": st.just(person_id),
            "civicNo": _civic(),
            "givenName": _TEXT,
            "familyName": _TEXT,
            "securityMarking": st.sampled_from(
                ("Ingen",) * 6 + ("Skyddad folkbokföring", "Sekretessmarkering", None, "", " ")
            ),
            "enrolments": _maybe_lone(
                st.fixed_dictionaries(
                    {"enroledAt": _ref(_ORG_IDS)},
                    optional={
                        "schoolType": st.sampled_from(("GR", "FSK", "GY", "FS", None)),
                        "schoolYear": st.sampled_from((0, 1, "7", " 9 ", "", None)),
                        "startDate": _DATES,
                        "endDate": _DATES,
                        "cancelled": st.sampled_from((False, False, False, True, None, "true")),
                    },
                ),
                2,
            ),
            "responsibles": _maybe_lone(
                st.fixed_dictionaries(
                    {
                        "person": _ref(_PERSON_IDS),
                        "relationType": st.sampled_from(("Vårdnadshavare",) * 3 + ("Annan", None)),
                    },
                ),
                3,
            ),
        },
        optional={
            "personStatus": st.sampled_from(("Aktiv",) * 4 + ("Avliden", "Utvandrad", None)),
            "emails": _maybe_lone(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "value": st.sampled_from(
                            ("a@b.se", " A@B.SE ", "not-an-address", "", "a\tb@c.se", "å@ö.se")
                        ),
                        "type": st.sampled_from(("Skola", "Privat", "Personal", "Annan", None)),
                    },
                ),
                3,
            ),
            "phoneNumbers": _maybe_lone(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "value": st.sampled_from(
                            ("070-123 45 67", "0046 70 1", "", " ", "08\t123", 701234567)
                        ),
                        "type": st.sampled_from(("Arbete", "Hem", None)),
                        "mobile": st.sampled_from((True, False, None, "true")),
                    },
                ),
                3,
            ),
            "addresses": _maybe_lone(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "type": st.sampled_from(
                            ("Folkbokföring", "Folkbokföringsadress", "Annan", None)
                        ),
                        "streetAddress": _TEXT,
                        "postalCode": st.sampled_from(("12345", 12345, "", None)),
                        "locality": _TEXT,
                    },
                ),
                2,
            ),
            "eduPersonPrincipalNames": _maybe_lone(
                st.sampled_from(("p1@skola.se", "p2@skola.se", "x@skola.se", "")), 2
            ),
        },
    )


def _group(group_id: Any) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "id": st.just(group_id),
            "displayName": _TEXT,
            "organisation": _ref(_ORG_IDS),
            "groupType": st.sampled_from(("Klass", "Undervisning", "Avdelning", "Mentor", None)),
            "groupMemberships": _maybe_lone(
                st.fixed_dictionaries(
                    {"person": _ref(_PERSON_IDS)},
                    optional={
                        "startDate": _DATES,
                        "endDate": _DATES,
                    },
                ),
                4,
            ),
        },
        optional={
            "description": _TEXT,
            "schoolType": st.sampled_from(("GR", "FS", "GY", "GYS", None)),
            "startDate": _DATES,
            "endDate": _DATES,
        },
    )


def _duty(duty_id: Any) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "id": st.just(duty_id),
            "person": _ref(_PERSON_IDS),
            "dutyAt": _ref(_ORG_IDS),
            "assignmentRole": _maybe_lone(
                st.fixed_dictionaries(
                    {
                        "group": _ref(_GROUP_IDS),
                        "assignmentRoleType": st.sampled_from(
                            ("Mentor", "Förskollärare", "Barnskötare", "Annan", None)
                        ),
                    },
                    optional={
                        "startDate": _DATES,
                        "endDate": _DATES,
                    },
                ),
                3,
            ),
        },
        optional={
            "dutyRole": st.sampled_from(("Lärare", "Rektor", None)),
            "startDate": _DATES,
            "endDate": _DATES,
        },
    )


def _activity(activity_id: Any) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"id": st.just(activity_id), "groups": _maybe_lone(_ref(_GROUP_IDS), 2)},
        optional={
            "startDate": _DATES,
            "endDate": _DATES,
            "teachers": _maybe_lone(
                st.fixed_dictionaries(
                    {"duty": _ref(_DUTY_IDS)},
                    optional={"startDate": _DATES, "endDate": _DATES},
                ),
                2,
            ),
        },
    )


def _records(
    make: Any, pool: tuple[str, ...], min_size: int, max_size: int
) -> st.SearchStrategy[list[dict[str, Any]]]:
    """Records with ids from the pool, each once; now and then one more with an odd id
    (a repeat, none, blank, padded, a number)."""
    # one strategy per id and per list of ids, built once: a strategy built anew for
    # every draw costs hypothesis more than the draw (most of a test's generation time)
    make = functools.cache(make)

    @functools.cache
    def records(ids: tuple[Any, ...]) -> st.SearchStrategy[list[dict[str, Any]]]:
        return st.tuples(*[make(i) for i in ids]).map(list)

    unique = st.permutations(pool).flatmap(
        lambda ids: st.integers(min_size, min(max_size, len(ids))).flatmap(
            lambda n: records(tuple(ids[:n]))
        )
    )
    odd = st.lists(_id(pool).flatmap(make), max_size=2)
    return _weighted((3, unique), (1, st.tuples(unique, odd).map(lambda p: p[0] + p[1])))


def _directory() -> st.SearchStrategy[list[dict[str, Any]] | None]:
    match = st.sampled_from(
        (*list(NUMBERS.values())[:6], "p1", "p3", "p1@skola.se", "x@skola.se", "", None)
    )
    entry = st.fixed_dictionaries(
        {"match": match},
        optional={"mail": st.sampled_from(("L@Dir.se", "not-mail", "", None))},
    )
    return st.one_of(st.none(), st.lists(entry, max_size=4))


@dataclass(frozen=True)
class DirtyRegister:
    entities: dict[str, list[dict[str, Any]]]
    directory: list[dict[str, Any]] | None


def dirty_registers() -> st.SearchStrategy[DirtyRegister]:
    """A small register with anything in it (see above); every entity list may repeat ids."""
    return st.builds(
        DirtyRegister,
        entities=st.fixed_dictionaries(
            {
                "organisations": _records(_org, _ORG_IDS, 2, 5),
                "persons": _records(_person_record, _PERSON_IDS, 1, 8),
                "groups": _records(_group, _GROUP_IDS, 1, 4),
                "duties": _records(_duty, _DUTY_IDS, 0, 4),
                "activities": _records(_activity, ("a1", "a2"), 0, 2),
            }
        ),
        directory=_directory(),
    )
