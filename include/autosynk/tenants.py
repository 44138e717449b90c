"""Many municipalities in one deployment: a folder holding one run configuration each.

The folder is named by the environment variable ``AUTOSYNK_TENANTS_DIR``. Every top-level
``<name>.yaml`` (or ``.yml``) in it is one municipality's run configuration; the file name
gives the municipality's *tenant name* (``Malmö.yaml`` -> ``malmo``), which its Airflow DAG
ids carry (``unikum_nightly_sync__malmo``). Files whose name starts with ``.`` or ``_`` are
not tenants, nor is anything in a subfolder: keep each municipality's mapping spec,
register files and keys there (``malmo/mapping.yaml``, named in ``malmo.yaml`` as
``mapping: malmo/mapping.yaml``).

Two things are read while Airflow parses the DAG files, and only these: the folder listing
and, tolerantly, the keys ``municipality``, ``timezone`` and ``schedules`` of each file
(:func:`discover`). A file that cannot be read there still gets its DAGs, at the default
slot, and its tasks then fail with the configuration's own clear error: one municipality's
broken file never takes the others' DAGs with it. Everything else is read when a task runs.
"""

from __future__ import annotations

import logging
import os
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from autosynk.errors import AutosynkError, ConfigError

TENANTS_ENV = "AUTOSYNK_TENANTS_DIR"
#: a tenant name as it appears in DAG ids: lowercase ASCII letters, digits, ``-`` and
#: single ``_`` (a double underscore separates the DAG's name from the tenant's)
NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]|_(?!_))*(?<!_)$")
SUFFIXES = (".yaml", ".yml")

log = logging.getLogger("autosynk")


@dataclass(frozen=True)
class Tenant:
    """One municipality of the folder, as far as DAG parsing needs to know it."""

    name: str
    config_path: Path
    #: the file's ``municipality`` (display name), when it could be read at parse time
    municipality: str | None = None
    #: the file's ``timezone``, when it could be read at parse time
    timezone: str | None = None
    #: the file's ``schedules`` (DAG name -> cron), when they could be read at parse time
    schedules: Mapping[str, str] = field(default_factory=dict)


def tenant_name(file_name: str) -> str:
    """The tenant name of a run configuration file: ``Upplands Väsby.yaml`` -> ``upplands_vasby``.

    Letters lose their accents, everything is lowercased, and each run of other characters
    becomes one ``_``. Returns ``""`` when nothing usable is left.
    """
    stem = file_name
    for suffix in SUFFIXES:
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    decomposed = unicodedata.normalize("NFKD", stem)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    return re.sub(r"[^a-z0-9-]+", "_", plain).strip("_-")


def is_tenant_file(path: Path) -> bool:
    return (
        path.suffix.lower() in SUFFIXES and not path.name.startswith((".", "_")) and path.is_file()
    )


def tenants_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """The folder named by ``AUTOSYNK_TENANTS_DIR``, or None (one configuration, no folder)."""
    value = (environ if environ is not None else os.environ).get(TENANTS_ENV, "").strip()
    return Path(value).expanduser() if value else None


def discover(folder: Path) -> list[Tenant]:
    """The folder's municipalities, sorted by name.

    A missing folder is an error (the deployment asked for one). A file whose name leaves
    no usable tenant name, or whose name collides with another file's, is left out and
    logged as an error naming the file: it gets no DAGs until it is renamed. Of two files
    with one name, the one named exactly as its tenant (``malmo.yaml``) is kept.
    """
    if not folder.is_dir():
        raise ConfigError(f"{TENANTS_ENV}={folder}: no such folder")
    found: dict[str, Tenant] = {}
    # a file already named as its tenant (malmo.yaml) wins over one that only maps to the
    # name (Malmö.yaml): a file added later never takes over a running municipality's DAGs
    for path in sorted(
        (p for p in folder.iterdir() if is_tenant_file(p)),
        key=lambda p: (p.stem != tenant_name(p.name), p.name),
    ):
        name = tenant_name(path.name)
        if not NAME.match(name):
            log.error("%s: the file name leaves no usable tenant name; rename the file", path)
            continue
        if name in found:
            log.error(
                "%s: its tenant name %r is taken by %s; rename one of the two files",
                path,
                name,
                found[name].config_path.name,
            )
            continue
        found[name] = _peek(name, path)
    if not found:
        log.warning("%s=%s holds no run configurations (*.yaml)", TENANTS_ENV, folder)
    return [found[name] for name in sorted(found)]


def _peek(name: str, path: Path) -> Tenant:
    """The few keys DAG parsing uses; anything unreadable is left at its default."""
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return Tenant(name, path)
    if not isinstance(data, dict):
        return Tenant(name, path)
    municipality = data.get("municipality")
    timezone = data.get("timezone")
    schedules = data.get("schedules")
    return Tenant(
        name,
        path,
        municipality=municipality if isinstance(municipality, str) else None,
        timezone=timezone if isinstance(timezone, str) else None,
        schedules={
            str(k): v
            for k, v in (schedules.items() if isinstance(schedules, dict) else ())
            if isinstance(v, str)
        },
    )


def config_path_of(name: str, folder: Path) -> Path:
    """The run configuration of tenant ``name`` (read when a task runs)."""
    for tenant in discover(folder):
        if tenant.name == name:
            return tenant.config_path
    raise ConfigError(f"no run configuration for municipality {name!r} in {folder}")


def check_isolation(name: str, folder: Path) -> None:
    """Refuse to run when another municipality shares this one's staging or work base.

    The staging database holds the delivered state and the run lock, and the work base the
    run's files: two municipalities sharing either would corrupt each other's nights. The
    other files are read as they are; one that does not load is that municipality's
    problem, not this one's, and is skipped here.
    """
    from autosynk.config import DirectoryTarget, load_config

    mine = None
    others = []
    for tenant in discover(folder):
        try:
            cfg = load_config(tenant.config_path)
        except AutosynkError:
            if tenant.name == name:
                raise
            continue
        if tenant.name == name:
            mine = cfg
        else:
            others.append((tenant.name, cfg))
    if mine is None:
        raise ConfigError(f"no run configuration for municipality {name!r} in {folder}")

    def claims(cfg: Any) -> dict[str, str]:
        found = {"staging database": cfg.staging.url, "work base": cfg.work_base}
        if isinstance(cfg.target, DirectoryTarget):
            found["output folder"] = str(cfg.target.path)
        return found

    own = claims(mine)
    for other, cfg in others:
        for what, value in claims(cfg).items():
            if own.get(what) == value:
                raise ConfigError(
                    f"municipality {name!r} shares its {what} with {other!r}; every "
                    f"municipality needs its own (see docs/deployment.md)"
                )
