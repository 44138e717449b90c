"""Every file the project writes passes ``autosynk verify``.

Whole nights through the CLI (SQLite staging, a directory target) on the hand-written tiny
register and on the demo municipality: a total, then a changed night. Every delivered
``.principals``/``.relations`` (loose or zipped) is checked by the independent verifier;
the changed night against a known state built from the earlier deliveries, so its removes
and its links to objects delivered before are checked too. Two output profiles: UTF-8 +
LF + plain files, and ISO-8859-1 + CRLF + zip.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from autosynk.cli import main
from autosynk.demo.generate import generate
from autosynk.demo.mutate import mutate
from autosynk.verify import verify_paths
from tests import tiny_register as tiny

Register = dict[str, list[dict[str, Any]]]

#: profile -> (extra configuration, encoding, line ending, packaging)
PROFILES = {
    "utf8-lf-plain": ("", "utf-8", "lf", "plain"),
    "latin1-crlf-zip": (
        "encoding: iso-8859-1\nformat: {line_ending: crlf}\npackaging: zip\n",
        "iso-8859-1",
        "crlf",
        "zip",
    ),
}
KEY_FIELD = {"user": 4, "class": 1, "school": 1}


class Municipality:
    """A register folder, a configuration and a target folder; runs nights via the CLI."""

    def __init__(self, root: Path, profile: str) -> None:
        extra, self.encoding, self.line_ending, self.packaging = PROFILES[profile]
        self.register = root / "register"
        self.out = root / "out"
        self.config = root / "autosynk.yaml"
        self.config.parent.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            "municipality: Exempelby\n"
            f"organisation_id: {tiny.ORG}\n"
            "source: {kind: ss12000-files, path: register}\n"
            f"staging: {{url: 'sqlite:///{root}/staging.db'}}\n"
            "target: {kind: directory, path: out}\n"
            "work_base: work\n" + extra,
            encoding="utf-8",
        )
        self.deliveries: list[list[Path]] = []

    def night(self, *args: str) -> list[Path]:
        """Run one night; the data files it delivered (none: nothing to deliver)."""
        assert main(["run", "--config", str(self.config), *args]) == 0
        earlier = {path for files in self.deliveries for path in files}
        files = [
            path
            for path in sorted(self.out.glob("Exempelby_*"))
            if path not in earlier and not path.name.startswith("run-summary")
        ]
        expected = [".zip"] if self.packaging == "zip" else [".principals", ".relations"]
        assert sorted(path.suffix for path in files) == expected
        self.deliveries.append(files)
        return files

    def verify(self, files: list[Path], known_state: Path | None = None) -> list[str]:
        found = verify_paths(
            files,
            known_state=known_state,
            encoding=self.encoding,
            line_ending=self.line_ending,
        )
        return [str(violation) for violation in found]

    def texts(self, files: list[Path]) -> dict[str, str]:
        """The decoded ``.principals`` and ``.relations`` of one delivery, zipped or not."""
        raw: dict[str, bytes] = {}
        for path in files:
            if path.suffix == ".zip":
                with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as archive:
                    for name in archive.namelist():
                        raw[Path(name).suffix] = archive.read(name)
            else:
                raw[path.suffix] = path.read_bytes()
        return {suffix: data.decode(self.encoding) for suffix, data in raw.items()}

    def known_state(self, path: Path) -> Path:
        """What Unikum holds after every delivery so far, as ``--known-state`` JSON."""
        objects: set[str] = set()
        relations: set[tuple[str, str, str]] = set()
        for files in self.deliveries:
            texts = self.texts(files)
            for line in texts[".principals"].splitlines():
                fields = line.split("\t")
                objects.add(fields[KEY_FIELD[fields[-1]] - 1])
            for line in texts[".relations"].splitlines():
                operation, *relation = line.split("\t")
                if operation == "add":
                    relations.add((relation[0], relation[1], relation[2]))
                else:
                    relations.discard((relation[0], relation[1], relation[2]))
        path.write_text(
            json.dumps(
                {
                    "objects": sorted(objects),
                    "relations": [list(r) for r in sorted(relations)],
                    "organisations": [tiny.ORG],
                }
            ),
            encoding="utf-8",
        )
        return path

    def change(self, edit: Callable[[Register], None]) -> None:
        data = tiny.edit(self.register)
        edit(data)
        tiny.write(self.register, data)


def _tiny_night_two(data: Register) -> None:
    """A class change, a closed group and a rename (lines of every kind: add, remove, row)."""
    seven_a, maths = data["groups"][0], data["groups"][1]
    seven_a["groupMemberships"][0]["endDate"] = "2000-01-01"
    maths["endDate"] = "2000-01-01"
    data["groups"].append(
        {
            "id": "7b",
            "displayName": "7B",
            "groupType": "Klass",
            "schoolType": "GR",
            "organisation": {"id": "u1"},
            "groupMemberships": [{"person": {"id": "c1"}}],
        }
    )
    data["persons"][3]["givenName"] = "Karín"


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_tiny_register_total_and_delta_pass_verify(tmp_path: Path, profile: str) -> None:
    town = Municipality(tmp_path, profile)
    tiny.write(town.register)
    total = town.night("--total")
    assert town.verify(total) == []
    texts = town.texts(total)
    assert len(texts[".relations"].splitlines()) == len(tiny.EXPECTED_RELATIONS)

    known = town.known_state(tmp_path / "known.json")
    town.change(_tiny_night_two)
    delta = town.night()
    relations = town.texts(delta)[".relations"].splitlines()
    assert f"remove\tstudent_in_class\t{tiny.C1}\tma7" in relations
    assert f"add\tstudent_in_class\t{tiny.C1}\t7b" in relations
    assert town.verify(delta, known) == []
    # the known state is what makes the delta valid: it links to objects sent on night 1
    alone = town.verify(delta)
    assert any("dangling-party" in line for line in alone), alone


def test_latin1_crlf_zip_profile_is_what_is_written(tmp_path: Path) -> None:
    """The second profile really changes the bytes (else the verify above proves little)."""
    town = Municipality(tmp_path, "latin1-crlf-zip")
    tiny.write(town.register)
    (package,) = town.night("--total")
    with zipfile.ZipFile(package) as archive:
        names = sorted(archive.namelist())
        principals = archive.read(names[0])
    assert [Path(name).suffix for name in names] == [".principals", ".relations"]
    assert "Åsa\tÖberg".encode("iso-8859-1") in principals
    assert "Åsa".encode() not in principals
    assert principals.count(b"\r\n") == principals.count(b"\n") > 0
    assert b"Liam\tNguyen\t" in principals  # transliterated, never "?"
    assert main(["verify", str(package), "--encoding", "utf-8"]) == 1  # not UTF-8 at all
    assert main(["verify", str(package), "--line-ending", "crlf"]) == 0


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_demo_municipality_total_and_mutated_night_pass_verify(
    tmp_path: Path, profile: str, capsys: pytest.CaptureFixture[str]
) -> None:
    town = Municipality(tmp_path, profile)
    generate(town.register, seed=7, scale="small")
    total = town.night("--total")
    assert town.verify(total) == []
    assert len(town.texts(total)[".principals"].splitlines()) > 500

    known = town.known_state(tmp_path / "known.json")
    changes = mutate(town.register, seed=7)
    assert len(changes) >= 5
    delta = town.night()
    relations = town.texts(delta)[".relations"].splitlines()
    assert any(line.startswith("remove\t") for line in relations)
    assert any(line.startswith("add\t") for line in relations)
    assert town.verify(delta, known) == []
    # and the command an operator runs agrees
    capsys.readouterr()
    args = ["verify", *map(str, delta), "--known-state", str(known)]
    args += ["--encoding", town.encoding, "--line-ending", town.line_ending]
    assert main(args) == 0
    assert capsys.readouterr().out.startswith("ok:")
