"""Packaging with real gpg: plain, deterministic zip, zip encrypted to Unikum and signed (spec §8).

Keys are generated once per module in temporary gnupghomes (ed25519/cv25519, fast):
"Unikum" (the recipient), "Municipality" (the signer, passphrase-protected, as in
production) and "Expired" (made with a faked clock so it has already expired).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import stat
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

import gnupg
import pytest

from autosynk.config import Pgp
from autosynk.errors import PackagingError
from autosynk.unikum.packaging import build_package, verify_package

STEM = "Håbo_20250615_2330"
PASSPHRASE = "kommunens-hemlighet"


@dataclass(frozen=True)
class Keys:
    unikum_home: Path  # Unikum's secret key, and the municipality's public key
    municipality_home: Path  # the municipality's secret key, and Unikum's public key
    unikum_fpr: str
    municipality_fpr: str
    expired_fpr: str
    unikum_public: Path
    municipality_secret: Path
    expired_public: Path


def _new_home(root: Path, name: str) -> Path:
    home = root / name
    home.mkdir(mode=0o700)
    # tests only: a cheap passphrase hash, so protected keys are made in milliseconds
    (home / "gpg-agent.conf").write_text("s2k-count 65536\n")
    return home


def _generate(
    home: Path, name: str, *, passphrase: str | None, faked_now: str | None = None
) -> str:
    options = ["--pinentry-mode", "loopback"]
    if faked_now:
        options += ["--faked-system-time", faked_now]
    gpg = gnupg.GPG(gnupghome=str(home), options=options)
    params = {
        "key_type": "EDDSA",
        "key_curve": "ed25519",
        "subkey_type": "ECDH",
        "subkey_curve": "cv25519",
        "name_real": name,
        "name_email": f"{name.lower()}@example.org",
        "expire_date": "1d" if faked_now else "0",
    }
    if passphrase:
        params["passphrase"] = passphrase
    else:
        params["no_protection"] = True
    key = gpg.gen_key(gpg.gen_key_input(**params))
    assert key.fingerprint, key.stderr
    return str(key.fingerprint)


def _stop_agent(home: Path) -> None:
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("gpg")
    unikum_home = _new_home(root, "unikum")
    municipality_home = _new_home(root, "municipality")
    expired_home = _new_home(root, "expired")
    unikum_fpr = _generate(unikum_home, "Unikum", passphrase=None)
    municipality_fpr = _generate(municipality_home, "Municipality", passphrase=PASSPHRASE)
    expired_fpr = _generate(expired_home, "Expired", passphrase=None, faked_now="20200101T000000")
    unikum = gnupg.GPG(gnupghome=str(unikum_home))
    municipality = gnupg.GPG(
        gnupghome=str(municipality_home), options=["--pinentry-mode", "loopback"]
    )
    expired = gnupg.GPG(gnupghome=str(expired_home))

    keyfiles = root / "keyfiles"
    keyfiles.mkdir()
    unikum_public = keyfiles / "unikum.asc"
    unikum_public.write_text(unikum.export_keys(unikum_fpr))
    municipality_secret = keyfiles / "municipality-secret.gpg"
    municipality_secret.write_bytes(
        municipality.export_keys(municipality_fpr, secret=True, passphrase=PASSPHRASE, armor=False)
    )
    expired_public = keyfiles / "expired.asc"
    expired_public.write_text(expired.export_keys(expired_fpr))
    # each side knows the other's public key, as in real life
    unikum.import_keys(municipality.export_keys(municipality_fpr))
    municipality.import_keys(unikum.export_keys(unikum_fpr))
    yield Keys(
        unikum_home,
        municipality_home,
        unikum_fpr,
        municipality_fpr,
        expired_fpr,
        unikum_public,
        municipality_secret,
        expired_public,
    )
    for home in (unikum_home, municipality_home, expired_home):
        _stop_agent(home)


@pytest.fixture
def inputs(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "files"
    folder.mkdir()
    principals = folder / f"{STEM}.principals"
    principals.write_bytes("Åsa\tÖberg\t\t20130315-TF01\n".encode())
    relations = folder / f"{STEM}.relations"
    relations.write_bytes(b"add\tstudent_in_class\t20130315-TF01\tk1\n")
    return [principals, relations]


def _pgp_from_files(keys: Keys, **overrides: object) -> Pgp:
    fields: dict[str, object] = {
        "recipient": keys.unikum_fpr,
        "signer": keys.municipality_fpr,
        "recipient_key_file": keys.unikum_public,
        "signer_key_file": keys.municipality_secret,
    }
    fields.update(overrides)
    return Pgp(**fields)  # type: ignore[arg-type]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- plain and zip --------------------------------------------------------------------------


def test_plain_copies_the_files_into_out_dir_privately(inputs: list[Path], tmp_path: Path):
    out = tmp_path / "out"
    built = build_package(inputs, STEM, "plain", out)
    assert [p.name for p in built] == [f"{STEM}.principals", f"{STEM}.relations"]
    assert all(p.parent == out for p in built)
    assert [p.read_bytes() for p in built] == [p.read_bytes() for p in inputs]
    assert [_mode(p) for p in built] == [0o600, 0o600]
    # files already in out_dir are returned as they are
    assert build_package(built, STEM, "plain", out) == built


def test_zip_holds_both_files_deterministically(inputs: list[Path], tmp_path: Path):
    first = build_package(inputs, STEM, "zip", tmp_path / "one")
    second = build_package(inputs, STEM, "zip", tmp_path / "two")
    assert [p.name for p in first] == [f"{STEM}.zip"]
    assert first[0].read_bytes() == second[0].read_bytes()
    assert _mode(first[0]) == 0o600
    with zipfile.ZipFile(first[0]) as archive:
        infos = archive.infolist()
        assert [i.filename for i in infos] == [f"{STEM}.principals", f"{STEM}.relations"]
        assert {i.date_time for i in infos} == {(2025, 6, 15, 23, 30, 0)}
        assert {(i.external_attr >> 16) & 0o777 for i in infos} == {0o600}
        assert archive.read(f"{STEM}.principals") == inputs[0].read_bytes()
        assert archive.read(f"{STEM}.relations") == inputs[1].read_bytes()
    manifest = json.loads((tmp_path / "one" / f"{STEM}.manifest.json").read_text())
    assert manifest["outputs"][0]["name"] == f"{STEM}.zip"
    assert len(manifest["inputs"]) == 2


def _writestr_zip(files: list[Path]) -> bytes:
    """The zip as ``ZipFile.writestr`` builds it from whole files in memory (how packages
    were built before they were streamed): the bytes must not have changed."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in files:
            info = zipfile.ZipInfo(path.name, date_time=(2025, 6, 15, 23, 30, 0))
            info.create_system = 3
            info.external_attr = (0o100000 | 0o600) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes(), compresslevel=9)
    return buffer.getvalue()


