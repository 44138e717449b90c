"""The school-year checklist (spec §9): what a school-year plan does, item by item.

Computed in DuckDB from the delivered state before the change (``dp`` principals with
their rows, ``dr`` relations), tonight's mapped principals (``tp``, with rows), and the
plan's delta (``removes`` and ``adds``), so the state after the change is exactly
``(dr - removes) + adds``: what Unikum will hold once the plan is applied.

Every item has a count, a status and a list in which persons appear only masked
(``YYYYMMDD-****``); groups and schools by their external ids and names. Items:

1. groups detached (with members and teachers) and new groups with their new ids;
2. årskurs changes;
3. leavers (graduating years, moving out) and the links they lose;
4. guardians who keep ``external_user_in_school`` because another child remains;
5. staff leaving;
6. mentor links of leavers: removed when the sync owns them, else listed for manual work;
7. administrators on old groups;
8. pupils in grundskola, grundsärskola and gymnasium without an årskurs;
9. pupils at a school without any group: blocking.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import duckdb
import pyarrow as pa

from autosynk.identity import mask_shaped as mask  # user keys are identity numbers

GRADED_FORMS = (
    "se.grundskoleutbildning.grundskola",
    "se.grundskoleutbildning.sarskola.grundsarskola",
    "se.gymnasieutbildning.gymnasieskola",
)
#: the last årskurs of a school form: a pupil in it who leaves is graduating
FINAL_GRADES = {
    "se.grundskoleutbildning.grundskola": ("9",),
    "se.grundskoleutbildning.sarskola.grundsarskola": ("9", "10"),
    "se.gymnasieutbildning.gymnasieskola": ("3", "4"),
}

# row fields (1-based, spec §2): a user's årskurs, a class's and a school's name, a
# school's form
_SETUP = """
    CREATE TEMP TABLE before_rows AS
        SELECT kind, key, string_split("row", chr(9)) AS f FROM delivered_rows;
    CREATE TEMP TABLE after_rows AS
        SELECT kind, key, string_split("row", chr(9)) AS f FROM tp;
    CREATE TEMP TABLE after_rel AS
        SELECT type, a, b FROM dr EXCEPT SELECT type, a, b FROM removes
        UNION SELECT type, a, b FROM adds;
    CREATE TEMP TABLE school_form AS
        SELECT key, f[4] AS form, f[3] AS name FROM after_rows WHERE kind = 'school'
        UNION ALL
        SELECT key, f[4], f[3] FROM before_rows
        WHERE kind = 'school' AND key NOT IN (SELECT key FROM after_rows WHERE kind = 'school');
    CREATE TEMP TABLE grade_before AS
        SELECT key, f[16] AS grade FROM before_rows WHERE kind = 'user';
    CREATE TEMP TABLE grade_after AS
        SELECT key, f[16] AS grade FROM after_rows WHERE kind = 'user';
    CREATE TEMP TABLE leavers AS
        SELECT DISTINCT a AS pupil FROM dr WHERE type = 'student_in_school'
        EXCEPT SELECT a FROM after_rel WHERE type = 'student_in_school';
    CREATE TEMP TABLE staff_leaving AS
        SELECT DISTINCT a AS person FROM dr WHERE type = 'staff_in_school'
        EXCEPT SELECT a FROM after_rel WHERE type = 'staff_in_school';
    CREATE TEMP TABLE detached AS
        SELECT a AS grp, b AS school FROM removes WHERE type = 'class_in_school';
"""

_GROUPS_DETACHED = """
    SELECT d.grp, coalesce(r.f[2], '') AS name, d.school,
           (SELECT count(*) FROM dr WHERE type = 'student_in_class' AND b = d.grp) AS members,
           (SELECT count(*) FROM dr WHERE type = 'teacher_in_class' AND b = d.grp) AS teachers
    FROM detached d LEFT JOIN before_rows r ON r.kind = 'class' AND r.key = d.grp
    ORDER BY d.school, name, d.grp
"""

_GROUPS_NEW = """
    SELECT t.key, t.f[2] AS name, coalesce(s.b, '') AS school
    FROM after_rows t
    LEFT JOIN after_rel s ON s.type = 'class_in_school' AND s.a = t.key
    WHERE t.kind = 'class' AND t.key NOT IN (SELECT key FROM before_rows WHERE kind = 'class')
    ORDER BY school, name, t.key
"""

_GRADE_CHANGES = """
    SELECT b.key, b.grade AS before, a.grade AS after
    FROM grade_before b JOIN grade_after a USING (key)
    WHERE b.grade IS DISTINCT FROM a.grade AND (b.grade <> '' OR a.grade <> '')
    ORDER BY b.key
