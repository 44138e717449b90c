"""``autosynk verify``: each rule broken once in an otherwise clean delivery.

The clean delivery is ``tests/golden/Exempelby_20261128_0130.{principals,relations}``
(synthetic people, valid personnummer, samordningsnummer and a TF number). Each case edits
one line and asserts the exact violations: (file, line, field, code).
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import gnupg
import pytest

from autosynk.verify import Violation, main_verify, verify_paths
from autosynk.verify.checks import identity_problem

GOLDEN = Path(__file__).parent / "golden"
STEM = "Exempelby_20261128_0130"
P, R = ".principals", ".relations"
CLEAN = {
    P: (GOLDEN / f"{STEM}{P}").read_text(encoding="utf-8").splitlines(),
    R: (GOLDEN / f"{STEM}{R}").read_text(encoding="utf-8").splitlines(),
}
T = "\t"


def user(pnr: str, first: str = "Nils", f12: str = "false", f17: str = "") -> str:
    return T.join(
        [
            first,
            "Nyman",
            "nils@example.se",
            pnr,
            *[""] * 7,
            f12,
            "true",
            "true",
            "true",
            "",
            f17,
            "",
            "user",
        ]
    )


def rel(text: str) -> str:
    return text.replace(" ", T)


def write_delivery(directory: Path, principals: list[str], relations: list[str]) -> list[Path]:
    paths = []
    for suffix, lines in ((P, principals), (R, relations)):
        path = directory / f"{STEM}{suffix}"
        path.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))
        paths.append(path)
    return paths


def found(violations: list[Violation]) -> list[tuple[str, int | None, int | None, str]]:
    return [(Path(v.file).suffix, v.line, v.field, v.code) for v in violations]


def edited(file: str, action: str, at: int, text: str) -> dict[str, list[str]]:
    lines = {P: list(CLEAN[P]), R: list(CLEAN[R])}
    if action == "replace":
        lines[file][at - 1] = text
    elif action == "insert":
        lines[file].insert(at - 1, text)
    else:
        raise AssertionError(action)
    return lines


# (id, file, action, line, new text, expected violations)
CASES = [
    ("field count", P, "replace", 3, "KLASS-1A\t1A\t\t\t\tclass", [(P, 3, None, "field-count")]),
    ("tab inside a value", P, "replace", 3, "KLASS-1A\t1A\tNorr\t\t\t\t\tclass",
     [(P, 3, None, "field-count")]),
    ("tab inside a user's first name", P, "replace", 5,
     CLEAN[P][4].replace("Åsa", "Åsa\tMaria"), [(P, 5, None, "field-count")]),
    ("unknown row type", P, "insert", 10, "X\tY\tteacher", [(P, 10, 3, "unknown-row-type")]),
    ("bad check digit", P, "insert", 10, user("19900101-0018"), [(P, 10, 4, "bad-check-digit")]),
    ("impossible date", P, "insert", 10, user("19901301-0013"), [(P, 10, 4, "bad-date")]),
    ("no 30 February", P, "insert", 10, user("19900230-0011"), [(P, 10, 4, "bad-date")]),
    ("born in the future", P, "insert", 10, user("20300101-0010"), [(P, 10, 4, "bad-date")]),
    ("serial 000", P, "insert", 10, user("19900101-0009"), [(P, 10, 4, "pnr-format")]),
    ("10 digits", P, "insert", 10, user("900101-0017"), [(P, 10, 4, "pnr-format")]),
    ("no hyphen", P, "insert", 10, user("199001010017"), [(P, 10, 4, "pnr-format")]),
    ("TF lower case", P, "insert", 10, user("20160821-tf02"), [(P, 10, 4, "pnr-format")]),
    ("TF impossible date", P, "insert", 10, user("20161321-TF02"), [(P, 10, 4, "bad-date")]),
    ("bad boolean", P, "insert", 10, user("19900101-0017", f12="False"),
     [(P, 10, 12, "bad-boolean")]),
    ("reserved field", P, "insert", 10, user("19900101-0017", f17="x"),
     [(P, 10, 17, "reserved-not-empty")]),
    ("empty first name", P, "insert", 10, user("19900101-0017", first=""),
     [(P, 10, 1, "empty-required")]),
    ("empty class name", P, "replace", 3, "KLASS-1A\t\t\t\t\t\tclass",
     [(P, 3, 2, "empty-required")]),
    ("empty school form", P, "replace", 1,
     CLEAN[P][0].replace("se.grundskoleutbildning.grundskola", ""),
     [(P, 1, 4, "empty-required")]),
    ("unknown school form", P, "replace", 1,
     CLEAN[P][0].replace("se.grundskoleutbildning.grundskola", "se.grundskola"),
     [(P, 1, 4, "bad-school-form")]),
    ("unknown class school form", P, "replace", 4,
     CLEAN[P][3].replace("se.forskoleverksamhet.forskola", "forskola"),
     [(P, 4, 3, "bad-school-form")]),
    ("school id not 8 digits", P, "replace", 1, CLEAN[P][0].replace("12345678", "1234567"),
     [(P, 1, 2, "bad-school-id")]),
    ("external id used by a school and a class", P, "insert", 10,
     "SKOLA-1\t1B\t\t\t\t\tclass", [(P, 10, 1, "duplicate-id")]),
    ("same person twice", P, "insert", 10, user("19800515-3450"), [(P, 10, 4, "duplicate-id")]),
    ("duplicate row", P, "insert", 10, CLEAN[P][2], [(P, 10, None, "duplicate-row")]),
    ("empty line", P, "insert", 3, "", [(P, 3, None, "empty-line")]),
    ("CR inside a value", P, "replace", 3, "KLASS-1A\t1\rA\t\t\t\t\tclass",
     [(P, 3, 2, "cr-in-line")]),
    ("mixed line endings", P, "replace", 3, CLEAN[P][2] + "\r",
     [(P, 3, None, "mixed-line-endings")]),
    ("control character", P, "replace", 3, "KLASS-1A\t1\x07A\t\t\t\t\tclass",
     [(P, 3, 2, "control-char")]),
    ("relation field count", R, "replace", 5, rel("add student_in_school 20150312-1236 SKOLA-1 x"),
     [(R, 5, None, "field-count")]),
    ("bad operation", R, "replace", 5, rel("delete student_in_school 20150312-1236 SKOLA-1"),
     [(R, 5, 1, "bad-operation")]),
    ("unknown relation type", R, "replace", 11, rel("add parent_for 19820730-4562 20150312-1236"),
     [(R, 11, 2, "unknown-relation-type")]),
    ("party with bad check digit", R, "replace", 5,
     rel("add student_in_school 20150312-1235 SKOLA-1"), [(R, 5, 3, "bad-check-digit")]),
    ("dangling person", R, "replace", 5, rel("add student_in_school 19900101-0017 SKOLA-1"),
     [(R, 5, 3, "dangling-party")]),
    ("dangling class", R, "replace", 3, rel("add class_in_school KLASS-9Z SKOLA-1"),
     [(R, 3, 3, "dangling-party")]),
    ("dangling administrator target", R, "replace", 13,
     rel("add administrator_for 19800515-3450 KOMMUN-9"), [(R, 13, 4, "dangling-party")]),
    ("wrong party kind", R, "replace", 3, rel("add class_in_school KLASS-1A FSK-AVD-1"),
     [(R, 3, 4, "party-kind")]),
    ("empty party", R, "replace", 5, "add\tstudent_in_school\t20150312-1236\t",
     [(R, 5, 4, "empty-party")]),
    ("self relation", R, "replace", 11, rel("add guardian_for 19820730-4562 19820730-4562"),
     [(R, 11, 4, "self-relation")]),
    ("adds out of dependency order", R, "replace", 12,
     rel("add staff_in_school 19820730-4562 SKOLA-1"), [(R, 12, 2, "order")]),
    ("add after a remove", R, "insert", 16, rel("add student_in_class 20150375-5678 KLASS-1A"),
     [(R, 16, None, "order")]),
    ("removes out of reverse order", R, "insert", 16,
     rel("remove student_in_school 20150375-5678 SKOLA-1"), [(R, 16, 2, "order")]),
    ("duplicate relation", R, "insert", 16, CLEAN[R][14], [(R, 16, None, "duplicate-relation")]),
    ("added and removed", R, "insert", 14, rel("remove mentor_for 19800515-3450 20150312-1236"),
     [(R, 14, None, "add-and-remove")]),
]  # fmt: skip


def test_the_golden_delivery_is_clean() -> None:
    assert verify_paths([GOLDEN / f"{STEM}{P}", GOLDEN / f"{STEM}{R}"]) == []


@pytest.mark.parametrize(
    ("file", "action", "at", "text", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_one_broken_thing(tmp_path, file, action, at, text, expected) -> None:
    lines = edited(file, action, at, text)
    violations = verify_paths(write_delivery(tmp_path, lines[P], lines[R]))
    assert found(violations) == expected


def test_removes_before_adds_when_configured(tmp_path) -> None:
    removes_first = CLEAN[R][13:] + CLEAN[R][:13]
    paths = write_delivery(tmp_path, CLEAN[P], removes_first)
    assert verify_paths(paths, removes_after_adds=False) == []
    assert found(verify_paths(paths)) == [(R, 3, None, "order")]
    paths = write_delivery(tmp_path, CLEAN[P], CLEAN[R])
    assert found(verify_paths(paths, removes_after_adds=False)) == [(R, 14, None, "order")]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("19900101-0017", None),
        ("19120912-9814", None),
        ("19900161-0014", None),  # samordningsnummer: day + 60
        ("20160820-TF01", None),
        ("19900101-0018", "bad-check-digit"),
        ("19900192-0010", "bad-date"),  # day 32 after the samordningsnummer offset
        ("19900101-TF1", "pnr-format"),
        ("", "pnr-format"),
        (" 19900101-0017", "pnr-format"),
    ],
)
def test_identity_problem(value, expected) -> None:
    problem = identity_problem(value)
    assert (problem[0] if problem else None) == expected


def test_violation_text_names_place_and_masks_numbers() -> None:
    violation = Violation(
        f"{STEM}.relations", 12, 3, "bad-check-digit", "first party 19900101-0018: Luhn"
    )
    assert str(violation) == (
        f"{STEM}.relations:12:3: bad-check-digit: first party 19900101-****: Luhn"
    )
    assert str(Violation(f"{STEM}.zip", None, None, "signature", "unsigned")) == (
        f"{STEM}.zip: signature: unsigned"
    )


def test_bom_is_a_violation(tmp_path) -> None:
    paths = write_delivery(tmp_path, CLEAN[P], CLEAN[R])
    paths[0].write_bytes(b"\xef\xbb\xbf" + paths[0].read_bytes())
    assert found(verify_paths(paths)) == [(P, 1, None, "bom")]


def test_encoding_is_detected_per_file_and_checked_when_given(tmp_path) -> None:
    paths = write_delivery(tmp_path, CLEAN[P], CLEAN[R])
    paths[0].write_bytes(paths[0].read_text(encoding="utf-8").encode("iso-8859-1"))
    assert verify_paths(paths) == []  # detected: ISO-8859-1
    assert verify_paths(paths, encoding="iso-8859-1") == []
    assert found(verify_paths(paths, encoding="utf-8")) == [(P, 1, None, "encoding")]
    paths[0].write_bytes(paths[0].read_text(encoding="iso-8859-1").encode("utf-8"))
    assert found(verify_paths(paths, encoding="iso-8859-1")) == [(P, 1, None, "encoding")]


def test_line_ending_given_is_enforced_once_per_file(tmp_path) -> None:
    paths = write_delivery(tmp_path, CLEAN[P], CLEAN[R])
    assert found(verify_paths(paths, line_ending="crlf")) == [
        (P, 1, None, "wrong-line-ending"),
        (R, 1, None, "wrong-line-ending"),
    ]
    for path in paths:
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    assert verify_paths(paths, line_ending="crlf") == []
    assert verify_paths(paths) == []
    assert found(verify_paths(paths, line_ending="lf")) == [
        (P, 1, None, "wrong-line-ending"),
        (R, 1, None, "wrong-line-ending"),
    ]


def test_relation_columns_can_be_reordered(tmp_path) -> None:
    swapped = [T.join([f[1], f[0], f[2], f[3]]) for f in (x.split(T) for x in CLEAN[R])]
    paths = write_delivery(tmp_path, CLEAN[P], swapped)
    assert verify_paths(paths, relation_columns=("type", "operation", "first", "second")) == []
    assert {v.code for v in verify_paths(paths)} == {"bad-operation", "unknown-relation-type"}


def _known_state(tmp_path: Path, relations: list[list[str]]) -> Path:
    objects = [x.split(T)[3] if x.endswith("user") else x.split(T)[0] for x in CLEAN[P]]
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"objects": objects, "relations": relations}))
    return path


def test_known_state_resolves_parties_and_checks_removes(tmp_path) -> None:
    delta = tmp_path / "delta"
    delta.mkdir()
    relations_only = delta / f"{STEM}{R}"
    relations_only.write_text("\n".join(CLEAN[R]) + "\n")
    # Without the principals, every add names objects nobody knows of.
    assert {v.code for v in verify_paths([relations_only])} == {"dangling-party"}
    held = [["student_in_class", "20150375-5678", "KLASS-0A"]]
    state = _known_state(tmp_path, held)
    assert found(verify_paths([relations_only], known_state=state)) == [
        (R, 15, None, "remove-unknown-relation")
    ]
    held.append(["class_in_school", "KLASS-0A", "SKOLA-1"])
    assert verify_paths([relations_only], known_state=_known_state(tmp_path, held)) == []


@pytest.mark.parametrize(
    "content",
    ['{"objects": "x"}', "[]", '{"relations": [["a", "b"]]}', "{", '{"other": []}'],
)
def test_a_malformed_known_state_is_a_clear_error(tmp_path, content, capsys) -> None:
    state = tmp_path / "state.json"
    state.write_text(content)
    golden = [str(GOLDEN / f"{STEM}{P}")]
    assert main_verify([*golden, "--known-state", str(state)]) == 2
    assert capsys.readouterr().out.startswith(f"error: known state {state}")


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _golden_members() -> dict[str, bytes]:
    return {f"{STEM}{s}": (GOLDEN / f"{STEM}{s}").read_bytes() for s in (P, R)}


def test_zip_round_trip(tmp_path) -> None:
    package = tmp_path / f"{STEM}.zip"
    package.write_bytes(_zip(_golden_members()))
    assert verify_paths([package]) == []
    broken = _golden_members()
    broken[f"{STEM}{R}"] += rel("add mentor_for 19800515-3450 19900101-0017\n").encode()
    package.write_bytes(_zip(broken))
    # The member's name and line are reported, and both files still form one delivery.
    assert [str(v) for v in verify_paths([package])] == [
        f"{STEM}{R}:16: order: add after the remove on line 14; all adds come before the removes",
        f"{STEM}{R}:16:4: dangling-party: second party 19900101-**** of mentor_for is "
        "neither in this delivery's principals nor in the known state",
    ]


def test_zip_with_strangers_or_garbage(tmp_path) -> None:
    package = tmp_path / f"{STEM}.zip"
    package.write_bytes(_zip({**_golden_members(), "notes.txt": b"hello"}))
    assert found(verify_paths([package])) == [(".zip", None, None, "zip-content")]
    package.write_bytes(b"not a zip")
    assert found(verify_paths([package])) == [(".zip", None, None, "bad-zip")]


def test_missing_and_unknown_files(tmp_path) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("x")
    assert [(v.file, v.code) for v in verify_paths([tmp_path / f"{STEM}{P}", other])] == [
        (f"{STEM}{P}", "unreadable"),
        ("notes.txt", "unknown-file-type"),
    ]


def test_cli_prints_one_line_per_violation_and_a_summary(tmp_path, capsys) -> None:
    golden = [str(GOLDEN / f"{STEM}{s}") for s in (P, R)]
    assert main_verify(golden) == 0
    assert capsys.readouterr().out == "ok: 2 file(s) checked, no violations\n"
    lines = edited(R, "replace", 5, rel("add student_in_school 20150312-1235 SKOLA-1"))
    paths = write_delivery(tmp_path, lines[P], lines[R])
    assert main_verify([str(p) for p in paths]) == 1
    out = capsys.readouterr().out
    assert out == (
        f"{STEM}{R}:5:3: bad-check-digit: first party 20150312-****: Luhn check digit is wrong\n"
        "1 violation(s) in 2 file(s) checked\n"
    )
    assert "1235" not in out


# --- OpenPGP packages, made with real gpg in temporary homes ---------------------------

_KEY_PARAMS = """\
Key-Type: eddsa
Key-Curve: ed25519
Key-Usage: sign
Subkey-Type: ecdh
Subkey-Curve: cv25519
Subkey-Usage: encrypt
Name-Real: {name}
Name-Email: {email}
Expire-Date: 0
%no-protection
%commit
"""


def _new_home() -> Path:
    # Short paths: gpg-agent's socket path must stay under the Unix socket limit.
    return Path(tempfile.mkdtemp(prefix="gpg-"))


def _keygen(home: Path, name: str, email: str) -> str:
    gpg = gnupg.GPG(gnupghome=str(home))
    result = gpg.gen_key(_KEY_PARAMS.format(name=name, email=email))
    assert result.fingerprint, result.stderr
    return str(result.fingerprint)


@pytest.fixture(scope="module")
def gpg_homes() -> Iterator[dict[str, Path | str]]:
    """``unikum``: Unikum's secret key + the municipality's public key (the verifier);
    ``sender``: the municipality's secret key + Unikum's public key;
    ``impostor``: another key + Unikum's public key."""
    homes = {name: _new_home() for name in ("unikum", "sender", "impostor")}
    try:
        unikum_fpr = _keygen(homes["unikum"], "Unikum Import", "import@unikum.example")
        sender_fpr = _keygen(homes["sender"], "Exempelby kommun", "sync@exempelby.example")
        _keygen(homes["impostor"], "Someone Else", "x@elsewhere.example")
        unikum = gnupg.GPG(gnupghome=str(homes["unikum"]))
        sender = gnupg.GPG(gnupghome=str(homes["sender"]))
        impostor = gnupg.GPG(gnupghome=str(homes["impostor"]))
        unikum_public = unikum.export_keys(unikum_fpr)
        sender.import_keys(unikum_public)
        impostor.import_keys(unikum_public)
        unikum.import_keys(sender.export_keys(sender_fpr))
        yield {**homes, "unikum_fpr": unikum_fpr, "sender_fpr": sender_fpr}
    finally:
        for home in homes.values():
            subprocess.run(
                ["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],
                check=False,
                capture_output=True,
            )
            shutil.rmtree(home, ignore_errors=True)


def _encrypt(home: Path, recipient: str, data: bytes, sign: bool) -> bytes:
    gpg = gnupg.GPG(gnupghome=str(home))
    signer = gpg.list_keys(secret=True)[0]["fingerprint"] if sign else None
    result = gpg.encrypt(data, recipient, sign=signer, always_trust=True, armor=False)
    assert result.ok, result.status
    return bytes(result.data)


@pytest.mark.parametrize(
    ("maker", "sign", "expected"),
    [
        ("sender", True, []),
        ("impostor", True, ["signature: signed by a key this keyring does not hold (key "]),
        ("sender", False, ["signature: the package is not signed"]),
    ],
    ids=["signed by the municipality", "wrong signer", "unsigned"],
)
def test_encrypted_signed_package(tmp_path, gpg_homes, maker, sign, expected) -> None:
    package = tmp_path / f"{STEM}.zip.pgp"
    plain = _zip(_golden_members())
    package.write_bytes(_encrypt(gpg_homes[maker], str(gpg_homes["unikum_fpr"]), plain, sign))
    violations = verify_paths([package], gnupghome=Path(gpg_homes["unikum"]))
    assert len(violations) == len(expected)
    for violation, start in zip(violations, expected, strict=True):
        assert str(violation).startswith(f"{package.name}: {start}")


def test_expected_signer_and_undecryptable_package(tmp_path, gpg_homes) -> None:
    package = tmp_path / f"{STEM}.zip.gpg"
    plain = _zip(_golden_members())
    package.write_bytes(_encrypt(gpg_homes["sender"], str(gpg_homes["unikum_fpr"]), plain, True))
    home = Path(gpg_homes["unikum"])
    assert (
        verify_paths([package], gnupghome=home, expected_signer=str(gpg_homes["sender_fpr"])) == []
    )
    wrong = verify_paths([package], gnupghome=home, expected_signer="someone@else.example")
    assert found(wrong) == [(".gpg", None, None, "signature")]
    # The sender cannot read what it encrypted for Unikum: not its secret key.
    assert found(verify_paths([package], gnupghome=Path(gpg_homes["sender"]))) == [
        (".gpg", None, None, "decrypt")
    ]


def test_cli_options_reach_the_checks(tmp_path, capsys) -> None:
    removes_first = CLEAN[R][13:] + CLEAN[R][:13]
    paths = [str(p) for p in write_delivery(tmp_path, CLEAN[P], removes_first)]
    assert main_verify([*paths, "--removes-first", "--line-ending", "lf"]) == 0
    assert main_verify([*paths, "--line-ending", "crlf"]) == 1
    out = capsys.readouterr().out
    assert f"{STEM}{P}:1: wrong-line-ending: line ends with LF, CRLF expected" in out
    assert main_verify([*paths, "--relation-columns", "operation,type"]) == 2
    assert capsys.readouterr().out == "error: --relation-columns needs four names\n"
    assert main_verify([*paths, "--encoding", "klingon"]) == 2
    assert main_verify([*paths, "--relation-columns", "operation,type,first,first"]) == 2
    assert main_verify([]) == 2  # argparse: files are required
