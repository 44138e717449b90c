"""Source ``ss12000-files``: a folder holding the five SS 12000 list responses."""

from __future__ import annotations

from pathlib import Path

from autosynk.config import SS12000FilesSource
from autosynk.errors import SourceError
from autosynk.sources import ENTITIES
from autosynk.workspace import write_private


def extract(cfg: SS12000FilesSource, out_dir: Path) -> dict[str, int]:
    """Copy the snapshot into the run's work directory (so a retry reads the same night)."""
    if not cfg.path.is_dir():
        raise SourceError(f"ss12000-files: {cfg.path} is not a folder")
    missing = [name for name in ENTITIES if not (cfg.path / f"{name}.json").is_file()]
    if missing:
        raise SourceError(
            f"ss12000-files: {cfg.path} lacks {', '.join(f'{m}.json' for m in missing)}"
        )
    sizes = {}
    for name in ENTITIES:
        data = (cfg.path / f"{name}.json").read_bytes()
        write_private(out_dir / f"{name}.json", data)
        sizes[f"{name}_bytes"] = len(data)
    return sizes
