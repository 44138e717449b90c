"""Build Unikum's principals rows (spec §2) from register records, value by value.

Every value is cleaned (no tab, CR or LF can survive into a file) and, for ISO-8859-1
municipalities, transliterated here, before the row is hashed: the delta then compares
exactly what would be written. Changed values are reported (masked); a value that cannot
be written faithfully quarantines its record.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from autosynk.mapping.spec import MappingSpec
from autosynk.mapping.values import name_case, normalise_email, normalise_phone
from autosynk.model import CLASS, SCHOOL, USER
from autosynk.records import Address, Group, Organisation, Person
from autosynk.register import as_list, text
from autosynk.unikum.encoding import Untransliterable, clean_value, to_latin1

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_UNIT_CODE = re.compile(r"^\d{8}$")

Quarantine = Callable[..., None]


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
        self.cleaned = 0
        self.transliterated = 0
        defaults = spec.user_defaults
        self._flags = (
            _bool(defaults.hide_contact_details),
            _bool(defaults.allow_personal_notifications),
            _bool(defaults.allow_messages_from_schools_and_groups),
            _bool(defaults.allow_system_messages),
        )

    # -- one value -------------------------------------------------------------------

    def _value(self, entity: str, source_id: str, field: str, raw: Any) -> str:
        if self.trim and type(raw) is str:
            # the common case, millions of times a night: a trimmed value with nothing to
            # clean and (ASCII) nothing to transliterate comes back as it is
            value = raw.strip()
            if value.isprintable() and (not self.latin1 or value.isascii()):
                return value
        else:
            value = text(raw) if self.trim else ("" if raw is None else str(raw))
        # a printable value holds no control character: nothing to clean (the fast path)
        changed = False
        if not value.isprintable():
            value, changed = clean_value(value)
        if changed:
            self.cleaned += 1
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
                self.transliterated += 1
                self.quarantine(
                    entity, source_id, f"{field}: transliterated to ISO-8859-1", "warning"
                )
        return value

    # -- rows ------------------------------------------------------------------------

    def school(
        self, org_id: str, org: Organisation, external_id: str, code: str, form: str
    ) -> list[str] | None:
        try:
            v = lambda field, raw: self._value("organisation", org_id, field, raw)  # noqa: E731
            name = v("name", org.displayName)
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
            address = _first(org.addresses or org.address)
            phone = _first(org.phoneNumbers or org.phoneNumber)
            return [
                v("external id", external_id),
                code,
                name,
                form,
                "",
                "",
                "",
                v("url", org.url),
                v("phone", phone.get("value") if isinstance(phone, dict) else phone),
                "",
                v("postal address", address.get("streetAddress")),
                v("postcode", address.get("postalCode")),
                v("town", address.get("locality")),
                "",
                SCHOOL,
            ]
        except _Unwritable:
            return None

    def group(self, group_id: str, group: Group, external_id: str, form: str) -> list[str] | None:
        try:
            name = self._value("group", group_id, "name", group.displayName)
            if not name:
                self.quarantine("group", group_id, "group without a name")
                return None
            description = self._value("group", group_id, "description", group.description)
            return [
                self._value("group", group_id, "external id", external_id),
                name,
                form,
                "",
                "",
                description,
                CLASS,
            ]
        except _Unwritable:
            return None

    def user(
        self,
        person_id: str,
        person: Person,
        key: str,
        role: str,
        grade: tuple[str, str] | None,
        directory: dict[str, Any] | None,
    ) -> list[str] | None:
        spec = self.spec
        value = self._value
        try:
            casing = spec.transforms.name_casing
            first = name_case(value("person", person_id, "first name", person.givenName), casing)
            last = name_case(value("person", person_id, "last name", person.familyName), casing)
            if not first or not last:
                missing = "first name" if not first else "last name"
                self.quarantine("person", person_id, f"{missing} is missing")
                return None
            email = self._email(person_id, person, role, directory)
            details = getattr(spec.contact_details, role)
            phone = mobile = work = ""
            if details.phones:
                phone, mobile, work = self._phones(person_id, person)
            street = postcode = town = ""
            if details.address:
                address = _address(person, spec.address_type)
                if address is not None:
                    street = value("person", person_id, "street address", address.streetAddress)
                    postcode = value("person", person_id, "postcode", address.postalCode)
                    town = value("person", person_id, "town", address.locality)
            return [
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
                *self._flags,
                self._grade(grade),
                "",
                "",
                USER,
            ]
        except _Unwritable:
            return None

    # -- parts -----------------------------------------------------------------------

    def _email(
        self, person_id: str, person: Person, role: str, directory: dict[str, Any] | None
    ) -> str:
        emails = person.emails or ()
        for source in getattr(self.spec.email, role):
            if source == "directory":
                candidate = text((directory or {}).get("mail"))
            else:
                candidate = next(
                    (text(e.value) for e in emails if text(e.type) == source and text(e.value)),
                    "",
                )
            if not candidate:
                continue
            candidate = normalise_email(candidate, self.spec.transforms.email_lowercase)
            candidate = self._value("person", person_id, "e-mail", candidate)
            if _EMAIL.match(candidate):
                return candidate
            self.quarantine(
                "person",
                person_id,
                f"e-mail from {source} is not an address; left empty",
                "warning",
            )
        return ""

    def _phones(self, person_id: str, person: Person) -> tuple[str, str, str]:
        phone = mobile = work = ""
        for entry in person.phoneNumbers or ():
            value = self._value("person", person_id, "phone", entry.value)
            if not value:
                continue
            if self.spec.transforms.phone_normalise:
                value = normalise_phone(value)
            if entry.mobile is True:
                mobile = mobile or value
            elif text(entry.type) == "Arbete":
                work = work or value
            else:
                phone = phone or value
        return phone, mobile, work

    def _grade(self, grade: tuple[str, str] | None) -> str:
        if grade is None:
            return ""
        school_type, year = grade
        return self.spec.grade_labels.get(school_type, {}).get(year, year)


def _first(value: Any) -> dict[str, Any]:
    """The first of an optional array (or a lone object / bare value) as a dict."""
    items = as_list(value)
    if not items:
        return {}
    first = items[0]
    return first if isinstance(first, dict) else {"value": first}


def _address(person: Person, wanted: str) -> Address | None:
    prefix = wanted[:10]
    for address in person.addresses or ():
        if text(address.type).startswith(prefix):
            return address
    return None
