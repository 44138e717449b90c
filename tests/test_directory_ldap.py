"""The LDAP directory source and its Airflow hook, against a real slapd on loopback.

The directory is loaded from LDIF that ``autosynk.demo.ldif`` builds out of a small SS
12000 snapshot written here (and, once, out of the demo generator's municipality).
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from autosynk.config import LdapDirectory
from autosynk.demo.ldif import directory_ldif, ldif_line, login_for
from autosynk.errors import ConfigError, SourceError
from autosynk.identity import normalise
from autosynk.sources.directory_ldap import extract, read_directory
from autosynk_airflow.ldap_hook import AutosynkLdapHook, ldap_url
from tests.services.slapd import Slapd, make_ca

pytestmark = pytest.mark.slapd

CONN_ENV = "AIRFLOW_CONN_AUTOSYNK_LDAP"
INVALID_PNR = "19800312-1234"  # wrong check digit

#: the small register: (id, given, family, civic number as the register wrote it, duties)
STAFF = [
    ("s1", "Åsa", "Öberg", "19800312-1236", 1),
    ("s2", "Anna", "Svensson", "7501014562", 2),  # 10 digits, no hyphen; two duties
    ("s3", "Anna", "Svensson", "198812247891", 1),  # the same name: the next login number
    ("s4", "Bo", "Ek", "19920615-2465", 1),
    ("s5", "Carl", "Felnummer", INVALID_PNR, 1),  # never reaches the directory
]
PUPIL = ("p1", "Lisa", "Elev", "19650704-1355")

#: what the directory built from STAFF holds, sorted by match value: (match, login, mail)
EXPECTED = [
    ("19750101-4562", "annsve01", "anna.svensson.01@exempelby.se"),
    ("19800101-0019", "vervik01", "vera.vikarie.01@exempelby.se"),  # not in the register
    ("19800312-1236", "asaobe01", "asa.oberg.01@exempelby.se"),
    ("19881224-7891", "annsve02", "anna.svensson.02@exempelby.se"),
    ("19920615-2465", "boek01", "bo.ek.01@exempelby.se"),
]


def write_register(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)

    def person(pid: str, given: str, family: str, civic: str) -> dict[str, Any]:
        return {
            "id": pid,
            "givenName": given,
            "familyName": family,
            "civicNo": {"value": civic, "nationality": "SE"},
            "emails": [{"value": f"{pid}@sjovik.example", "type": "Personal"}],
            "eduPersonPrincipalNames": [f"{pid}@sjovik.example"],
        }

    persons = [person(*row[:4]) for row in STAFF] + [person(*PUPIL)]
    duties = [
        {"id": f"d-{row[0]}-{n}", "person": {"id": row[0]}, "dutyAt": {"id": "org-a"}}
        for row in STAFF
        for n in range(row[4])
    ]
    files = {
        "organisations": [{"id": "org-a", "displayName": "Aspskolan"}],
        "persons": persons,
        "groups": [],
        "duties": duties,
        "activities": [],
    }
    for name, data in files.items():
        (folder / f"{name}.json").write_text(json.dumps({"data": data}, ensure_ascii=False))
    return folder


def config(slapd: Slapd, base_dn: str, **overrides: Any) -> LdapDirectory:
    """As the paged-only reader, with small pages and short timeouts."""
    fields: dict[str, Any] = {
        "url": slapd.url,
        "bind_dn": slapd.reader_dn,
        "bind_password": slapd.reader_password,
        "base_dn": base_dn,
        "page_size": 2,
        "timeout_seconds": 5,
    }
    fields.update(overrides)
    return LdapDirectory.model_validate(fields)


@pytest.fixture
def staff_tree(slapd: Slapd, slapd_tree: str, tmp_path: Path) -> str:
    """``slapd_tree`` loaded with the directory of the small register; returns its DN."""
    slapd.load(directory_ldif(write_register(tmp_path / "register"), slapd_tree))
    return slapd_tree


def person_ldif(base_dn: str, uid: str, **attrs: str | list[str]) -> str:
    lines = [f"dn: uid={uid},{base_dn}", "objectClass: inetOrgPerson", f"uid: {uid}"]
    lines += [f"cn: {uid}", f"sn: {uid}"]
    for name, value in attrs.items():
        for item in value if isinstance(value, list) else [value]:
            lines.append(ldif_line(name, item))
    return "\n".join(lines) + "\n"


def rows(path: Path) -> list[tuple[str | None, ...]]:
    data = json.loads(path.read_text())["data"]
    return [(row["match"], row["login"], row["mail"]) for row in data]


# --- the demo LDIF (pure helpers) -----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("cn", "Bo Ek", "cn: Bo Ek"),
        ("sn", "Öberg", "sn:: w5ZiZXJn"),
        ("cn", " leading space", "cn:: IGxlYWRpbmcgc3BhY2U="),
        ("cn", ":colon", "cn:: OmNvbG9u"),
        ("cn", "trailing ", "cn:: dHJhaWxpbmcg"),
    ],
)
def test_ldif_line(name: str, value: str, expected: str) -> None:
    assert ldif_line(name, value) == expected


@pytest.mark.parametrize(
    ("given", "family", "taken", "expected"),
    [
        ("Åsa", "Öberg", set(), "asaobe01"),
        ("Anna", "Svensson", {"annsve01"}, "annsve02"),
        ("Bo", "Ek", set(), "boek01"),
        ("Jean-Luc", "Lé", set(), "jeale01"),
        ("Li-Ann", "Ek", set(), "liek01"),
        ("", "", set(), "staff01"),
    ],
)
def test_login_for(given: str, family: str, taken: set[str], expected: str) -> None:
    assert login_for(given, family, set(taken)) == expected


# --- extract: the whole directory --------------------------------------------------------


def test_extract_reads_the_whole_directory_in_pages(
    slapd: Slapd, staff_tree: str, tmp_path: Path
) -> None:
    out = tmp_path / "extract" / "directory.json"
    # the reader gets at most 5 entries from a plain search: 6 people need paging
    count = extract(config(slapd, staff_tree, page_size=2), out)

    assert count == len(EXPECTED)
    assert rows(out) == EXPECTED
    first = json.loads(out.read_text())["data"][2]
    assert first == {
        "match": "19800312-1236",
        "login": "asaobe01",
        "mail": "asa.oberg.01@exempelby.se",
        "given_name": "Åsa",
        "family_name": "Öberg",
        "dn": f"uid=asaobe01,ou=people,{staff_tree}",
    }
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert list(out.parent.iterdir()) == [out]  # no temporary file left behind


def test_extract_with_one_page_per_entry_and_admin_bind(
    slapd: Slapd, staff_tree: str, tmp_path: Path
) -> None:
    cfg = config(
        slapd,
        staff_tree,
        bind_dn=slapd.root_dn,
        bind_password=None,
        bind_password_env="AUTOSYNK_TEST_LDAP_PW",
        page_size=1,
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AUTOSYNK_TEST_LDAP_PW", slapd.root_password)
        assert extract(cfg, tmp_path / "directory.json") == len(EXPECTED)
    assert rows(tmp_path / "directory.json") == EXPECTED


def test_entries_without_match_attribute_are_skipped_and_counted(
    slapd: Slapd, staff_tree: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="autosynk.sources.directory_ldap"):
        found = read_directory(config(slapd, staff_tree))
    assert found.without_match == 1  # the shared mailbox "expedition"
    assert "expedition" not in {entry["login"] for entry in found.entries}
    assert found.counts() == {
        "directory_entries": 5,
        "directory_without_match": 1,
        "directory_invalid_civic_no": 0,
        "directory_duplicate_matches": 0,
    }
    assert "left out 1 without employeeNumber" in caplog.text


def test_invalid_civic_numbers_are_skipped_counted_and_never_logged(
    slapd: Slapd, slapd_tree: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    slapd.load(
        "\n".join(
            [
                person_ldif(slapd_tree, "good", employeeNumber="800312-1236"),
                person_ldif(slapd_tree, "badcheck", employeeNumber=INVALID_PNR),
                person_ldif(slapd_tree, "notanumber", employeeNumber="E-4711"),
            ]
        )
    )
    out = tmp_path / "directory.json"
    with caplog.at_level(logging.DEBUG, logger="autosynk"):
        assert extract(config(slapd, slapd_tree), out) == 1
    assert rows(out) == [("19800312-1236", "good", None)]
    found = read_directory(config(slapd, slapd_tree))
    assert found.invalid_civic_no == 2
    assert "2 with an invalid civic number" in caplog.text
    assert INVALID_PNR not in caplog.text and "1234" not in caplog.text


def test_match_on_eppn_keeps_the_value_as_it_is(
    slapd: Slapd, slapd_tree: str, tmp_path: Path
) -> None:
    slapd.load(person_ldif(slapd_tree, "eppn", employeeNumber="Anna.S@Sjovik.example"))
    out = tmp_path / "directory.json"
    extract(config(slapd, slapd_tree, match_on="eppn"), out)
    assert rows(out) == [("Anna.S@Sjovik.example", "eppn", None)]


def test_multi_valued_attributes_give_the_smallest_value(
    slapd: Slapd, slapd_tree: str, tmp_path: Path
) -> None:
    slapd.load(
        person_ldif(
            slapd_tree,
            "multi",
            employeeNumber="19920615-2465",
            mail=["zeta@exempelby.se", "alfa@exempelby.se", "mitt@exempelby.se"],
            givenName=["Maja", "Anna"],
        )
    )
    out = tmp_path / "directory.json"
    extract(config(slapd, slapd_tree, login_attribute="cn"), out)
    [entry] = json.loads(out.read_text())["data"]
    assert (entry["mail"], entry["given_name"], entry["login"]) == (
        "alfa@exempelby.se",
        "Anna",
        "multi",
    )


def test_other_attribute_names_are_configurable(
    slapd: Slapd, slapd_tree: str, tmp_path: Path
) -> None:
    slapd.load(
        person_ldif(slapd_tree, "alt", employeeNumber="x", employeeType="19920615-2465")
        + "\n"
        + person_ldif(slapd_tree, "other", title="not staff")
    )
    out = tmp_path / "directory.json"
    cfg = config(
        slapd,
        slapd_tree,
        match_attribute="employeeType",
        mail_attribute="employeeNumber",
        login_attribute="cn",
        search_filter="(uid=a*)",
    )
    assert extract(cfg, out) == 1
    assert rows(out) == [("19920615-2465", "alt", "x")]


# --- extract: failures ----------------------------------------------------------------------


def test_wrong_password_is_a_source_error(slapd: Slapd, staff_tree: str, tmp_path: Path) -> None:
    out = tmp_path / "directory.json"
    with pytest.raises(SourceError, match="bind refused: invalid credentials") as raised:
        extract(config(slapd, staff_tree, bind_password="wrong"), out)
    assert "\n" not in str(raised.value)
    assert not out.exists()


def test_missing_password_variable_is_a_config_error(slapd: Slapd, tmp_path: Path) -> None:
    cfg = config(slapd, slapd.suffix, bind_password_env="AUTOSYNK_NO_SUCH_VARIABLE")
    with pytest.raises(ConfigError, match="AUTOSYNK_NO_SUCH_VARIABLE"):
        extract(cfg, tmp_path / "directory.json")


def test_server_down_is_a_source_error(slapd: Slapd, staff_tree: str, tmp_path: Path) -> None:
    out = tmp_path / "directory.json"
    slapd.stop()
    try:
        with pytest.raises(SourceError, match="cannot connect: connection refused") as raised:
            extract(config(slapd, staff_tree), out)
    finally:
        slapd.start()
    assert "\n" not in str(raised.value)
    assert not out.exists()


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP port that accepts connections and never answers (a hung directory server)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"ldap://127.0.0.1:{listener.getsockname()[1]}"


def test_a_server_that_never_answers_times_out(
    slapd: Slapd, silent_server: str, tmp_path: Path
) -> None:
    out = tmp_path / "directory.json"
    cfg = config(slapd, slapd.suffix, url=silent_server, timeout_seconds=1)
    with pytest.raises(SourceError, match="no answer in time"):
        extract(cfg, out)
    assert not out.exists()


def test_a_search_cut_off_part_way_writes_nothing(
    slapd: Slapd, staff_tree: str, tmp_path: Path
) -> None:
    out = tmp_path / "directory.json"
    out.write_text('{"data": "yesterday"}')  # a previous file must survive untouched
    cfg = config(
        slapd,
        staff_tree,
        bind_dn=slapd.limited_dn,
        bind_password=slapd.limited_password,
        page_size=2,
    )
    with pytest.raises(SourceError, match="stopped after 2 entries") as raised:
        extract(cfg, out)
    assert "\n" not in str(raised.value)
    assert out.read_text() == '{"data": "yesterday"}'


def test_a_base_dn_that_does_not_exist_is_a_source_error(slapd: Slapd, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="base_dn does not exist"):
        extract(config(slapd, f"ou=nowhere,{slapd.suffix}"), tmp_path / "directory.json")


# --- TLS ------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["ldaps", "start_tls"])
def test_tls_with_the_ca_file(slapd: Slapd, staff_tree: str, tmp_path: Path, how: str) -> None:
    fields: dict[str, Any] = {"ca_file": slapd.ca_file}
    if how == "ldaps":
        fields["url"] = slapd.ldaps_url
    else:
        fields["start_tls"] = True
    out = tmp_path / "directory.json"
    assert extract(config(slapd, staff_tree, **fields), out) == len(EXPECTED)
    assert rows(out) == EXPECTED


@pytest.mark.parametrize("how", ["ldaps", "start_tls"])
@pytest.mark.parametrize("ca", ["other", "system"])
def test_tls_with_an_untrusted_certificate_is_a_source_error(
    slapd: Slapd, staff_tree: str, tmp_path: Path, how: str, ca: str
) -> None:
    fields: dict[str, Any] = {"ca_file": slapd.wrong_ca_file if ca == "other" else None}
    if how == "ldaps":
        fields["url"] = slapd.ldaps_url
    else:
        fields["start_tls"] = True
    out = tmp_path / "directory.json"
    with pytest.raises(SourceError, match="TLS failed: server certificate not trusted") as raised:
        extract(config(slapd, staff_tree, **fields), out)
    assert "\n" not in str(raised.value)
    assert not out.exists()


def test_tls_to_a_name_the_certificate_does_not_hold(
    slapd: Slapd, staff_tree: str, tmp_path: Path
) -> None:
    # the certificate names 127.0.0.1 and ldap.exempelby.test, not localhost
    url = slapd.ldaps_url.replace("127.0.0.1", "localhost")
    cfg = config(slapd, staff_tree, url=url, ca_file=slapd.ca_file)
    with pytest.raises(SourceError, match="TLS failed: server certificate does not name"):
        extract(cfg, tmp_path / "directory.json")


def test_a_ca_file_that_is_not_a_certificate_is_a_source_error(
    slapd: Slapd, staff_tree: str, tmp_path: Path
) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate\n")
    cfg = config(slapd, staff_tree, url=slapd.ldaps_url, ca_file=bogus)
    with pytest.raises(SourceError, match="TLS failed"):
        extract(cfg, tmp_path / "directory.json")


def test_make_ca_writes_a_pem_file(tmp_path: Path) -> None:
    path, _, cert = make_ca(tmp_path, "probe")
    assert path.read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert cert.subject == cert.issuer


# --- the demo generator's municipality ------------------------------------------------------


def test_directory_for_the_demo_municipality(slapd: Slapd, slapd_tree: str, tmp_path: Path) -> None:
    generate = pytest.importorskip("autosynk.demo.generate").generate
    register = tmp_path / "register"
    generate(register, seed=7, scale="small")
    ldif = directory_ldif(register, slapd_tree)
    assert ldif == directory_ldif(register, slapd_tree)  # the same snapshot, the same LDIF
    slapd.load(ldif)

    persons = {p["id"]: p for p in json.loads((register / "persons.json").read_text())["data"]}
    staff_ids = {
        d["person"]["id"] for d in json.loads((register / "duties.json").read_text())["data"]
    }
    numbers: set[str] = set()
    register_mails: set[str] = set()
    for pid in staff_ids:
        register_mails.update(e["value"] for e in persons[pid].get("emails", []))
        with contextlib.suppress(ValueError):
            numbers.add(normalise(persons[pid]["civicNo"]["value"]).value)

    out = tmp_path / "directory.json"
    found = read_directory(config(slapd, slapd_tree, page_size=50))
    assert extract(config(slapd, slapd_tree, page_size=50), out) == len(numbers) + 1
    matches = {row[0] for row in rows(out)}
    assert len(matches - numbers) == 1  # the one staff member the register lacks
    assert numbers <= matches
    assert found.without_match == 1
    assert not register_mails & {row[2] for row in rows(out)}  # directory mail differs


# --- the Airflow hook -----------------------------------------------------------------------


def set_connection(monkeypatch: pytest.MonkeyPatch, **conn: Any) -> None:
    monkeypatch.setenv(CONN_ENV, json.dumps({"conn_type": "ldap", **conn}))


@pytest.mark.parametrize(
    ("host", "port", "use_ssl", "expected"),
    [
        ("ad.sjovik.se", None, False, "ldap://ad.sjovik.se"),
        ("ad.sjovik.se", 636, True, "ldaps://ad.sjovik.se:636"),
        ("ldaps://ad.sjovik.se", 3269, False, "ldaps://ad.sjovik.se:3269"),
        ("ldap://ad.sjovik.se:3389/", 389, False, "ldap://ad.sjovik.se:3389"),
        ("127.0.0.1", 10389, False, "ldap://127.0.0.1:10389"),
    ],
)
def test_ldap_url(host: str, port: int | None, use_ssl: bool, expected: str) -> None:
    assert ldap_url(host, port, use_ssl) == expected


def test_hook_builds_the_config_and_extract_reads_with_it(
    slapd: Slapd, staff_tree: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_connection(
        monkeypatch,
        host="127.0.0.1",
        port=slapd.tls_port,
        login=slapd.reader_dn,
        password=slapd.reader_password,
        schema=staff_tree,
        extra={"use_ssl": "true", "ca_file": str(slapd.ca_file), "page_size": 2},
    )
    base = LdapDirectory(url="ldap://wrong.example", base_dn="dc=wrong", timeout_seconds=7)
    cfg = AutosynkLdapHook().get_directory_config(base=base)
    assert cfg.url == f"ldaps://127.0.0.1:{slapd.tls_port}"
    assert (cfg.bind_dn, cfg.base_dn, cfg.page_size) == (slapd.reader_dn, staff_tree, 2)
    assert cfg.timeout_seconds == 7  # kept from the run configuration
    assert cfg.airflow_connection == "autosynk_ldap"
    out = tmp_path / "directory.json"
    assert extract(cfg, out) == len(EXPECTED)
    assert rows(out) == EXPECTED


def test_hook_with_start_tls_and_base_dn_in_the_extra(
    slapd: Slapd, staff_tree: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_connection(
        monkeypatch,
        host=slapd.url,
        login=slapd.root_dn,
        password=slapd.root_password,
        schema="dc=ignored",
        extra={"base_dn": staff_tree, "start_tls": True, "ca_file": str(slapd.ca_file)},
    )
    cfg = AutosynkLdapHook().get_directory_config()
    assert (cfg.url, cfg.base_dn, cfg.start_tls) == (slapd.url, staff_tree, True)
    assert extract(cfg, tmp_path / "directory.json") == len(EXPECTED)


def test_hook_wrong_password_reaches_the_directory_and_fails(
    slapd: Slapd, staff_tree: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_connection(
        monkeypatch,
        host="127.0.0.1",
        port=slapd.port,
        login=slapd.reader_dn,
        password="wrong",
        schema=staff_tree,
    )
    with pytest.raises(SourceError, match="bind refused"):
        extract(AutosynkLdapHook().get_directory_config(), tmp_path / "directory.json")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"base_dn": "dc=x", "colour": "blue"}, "unknown extra key.*colour"),
        ({"base_dn": "dc=x", "match_on": "shoe_size"}, "match_on"),
        ({"base_dn": "dc=x", "page_size": 0}, "page_size"),
        ({}, "base_dn"),
    ],
)
def test_hook_refuses_bad_connections(
    monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any], message: str
) -> None:
    set_connection(monkeypatch, host="ad.sjovik.se", extra=extra)
    with pytest.raises(ConfigError, match=message):
        AutosynkLdapHook().get_directory_config()


def test_hook_does_no_lookup_when_built() -> None:
    hook = AutosynkLdapHook("no_such_connection")  # must not raise: no I/O at parse time
    assert hook.autosynk_ldap_conn_id == "no_such_connection"
    assert AutosynkLdapHook.default_conn_name == "autosynk_ldap"
    assert AutosynkLdapHook.conn_type == "ldap"
    assert getattr(AutosynkLdapHook(), AutosynkLdapHook.conn_name_attr) == "autosynk_ldap"


def test_ldapsearch_sees_what_the_demo_ldif_loaded(slapd: Slapd, staff_tree: str) -> None:
    # an independent client confirms the LDIF itself (not only our reader of it)
    done = subprocess.run(
        ["ldapsearch", "-x", "-LLL", "-H", slapd.url, "-b", staff_tree, "(uid=asaobe01)", "sn"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "sn:: w5ZiZXJn" in done.stdout


def test_a_broken_search_filter_is_a_source_error(slapd: Slapd, tmp_path: Path) -> None:
    cfg = config(slapd, slapd.suffix, search_filter="(objectClass=person")
    with pytest.raises(SourceError, match="search_filter is not a valid LDAP filter"):
        extract(cfg, tmp_path / "directory.json")