def test_a_streamed_zip_has_the_bytes_of_one_built_in_memory(tmp_path: Path, monkeypatch):
    from autosynk.unikum import packaging

    monkeypatch.setattr(packaging, "CHUNK", 4096)  # many chunks per member
    folder = tmp_path / "files"
    folder.mkdir()
    rows = [f"{i:08d}\tÅsa {i % 97}\tÖberg\t{i * 7919 % 10007}" for i in range(20_000)]
    files = [folder / f"{STEM}.principals", folder / f"{STEM}.relations", folder / "empty"]
    files[0].write_bytes("\n".join(rows).encode())
    files[1].write_bytes(bytes(range(256)) * 300)  # incompressible-ish, odd lengths
    files[2].write_bytes(b"")
    (built,) = build_package(files, STEM, "zip", tmp_path / "out")
    assert built.read_bytes() == _writestr_zip(files)


def test_zip_refuses_to_overwrite_a_different_package(inputs: list[Path], tmp_path: Path):
    out = tmp_path / "out"
    (built,) = build_package(inputs, STEM, "zip", out)
    before = built.read_bytes()
    assert build_package(inputs, STEM, "zip", out) == [built]
    inputs[1].write_bytes(b"remove\tstudent_in_class\t20130315-TF01\tk1\n")
    with pytest.raises(PackagingError, match=f"refusing to overwrite {STEM}.zip"):
        build_package(inputs, STEM, "zip", out)
    assert built.read_bytes() == before


