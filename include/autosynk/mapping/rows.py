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
        self, org_id: str, org: dict[str, Any], external_id: str, code: str, form: str
    ) -> list[str] | None:
        try:
            v = lambda field, raw: self._value("organisation", org_id, field, raw)  # noqa: E731
            name = v("name", org.get("displayName"))
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
            address = _first(org.get("addresses") or org.get("address"))
            phone = _first(org.get("phoneNumbers") or org.get("phoneNumber"))
            return [
                v("external id", external_id),
                code,
                name,
                form,
                "",
                "",
                "",
                v("url", org.get("url")),
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

    def group(
        self, group_id: str, group: dict[str, Any], external_id: str, form: str
    ) -> list[str] | None:
        try:
            name = self._value("group", group_id, "name", group.get("displayName"))
            if not name:
                self.quarantine("group", group_id, "group without a name")
                return None
            description = self._value("group", group_id, "description", group.get("description"))
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
        person: dict[str, Any],
        key: str,
        role: str,
        grade: tuple[str, str] | None,
        directory: dict[str, Any] | None,
    ) -> list[str] | None:
        spec = self.spec
        try:
            v = lambda field, raw: self._value("person", person_id, field, raw)  # noqa: E731
            casing = spec.transforms.name_casing
            first = name_case(v("first name", person.get("givenName")), casing)
            last = name_case(v("last name", person.get("familyName")), casing)
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
                street = v("street address", address.get("streetAddress"))
                postcode = v("postcode", address.get("postalCode"))
                town = v("town", address.get("locality"))
            defaults = spec.user_defaults
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
                _bool(defaults.hide_contact_details),
                _bool(defaults.allow_personal_notifications),
                _bool(defaults.allow_messages_from_schools_and_groups),
                _bool(defaults.allow_system_messages),
                self._grade(grade),
                "",
                "",
                USER,
            ]
        except _Unwritable:
            return None

    # -- parts -----------------------------------------------------------------------

    def _email(
        self, person_id: str, person: dict[str, Any], role: str, directory: dict[str, Any] | None
    ) -> str:
        emails = [e for e in as_list(person.get("emails")) if isinstance(e, dict)]
        for source in getattr(self.spec.email, role):
            if source == "directory":
                candidate = text((directory or {}).get("mail"))
            else:
                candidate = next(
                    (
                        text(e.get("value"))
                        for e in emails
                        if text(e.get("type")) == source and text(e.get("value"))
                    ),
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

    def _phones(self, person_id: str, person: dict[str, Any]) -> tuple[str, str, str]:
        phone = mobile = work = ""
        for entry in as_list(person.get("phoneNumbers")):
            if not isinstance(entry, dict):
                continue
            value = self._value("person", person_id, "phone", entry.get("value"))
            if not value:
                continue
            if self.spec.transforms.phone_normalise:
                value = normalise_phone(value)
            if entry.get("mobile") is True:
                mobile = mobile or value
            elif text(entry.get("type")) == "Arbete":
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


def _address(person: dict[str, Any], wanted: str) -> dict[str, Any]:
    addresses = [a for a in as_list(person.get("addresses")) if isinstance(a, dict)]
    for address in addresses:
        if text(address.get("type")).startswith(wanted[:10]):
            return address
    return {}
