"""A fast synthetic SS 12000 register at benchmark scale (a Stockholm, or a whole nation).

The demo generator (:mod:`autosynk.demo.generate`) builds every record one PRNG draw at a
time, which is right for a few thousand people and far too slow for a million. Here the
register is first planned as numbers (units, groups as index ranges of pupils, households
as index ranges of guardians, numpy arrays for births, names and identity numbers) and
then streamed out as JSON in chunks with msgspec, so memory stays flat at any scale.

The shape follows the demo municipality: a Huvudman owning Skolenhet units (preschools,
grundskolor with two tracks, gymnasier), classes (Klass), teaching groups (Undervisning),
preschool departments (Avdelning), groups the default mapping ignores (Mentor,
Personalgrupp), duties with ``assignmentRole`` Mentor or Förskollärare, activities
linking teachers to groups, households of one or two guardians, valid Luhn personnummer
in several styles, a few TF numbers, protected identities and deceased guardians.

``mutate_one_percent`` changes about 1% of the register the way a school day does (class
moves, leavers, new pupils with new guardians, e-mail changes, house moves, staff who
leave and are replaced). The register folder keeps a small manifest (``synth.json``)
of scale, seed and mutations; a mutation regenerates the folder from the manifest, which
is deterministic and as fast as the first generation.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from autosynk.demo import names

Record = dict[str, Any]
MANIFEST = "synth.json"
GUARDIAN = "Vårdnadshavare"
CHUNK = 20_000
GUARDIAN_IDS = 0x4000_0000  # person id ranges: pupils from 0, then guardians, then staff
STAFF_IDS = 0x8000_0000


@dataclass(frozen=True)
class Plan:
    preschools: int
    grundskolor: int
    gymnasier: int
    departments: int = 8  # per preschool
    department_size: int = 25
    tracks: int = 2  # grundskola classes per year
    class_size: int = 18
    subject_groups: int = 2  # Undervisning groups per grundskola year (years 1-9)
    programmes: int = 6  # gymnasium classes per year
    gy_class_size: int = 28
    courses: int = 5  # Undervisning groups per gymnasium class


SCALES = {
    "tiny": Plan(1, 2, 1, departments=2, department_size=10, class_size=8, gy_class_size=10),
    "small": Plan(10, 14, 3),
    "stockholm": Plan(300, 420, 80),
    "national": Plan(3000, 4200, 800),
}


@dataclass
class Group:
    name: str
    group_type: str
    school_type: str
    unit: int
    lo: int  # members: pupils lo..hi-1 (staff groups: staff lo..hi-1)
    hi: int
    staff: bool = False


@dataclass
class Unit:
    kind: str  # FS | GR | GY
    name: str
    school_types: list[str]
    classes: list[int] = field(default_factory=list)  # group indexes of Klass/Avdelning
    taught: list[int] = field(default_factory=list)  # groups that get an activity
    staff_lo: int = 0
    staff_hi: int = 0


@dataclass
class Mutation:
    leavers: set[int]
    moves: dict[int, int]  # pupil -> new class group
    new_pupils: list[tuple[int, int]]  # (class group, pupil index it copies placement from)
    mail_changes: set[int]  # guardians
    house_moves: set[int]  # households
    staff_leavers: set[int]  # staff whose duty ends (each replaced by a new staff member)


def _pid(index: int, seed: int) -> str:
    return f"{index:08x}-5eed-4001-8000-{seed:012x}"


def _gid(index: int, seed: int) -> str:
    return f"{index:08x}-5eed-4002-8000-{seed:012x}"


def _oid(index: int, seed: int) -> str:
    return f"{index:08x}-5eed-4003-8000-{seed:012x}"


def _did(index: int, seed: int) -> str:
    return f"{index:08x}-5eed-4004-8000-{seed:012x}"


def _aid(index: int, seed: int) -> str:
    return f"{index:08x}-5eed-4005-8000-{seed:012x}"


def _luhn(nine: np.ndarray) -> np.ndarray:
    """Check digits of rows of nine digits (weights 2,1,2,...; digit sums)."""
    weights = np.array([2, 1, 2, 1, 2, 1, 2, 1, 2])
    products = nine * weights
    total = (products // 10 + products % 10).sum(axis=1)
    return (10 - total % 10) % 10


def ranks_within(groups: np.ndarray) -> np.ndarray:
    """Each element's rank among the equal values before it (stable: in order of appearance)."""
    order = np.argsort(groups, kind="stable")
    ranks = np.empty(len(order), dtype=np.int64)
    ordered = groups[order]
    ranks[order] = np.arange(len(order)) - np.searchsorted(ordered, ordered, side="left")
    return ranks