@pytest.mark.parametrize(
    ("stem", "mode", "message"),
    [
        ("Håbo", "zip", "does not end in _YYYYMMDD_HHMM"),
        ("Håbo_20251340_2330", "zip", "impossible time"),
        (STEM, "tar", "unknown packaging"),
        (STEM, "zip+pgp", "needs a pgp configuration"),
    ],
)
def test_bad_requests_are_one_line_errors(inputs, tmp_path, stem, mode, message):
    with pytest.raises(PackagingError, match=message):
        build_package(inputs, stem, mode, tmp_path / "out")


# --- zip+pgp with real gpg ------------------------------------------------------------------


def test_encrypted_to_unikum_and_signed_by_the_municipality(
    keys: Keys, inputs: list[Path], tmp_path: Path
):
    out = tmp_path / "out"
    built = build_package(
        inputs, STEM, "zip+pgp", out, pgp=_pgp_from_files(keys), passphrase=PASSPHRASE
    )
    assert [p.name for p in built] == [f"{STEM}.zip.gpg"]
    package = built[0]
    assert _mode(package) == 0o600
    assert not package.read_bytes().startswith(b"-----BEGIN")  # binary OpenPGP
    assert b"principals" not in package.read_bytes()  # nothing readable in clear
    assert sorted(p.name for p in out.iterdir()) == [f"{STEM}.manifest.json", f"{STEM}.zip.gpg"]

    checked = verify_package(package, gnupghome=keys.unikum_home)
    assert checked["valid"] is True
    assert checked["signer_fingerprint"] == keys.municipality_fpr
    assert checked["members"] == [f"{STEM}.principals", f"{STEM}.relations"]

    # the same package decrypted by hand holds the same deterministic zip
    clear = gnupg.GPG(gnupghome=str(keys.unikum_home)).decrypt(package.read_bytes())
    with zipfile.ZipFile(io.BytesIO(clear.data)) as archive:
        assert archive.read(f"{STEM}.principals") == inputs[0].read_bytes()


def test_a_configured_gnupghome_is_used_as_is(keys: Keys, inputs: list[Path], tmp_path: Path):
    pgp = Pgp(
        gnupghome=keys.municipality_home, recipient=keys.unikum_fpr, signer=keys.municipality_fpr
    )
    (package,) = build_package(
        inputs, STEM, "zip+pgp", tmp_path / "out", pgp=pgp, passphrase=PASSPHRASE
    )
    assert verify_package(package, gnupghome=keys.unikum_home)["valid"] is True


def test_encryption_happens_once(keys: Keys, inputs: list[Path], tmp_path: Path):
    out = tmp_path / "out"
    pgp = _pgp_from_files(keys)
    (package,) = build_package(inputs, STEM, "zip+pgp", out, pgp=pgp, passphrase=PASSPHRASE)
    sealed = package.read_bytes()
    # encryption is randomised: equal bytes prove the package was reused, not rebuilt
    assert build_package(inputs, STEM, "zip+pgp", out, pgp=pgp, passphrase=PASSPHRASE) == [package]
    assert package.read_bytes() == sealed

    inputs[0].write_bytes(b"changed\n")
    with pytest.raises(PackagingError, match=f"refusing to overwrite {STEM}.zip.gpg"):
        build_package(inputs, STEM, "zip+pgp", out, pgp=pgp, passphrase=PASSPHRASE)
    assert package.read_bytes() == sealed

    (out / f"{STEM}.manifest.json").unlink()  # a package without its manifest is not trusted
    with pytest.raises(PackagingError, match="manifest is missing"):
        build_package(inputs, STEM, "zip+pgp", out, pgp=pgp, passphrase=PASSPHRASE)


