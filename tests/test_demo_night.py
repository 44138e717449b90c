"""The README's promise on the demo municipality: a total, exactly the day's changes, nothing.

The oracle is set arithmetic over the mapping of each day's snapshot, independent of the
staging database, the delta engine and the writer that the nights go through.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from autosynk.cli import main
from autosynk.config import load_config
from autosynk.demo.generate import generate
from autosynk.demo.mutate import mutate
from autosynk.identity import InvalidIdentity, normalise
from autosynk.mapping.engine import map_register
from autosynk.mapping.spec import load_mapping
from autosynk.pipeline import local_now
from autosynk.register import read_snapshot


def mapped(cfg, register: Path):
    today = local_now(cfg).date().isoformat()
    result = map_register(
        read_snapshot(register), load_mapping(), cfg.organisation_id, today, cfg.encoding
    )
    rows = {key: row for _k, key, _s, row in result.principals}
    return rows, result.relations


def delivered(out: Path, seen: set[str]) -> tuple[list[str], list[str]]:
    principals, relations = [], []
    for path in sorted(out.glob("Exempelby_*")):
        if path.name in seen:
            continue
        seen.add(path.name)
        lines = path.read_text(encoding="utf-8").splitlines()
        (principals if path.suffix == ".principals" else relations).extend(lines)
    return principals, relations


def protected_numbers(register: Path) -> set[str]:
    persons = json.loads((register / "persons.json").read_text())["data"]
    numbers = set()
    for person in persons:
        if person.get("securityMarking") not in (None, "Ingen"):
            with contextlib.suppress(InvalidIdentity):
                numbers.add(normalise((person.get("civicNo") or {}).get("value")).value)
    return numbers


def test_total_then_exactly_the_days_changes_then_nothing(tmp_path):
    register = tmp_path / "register"
    generate(register, seed=11, scale="small")
    config = tmp_path / "autosynk.yaml"
    config.write_text(
        "municipality: Exempelby\norganisation_id: exempelby-kommun\n"
        "source: {kind: ss12000-files, path: register}\n"
        "target: {kind: directory, path: out}\n",
        encoding="utf-8",
    )
    cfg = load_config(config)
    out, seen = tmp_path / "out", set()

    assert main(["run", "--config", str(config)]) == 0
    rows_0, relations_0 = mapped(cfg, register)
    principals, relations = delivered(out, seen)
    assert sorted(principals) == sorted(rows_0.values())
    assert {tuple(r.split("\t")) for r in relations} == {("add", *r) for r in relations_0}
    hidden = protected_numbers(register)
    assert hidden, "the demo has protected persons"
    text = "\n".join(principals + relations)
    assert not any(number in text for number in hidden)

    mutate(register, seed=12)
    assert main(["run", "--config", str(config)]) == 0
    rows_1, relations_1 = mapped(cfg, register)
    principals, relations = delivered(out, seen)
    changed = {key: row for key, row in rows_1.items() if rows_0.get(key) != row}
    assert sorted(principals) == sorted(changed.values())
    assert {tuple(r.split("\t")) for r in relations} == (
        {("add", *r) for r in relations_1 - relations_0}
        | {("remove", *r) for r in relations_0 - relations_1}
    )
    assert relations  # the day did change something
    text = "\n".join(principals + relations)
    assert not any(number in text for number in protected_numbers(register))

    assert main(["run", "--config", str(config)]) == 0
    assert delivered(out, seen) == ([], [])
