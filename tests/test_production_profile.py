"""The production profile end to end: ISO-8859-1, CRLF, zip + OpenPGP, delivered and verified.

Keys are generated for the test (tests/test_packaging.py); the package is decrypted with
Unikum's key, its signature checked, and its files pass ``autosynk verify``.
"""

from __future__ import annotations

import zipfile

import yaml

from autosynk.cli import main
from autosynk.unikum.packaging import verify_package
from autosynk.verify import verify_paths
from tests import tiny_register as tiny
from tests.test_packaging import PASSPHRASE, keys  # noqa: F401 - the module's key fixture


def test_encrypted_signed_latin1_night(keys, tmp_path, monkeypatch):  # noqa: F811
    tiny.write(tmp_path / "register")
    monkeypatch.setenv("TEST_PGP_PASSPHRASE", PASSPHRASE)
    config = {
        "municipality": "Håbo",
        "organisation_id": tiny.ORG,
        "source": {"kind": "ss12000-files", "path": "register"},
        "staging": {"url": f"sqlite:///{tmp_path}/staging.db"},
        "target": {"kind": "directory", "path": "out"},
        "encoding": "iso-8859-1",
        "format": {"line_ending": "crlf"},
        "packaging": "zip+pgp",
        "naming": {"ascii_only": True},
        "pgp": {
            "recipient": keys.unikum_fpr,
            "signer": keys.municipality_fpr,
            "recipient_key_file": str(keys.unikum_public),
            "signer_key_file": str(keys.municipality_secret),
            "passphrase_env": "TEST_PGP_PASSPHRASE",
        },
    }
    path = tmp_path / "autosynk.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    assert main(["run", "--config", str(path)]) == 0

    packages = sorted((tmp_path / "out").glob("Habo_*.zip.gpg"))
    assert len(packages) == 1 and not list((tmp_path / "out").glob("*.principals"))
    assert packages[0].stat().st_mode & 0o077 == 0
    checked = verify_package(packages[0], gnupghome=keys.unikum_home)
    assert checked["valid"] and checked["signer_fingerprint"] == keys.municipality_fpr
    violations = verify_paths(packages, gnupghome=keys.unikum_home)
    assert violations == []

    # decrypt as Unikum would and look inside
    import gnupg

    gpg = gnupg.GPG(gnupghome=str(keys.unikum_home))
    plain = gpg.decrypt(packages[0].read_bytes())
    assert plain.ok
    archive = tmp_path / "package.zip"
    archive.write_bytes(plain.data)
    with zipfile.ZipFile(archive) as zipped:
        names = sorted(zipped.namelist())
        principals = zipped.read(names[0])
    assert [n.rsplit(".", 1)[1] for n in names] == ["principals", "relations"]
    assert b"\r\n" in principals and "Nguyen".encode("latin-1") in principals
    assert "Åsa".encode("latin-1") in principals
