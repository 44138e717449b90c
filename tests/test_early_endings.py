"""Every way a night can end early ends with one line, exit code 1 and a run summary.

One row per way: configuration, source, mapping, directory, packaging, delivery, staging,
lock, and a full disk under the work base. Each row sets up a municipality that fails
that way and names the start of the one line ``autosynk run`` must print. No row may print
a traceback (that takes ``-v``), deliver anything, or leave the failed run without a
summary in its work directory. (A night refused by a guard ends with exit code 3: it is
not one of these.)
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from autosynk.cli import main
from tests import tiny_register as tiny

RUN = "night-1"


def free_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def small_disk(folder: Path) -> Iterator[None]:
    """A filesystem of one page (4 KiB) mounted on ``folder``: the first file fills it."""
    folder.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4k,mode=0700", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def unknown_key(root: Path, cfg: dict[str, Any]) -> None:
    cfg["deliver_to"] = "unikum"


def secret_not_set(root: Path, cfg: dict[str, Any]) -> None:
    cfg["source"] = {
        "kind": "ss12000",
        "base_url": f"http://127.0.0.1:{free_port()}/ss12000/v2",
        "token_url": f"http://127.0.0.1:{free_port()}/oauth2/token",
        "client_id": "autosynk",
        "client_secret_env": "AUTOSYNK_TEST_NEVER_SET",
    }


def register_missing(root: Path, cfg: dict[str, Any]) -> None:
    cfg["source"]["path"] = "no-such-register"


def mapping_wrong(root: Path, cfg: dict[str, Any]) -> None:
    (root / "mapping.yaml").write_text("bogus: 1\n", encoding="utf-8")
    cfg["mapping"] = "mapping.yaml"


def directory_down(root: Path, cfg: dict[str, Any]) -> None:
    cfg["directory"] = {
        "url": f"ldap://127.0.0.1:{free_port()}",
        "base_dn": "dc=exempelby,dc=se",
        "timeout_seconds": 2,
    }


def pgp_key_missing(root: Path, cfg: dict[str, Any]) -> None:
    cfg["packaging"] = "zip+pgp"
    cfg["pgp"] = {
        "recipient": "unikum@example.se",
        "signer": "exempelby@example.se",
        "recipient_key_file": "keys/unikum.asc",
        "signer_key_file": "keys/exempelby-secret.asc",
    }


def target_not_a_folder(root: Path, cfg: dict[str, Any]) -> None:
    (root / "out").write_text("a file where the target folder should be")


def staging_down(root: Path, cfg: dict[str, Any]) -> None:
    cfg["staging"] = {
        "url": f"postgresql+psycopg://autosynk:db-s3cret@127.0.0.1:{free_port()}/autosynk"
    }


def lock_holder(root: Path, cfg: dict[str, Any]) -> None:
    write(root, cfg)
    config = str(root / "autosynk.yaml")
    assert main(["stage", "prepare", "--config", config, "--run-id", "stuck-run"]) == 0


#: way -> (set-up, the start of the one line, is a run summary written)
CASES: dict[str, tuple[Callable[[Path, dict[str, Any]], None], str, bool]] = {
    "configuration file": (
        unknown_key,
        "error: {root}/autosynk.yaml line 12: deliver_to: unknown key",
        False,
    ),
    "configuration at run time": (
        secret_not_set,
        "error: ss12000 client_secret: environment variable AUTOSYNK_TEST_NEVER_SET is not set",
        True,
    ),
    "source": (
        register_missing,
        "error: ss12000-files: {root}/no-such-register is not a folder",
        True,
    ),
    "mapping": (mapping_wrong, "error: {root}/mapping.yaml line 1: bogus: unknown key", True),
    "directory": (directory_down, "error: directory ldap://127.0.0.1:", True),
    "packaging": (
        pgp_key_missing,
        "error: pgp.recipient_key_file {root}/keys/unikum.asc does not exist",
        True,
    ),
    "delivery": (target_not_a_folder, "error: cannot create target folder {root}/out:", True),
    "staging": (
        staging_down,
        "error: staging database postgresql+psycopg://autosynk:***@127.0.0.1:",
        True,
    ),
    "lock": (
        lock_holder,
        "error: staging is locked by run stuck-run (since ",
        True,
    ),
    "full disk in the work base": (
        lambda root, cfg: None,  # the work base is a one-page disk (below)
        "error: the work base {root}/work is full: free space there, or point work_base at "
        "a larger disk, then retry the run (no space left writing {root}/work/night-1/",
        True,
    ),
}


def base_config(root: Path) -> dict[str, Any]:
    tiny.write(root / "register")
    return {
        "municipality": "Exempelby",
        "organisation_id": tiny.ORG,
        "source": {"kind": "ss12000-files", "path": "register"},
        "staging": {"url": f"sqlite:///{root}/state/staging.db"},
        "target": {"kind": "directory", "path": "out"},
        "work_base": "work",
    }


def write(root: Path, cfg: dict[str, Any]) -> None:
    (root / "autosynk.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")


@pytest.mark.parametrize(("way"), list(CASES))
def test_an_early_end_is_one_line_and_a_summary(tmp_path, capsys, way) -> None:
    set_up, first_line, summarised = CASES[way]
    root = tmp_path
    cfg = base_config(root)
    set_up(root, cfg)
    write(root, cfg)
    capsys.readouterr()
    with contextlib.ExitStack() as stack:
        if way == "full disk in the work base":
            stack.enter_context(small_disk(root / "work"))
        code = main(["run", "--config", str(root / "autosynk.yaml"), "--run-id", RUN])
        summary_file = root / "work" / RUN / "run-summary.json"
        summary = json.loads(summary_file.read_text()) if summary_file.exists() else None
    out, err = capsys.readouterr()

    assert code == 1
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(first_line.format(root=root)), lines[0]
    assert "Traceback" not in out + err
    assert "s3cret" not in out + err
    delivered = list((root / "out").glob("Exempelby_*")) if (root / "out").is_dir() else []
    assert delivered == []
    if summarised:
        assert summary is not None, f"no run summary in {summary_file}"
        assert summary["status"] == "failed"
        assert summary["message"] == lines[0].removeprefix("error: ")
        assert f"  summary: {root}/" in out
    else:
        assert summary is None and not (root / "work").exists()


def test_the_lock_error_can_be_pasted(tmp_path, capsys) -> None:
    """The suggested command is the real run id, not one mangled by the identity mask."""
    cfg = base_config(tmp_path)
    write(tmp_path, cfg)
    config = str(tmp_path / "autosynk.yaml")
    stuck = "cli__20261201T134346271234Z"  # twelve digits in a row, as every CLI run id has
    assert main(["stage", "prepare", "--config", config, "--run-id", stuck]) == 0
    capsys.readouterr()
    assert main(["run", "--config", config]) == 1
    err = capsys.readouterr().err
    assert err.rstrip().endswith(f"release it with `autosynk unlock {stuck}`")
    assert main(["unlock", stuck, "--config", config]) == 0
    assert main(["run", "--config", config]) == 0


def test_a_failure_without_words_of_ours_is_one_line_and_v_shows_the_traceback(
    tmp_path, capsys
) -> None:
    """An operating-system error no stage put in words still ends in one line naming the
    file, and the run still has its summary; with -v the traceback comes first."""
    cfg = base_config(tmp_path)
    (tmp_path / "mapping").mkdir()  # a folder where the mapping file should be
    cfg["mapping"] = "mapping"
    write(tmp_path, cfg)
    config = str(tmp_path / "autosynk.yaml")
    line = f"error: Is a directory: {tmp_path / 'mapping'}"
    assert main(["run", "--config", config, "--run-id", RUN]) == 1
    out, err = capsys.readouterr()
    assert err.splitlines() == [line]
    assert f"  summary: {tmp_path / 'out' / 'run-summary.json'}" in out
    summary = json.loads((tmp_path / "work" / RUN / "run-summary.json").read_text())
    assert summary["message"] == line.removeprefix("error: ")
    assert main(["-v", "run", "--config", config, "--run-id", "night-2"]) == 1
    loud = capsys.readouterr().err
    assert "Traceback (most recent call last)" in loud
    assert loud.splitlines()[-1] == line


def test_stage_prepare_takes_the_evaluation_date_and_the_later_stages_refuse_it(
    tmp_path, capsys
) -> None:
    write(tmp_path, base_config(tmp_path))
    config = str(tmp_path / "autosynk.yaml")
    given = ["--config", config, "--run-id", RUN, "--evaluation-date", "2026-03-02"]
    assert main(["stage", "prepare", *given]) == 0
    assert json.loads(capsys.readouterr().out)["evaluation_date"] == "2026-03-02"
    with pytest.raises(SystemExit) as usage:
        main(["stage", "extract", *given])
    assert usage.value.code == 2
    assert "--evaluation-date is given to prepare" in capsys.readouterr().err
