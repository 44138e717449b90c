"""Read a raw SS 12000 snapshot (the five list files) into plain, flat records.

Real registers differ: optional arrays go missing, values come as null, dates come with or
without a time part. This module only reads and flattens; it judges nothing (validation
and mapping do that), except that a file that is missing, unreadable or not of the form
``{"data": [...]}`` is a :class:`SourceError`.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from autosynk.errors import SourceError
from autosynk.sources import ENTITIES


@dataclass
class Snapshot:
    """The register as read: entity name -> list of records (dicts, or typed records)."""

    entities: dict[str, list[Any]]
    directory: list[dict[str, Any]] | None = None
    problems: list[str] = field(default_factory=list)


@contextmanager
def collector_paused() -> Iterator[None]:  # also a decorator (ContextDecorator)
    """Pause Python's cyclic garbage collector while millions of objects are built.

    Every few hundred new dicts or lists the collector runs, and each full pass walks
    every object alive, so building a register of millions of records without a pause
    spends most of its time walking what it just built. Records hold no reference
    cycles; reference counting frees them as usual. The previous state is restored.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def read_list(path: Path, name: str) -> list[dict[str, Any]]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SourceError(f"{name}: file {path.name} is missing from the snapshot") from None
    try:
        with collector_paused():
            doc = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise SourceError(f"{name}: {path.name} is not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise SourceError(f'{name}: {path.name} is not of the form {{"data": [...]}}')
    records = doc["data"]
    bad = sum(1 for item in records if not isinstance(item, dict))
    if bad:
        raise SourceError(f"{name}: {path.name} holds {bad} entries that are not objects")
    return records


def read_snapshot(folder: Path) -> Snapshot:
    """Read ``<entity>.json`` for every SS 12000 entity, and ``directory.json`` if present."""
    entities = {name: read_list(folder / f"{name}.json", name) for name in ENTITIES}
    directory_file = folder / "directory.json"
    directory = read_list(directory_file, "directory") if directory_file.exists() else None
    return Snapshot(entities=entities, directory=directory)


class Ref(msgspec.Struct, gc=False):
    """A reference object ``{"id": ...}`` as the typed reader keeps it (see records.py)."""

    id: Any = None


class Valued(msgspec.Struct, gc=False):
    """A value object ``{"value": ...}`` (e.g. ``civicNo``) as the typed reader keeps it."""

    value: Any = None


def ref_id(value: Any) -> str | None:
    """The id of a reference object ``{"id": ...}`` (or a bare id string)."""
    if type(value) is Ref:
        value = value.id
    elif isinstance(value, dict):
        value = value.get("id")
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def as_list(value: Any) -> list[Any]:
    """Optional arrays: missing or null -> empty list; a lone object -> [object]."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def text(value: Any) -> str:
    """A field as text; null -> empty."""
    if type(value) is str:  # the common case first: called millions of times a night
        return value.strip()
    if value is None:
        return ""
    if type(value) is Valued:
        value = value.value
    elif isinstance(value, dict):  # e.g. civicNo {"value": ...}
        value = value.get("value")
    if value is None:
        return ""
    return str(value).strip()


def day(value: Any) -> str | None:
    """A date or date-time as ``YYYY-MM-DD`` (the date part), or None when absent."""
    if value is None:
        return None
    stamp = str(value).strip()
    if not stamp:
        return None
    return stamp[:10]


def active(record: dict[str, Any], today: str) -> bool:
    """``startDate <= today <= endDate``, a missing bound being open (spec §10)."""
    start = day(record.get("startDate"))
    end = day(record.get("endDate"))
    return (start is None or start <= today) and (end is None or today <= end)