def adult_births(
    years: np.ndarray, first_serial: int, serials: int
) -> tuple[np.ndarray, np.ndarray]:
    """Adults' birth dates and serials: spread over the four years around their birth year
    (1952-2003), serials ``first_serial`` onwards, unique by each person's rank in those
    four years (room for 1,460 x ``serials`` persons in each: a country's guardians fit)."""
    span = 365 * 4
    window = np.clip(years, 1955, 2000)
    window = window - window % 4
    ranks = ranks_within(window)
    if len(ranks) and int(ranks.max()) >= span * serials:
        raise ValueError(f"more than {span * serials} adults born in one four-year window")
    starts = (window - 1970).astype("datetime64[Y]").astype("datetime64[D]")
    births = starts + ((ranks * 7919) % span).astype("timedelta64[D]")
    return births, first_serial + ranks // span


def civic_numbers(births: np.ndarray, serials: np.ndarray, styles: np.ndarray) -> list[str]:
    """Valid personnummer for birth dates (datetime64[D]) and serials 1..999.

    ``styles``: 0 ``YYYYMMDD-NNNC``, 1 ``YYYYMMDDNNNC``, 2 ``YYMMDD-NNNC``.
    """
    years = births.astype("datetime64[Y]").astype(int) + 1970
    months = births.astype("datetime64[M]").astype(int) % 12 + 1
    days = (births - births.astype("datetime64[M]")).astype(int) + 1
    yy = years % 100
    nine = np.stack(
        [
            yy // 10,
            yy % 10,
            months // 10,
            months % 10,
            days // 10,
            days % 10,
            serials // 100,
            serials // 10 % 10,
            serials % 10,
        ],
        axis=1,
    )
    check = _luhn(nine)
    out = []
    for year, month, day, serial, digit, style in zip(
        years.tolist(),
        months.tolist(),
        days.tolist(),
        serials.tolist(),
        check.tolist(),
        styles,
        strict=True,
    ):
        tail = f"{serial:03d}{digit}"
        if style == 0:
            out.append(f"{year:04d}{month:02d}{day:02d}-{tail}")
        elif style == 1:
            out.append(f"{year:04d}{month:02d}{day:02d}{tail}")
        else:
            out.append(f"{year % 100:02d}{month:02d}{day:02d}-{tail}")
    return out


