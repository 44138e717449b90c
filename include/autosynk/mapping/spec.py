"""The mapping spec (YAML, owned by the municipality): which source feeds which Unikum field.

The shipped ``default.yaml`` reproduces the shared default mapping. A municipality's file
is laid over it key by key (a key it sets replaces the default's value wholesale), then
validated: unknown keys and wrong values are errors naming the key and line.
"""

from __future__ import annotations

import datetime as dt
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from autosynk.errors import ConfigError
from autosynk.yamlfile import describe_errors, load_yaml

UNIKUM_FORMS = (
    "se.forskoleverksamhet.forskola",
    "se.grundskoleutbildning.grundskola",
    "se.grundskoleutbildning.sarskola.grundsarskola",
    "se.gymnasieutbildning.gymnasieskola",
    "se.vuxenutbildning",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ExternalIds(_Strict):
    school: str = "{id}"
    class_: str = Field("{id}", alias="class")

    @field_validator("school", "class_")
    @classmethod
    def _placeholders(cls, value: str) -> str:
        try:
            value.format(id="x", code="x", school_year="x")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"unknown placeholder or bad template: {exc}") from None
        if "{id}" not in value and "{code}" not in value:
            raise ValueError("must contain {id} or {code} to stay unique")
        return value


class EmailPolicy(_Strict):
    staff: list[str] = ["Personal", "directory"]
    student: list[str] = ["Skola"]
    guardian: list[str] = ["Privat"]


class ContactDetails(_Strict):
    address: bool = True
    phones: bool = True


class ContactPolicy(_Strict):
    staff: ContactDetails = ContactDetails(address=False)
    student: ContactDetails = ContactDetails()
    guardian: ContactDetails = ContactDetails()


class Transforms(_Strict):
    trim: bool = True
    name_casing: Literal["keep", "title"] = "keep"
    email_lowercase: bool = True
    phone_normalise: bool = True


class UserDefaults(_Strict):
    hide_contact_details: bool = False
    allow_personal_notifications: bool = True
    allow_messages_from_schools_and_groups: bool = True
    allow_system_messages: bool = True


class DirectoryUse(_Strict):
    add_missing_staff: bool = False


class MappingSpec(_Strict):
    school_forms: dict[str, str]
    school_form_rank: list[str]
    group_types: list[str]
    external_ids: ExternalIds = ExternalIds()
    mentor_links: bool = True
    mentor_assignment_roles: list[str] = ["Mentor"]
    teacher_assignment_roles: list[str] = ["Förskollärare", "Barnskötare"]
    administrator_duty_roles: list[str] = []
    guardian_relation_types: list[str] = ["Vårdnadshavare"]
    excluded_person_status: list[str] = ["Avliden", "Utvandrad"]
    unprotected_markings: list[str] = ["Ingen"]
    missing_marking_is_protected: bool = False
    email: EmailPolicy = EmailPolicy()
    address_type: str = "Folkbokföring"
    contact_details: ContactPolicy = ContactPolicy()
    transforms: Transforms = Transforms()
    grade_labels: dict[str, dict[str, str]] = {}
    user_defaults: UserDefaults = UserDefaults()
    directory: DirectoryUse = DirectoryUse()
    school_year_starts: str = "07-01"

    @field_validator("school_year_starts")
    @classmethod
    def _month_day(cls, value: str) -> str:
        try:
            dt.date.fromisoformat(f"2000-{value}")  # a leap year: 02-29 is a day too
        except ValueError:
            raise ValueError(f"{value!r} is not a day of the year (MM-DD)") from None
        if len(value) != 5:
            raise ValueError(f"{value!r} is not a day of the year (MM-DD)")
        return value

    @field_validator("school_forms")
    @classmethod
    def _known_forms(cls, value: dict[str, str]) -> dict[str, str]:
        for school_type, form in value.items():
            if form not in UNIKUM_FORMS:
                raise ValueError(f"{school_type}: {form!r} is not a Unikum school form")
        return value

    @field_validator("school_form_rank")
    @classmethod
    def _rank_forms(cls, value: list[str]) -> list[str]:
        unknown = [form for form in value if form not in UNIKUM_FORMS]
        if unknown:
            raise ValueError(f"not Unikum school forms: {', '.join(unknown)}")
        return value


DEFAULT_MAPPING = "default.yaml"


def _default_path() -> Path:
    return Path(str(resources.files("autosynk.mapping").joinpath(DEFAULT_MAPPING)))


def load_mapping(path: Path | None = None) -> MappingSpec:
    """The default mapping, with the municipality's file (if any) laid over it."""
    default_data, _ = load_yaml(_default_path())
    if path is None:
        return MappingSpec.model_validate(default_data)
    data, lines = load_yaml(path)
    merged = {**default_data, **data}
    try:
        return MappingSpec.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(describe_errors(path, exc, lines, merged)) from None
