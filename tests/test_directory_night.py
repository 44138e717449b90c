"""Nights with the directory (a real slapd): a mapping change moves exactly what it should."""

from __future__ import annotations

import json

import pytest
import yaml

from autosynk.cli import main
from autosynk.demo.generate import generate
from autosynk.demo.ldif import directory_ldif
from tests.services.slapd import Slapd

pytestmark = pytest.mark.slapd


def write_config(tmp_path, slapd: Slapd, base_dn: str, mapping: str | None = None) -> str:
    config = {
        "municipality": "Exempelby",
        "organisation_id": "exempelby-kommun",
        "source": {"kind": "ss12000-files", "path": "register"},
        "directory": {
            "url": slapd.url,
            "bind_dn": slapd.reader_dn,
            "bind_password_env": "TEST_LDAP_PASSWORD",
            "base_dn": base_dn,
            "match_attribute": "employeeNumber",
            "match_on": "civic_no",
            "page_size": 50,
        },
        "staging": {"url": f"sqlite:///{tmp_path}/staging.db"},
        "target": {"kind": "directory", "path": "out"},
    }
    if mapping:
        (tmp_path / "mapping.yaml").write_text(mapping, encoding="utf-8")
        config["mapping"] = "mapping.yaml"
    path = tmp_path / "autosynk.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return str(path)


def new_files(out, seen: set[str]) -> dict[str, list[str]]:
    found = {}
    for path in sorted(out.glob("Exempelby_*")):
        if path.name not in seen:
            seen.add(path.name)
            found[path.suffix] = path.read_text(encoding="utf-8").splitlines()
    return found


def test_email_from_the_directory_instead_of_the_register(slapd, slapd_tree, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_LDAP_PASSWORD", slapd.reader_password)
    register = tmp_path / "register"
    generate(register, seed=5, scale="small")
    slapd.load(directory_ldif(register, slapd_tree))
    seen: set[str] = set()

    config = write_config(tmp_path, slapd, slapd_tree)
    assert main(["run", "--config", config]) == 0
    first = new_files(tmp_path / "out", seen)
    users = {r.split("\t")[3]: r.split("\t") for r in first[".principals"] if r.endswith("\tuser")}
    staff = json.loads((tmp_path / "work").glob("*/extract/directory.json").__next__().read_text())[
        "data"
    ]
    directory_mail = {e["match"]: e["mail"] for e in staff if e.get("mail")}
    sent_staff = {pnr for pnr in directory_mail if pnr in users}
    assert sent_staff, "the demo's staff must be in the directory"

    # the municipality decides: staff e-mail comes from the directory first
    config = write_config(
        tmp_path, slapd, slapd_tree, mapping="email:\n  staff: [directory, Personal]\n"
    )
    assert main(["run", "--config", config]) == 0
    second = new_files(tmp_path / "out", seen)
    assert second[".relations"] == []  # no relation changes, only rows (both files go)
    changed = {r.split("\t")[3]: r.split("\t") for r in second[".principals"]}
    assert set(changed) == {p for p in sent_staff if users[p][2] != directory_mail[p].lower()}
    for pnr, row in changed.items():
        assert row[2] == directory_mail[pnr].lower()
        assert row[:2] + row[3:] == users[pnr][:2] + users[pnr][3:]  # only the e-mail moved

    assert main(["run", "--config", config]) == 0
    assert new_files(tmp_path / "out", seen) == {}


def test_directory_down_fails_the_night_cleanly(slapd, slapd_tree, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TEST_LDAP_PASSWORD", "wrong password")
    generate(tmp_path / "register", seed=5, scale="small")
    config = write_config(tmp_path, slapd, slapd_tree)
    assert main(["run", "--config", config]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and "Traceback" not in err
    assert not list((tmp_path / "out").glob("Exempelby_*"))
