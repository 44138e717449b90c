"""The demo municipality in a folder, as the CLI tests drive it: a register generated at a
date, a run configuration, an outbox; and Unikum's importer model replaying deliveries."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from autosynk.cli import main
from autosynk.config import load_config
from autosynk.demo.generate import generate
from autosynk.simulator import UnikumModel
from autosynk.staging.store import Staging

#: the date the nights of these tests evaluate the register at, unless told otherwise
DATE = "2026-11-20"


class Municipality:
    """The demo municipality in a folder: register, configuration, staging, outbox."""

    def __init__(
        self, root: Path, seed: int = 21, *, day: dt.date | None = None, mapping: str = ""
    ) -> None:
        """``mapping``: the text of a mapping spec of its own (else the default one)."""
        self.root = root
        self.register = root / "register"
        today = day or dt.date.fromisoformat(DATE)
        generate(self.register, seed=seed, scale="small", today=today)
        self.out = root / "out"
        self.config = root / "autosynk.yaml"
        if mapping:
            (root / "mapping.yaml").write_text(mapping, encoding="utf-8")
        self.config.write_text(
            "municipality: Exempelby\norganisation_id: exempelby-kommun\n"
            + ("mapping: mapping.yaml\n" if mapping else "")
            + "source: {kind: ss12000-files, path: register}\n"
            "target: {kind: directory, path: out}\nwork_base: work\n",
            encoding="utf-8",
        )
        self.seen: set[str] = set()

    def run(self, *args: str, date: bool = True) -> int:
        """``autosynk run`` at :data:`DATE` (``date=False``: today)."""
        extra = ["--evaluation-date", DATE] if date else []
        return main(["run", "--config", str(self.config), *extra, *args])

    def cli(self, *args: str) -> int:
        """Any command, with this municipality's configuration."""
        return main([*args, "--config", str(self.config)])

    def new_files(self) -> dict[str, bytes]:
        found = {}
        for path in sorted(self.out.glob("Exempelby_*")):
            if path.name not in self.seen:
                self.seen.add(path.name)
                found[path.name] = path.read_bytes()
        return found

    def staging(self) -> Staging:
        return Staging(load_config(self.config).staging.url)

    def delivered_state(self) -> tuple[set, set]:
        st = self.staging()
        principals = set(st.delivered_principals().itertuples(index=False, name=None))
        relations = set(st.delivered_relations().itertuples(index=False, name=None))
        return principals, relations

    def persons(self) -> list[dict]:
        return json.loads((self.register / "persons.json").read_text(encoding="utf-8"))["data"]

    def save_persons(self, persons: list[dict]) -> None:
        (self.register / "persons.json").write_text(
            json.dumps({"data": persons}, ensure_ascii=False), encoding="utf-8"
        )


def replay(model: UnikumModel, files: dict[str, bytes]) -> None:
    """Import deliveries in name order, as Unikum does each night."""
    stems = sorted({name.rsplit(".", 1)[0] for name in files})
    for stem in stems:
        model.apply(
            files[f"{stem}.principals"].decode("utf-8"), files[f"{stem}.relations"].decode("utf-8")
        )


def lines_of(output: str, prefix: str) -> list[str]:
    return [line.removeprefix(prefix) for line in output.splitlines() if line.startswith(prefix)]
