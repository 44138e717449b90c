"""Source ``ss12000-files``: a folder holding the five SS 12000 list responses."""

from __future__ import annotations

from pathlib import Path

from autosynk.config import SS12000FilesSource
from autosynk.errors import SourceError
from autosynk.sources import ENTITIES
from autosynk.sources.list_stream import count_entries
from autosynk.workspace import copy_private


def extract(cfg: SS12000FilesSource, out_dir: Path) -> dict[str, int]:
    """Copy the snapshot into the run's work directory (so a retry reads the same night).

    Each file is copied and then checked chunk by chunk (:mod:`autosynk.sources.list_stream`:
    JSON, ``{"data": [...]}``, entries that are objects), so a national ``persons.json``
    takes no more memory than a small one, and a broken file stops the night here with
    the error the transform would give. Returns entries and bytes per file.
    """
    if not cfg.path.is_dir():
        raise SourceError(f"ss12000-files: {cfg.path} is not a folder")
    missing = [name for name in ENTITIES if not (cfg.path / f"{name}.json").is_file()]
    if missing:
        raise SourceError(
            f"ss12000-files: {cfg.path} lacks {', '.join(f'{m}.json' for m in missing)}"
        )
    counts = {}
    for name in ENTITIES:
        copy = out_dir / f"{name}.json"
        counts[f"{name}_bytes"] = copy_private(cfg.path / f"{name}.json", copy)
        counts[name] = count_entries(copy, name)
    return counts
