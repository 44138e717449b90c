"""Unikum's principals rows (spec §2) from the register's columns, value by value.

Every value is cleaned (no tab, CR or LF can survive into a file) and, for ISO-8859-1
municipalities, transliterated here, before the row is hashed: the delta then compares
exactly what would be written. Changed values are reported (masked); a value that cannot
be written faithfully quarantines its record (and whatever was reported about the fields
before it stays reported).

The values come from :mod:`autosynk.register_columns`, already read as the mapping reads
them; the choices (which e-mail, which phone, which address) are made here over a
person's child rows in their register order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from autosynk.mapping.spec import MappingSpec
from autosynk.mapping.values import name_case, normalise_email, normalise_phone
from autosynk.model import CLASS, SCHOOL, USER
from autosynk.register import text
from autosynk.unikum.encoding import Untransliterable, clean_value, to_latin1

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_UNIT_CODE = re.compile(r"^\d{8}$")

Quarantine = Callable[..., None]
#: (type, value) of a person's e-mails, in register order
Emails = Sequence[tuple[str, str]]
#: (value, type, mobile) of a person's phone numbers, in register order
Phones = Sequence[tuple[str, str, bool]]
#: (street, postcode, town) of the address the mapping uses, if the person has one
Address = tuple[str, str, str] | None


class _Unwritable(Exception):
    pass


def _bool(value: bool) -> str:
    return "true" if value else "false"


class RowBuilder:
    def __init__(self, spec: MappingSpec, encoding: str, quarantine: Quarantine) -> None:
        self.spec = spec
        self.latin1 = encoding == "iso-8859-1"
        self.trim = spec.transforms.trim
        self.quarantine = quarantine
        defaults = spec.user_defaults
        self.flags = (
            _bool(defaults.hide_contact_details),
            _bool(defaults.allow_personal_notifications),
            _bool(defaults.allow_messages_from_schools_and_groups),
            _bool(defaults.allow_system_messages),
        )

    # -- one value -------------------------------------------------------------------

    def value(self, entity: str, source_id: str, field: str, raw: str) -> str:
        """``raw`` as written: trimmed (if the mapping trims), cleaned, transliterated."""
        value = raw.strip() if self.trim else raw
        if value.isprintable() and (not self.latin1 or value.isascii()):
            return value  # the common case: nothing to clean or transliterate
        changed = False
        if not value.isprintable():
            value, changed = clean_value(value)
        if changed:
            self.quarantine(
                entity,
                source_id,
                f"{field}: tab, line break or control character replaced by a space",
                "warning",
            )
        if self.latin1 and value:
            try:
                value, changed = to_latin1(value)
            except Untransliterable as exc:
                self.quarantine(
                    entity, source_id, f"{field}: cannot be written in ISO-8859-1 ({exc})"
                )
                raise _Unwritable from None
            if changed:
                self.quarantine(
                    entity, source_id, f"{field}: transliterated to ISO-8859-1", "warning"
                )
        return value

    # -- rows ------------------------------------------------------------------------

    def school(
        self,
        org_id: str,
        external_id: str,
        code: str,
        form: str,
        org: dict[str, Any],
    ) -> str | None:
        """A school row (tab-joined), or None when it is quarantined."""
        try:
            v = lambda field, raw: self.value("organisation", org_id, field, raw)  # noqa: E731
            name = v("name", org["name"])
            if not name:
                self.quarantine("organisation", org_id, "school without a name")
                return None
            if code and not _UNIT_CODE.match(code):
                self.quarantine(
                    "organisation",
                    org_id,
                    "schoolUnitCode is not 8 digits; school id left empty",
                    "warning",
                )
                code = ""
            return "\t".join(
                [
                    v("external id", external_id),
                    code,
                    name,
                    form,
                    "",
                    "",
                    "",
                    v("url", org["url"]),
                    v("phone", org["phone"]),
                    "",
                    v("postal address", org["street"]),
                    v("postcode", org["postcode"]),
                    v("town", org["town"]),
                    "",
                    SCHOOL,
                ]
            )
        except _Unwritable:
            return None

    def group(
        self, group_id: str, external_id: str, form: str, name: str, description: str
    ) -> str | None:
        try:
            name = self.value("group", group_id, "name", name)
            if not name:
                self.quarantine("group", group_id, "group without a name")
                return None
            description = self.value("group", group_id, "description", description)
            external = self.value("group", group_id, "external id", external_id)
            return "\t".join([external, name, form, "", "", description, CLASS])
        except _Unwritable:
            return None

    def user(
        self,
        person_id: str,
        key: str,
        role: str,
        names: tuple[str, str],
        grade: tuple[str, str] | None,
        emails: Emails,
        directory_mail: Any,
        phones: Phones,
        address: Address,
    ) -> str | None:
        spec = self.spec
        value = self.value
        try:
            casing = spec.transforms.name_casing
            first = name_case(value("person", person_id, "first name", names[0]), casing)
            last = name_case(value("person", person_id, "last name", names[1]), casing)
            if not first or not last:
                missing = "first name" if not first else "last name"
                self.quarantine("person", person_id, f"{missing} is missing")
                return None
            email = self._email(person_id, role, emails, directory_mail)
            details = getattr(spec.contact_details, role)
            phone = mobile = work = ""
            if details.phones:
                phone, mobile, work = self._phones(person_id, phones)
            street = postcode = town = ""
            if details.address and address is not None:
                street = value("person", person_id, "street address", address[0])
                postcode = value("person", person_id, "postcode", address[1])
                town = value("person", person_id, "town", address[2])
            return "\t".join(
                [
                    first,
                    last,
                    email,
                    key,
                    "",
                    phone,
                    mobile,
                    work,
                    street,
                    postcode,
                    town,
                    *self.flags,
                    self._grade(grade),
                    "",
                    "",
                    USER,
                ]
            )
        except _Unwritable:
            return None

    # -- parts -----------------------------------------------------------------------

    def _email(self, person_id: str, role: str, emails: Emails, directory_mail: Any) -> str:
        for source in getattr(self.spec.email, role):
            if source == "directory":
                candidate = text(directory_mail)
            else:
                candidate = next((value for kind, value in emails if kind == source and value), "")
            if not candidate:
                continue
            candidate = normalise_email(candidate, self.spec.transforms.email_lowercase)
            candidate = self.value("person", person_id, "e-mail", candidate)
            if _EMAIL.match(candidate):
                return candidate
            self.quarantine(
                "person",
                person_id,
                f"e-mail from {source} is not an address; left empty",
                "warning",
            )
        return ""

    def _phones(self, person_id: str, phones: Phones) -> tuple[str, str, str]:
        phone = mobile = work = ""
        for raw, kind, is_mobile in phones:
            value = self.value("person", person_id, "phone", raw)
            if not value:
                continue
            if self.spec.transforms.phone_normalise:
                value = normalise_phone(value)
            if is_mobile:
                mobile = mobile or value
            elif kind == "Arbete":
                work = work or value
            else:
                phone = phone or value
        return phone, mobile, work

    def _grade(self, grade: tuple[str, str] | None) -> str:
        if grade is None:
            return ""
        school_type, year = grade
        return self.spec.grade_labels.get(school_type, {}).get(year, year)