"""

_LEAVERS = """
    SELECT l.pupil, s.b AS school, coalesce(g.grade, '') AS grade, coalesce(f.form, '') AS form,
           (SELECT count(*) FROM removes WHERE type = 'student_in_class' AND a = l.pupil)
               AS classes,
           (SELECT count(*) FROM removes WHERE type = 'guardian_for' AND b = l.pupil)
               AS guardians,
           (SELECT count(*) FROM removes WHERE type = 'mentor_for' AND b = l.pupil) AS mentors
    FROM leavers l
    JOIN dr s ON s.type = 'student_in_school' AND s.a = l.pupil
    LEFT JOIN grade_before g ON g.key = l.pupil
    LEFT JOIN school_form f ON f.key = s.b
    ORDER BY s.b, l.pupil
"""

_GUARDIANS_STAYING = """
    SELECT DISTINCT g.a AS guardian, s.b AS school
    FROM dr g
    JOIN dr s ON s.type = 'student_in_school' AND s.a = g.b
    JOIN after_rel e ON e.type = 'external_user_in_school' AND e.a = g.a AND e.b = s.b
    WHERE g.type = 'guardian_for'
      AND NOT EXISTS (SELECT 1 FROM after_rel n
                      WHERE n.type = 'student_in_school' AND n.a = g.b AND n.b = s.b)
    ORDER BY school, guardian
"""

_STAFF_LEAVING = """
    SELECT l.person, s.b AS school,
           (SELECT count(*) FROM removes WHERE type = 'teacher_in_class' AND a = l.person)
               AS classes,
           (SELECT count(*) FROM removes WHERE type = 'mentor_for' AND a = l.person) AS mentees
    FROM staff_leaving l JOIN dr s ON s.type = 'staff_in_school' AND s.a = l.person
    ORDER BY s.b, l.person
"""

_MENTOR_LINKS_REMOVED = """
    SELECT a AS mentor, b AS pupil FROM removes
    WHERE type = 'mentor_for'
      AND (b IN (SELECT pupil FROM leavers) OR a IN (SELECT person FROM staff_leaving))
    ORDER BY a, b
"""

_ADMINISTRATORS = """
    SELECT a AS person, b AS grp,
           EXISTS (SELECT 1 FROM removes r WHERE r.type = 'administrator_for'
                   AND r.a = d.a AND r.b = d.b) AS removed
    FROM dr d WHERE type = 'administrator_for' AND b IN (SELECT grp FROM detached)
    ORDER BY b, a
"""

_WITHOUT_GRADE = """
    SELECT s.a AS pupil, s.b AS school, f.form
    FROM after_rel s
    JOIN school_form f ON f.key = s.b
    LEFT JOIN grade_after g ON g.key = s.a
    WHERE s.type = 'student_in_school' AND f.form IN ({forms})
      AND coalesce(g.grade, '') = ''
    ORDER BY s.b, s.a
"""

_WITHOUT_GROUP = """
    SELECT s.a AS pupil, s.b AS school
    FROM after_rel s
    WHERE s.type = 'student_in_school'
      AND NOT EXISTS (
          SELECT 1 FROM after_rel m JOIN after_rel c
              ON c.type = 'class_in_school' AND c.a = m.b AND c.b = s.b
          WHERE m.type = 'student_in_class' AND m.a = s.a)
    ORDER BY s.b, s.a
