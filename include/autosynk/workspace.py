"""A run's work directory: where stages hand large data to each other.

``<work_base>/<run_id>/`` holds ``extract/``, ``mapped/``, ``delta/`` and ``package/``.
The base is a local folder by default. When tasks run on several Celery or Kubernetes
workers, configure a shared base (an NFS mount, or an fsspec URL such as ``s3://bucket/x``,
the same storage Airflow's object-storage paths use): nothing here assumes a local disk
unless the base is one.

Files holding personal data are written 0600 on local disks, always through a temporary
name and a rename, so a half-written file is never taken for a finished one.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow.parquet as pq
from upath import UPath

PRIVATE = 0o600
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _to_parquet(data: Any, handle: BinaryIO) -> None:
    if hasattr(data, "to_parquet"):  # a pandas frame
        data.to_parquet(handle, index=False)
    else:
        pq.write_table(data, handle)


def safe_run_dir(run_id: str) -> str:
    """A directory name for a run id (Airflow run ids hold ':' and '+')."""
    name = _UNSAFE.sub("_", run_id).strip("._")
    if not name:
        raise ValueError("empty run id")
    return name


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a local ``path`` as 0600, atomically."""
    with private_file(path) as handle:
        handle.write(data)


@contextlib.contextmanager
def private_file(path: Path) -> Iterator[BinaryIO]:
    """A handle writing a local ``path`` as 0600, atomically, as :func:`write_private` does:
    for data written piece by piece (a file of millions of lines never held whole)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        os.fchmod(fd, PRIVATE)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).replace(path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            Path(tmp).unlink()
        if isinstance(exc, OSError) and exc.filename is None:
            exc.filename = str(path)
        raise


@contextlib.contextmanager
def private_path(path: Path) -> Iterator[Path]:
    """A path in a private temporary folder beside ``path``, for a tool that writes a file
    itself (DuckDB, a Parquet writer); on success the file is made 0600, flushed and
    renamed to ``path``, so a half-written file is never taken for a finished one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".part-", dir=path.parent) as private:
        part = Path(private) / path.name
        yield part
        part.chmod(PRIVATE)
        with part.open("rb") as handle:
            os.fsync(handle.fileno())
        part.replace(path)


def copy_private(source: Path, path: Path, chunk_bytes: int = 8 * 2**20) -> int:
    """Copy the file ``source`` to a local ``path`` as 0600, atomically, chunk by chunk.

    Returns the bytes copied; memory stays at one chunk whatever the file's size.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        os.fchmod(fd, PRIVATE)
        with os.fdopen(fd, "wb") as handle, source.open("rb") as reading:
            size = 0
            while chunk := reading.read(chunk_bytes):
                handle.write(chunk)
                size += len(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).replace(path)
        return size
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            Path(tmp).unlink()
        if isinstance(exc, OSError) and exc.filename is None:
            exc.filename = str(path)
        raise


class RunWorkspace:
    """The work directory of one run."""

    def __init__(self, work_base: str, run_id: str, *, directory: str | None = None) -> None:
        """``directory``: a folder of the work base other than the run's own (one shared
        by every run, such as ``_delivered-state``; a run directory never starts with _)."""
        self.run_id = run_id
        self.root = UPath(work_base) / (directory or safe_run_dir(run_id))

    @property
    def is_local(self) -> bool:
        return self.root.protocol in ("", "file", "local")

    def path(self, *parts: str) -> UPath:
        return self.root.joinpath(*parts)

    def local_path(self, *parts: str) -> Path:
        """The local filesystem path of a file (only for a local work base)."""
        if not self.is_local:
            raise ValueError("work base is not on a local disk")
        return Path(self.path(*parts).path)

    def exists(self, *parts: str) -> bool:
        return self.path(*parts).exists()

    def write_bytes(self, data: bytes, *parts: str) -> UPath:
        target = self.path(*parts)
        if self.is_local:
            write_private(Path(target.path), data)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.part")
            tmp.write_bytes(data)
            tmp.rename(target)
        return target

    def write_parquet(self, data: Any, *parts: str) -> UPath:
        """``data`` (an Arrow table or a pandas frame) as a Parquet file. On a local disk it
        is written straight to its 0600 file: a city's relations are 0.1 GB of Parquet,
        and a buffer and its copy would add two of them to the stage's peak."""
        if not self.is_local:
            buffer = io.BytesIO()
            _to_parquet(data, buffer)
            return self.write_bytes(buffer.getvalue(), *parts)
        with private_file(self.local_path(*parts)) as handle:
            _to_parquet(data, handle)
        return self.path(*parts)

    def link_from(self, source: UPath, *parts: str) -> None:
        """Give ``parts`` the bytes of ``source``.

        On a local disk a hard link: files in a work base are only ever replaced (written
        under a temporary name, then renamed), never changed in place, so sharing the bytes
        is safe and takes no time however large the file. Elsewhere (or where links fail)
        a copy.
        """
        if self.is_local and source.protocol in ("", "file", "local"):
            path = self.local_path(*parts)
            path.parent.mkdir(parents=True, exist_ok=True)
            link = path.with_name(f".{path.name}.{os.getpid()}.link")
            with contextlib.suppress(FileNotFoundError):
                link.unlink()
            try:
                os.link(source.path, link)
            except OSError:
                write_private(path, Path(source.path).read_bytes())
                return
            link.chmod(PRIVATE)
            link.replace(path)
            return
        self.write_bytes(source.read_bytes(), *parts)

    def read_bytes(self, *parts: str) -> bytes:
        return self.path(*parts).read_bytes()

    def write_json(self, value: Any, *parts: str) -> UPath:
        data = json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True).encode()
        return self.write_bytes(data + b"\n", *parts)

    def read_json(self, *parts: str) -> Any:
        return json.loads(self.read_bytes(*parts))

    def remove_tree(self, *parts: str) -> None:
        target = self.path(*parts)
        if target.exists():
            target.fs.rm(target.path, recursive=True)

    @contextlib.contextmanager
    def local_dir(self, *parts: str) -> Iterator[Path]:
        """A local directory for tools that need one (gpg, paramiko); synced back after."""
        if self.is_local:
            local = self.local_path(*parts)
            local.mkdir(parents=True, exist_ok=True)
            yield local
            return
        with tempfile.TemporaryDirectory(prefix="autosynk-") as tmp:
            remote = self.path(*parts)
            if remote.exists():
                for entry in remote.iterdir():
                    write_private(Path(tmp) / entry.name, entry.read_bytes())
            yield Path(tmp)
            for local in Path(tmp).iterdir():
                if local.is_file():
                    self.write_bytes(local.read_bytes(), *parts, local.name)