class Register:
    """The planned register: everything as indexes and arrays, records made on output."""

    def __init__(self, plan: Plan, seed: int, today: dt.date) -> None:
        self.plan, self.seed, self.today = plan, seed, today
        self.rng = np.random.default_rng(seed)
        first = today.year if today.month >= 7 else today.year - 1
        self.sy_first = first
        self.sy_start = min(dt.date(first, 7, 1), today - dt.timedelta(days=1)).isoformat()
        self.sy_end = max(dt.date(first + 1, 6, 30), today + dt.timedelta(days=1)).isoformat()
        self.yesterday = (today - dt.timedelta(days=1)).isoformat()
        self.units: list[Unit] = []
        self.groups: list[Group] = []
        # pupils, filled by _plan_units (python lists, then numpy)
        unit_of: list[int] = []
        type_of: list[str] = []
        year_of: list[int] = []
        class_of: list[int] = []
        birth_year: list[int] = []
        self._pupils = (unit_of, type_of, year_of, class_of, birth_year)
        self._plan_units()
        self.n_pupils = len(unit_of)
        self.p_unit = np.array(unit_of, dtype=np.int32)
        self.p_type = type_of
        self.p_year = np.array(year_of, dtype=np.int16)
        self.p_class = np.array(class_of, dtype=np.int32)
        self.p_birth_year = np.array(birth_year, dtype=np.int32)
        self._plan_households()
        self._plan_staff()

    # -- planning ----------------------------------------------------------------------

    def _add_pupils(self, unit: int, school_type: str, year: int, klass: int, size: int) -> None:
        unit_of, type_of, year_of, class_of, birth_year = self._pupils
        group = self.groups[klass]
        group.lo = len(unit_of)
        if school_type == "FS":
            years = self.sy_first - 1 - (np.arange(size) % 5)
        else:
            offset = 15 if school_type == "GY" else 6
            years = np.full(size, self.sy_first - offset - year)
        unit_of += [unit] * size
        type_of += [school_type] * size
        year_of += [year] * size
        class_of += [klass] * size
        birth_year += years.tolist()
        group.hi = len(unit_of)

    def _group(self, *args: Any, **kwargs: Any) -> int:
        self.groups.append(Group(*args, **kwargs))
        return len(self.groups) - 1

    def _plan_units(self) -> None:
        plan = self.plan
        stems = [s + e for s in names.PLACE_STEMS for e in names.PLACE_ENDINGS]
        for index in range(plan.preschools):
            u = len(self.units)
            unit = Unit("FS", f"{stems[index % len(stems)]}s förskola {index + 1}", ["FS"])
            self.units.append(unit)
            for d in range(plan.departments):
                label = names.DEPARTMENTS[d % len(names.DEPARTMENTS)]
                g = self._group(label, "Avdelning", "FS", u, 0, 0)
                self._add_pupils(u, "FS", -1, g, plan.department_size)
                unit.classes.append(g)
                unit.taught.append(g)
        for index in range(plan.grundskolor):
            u = len(self.units)
            name = f"{stems[(index * 7) % len(stems)]}skolan {index + 1}"
            unit = Unit("GR", name, ["FSK", "GR", "FTH"])
            self.units.append(unit)
            for year in range(10):
                school_type = "FSK" if year == 0 else "GR"
                year_lo = len(self._pupils[0])
                for track in "AB"[: plan.tracks]:
                    label = f"{'F' if year == 0 else year}{track}"
                    g = self._group(label, "Klass", school_type, u, 0, 0)
                    self._add_pupils(u, school_type, year, g, plan.class_size)
                    unit.classes.append(g)
                    unit.taught.append(g)
                year_hi = len(self._pupils[0])
                if year >= 1:
                    for subject in ("Matematik", "Engelska", "Idrott")[: plan.subject_groups]:
                        g = self._group(
                            f"{subject} {year}", "Undervisning", "GR", u, year_lo, year_hi
                        )
                        unit.taught.append(g)
                if year >= 7:  # half classes for the timetable only (not exported)
                    mid = (year_lo + year_hi) // 2
                    self._group(f"{year} halvklass 1", "Schema", "GR", u, year_lo, mid)
                    self._group(f"{year} halvklass 2", "Schema", "GR", u, mid, year_hi)
        courses = ("Svenska", "Matematik", "Engelska", "Historia", "Idrott", "Samhälle")
        for index in range(plan.gymnasier):
            u = len(self.units)
            unit = Unit("GY", f"{stems[(index * 13) % len(stems)]}gymnasiet {index + 1}", ["GY"])
            self.units.append(unit)
            for year in (1, 2, 3):
                for programme in names.GY_PROGRAMMES[: plan.programmes]:
                    label = f"{programme}{(self.sy_first - year + 1) % 100:02d}"
                    g = self._group(label, "Klass", "GY", u, 0, 0)
                    self._add_pupils(u, "GY", year, g, plan.gy_class_size)
                    unit.classes.append(g)
                    unit.taught.append(g)
                    lo, hi = self.groups[g].lo, self.groups[g].hi
                    for course in courses[: plan.courses]:
                        c = self._group(f"{course} {label}", "Undervisning", "GY", u, lo, hi)
                        unit.taught.append(c)
                    mid = (lo + hi) // 2
                    self._group(f"Mentor {label} 1", "Mentor", "GY", u, lo, mid)
                    self._group(f"Mentor {label} 2", "Mentor", "GY", u, mid, hi)

    def _plan_households(self) -> None:
        """Pupils shuffled into households of 1-3 children with one or two guardians."""
        rng = self.rng
        order = rng.permutation(self.n_pupils)
        sizes = rng.choice([1, 2, 3], size=self.n_pupils, p=[0.86, 0.12, 0.02])
        ends = np.cumsum(sizes)
        ends = ends[ends < self.n_pupils]
        starts = np.concatenate([[0], ends])
        stops = np.concatenate([ends, [self.n_pupils]])
        households = len(starts)
        parents = np.where(rng.random(households) < 0.82, 2, 1)
        self.h_guardian_lo = np.concatenate([[0], np.cumsum(parents)[:-1]]).astype(np.int64)
        self.h_guardians = parents
        self.n_guardians = int(parents.sum())
        self.p_household = np.empty(self.n_pupils, dtype=np.int64)
        for h, (lo, hi) in enumerate(zip(starts.tolist(), stops.tolist(), strict=True)):
            self.p_household[order[lo:hi]] = h
        self.n_households = households
        self.g_household = np.repeat(np.arange(households), parents)
        oldest = np.full(households, 9999)
        np.minimum.at(oldest, self.p_household, self.p_birth_year)
        self.g_birth_year = oldest[self.g_household] - rng.integers(22, 42, self.n_guardians)

    def _plan_staff(self) -> None:
        """Per unit: a rektor, two mentors per class, subject teachers."""
        count = 0
        for unit in self.units:
            unit.staff_lo = count
            classes = len(unit.classes)
            pupils = sum(self.groups[g].hi - self.groups[g].lo for g in unit.classes)
            count += max(-(-pupils // 8), 2 * classes + 3)
            unit.staff_hi = count
        self.n_staff = count
        self.s_birth_year = self.today.year - self.rng.integers(24, 64, count)

    # -- mutation planning -------------------------------------------------------------

    def mutation(self, seed: int) -> Mutation:
        rng = np.random.default_rng(seed * 7919 + 17)
        n = self.n_pupils
        picked = rng.choice(n, size=max(3, n * 11 // 1000), replace=False)
        cut1, cut2 = len(picked) * 3 // 11, len(picked) * 7 // 11
        leavers = set(picked[:cut1].tolist())
        moves: dict[int, int] = {}
        for pupil in picked[cut1:cut2].tolist():
            klass = int(self.p_class[pupil])
            siblings = [
                g
                for g in self.units[int(self.p_unit[pupil])].classes
                if g != klass
                and self.groups[g].school_type == self.groups[klass].school_type
                and self._year_of_group(g) == int(self.p_year[pupil])
            ]
            if siblings:
                moves[pupil] = siblings[int(rng.integers(len(siblings)))]
        new_pupils = [(int(self.p_class[p]), int(p)) for p in picked[cut2:].tolist()]
        mail_changes = set(
            rng.choice(
                self.n_guardians, size=max(1, self.n_guardians // 100), replace=False
            ).tolist()
        )
        house_moves = set(
            rng.choice(
                self.n_households, size=max(1, self.n_households // 200), replace=False
            ).tolist()
        )
        staff_leavers = set(
            rng.choice(self.n_staff, size=max(1, self.n_staff // 200), replace=False).tolist()
        )
        return Mutation(leavers, moves, new_pupils, mail_changes, house_moves, staff_leavers)

    def _year_of_group(self, g: int) -> int:
        group = self.groups[g]
        return int(self.p_year[group.lo]) if group.hi > group.lo else -99


def generate(
    out_dir: Path,
    scale: str = "stockholm",
    seed: int = 1,
    today: dt.date | None = None,
    mutations: tuple[int, ...] = (),
) -> dict[str, int]:
    """Write the five SS 12000 list files (and ``synth.json``) into ``out_dir``."""
    plan = SCALES[scale]
    today = today or dt.date.today()
    register = Register(plan, seed, today)
    writer = _Writer(register, [register.mutation(m) for m in mutations])
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = writer.write(out_dir)
    manifest = {
        "scale": scale,
        "seed": seed,
        "today": today.isoformat(),
        "mutations": list(mutations),
        "counts": counts,
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return counts


def already_generated(
    out_dir: Path, scale: str, seed: int, today: dt.date | None = None
) -> dict[str, int] | None:
    """The counts of an unmutated register of this scale, seed and day already in
    ``out_dir`` (its manifest says so), else None."""
    try:
        manifest = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    wanted = {"scale": scale, "seed": seed, "today": (today or dt.date.today()).isoformat()}
    if any(manifest.get(k) != v for k, v in wanted.items()) or manifest.get("mutations"):
        return None
    return dict(manifest["counts"])


def mutate_one_percent(out_dir: Path, seed: int) -> dict[str, int]:
    """Apply one more day of ~1% changes to a register this module generated."""
    manifest = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
    return generate(
        out_dir,
        manifest["scale"],
        manifest["seed"],
        dt.date.fromisoformat(manifest["today"]),
        (*manifest["mutations"], seed),
    )


class _Writer:
    """Turns the plan (and its mutations) into records, streamed out in chunks."""

    def __init__(self, register: Register, mutations: list[Mutation]) -> None:
        self.r = register
        r = register
        self.leavers: set[int] = set()
        self.moves: dict[int, int] = {}
        self.mail_changes: set[int] = set()
        self.house_moves: set[int] = set()
        self.staff_leavers: set[int] = set()
        new: list[tuple[int, int]] = []
        for m in mutations:
            self.leavers |= m.leavers
            self.moves.update(m.moves)
            self.mail_changes |= m.mail_changes
            self.house_moves |= m.house_moves
            self.staff_leavers |= m.staff_leavers
            new += m.new_pupils
        # new pupils: indexes after the planned ones, each with a household of two new
        # guardians; placed like the pupil they were drawn next to
        self.new_pupils = new
        self.n_pupils = r.n_pupils + len(new)
        self.n_guardians = r.n_guardians + 2 * len(new)
        self.n_staff = r.n_staff + len(self.staff_leavers)
        self.joined: dict[int, list[int]] = {}  # group -> pupils who joined it
        self.left: dict[int, set[int]] = {}  # group -> pupils who moved out of it
        for pupil, klass in self.moves.items():
            self.joined.setdefault(klass, []).append(pupil)
            self.left.setdefault(int(r.p_class[pupil]), set()).add(pupil)
        for offset, (klass, _like) in enumerate(new):
            self.joined.setdefault(klass, []).append(r.n_pupils + offset)
        self.replacement = {
            s: r.n_staff + i for i, s in enumerate(sorted(self.staff_leavers))
        }  # leaving staff -> new staff index
        self._numbers()

    # -- people arrays -----------------------------------------------------------------

    def _draw(self, purpose: int, base: int, extra: int, kind: str) -> np.ndarray:
        """Random numbers per person that stay put when later mutations add people."""
        seed = self.r.seed
        first = np.random.default_rng([seed, purpose, 0])
        more = np.random.default_rng([seed, purpose, 1 + len(self.new_pupils)])
        if kind == "int":
            return np.concatenate(
                [first.integers(0, 1 << 30, base), more.integers(0, 1 << 30, extra)]
            )
        return np.concatenate([first.random(base), more.random(extra)])

    def _numbers(self) -> None:
        r = self.r
        like = np.array([p for _k, p in self.new_pupils], dtype=np.int64)
        new = len(like)
        pupil_years = np.concatenate([r.p_birth_year, r.p_birth_year[like]])
        # a pupil's birthday and serial from their rank within their birth year
        ranks = ranks_within(pupil_years)
        self.pupil_birth = self._dates(pupil_years, ranks % 365)
        self.pupil_serial = 1 + ranks // 365
        guardian_years = np.concatenate([r.g_birth_year, np.repeat(r.p_birth_year[like] - 30, 2)])
        self.guardian_birth, self.guardian_serial = adult_births(guardian_years, 1, 599)
        leaving = sorted(self.staff_leavers)
        staff_years = np.concatenate([r.s_birth_year, r.s_birth_year[leaving] - 1])
        self.staff_birth, self.staff_serial = adult_births(staff_years, 600, 399)
        self.pupil_civic = self._civic(self.pupil_birth, self.pupil_serial, 1, r.n_pupils, new)
        self.guardian_civic = self._civic(
            self.guardian_birth, self.guardian_serial, 2, r.n_guardians, 2 * new
        )
        self.staff_civic = self._civic(
            self.staff_birth, self.staff_serial, 3, r.n_staff, len(leaving)
        )
        # a few newly arrived pupils have only a TF number
        tf = self._draw(4, r.n_pupils, new, "float")
        for pupil in np.flatnonzero(tf < 0.002).tolist():
            birth = str(self.pupil_birth[pupil]).replace("-", "")
            self.pupil_civic[pupil] = f"{birth}-TF{pupil % 100:02d}"
        self.pupil_given = self._draw(5, r.n_pupils, new, "int")
        self.guardian_given = self._draw(6, r.n_guardians, 2 * new, "int")
        self.staff_given = self._draw(7, r.n_staff, len(leaving), "int")
        weights = np.array([w for _c, w in names.CULTURES], dtype=float)
        cumulative = np.cumsum(weights / weights.sum())
        cumulative[-1] = 1.0
        home = self._draw(8, r.n_households, new, "float")
        self.household_culture = np.searchsorted(cumulative, home)
        staff_home = self._draw(9, r.n_staff, len(leaving), "float")
        self.staff_culture = np.searchsorted(cumulative, staff_home)
        self.pupil_marking = self._draw(10, r.n_pupils, new, "float")
        self.guardian_marking = self._draw(11, r.n_guardians, 2 * new, "float")

    def _dates(self, years: np.ndarray, day_of_year: np.ndarray) -> np.ndarray:
        starts = (years - 1970).astype("datetime64[Y]").astype("datetime64[D]")
        return starts + day_of_year.astype("timedelta64[D]")

    def _civic(
        self, births: np.ndarray, serials: np.ndarray, purpose: int, base: int, extra: int
    ) -> list[str]:
        """Mostly ``YYYYMMDD-NNNC``; some registers send 12 plain or 10 digits."""
        draw = self._draw(20 + purpose, base, extra, "float")
        styles = np.searchsorted(np.array([0.9, 0.95, 1.0]), draw)
        return civic_numbers(births, serials, styles.tolist())

    # -- output ------------------------------------------------------------------------

    def write(self, out_dir: Path) -> dict[str, int]:
        counts = {
            "organisations": _stream(out_dir / "organisations.json", self.organisations()),
            "persons": _stream(out_dir / "persons.json", self.persons()),
            "groups": _stream(out_dir / "groups.json", self.groups()),
            "duties": _stream(out_dir / "duties.json", self.duties()),
            "activities": _stream(out_dir / "activities.json", self.activities()),
        }
        counts.update(
            schools=len(self.r.units),
            children=self.n_pupils - len(self.leavers),
            guardians=self.n_guardians,
            staff=self.n_staff,
        )
        return counts

    def _meta(self) -> Record:
        stamp = f"{self.r.today.isoformat()}T03:00:00Z"
        return {"created": stamp, "modified": stamp}

    def organisations(self) -> Iterator[Record]:
        r = self.r
        seed = r.seed
        owner = _oid(0, seed)
        yield {
            "id": owner,
            "displayName": "Benchmarks kommun",
            "organisationType": "Huvudman",
            "organisationNumber": "212000-0142",
            "startDate": "2000-01-01",
        }
        for u, unit in enumerate(r.units):
            yield {
                "id": _oid(u + 1, seed),
                "displayName": unit.name,
                "organisationType": "Skolenhet",
                "schoolUnitCode": f"{10_000_000 + u * 37:08d}",
                "schoolTypes": unit.school_types,
                "parentOrganisation": {"id": owner},
                "url": f"https://bench.example/{u}",
                "phoneNumber": f"08-{u % 100:02d} {u % 89:02d} 00",
                "address": {
                    "streetAddress": f"Skolvägen {u + 1}",
                    "postalCode": f"1{u % 90 + 10:02d} 00",
                    "locality": "Benchby",
                },
                "startDate": "2000-01-01",
                "meta": self._meta(),
            }

    def _name(self, pick: int, culture_index: int, household: int, male: bool) -> tuple[str, str]:
        culture = names.CULTURES[culture_index][0]
        pool = culture.male if male else culture.female
        return pool[pick % len(pool)], culture.family[household % len(culture.family)]

    def _address(self, household: int) -> Record:
        moved = household in self.house_moves
        street = names.STREETS[(household * 31 + moved) % len(names.STREETS)]
        locality, prefix = names.LOCALITIES[household % len(names.LOCALITIES)]
        return {
            "type": "Folkbokföring",
            "streetAddress": f"{street} {household % 120 + 1 + 7 * moved}",
            "postalCode": f"{prefix} {household % 90 + 10}",
            "locality": locality,
            "country": "Sverige",
        }

    def persons(self) -> Iterator[Record]:
        r = self.r
        seed = r.seed
        meta = self._meta()
        pupil_households = r.p_household.tolist()
        # pupils
        for pupil in range(self.n_pupils):
            new = pupil >= r.n_pupils
            like = self.new_pupils[pupil - r.n_pupils][1] if new else pupil
            household = r.n_households + pupil - r.n_pupils if new else pupil_households[pupil]
            male = int(self.pupil_serial[pupil]) % 2 == 1
            given, family = self._name(
                int(self.pupil_given[pupil]),
                int(self.household_culture[household]),
                household,
                male,
            )
            school_type = r.p_type[like]
            year = int(r.p_year[like])
            enrolment: Record = {
                "enroledAt": {"id": _oid(int(r.p_unit[like]) + 1, seed)},
                "schoolType": school_type,
                "startDate": r.today.isoformat() if new else r.sy_start,
                "cancelled": False,
            }
            if year >= 0:
                enrolment["schoolYear"] = year
                enrolment["endDate"] = r.sy_end
            if pupil in self.leavers:
                enrolment["endDate"] = r.yesterday
            record: Record = {
                "id": _pid(pupil, seed),
                "givenName": given,
                "familyName": family,
                "birthDate": str(self.pupil_birth[pupil]),
                "sex": "Man" if male else "Kvinna",
                "civicNo": {"value": self.pupil_civic[pupil], "nationality": "SE"},
                "securityMarking": self._marking(float(self.pupil_marking[pupil]), True),
                "personStatus": "Aktiv",
                "addresses": [self._address(household)],
                "enrolments": [enrolment],
                "responsibles": [
                    {"person": {"id": _pid(self._guardian_id(g), seed)}, "relationType": GUARDIAN}
                    for g in self._guardians_of(pupil, household)
                ],
                "meta": meta,
            }
            if school_type == "GY" or (school_type == "GR" and year >= 4):
                record["emails"] = [
                    {
                        "value": f"{names.fold_ascii(given)}.{pupil}@elev.bench.example",
                        "type": "Skola",
                    }
                ]
            if school_type == "GY" or year >= 6:
                record["phoneNumbers"] = [
                    {
                        "value": f"070-{pupil % 1000:03d} {pupil // 1000 % 100:02d} 00",
                        "mobile": True,
                    }
                ]
            yield record
        # guardians
        for guardian in range(self.n_guardians):
            new = guardian >= r.n_guardians
            household = (
                r.n_households + (guardian - r.n_guardians) // 2
                if new
                else int(r.g_household[guardian])
            )
            serial = int(self.guardian_serial[guardian])
            male = serial % 2 == 1
            marking = float(self.guardian_marking[guardian])
            given, family = self._name(
                int(self.guardian_given[guardian]),
                int(self.household_culture[household]),
                household,
                male,
            )
            changed = guardian in self.mail_changes
            mail = f"{names.fold_ascii(given)}.{names.fold_ascii(family)}{guardian}"
            record = {
                "id": _pid(self._guardian_id(guardian), seed),
                "givenName": given,
                "familyName": family,
                "birthDate": str(self.guardian_birth[guardian]),
                "sex": "Man" if male else "Kvinna",
                "civicNo": {"value": self.guardian_civic[guardian], "nationality": "SE"},
                "securityMarking": self._marking(marking, False),
                "personStatus": "Avliden" if marking > 0.9995 else "Aktiv",
                "addresses": [self._address(household)],
                "emails": [
                    {
                        "value": f"{mail}@{'example.net' if changed else 'example.com'}",
                        "type": "Privat",
                    }
                ],
                "phoneNumbers": [
                    {
                        "value": f"073-{guardian % 1000:03d} {guardian // 1000 % 100:02d} 11",
                        "mobile": True,
                    }
                ],
                "meta": meta,
            }
            yield record
        # staff
        for staff in range(self.n_staff):
            male = int(self.staff_serial[staff]) % 2 == 1
            given, family = self._name(
                int(self.staff_given[staff]), int(self.staff_culture[staff]), staff, male
            )
            mail = f"{names.fold_ascii(given)}.{names.fold_ascii(family)}.{staff}@bench.example"
            yield {
                "id": _pid(self._staff_id(staff), seed),
                "givenName": given,
                "familyName": family,
                "birthDate": str(self.staff_birth[staff]),
                "sex": "Man" if male else "Kvinna",
                "civicNo": {"value": self.staff_civic[staff], "nationality": "SE"},
                "securityMarking": "Ingen",
                "personStatus": "Aktiv",
                "emails": [{"value": mail, "type": "Personal"}],
                "phoneNumbers": [
                    {"value": f"08-{staff % 100:02d} {staff // 100 % 100:02d} 22", "type": "Arbete"}
                ],
                "eduPersonPrincipalNames": [mail],
                "meta": meta,
            }

    def _marking(self, value: float, pupil: bool) -> str:
        if value < 0.001:
            return "Skyddad folkbokföring"
        if value < 0.004 and pupil:
            return "Sekretessmarkering"
        return "Ingen"

    def _guardians_of(self, pupil: int, household: int) -> range:
        r = self.r
        if pupil >= r.n_pupils:
            lo = r.n_guardians + 2 * (pupil - r.n_pupils)
            return range(lo, lo + 2)
        lo = int(r.h_guardian_lo[household])
        return range(lo, lo + int(r.h_guardians[household]))

    def _guardian_id(self, guardian: int) -> int:
        return GUARDIAN_IDS + guardian

    def _staff_id(self, staff: int) -> int:
        return STAFF_IDS + staff

    def groups(self) -> Iterator[Record]:
        r = self.r
        seed = r.seed
        meta = self._meta()
        for g, group in enumerate(r.groups):
            left = self.left.get(g, set())
            members: list[Record] = []
            for pupil in range(group.lo, group.hi):
                if pupil in left:
                    continue
                entry: Record = {"person": {"id": _pid(pupil, seed)}, "startDate": r.sy_start}
                if pupil in self.leavers:
                    entry["endDate"] = r.yesterday
                members.append(entry)
            for pupil in self.joined.get(g, ()):
                members.append(
                    {"person": {"id": _pid(pupil, seed)}, "startDate": r.today.isoformat()}
                )
            yield {
                "id": _gid(g, seed),
                "displayName": group.name,
                "groupType": group.group_type,
                "schoolType": group.school_type,
                "organisation": {"id": _oid(group.unit + 1, seed)},
                "startDate": r.sy_start,
                "endDate": r.sy_end,
                "groupMemberships": members,
                "meta": meta,
            }
        for u, unit in enumerate(r.units):  # staff groups (not exported by default)
            yield {
                "id": _gid(len(r.groups) + u, seed),
                "displayName": f"Personal {unit.name}",
                "groupType": "Personalgrupp",
                "schoolType": unit.school_types[0],
                "organisation": {"id": _oid(u + 1, seed)},
                "startDate": r.sy_start,
                "groupMemberships": [
                    {"person": {"id": _pid(self._staff_id(s), seed)}, "startDate": r.sy_start}
                    for s in range(unit.staff_lo, unit.staff_hi)
                ],
                "meta": meta,
            }

    def _duty(self, staff: int, unit: int, role: str, assignments: list[Record]) -> Record:
        r = self.r
        record: Record = {
            "id": _did(staff, r.seed),
            "person": {"id": _pid(self._staff_id(staff), r.seed)},
            "dutyAt": {"id": _oid(unit + 1, r.seed)},
            "dutyRole": role,
            "dutyPercent": 100,
            "startDate": "2015-08-01",
            "assignmentRole": assignments,
            "meta": self._meta(),
        }
        return record

    def duties(self) -> Iterator[Record]:
        r = self.r
        seed = r.seed
        for u, unit in enumerate(r.units):
            for s in range(unit.staff_lo, unit.staff_hi):
                slot = s - unit.staff_lo
                assignments: list[Record] = []
                if slot == 0:
                    role = "Rektor"
                elif unit.kind == "FS":
                    role = "Förskollärare" if slot % 2 else "Barnskötare"
                    g = unit.classes[slot % len(unit.classes)]
                    assignments.append(self._assignment(g, role))
                else:
                    role = "Lärare"
                    if slot - 1 < 2 * len(unit.classes):  # two mentors per class
                        g = unit.classes[(slot - 1) // 2]
                        assignments.append(self._assignment(g, "Mentor"))
                duty = self._duty(s, u, role, assignments)
                if s in self.staff_leavers:
                    duty["endDate"] = r.yesterday
                    yield duty
                    duty = self._duty(self.replacement[s], u, role, assignments)
                    duty["startDate"] = r.today.isoformat()
                yield duty
        del seed

    def _assignment(self, group: int, role: str) -> Record:
        r = self.r
        return {
            "group": {"id": _gid(group, r.seed)},
            "assignmentRoleType": role,
            "startDate": r.sy_start,
            "endDate": r.sy_end,
        }

    def activities(self) -> Iterator[Record]:
        r = self.r
        seed = r.seed
        number = 0
        for u, unit in enumerate(r.units):
            teachers = list(range(unit.staff_lo + 1, unit.staff_hi))
            for i, g in enumerate(unit.taught):
                teacher = teachers[(i * 5) % len(teachers)]
                teacher = self.replacement.get(teacher, teacher)
                yield {
                    "id": _aid(number, seed),
                    "displayName": r.groups[g].name,
                    "activityType": "Undervisning",
                    "startDate": r.sy_start,
                    "endDate": r.sy_end,
                    "groups": [{"id": _gid(g, seed)}],
                    "teachers": [
                        {
                            "duty": {"id": _did(teacher, seed)},
                            "startDate": r.sy_start,
                            "endDate": r.sy_end,
                        }
                    ],
                    "organisation": {"id": _oid(u + 1, seed)},
                }
                number += 1


def _stream(path: Path, records: Iterator[Record]) -> int:
    """Write ``{"data": [...]}`` chunk by chunk (0600: the files hold personal data)."""
    encoder = msgspec.json.Encoder()
    tmp = path.with_name(f".{path.name}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    count = 0
    with os.fdopen(fd, "wb") as handle:
        handle.write(b'{"data":[')
        chunk: list[Record] = []
        for record in records:
            chunk.append(record)
            if len(chunk) >= CHUNK:
                handle.write((b"," if count else b"") + encoder.encode(chunk)[1:-1])
                count += len(chunk)
                chunk = []
        if chunk:
            handle.write((b"," if count else b"") + encoder.encode(chunk)[1:-1])
            count += len(chunk)
        handle.write(b"]}")
    tmp.replace(path)
    return count