"""


def compute(
    con: duckdb.DuckDBPyConnection, *, mentor_links_owned: bool, block_on_loose: bool
) -> list[dict[str, Any]]:
    """The checklist items, given a connection with the views ``dp``, ``dr``, ``tp``,
    ``delivered_rows``, ``removes`` and ``adds`` (see the module's docstring)."""
    con.execute(_SETUP)

    def rows(sql: str) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in con.execute(sql).fetchall()]

    names = dict(rows("SELECT key, name FROM school_form"))

    def school(key: str) -> str:
        return f"{names.get(key) or ''} ({key})".strip()

    items: list[dict[str, Any]] = []

    def item(
        key: str,
        title: str,
        columns: list[str],
        found: list[tuple[Any, ...]],
        shape: Callable[[tuple[Any, ...]], list[Any]],
        *,
        status: str = "info",
        note: str = "",
    ) -> None:
        items.append(
            {
                "id": key,
                "title": title,
                "status": status if found or status == "manual" else "ok",
                "count": len(found),
                "note": note,
                "columns": columns,
                "rows": [shape(r) for r in found],
            }
        )

    detached = rows(_GROUPS_DETACHED)
    item(
        "groups_detached",
        "Groups detached (last year's classes, groups and departments)",
        ["group", "name", "school", "members", "teachers"],
        detached,
        lambda r: [r[0], r[1], school(r[2]), r[3], r[4]],
        note=f"{sum(r[3] for r in detached)} memberships and "
        f"{sum(r[4] for r in detached)} teacher links go with them.",
    )
    item(
        "groups_new",
        "New groups, with their new external ids",
        ["group", "name", "school"],
        rows(_GROUPS_NEW),
        lambda r: [r[0], r[1], school(r[2])],
    )
    changes = rows(_GRADE_CHANGES)
    moves: dict[str, int] = {}
    for _key, before, after in changes:
        label = f"{before or '–'} → {after or '–'}"
        moves[label] = moves.get(label, 0) + 1
    item(
        "grade_changes",
        "Årskurs changes (field 16)",
        ["person", "before", "after"],
        changes,
        lambda r: [mask(r[0]), r[1], r[2]],
        note="; ".join(f"{label}: {n}" for label, n in sorted(moves.items())),
    )
    leavers = rows(_LEAVERS)
    item(
        "leavers",
        "Leavers (graduating years and moving out) and the links they lose",
        ["pupil", "school", "årskurs", "leaves as", "classes", "guardians", "mentors"],
        leavers,
        lambda r: [
            mask(r[0]),
            school(r[1]),
            r[2],
            "graduating" if r[2] in FINAL_GRADES.get(r[3], ()) else "moving out",
            r[4],
            r[5],
            r[6],
        ],
    )
    item(
        "guardians_staying",
        "Guardians who keep external_user_in_school: another child remains at the school",
        ["guardian", "school"],
        rows(_GUARDIANS_STAYING),
        lambda r: [mask(r[0]), school(r[1])],
    )
    staff = rows(_STAFF_LEAVING)
    item(
        "staff_leaving",
        "Staff leaving",
        ["person", "school", "classes", "mentor links"],
        staff,
        lambda r: [mask(r[0]), school(r[1]), r[2], r[3]],
    )
    if mentor_links_owned:
        item(
            "mentor_links",
            "Mentor links of leaving pupils and staff: removed by this plan",
            ["mentor", "pupil"],
            rows(_MENTOR_LINKS_REMOVED),
            lambda r: [mask(r[0]), mask(r[1])],
            status="removed",
        )
    else:
        manual = [("pupil", p[0]) for p in leavers] + [("staff", s[0]) for s in staff]
        item(
            "mentor_links",
            "Mentor links are kept by hand: check these leavers' links in Unikum",
            ["role", "person"],
            manual,
            lambda r: [r[0], mask(r[1])],
            status="manual",
            note="The sync does not own mentor links (mapping: mentor_links: false).",
        )
    item(
        "administrators_on_old_groups",
        "Administrators on last year's groups",
        ["person", "group", "removed by this plan"],
        rows(_ADMINISTRATORS),
        lambda r: [mask(r[0]), r[1], "yes" if r[2] else "no: remove by hand"],
        status="attention",
        note="Administrators set by hand in Unikum on the detached groups above must be "
        "removed by hand before the new year is loaded.",
    )
    forms = ", ".join(f"'{f}'" for f in GRADED_FORMS)
    item(
        "pupils_without_grade",
        "Pupils in grundskola, grundsärskola and gymnasium without an årskurs",
        ["pupil", "school"],
        rows(_WITHOUT_GRADE.format(forms=forms)),
        lambda r: [mask(r[0]), school(r[1])],
        status="attention",
    )
    item(
        "pupils_without_group",
        "Pupils who would be at a school without any group",
        ["pupil", "school"],
        rows(_WITHOUT_GROUP),
        lambda r: [mask(r[0]), school(r[1])],
        status="blocking" if block_on_loose else "attention",
    )
    return items


def register_inputs(
    con: duckdb.DuckDBPyConnection, delivered_rows: pa.Table, removes: pa.Table, adds: pa.Table
) -> None:
    con.register("delivered_rows", delivered_rows)
    con.register("removes", removes)
    con.register("adds", adds)


def blocking(items: list[dict[str, Any]]) -> list[str]:
    """One line per blocking item, for the plan."""
    return [f"{i['title']}: {i['count']}" for i in items if i["status"] == "blocking"]


def outline(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts and statuses per item (the plan keeps these; the lists stay in the file)."""
    return {
        i["id"]: {"title": i["title"], "count": i["count"], "status": i["status"]} for i in items
    }