def test_a_tampered_package_fails_verification(keys: Keys, inputs: list[Path], tmp_path: Path):
    (package,) = build_package(
        inputs, STEM, "zip+pgp", tmp_path / "out", pgp=_pgp_from_files(keys), passphrase=PASSPHRASE
    )
    data = bytearray(package.read_bytes())
    data[len(data) // 2] ^= 0x01
    tampered = tmp_path / "tampered.zip.gpg"
    tampered.write_bytes(bytes(data))
    with pytest.raises(PackagingError, match=r"tampered\.zip\.gpg cannot be decrypted"):
        verify_package(tampered, gnupghome=keys.unikum_home)


def test_only_the_recipient_can_decrypt(keys: Keys, inputs: list[Path], tmp_path: Path):
    (package,) = build_package(
        inputs, STEM, "zip+pgp", tmp_path / "out", pgp=_pgp_from_files(keys), passphrase=PASSPHRASE
    )
    with pytest.raises(PackagingError, match="cannot be decrypted: NO_SECKEY"):
        verify_package(package, gnupghome=keys.municipality_home)


def test_a_signature_by_an_unknown_key_is_not_valid(keys: Keys, inputs: list[Path], tmp_path: Path):
    (package,) = build_package(
        inputs, STEM, "zip+pgp", tmp_path / "out", pgp=_pgp_from_files(keys), passphrase=PASSPHRASE
    )
    # a home with Unikum's secret key but without the municipality's public key
    stranger = tmp_path / "stranger"
    stranger.mkdir(mode=0o700)
    source = gnupg.GPG(gnupghome=str(keys.unikum_home))
    gpg = gnupg.GPG(gnupghome=str(stranger))
    gpg.import_keys(source.export_keys(keys.unikum_fpr, secret=True, passphrase=""))
    try:
        checked = verify_package(package, gnupghome=stranger)
    finally:
        _stop_agent(stranger)
    assert checked["valid"] is False
    assert checked["signer_fingerprint"] is None
    assert checked["signer_key_id"]  # the unknown key is named by id, for diagnosis
    assert checked["members"] == [f"{STEM}.principals", f"{STEM}.relations"]


@pytest.mark.parametrize(
    ("overrides", "passphrase", "message"),
    [
        ({}, "wrong", "bad passphrase"),
        ({}, None, "needs a passphrase"),
        ({"recipient": "nobody@example.org"}, PASSPHRASE, r"INV_RECP 1 \(not found\)"),
        ({"recipient": "expired"}, PASSPHRASE, "KEYEXPIRED"),
        ({"recipient_key_file": "missing"}, PASSPHRASE, "recipient_key_file .* does not exist"),
        ({"signer_key_file": "not-a-key"}, PASSPHRASE, "signer_key_file .* holds no OpenPGP key"),
        ({"recipient_key_file": None}, PASSPHRASE, "needs gnupghome, or both"),
    ],
)
def test_gpg_failures_are_one_line_errors_without_user_ids(
    keys: Keys, inputs: list[Path], tmp_path: Path, overrides, passphrase, message
):
    if overrides.get("recipient") == "expired":
        overrides = {"recipient": keys.expired_fpr, "recipient_key_file": keys.expired_public}
    if overrides.get("recipient_key_file") == "missing":
        overrides = {"recipient_key_file": tmp_path / "missing.asc"}
    if overrides.get("signer_key_file") == "not-a-key":
        junk = tmp_path / "junk.asc"
        junk.write_text("not a key\n")
        overrides = {"signer_key_file": junk}
    out = tmp_path / "out"
    with pytest.raises(PackagingError, match=message) as caught:
        build_package(
            inputs,
            STEM,
            "zip+pgp",
            out,
            pgp=_pgp_from_files(keys, **overrides),
            passphrase=passphrase,
        )
    text = str(caught.value)
    assert "\n" not in text
    assert "Municipality" not in text and "@example.org>" not in text
    assert not (out / f"{STEM}.zip.gpg").exists()


def test_built_packages_are_not_older_than_their_stem(inputs: list[Path], tmp_path: Path):
    # the zip's member time is the stem's local time, not the build machine's clock
    (built,) = build_package(inputs, "Malmö_20240229_0001", "zip", tmp_path / "out")
    with zipfile.ZipFile(built) as archive:
        stamp = dt.datetime(*archive.infolist()[0].date_time)
    assert stamp == dt.datetime(2024, 2, 29, 0, 1)
