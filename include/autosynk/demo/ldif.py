"""A demo directory: LDIF for the staff of an SS 12000 snapshot, for a test or demo slapd.

Every person with a duty (``duties.json``) becomes an ``inetOrgPerson`` under
``ou=people,<base_dn>`` with a login (``uid``: first letters of the names plus two digits),
a directory e-mail at the directory's own domain (deliberately not the register's
address, so switching the mail source is visible in the output), and the normalised
personnummer in ``match_attribute`` (``employeeNumber`` by default). Staff whose register
number is missing or invalid are left out: the directory could never be matched to them.

Two entries show the untidy cases a real directory has: a substitute teacher the register
does not know, and a shared mailbox account without a number.

The output starts with the ``ou=people`` container; the ``base_dn`` entry must exist.
Everything is derived from the snapshot, so the same snapshot gives the same LDIF.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from autosynk.demo.names import fold_ascii, luhn_digit
from autosynk.identity import InvalidIdentity, normalise

#: the staff member who is in the directory but not in the register
UNREGISTERED_GIVEN, UNREGISTERED_FAMILY = "Vera", "Vikarie"
#: the account without a number (a shared mailbox, as every school office has)
SHARED_LOGIN = "expedition"


def directory_ldif(
    register_dir: Path,
    base_dn: str,
    *,
    match_attribute: str = "employeeNumber",
    mail_domain: str | None = None,
) -> str:
    """LDIF (``ldapadd`` input) for the staff in ``register_dir``; see the module docs."""
    persons = {p["id"]: p for p in _records(register_dir, "persons")}
    staff_ids = sorted(
        {duty["person"]["id"] for duty in _records(register_dir, "duties")} & persons.keys()
    )
    domain = mail_domain or _domain_of(base_dn)
    people = f"ou=people,{base_dn}"
    blocks = [_entry(people, [("objectClass", "organizationalUnit"), ("ou", "people")])]
    taken: set[str] = set()
    numbers: set[str] = set()
    for person_id in staff_ids:
        person = persons[person_id]
        try:
            number = normalise((person.get("civicNo") or {}).get("value")).value
        except InvalidIdentity:
            continue
        numbers.add(number)
        given, family = str(person["givenName"]), str(person["familyName"])
        blocks.append(_person(people, given, family, domain, taken, (match_attribute, number)))

    blocks.append(
        _person(
            people,
            UNREGISTERED_GIVEN,
            UNREGISTERED_FAMILY,
            domain,
            taken,
            (match_attribute, _unused_number(numbers)),
        )
    )
    blocks.append(
        _entry(
            f"uid={SHARED_LOGIN},{people}",
            [
                ("objectClass", "inetOrgPerson"),
                ("uid", SHARED_LOGIN),
                ("cn", "Skolexpeditionen"),
                ("sn", "Expedition"),
                ("mail", f"{SHARED_LOGIN}@{domain}"),
            ],
        )
    )
    return "\n".join(blocks)


def ldif_line(name: str, value: str) -> str:
    """``name: value``, or ``name:: base64`` when LDIF cannot carry the value as it is."""
    safe = (
        value.isascii()
        and value.isprintable()
        and not value.startswith((" ", ":", "<"))
        and not value.endswith(" ")
    )
    if safe:
        return f"{name}: {value}"
    return f"{name}:: {base64.b64encode(value.encode()).decode()}"


def login_for(given: str, family: str, taken: set[str]) -> str:
    """First three letters of each name (ASCII) and the next free two-digit number."""
    stem = (fold_ascii(given)[:3] + fold_ascii(family)[:3]).replace("-", "") or "staff"
    serial = 1
    while f"{stem}{serial:02d}" in taken:
        serial += 1
    login = f"{stem}{serial:02d}"
    taken.add(login)
    return login


def _person(
    people: str,
    given: str,
    family: str,
    domain: str,
    taken: set[str],
    match: tuple[str, str],
) -> str:
    login = login_for(given, family, taken)
    # the login keeps the address unique where two staff share a name
    mail = f"{fold_ascii(given)}.{fold_ascii(family)}.{login[-2:]}@{domain}"
    return _entry(
        f"uid={login},{people}",
        [
            ("objectClass", "inetOrgPerson"),
            ("uid", login),
            ("cn", f"{given} {family}"),
            ("givenName", given),
            ("sn", family),
            ("mail", mail),
            match,
        ],
    )


def _entry(dn: str, attributes: list[tuple[str, str]]) -> str:
    lines = [ldif_line("dn", dn)] + [ldif_line(name, value) for name, value in attributes]
    return "\n".join(lines) + "\n"


def _records(folder: Path, entity: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads((folder / f"{entity}.json").read_text())["data"]
    return data


def _domain_of(base_dn: str) -> str:
    """``dc=exempelby,dc=se`` -> ``exempelby.se`` (the directory's own mail domain)."""
    parts = [
        rdn.split("=", 1)[1].strip()
        for rdn in base_dn.split(",")
        if rdn.strip().lower().startswith("dc=")
    ]
    return ".".join(parts) if parts else "skola.example.se"


def _unused_number(numbers: set[str]) -> str:
    """A valid personnummer (1 January 1980) that no register staff member holds."""
    for serial in range(1, 1000):
        nine = f"800101{serial:03d}"
        number = f"19800101-{serial:03d}{luhn_digit(nine)}"
        if number not in numbers:
            return number
    raise ValueError("no free demo personnummer")  # unreachable with a real snapshot
