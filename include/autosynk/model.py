"""Names and orders fixed by Unikum's contract (spec §2, §4)."""

from typing import Final

USER: Final = "user"
SCHOOL: Final = "school"
CLASS: Final = "class"

#: number of fields per principals row type, row type included (spec §2)
FIELD_COUNT: Final[dict[str, int]] = {USER: 19, CLASS: 7, SCHOOL: 15}

#: principals are written schools first, then classes, then users
PRINCIPAL_ORDER: Final = (SCHOOL, CLASS, USER)

#: relation types in dependency order (spec §4): adds in this order, removes reversed
RELATION_ORDER: Final = (
    "school_in_org",
    "class_in_school",
    "student_in_school",
    "staff_in_school",
    "student_in_class",
    "teacher_in_class",
    "external_user_in_school",
    "guardian_for",
    "mentor_for",
    "administrator_for",
)

ADD: Final = "add"
REMOVE: Final = "remove"
