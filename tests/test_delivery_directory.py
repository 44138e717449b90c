"""Delivery into a local folder: verified under final names or nothing new, never overwriting."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest

from autosynk.delivery.directory import deliver_directory
from autosynk.errors import DeliveryError

PRINCIPALS = b"user\t19121212-1212\tTolvan\tTolvansson\n" * 40
RELATIONS = b"add\tstudent_class\t19121212-1212\tklass-7a\n" * 40


def night(folder: Path) -> list[Path]:
    folder.mkdir()
    paths = []
    for name, data in (("exempelby.principals", PRINCIPALS), ("exempelby.relations", RELATIONS)):
        (folder / name).write_bytes(data)
        paths.append(folder / name)
    return paths


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_delivers_private_verified_files_into_a_new_folder(tmp_path):
    target = tmp_path / "unikum" / "in"

    records = deliver_directory(target, night(tmp_path / "out"))

    assert listing(target) == ["exempelby.principals", "exempelby.relations"]
    assert (target / "exempelby.principals").read_bytes() == PRINCIPALS
    assert (target / "exempelby.relations").stat().st_mode & 0o777 == 0o600
    assert [(r.name, r.size, r.already_there) for r in records] == [
        ("exempelby.principals", len(PRINCIPALS), False),
        ("exempelby.relations", len(RELATIONS), False),
    ]
    assert records[0].sha256 == hashlib.sha256(PRINCIPALS).hexdigest()
    assert records[0].remote_path == str(target / "exempelby.principals")
    offset = datetime.fromisoformat(records[0].delivered_at).utcoffset()
    assert offset is not None and offset.total_seconds() in (3600, 7200)  # CET or CEST


def test_retry_after_success_does_not_copy_again(tmp_path):
    target = tmp_path / "in"
    files = night(tmp_path / "out")
    deliver_directory(target, files)
    before = {n: (target / n).stat() for n in listing(target)}
    time.sleep(0.02)

    records = deliver_directory(target, files)

    assert [r.already_there for r in records] == [True, True]
    after = {n: (target / n).stat() for n in listing(target)}
    assert {n: (s.st_ino, s.st_mtime_ns) for n, s in after.items()} == {
        n: (s.st_ino, s.st_mtime_ns) for n, s in before.items()
    }


def test_different_content_under_a_final_name_is_refused_and_nothing_new_arrives(tmp_path):
    target = tmp_path / "in"
    target.mkdir()
    (target / "exempelby.relations").write_bytes(b"last week's file\n")

    with pytest.raises(DeliveryError, match="already exists with different content"):
        deliver_directory(target, night(tmp_path / "out"))

    assert listing(target) == ["exempelby.relations"]
    assert (target / "exempelby.relations").read_bytes() == b"last week's file\n"


def test_leftover_temporaries_of_our_scheme_are_removed_and_others_kept(tmp_path):
    target = tmp_path / "in"
    target.mkdir()
    for name in (".exempelby.relations.abcdef012345.part", ".exempelby.relations.x.part"):
        (target / name).write_bytes(b"half")

    deliver_directory(target, night(tmp_path / "out"))

    assert listing(target) == [
        ".exempelby.relations.x.part",
        "exempelby.principals",
        "exempelby.relations",
    ]


def test_an_unusable_target_is_a_delivery_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    with pytest.raises(DeliveryError, match="cannot create target folder"):
        deliver_directory(blocker / "in", night(tmp_path / "out"))


def test_a_full_disk_is_a_delivery_error_and_leaves_nothing(tmp_path):
    target = tmp_path / "small"
    target.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(target)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tiny tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        source = tmp_path / "out"
        source.mkdir()
        small, big = source / "a.principals", source / "b.relations"
        small.write_bytes(PRINCIPALS)
        big.write_bytes(os.urandom(256 * 1024))
        with pytest.raises(DeliveryError, match="No space left on device"):
            deliver_directory(target, [small, big])
        # neither file arrives: the small one was verified but waits for the big one
        assert listing(target) == []
    finally:
        subprocess.run(["umount", str(target)], check=True)


def test_duplicate_names_are_refused(tmp_path):
    files = night(tmp_path / "out")
    (tmp_path / "again").mkdir()
    twin = tmp_path / "again" / "exempelby.principals"
    twin.write_bytes(b"x")
    with pytest.raises(DeliveryError, match="share a name"):
        deliver_directory(tmp_path / "in", [*files, twin])
