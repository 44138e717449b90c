"""Take one night's snapshot from the configured sources, all or nothing."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from autosynk.config import (
    CsvExportSource,
    LdapDirectory,
    RunConfig,
    SS12000ApiSource,
    SS12000FilesSource,
)
from autosynk.errors import ConfigError


def take_snapshot(cfg: RunConfig, out_dir: Path, cache_dir: Path | None = None) -> dict[str, int]:
    """Read every source into a fresh folder, then swap it in as ``out_dir``.

    A failing source raises before the swap, so ``out_dir`` never holds half a night.
    """
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging_dir = Path(tempfile.mkdtemp(prefix=".extract-", dir=out_dir.parent))
    try:
        counts = read_source(cfg, staging_dir, cache_dir)
        if cfg.directory is not None:
            counts["directory_entries"] = read_directory(cfg.directory, staging_dir)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging_dir.rename(out_dir)
        return counts
    finally:
        if staging_dir.exists():
            shutil.rmtree(staging_dir, ignore_errors=True)


def read_source(cfg: RunConfig, out_dir: Path, cache_dir: Path | None) -> dict[str, int]:
    source = cfg.source
    if isinstance(source, SS12000FilesSource):
        from autosynk.sources import ss12000_files

        return ss12000_files.extract(source, out_dir)
    if isinstance(source, SS12000ApiSource):
        import autosynk.sources.ss12000_api as ss12000_api

        return ss12000_api.extract(source, out_dir, cache_dir=cache_dir)
    if isinstance(source, CsvExportSource):
        import autosynk.sources.file_export as file_export

        return file_export.extract(source, out_dir)
    raise ConfigError(f"source kind {source.kind!r} is not supported")  # pragma: no cover


def read_directory(cfg: LdapDirectory, out_dir: Path) -> int:
    import autosynk.sources.directory_ldap as directory_ldap

    return directory_ldap.extract(cfg, out_dir / "directory.json")
