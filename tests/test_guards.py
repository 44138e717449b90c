"""The guards, table-driven: counts per type in, verdicts out."""

from __future__ import annotations

import pytest

from autosynk.config import Guards, Limit, Limits, Safety
from autosynk.guards import ALL_RELATIONS, evaluate, trips

DEFAULT = Limit()  # 15 % of what is delivered, once at least 200 rows


@pytest.mark.parametrize(
    ("limit", "count", "delivered", "expected"),
    [
        (DEFAULT, 0, 0, False),
        (DEFAULT, 199, 200, False),  # under min_rows: any share goes
        (DEFAULT, 200, 1000, True),  # 20 % > 15 %
        (DEFAULT, 150, 1000, False),  # 15 % is not more than 15 %
        (DEFAULT, 151, 1000, False),  # over 15 %, under min_rows
        (DEFAULT, 300, 2000, False),  # exactly 15 %
        (DEFAULT, 301, 2000, True),
        (DEFAULT, 250, 0, True),  # nothing delivered: any count past min_rows
        (Limit(max_share=None, max_rows=10), 11, 1_000_000, True),
        (Limit(max_share=None, max_rows=10), 10, 0, False),
        (Limit(max_share=0.5, min_rows=0), 1, 1, True),
        (Limit(max_share=0.5, min_rows=0), 1, 2, False),
        (Limit(max_share=None, min_rows=0), 10**6, 1, False),  # no limit at all
    ],
)
def test_trips(limit, count, delivered, expected):
    assert trips(limit, count, delivered) is expected


def by_type(**relations: tuple[int, int, int]) -> dict:
    return {
        "principals": {
            "user": {"new": 10, "changed": 5, "dropped": 0, "delivered": 5000},
        },
        "relations": {
            name: {"add": add, "remove": remove, "delivered": delivered}
            for name, (add, remove, delivered) in relations.items()
        },
    }


def verdicts(results) -> set[tuple[str, str, bool]]:
    return {(r.type, r.operation, r.tripped) for r in results if r.tripped or r.waived}


SAFETY = Safety()


@pytest.mark.parametrize(
    ("name", "counts", "flags", "tripped"),
    [
        ("an ordinary school day", by_type(student_in_class=(40, 38, 9000)), {}, set()),
        (
            "40 % of the children gone",
            by_type(student_in_school=(0, 1600, 4000), guardian_for=(0, 2500, 6000)),
            {},
            {
                ("student_in_school", "remove"),
                ("guardian_for", "remove"),
                (ALL_RELATIONS, "remove"),
            },
        ),
        (
            "a surge of new pupils",
            by_type(student_in_school=(900, 0, 4000)),
            {},
            {("student_in_school", "add")},
        ),
        ("a surge on a first night", by_type(student_in_school=(900, 0, 0)), {"first": 1}, set()),
        ("a surge in a total", by_type(student_in_school=(900, 0, 4000)), {"total": 1}, set()),
        (
            "removes in a total are still guarded",
            by_type(student_in_school=(0, 900, 4000)),
            {"total": 1},
            {("student_in_school", "remove"), (ALL_RELATIONS, "remove")},
        ),
        (
            "removes allowed",
            by_type(student_in_school=(0, 900, 4000)),
            {"allow": 1},
            set(),
        ),
    ],
)
def test_evaluate(name, counts, flags, tripped):
    results = evaluate(
        counts,
        SAFETY,
        max_remove_fraction=SAFETY.max_remove_fraction,
        min_removes_to_guard=SAFETY.min_removes_to_guard,
        first_night=bool(flags.get("first")),
        total=bool(flags.get("total")),
        allow_removes=bool(flags.get("allow")),
    )
    assert {(r.type, r.operation) for r in results if r.tripped} == tripped, name
    if flags:
        assert any(r.waived for r in results), name


def test_a_mapping_mistake_that_rewrites_every_name_is_refused_on_changes():
    counts = {"principals": {"user": {"new": 0, "changed": 5000, "dropped": 0, "delivered": 5000}}}
    results = evaluate(counts, SAFETY, max_remove_fraction=0.15, min_removes_to_guard=200)
    (change,) = [r for r in results if r.tripped]
    assert (change.scope, change.type, change.operation) == ("principals", "user", "change")
    assert change.describe() == (
        "principals user: 5000 changes of 5000 delivered (100.0%); limit 15% of what is "
        "delivered once at least 200 rows; REFUSED"
    )


def test_types_override_the_defaults_per_operation():
    guards = Guards(
        defaults=Limits(remove=Limit(max_share=0.05, min_rows=10)),
        types={"mentor_for": Limits(remove=Limit(max_share=None, max_rows=1000))},
    )
    assert guards.limit("mentor_for", "remove") == Limit(max_share=None, max_rows=1000)
    assert guards.limit("mentor_for", "add") == Limit()  # unset: the built-in default
    assert guards.limit("guardian_for", "remove") == Limit(max_share=0.05, min_rows=10)


@pytest.mark.parametrize(
    ("types", "message"),
    [
        ({"pupil": {}}, "unknown type 'pupil'"),
        ({"guardian_for": {"change": {"max_share": 0.1}}}, "never changed"),
    ],
)
def test_unknown_or_meaningless_limits_are_errors(types, message):
    with pytest.raises(ValueError, match=message):
        Guards.model_validate({"types": types})


def test_the_old_single_removal_limit_still_guards_all_relations_together():
    # every type under its own limit, together over max_remove_fraction
    counts = by_type(
        student_in_class=(0, 150, 1000),
        teacher_in_class=(0, 150, 1000),
    )
    results = evaluate(counts, SAFETY, max_remove_fraction=0.1, min_removes_to_guard=200)
    assert {(r.type, r.operation) for r in results if r.tripped} == {(ALL_RELATIONS, "remove")}
