"""Municipalities as Airflow sees them: DAG ids, schedule slots and pools.

Every DAG file builds its DAGs for each municipality with a short loop::

    for municipality in tenants.municipalities():
        dag(
            dag_id=municipality.dag_id("unikum_nightly_sync"),
            schedule=municipality.timetable("unikum_nightly_sync", "30 20 * * *"),
            description=municipality.describe("Nightly sync ..."),
            ...,
        )(unikum_nightly_sync)()

With ``AUTOSYNK_TENANTS_DIR`` unset there is one municipality without a name and the DAG
ids stay as they were (``unikum_nightly_sync``); its configuration is found as before
(the Variable ``autosynk_config`` or ``AUTOSYNK_CONFIG``). With it set, each
``<name>.yaml`` in the folder gets ``unikum_nightly_sync__<name>`` and so on, and a task
finds its configuration from its own DAG id when it runs (:func:`config_path_for_dag`):
never through a Variable or Connection, never at parse time.

Parse time reads the folder named by the environment variable and nothing else
(see :mod:`autosynk.tenants`). The pools are shared by all municipalities of the deployment.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autosynk import tenants as folder_of_tenants

#: how many register reads (SS 12000 API, file exports, LDAP) run at once, over all
#: municipalities; the extract task runs in it
REGISTER_READS_POOL = "autosynk_register_reads"
#: how many deliveries to Unikum's file server run at once; the deliver task runs in it
SFTP_UPLOADS_POOL = "autosynk_sftp_uploads"
#: pool -> (environment variable with its size, default size, description)
POOLS: dict[str, tuple[str, int, str]] = {
    REGISTER_READS_POOL: (
        "AUTOSYNK_POOL_REGISTER_READS",
        2,
        "autosynk: register and directory reads running at once (all municipalities)",
    ),
    SFTP_UPLOADS_POOL: (
        "AUTOSYNK_POOL_SFTP_UPLOADS",
        2,
        "autosynk: deliveries to Unikum's file server running at once (all municipalities)",
    ),
}
#: between a DAG's name and its municipality's in the DAG id
SEPARATOR = "__"
DEFAULT_TIMEZONE = "Europe/Stockholm"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Municipality:
    """One municipality's DAGs: its name (None: the single configuration), slot and file."""

    name: str | None = None
    config_path: Path | None = None
    display_name: str | None = None
    timezone: str = DEFAULT_TIMEZONE
    schedules: Mapping[str, str] = field(default_factory=dict)

    def dag_id(self, base: str) -> str:
        return base if self.name is None else f"{base}{SEPARATOR}{self.name}"

    def cron(self, base: str, default: str) -> str:
        """The slot for the DAG ``base``: the file's ``schedules`` entry, else ``default``."""
        return self.schedules.get(base, default).strip()

    def timetable(self, base: str, default: str) -> Any:
        """A cron timetable at this municipality's slot, in its time zone.

        A slot Airflow cannot read falls back to ``default`` (logged): the tasks then fail
        on the configuration's own error, and the other municipalities are untouched.
        """
        import pendulum
        from airflow.sdk import CronTriggerTimetable
        from croniter import croniter

        cron = self.cron(base, default)
        try:
            # checked here: Airflow checks only when it serializes the DAG, and a failure
            # there would take every municipality's DAGs of this file with it
            croniter(cron)
            pendulum.timezone(self.timezone)
        except Exception as exc:  # a bad cron or time zone in one file only
            log.error(
                "%s: schedule %r in %s unusable (%s); using %r",
                self.dag_id(base),
                cron,
                self.timezone,
                exc,
                default,
            )
            return CronTriggerTimetable(default, timezone=DEFAULT_TIMEZONE)
        return CronTriggerTimetable(cron, timezone=self.timezone)

    def describe(self, text: str) -> str:
        """A one-line DAG description, naming the municipality when there are several."""
        if self.name is None:
            return text
        return f"{self.display_name or self.name}: {text}"


def municipalities(environ: Mapping[str, str] | None = None) -> list[Municipality]:
    """The deployment's municipalities (parse time: the folder's listing, nothing else)."""
    folder = folder_of_tenants.tenants_dir(environ)
    if folder is None:
        return [Municipality()]
    return [
        Municipality(
            name=t.name,
            config_path=t.config_path,
            display_name=t.municipality,
            timezone=t.timezone or DEFAULT_TIMEZONE,
            schedules=dict(t.schedules),
        )
        for t in folder_of_tenants.discover(folder)
    ]


def tenant_of(dag_id: str) -> str | None:
    """The municipality a DAG id belongs to (``unikum_nightly_sync__malmo`` -> ``malmo``)."""
    base, sep, name = dag_id.rpartition(SEPARATOR)
    return name if sep and base and name else None


def config_path_for_dag(dag_id: str, environ: Mapping[str, str] | None = None) -> Path | None:
    """Run time: the configuration of the DAG's municipality, or None without a folder."""
    folder = folder_of_tenants.tenants_dir(environ)
    name = tenant_of(dag_id)
    if folder is None or name is None:
        return None
    return folder_of_tenants.config_path_of(name, folder)


def pool_sizes(environ: Mapping[str, str] | None = None) -> dict[str, tuple[int, str]]:
    """Each pool's size (from its environment variable, else the default) and description."""
    env = environ if environ is not None else os.environ
    sizes = {}
    for pool, (variable, default, description) in POOLS.items():
        raw = env.get(variable, "").strip()
        size = int(raw) if raw else default
        if size < 1:
            raise ValueError(f"{variable}={raw}: a pool needs at least one slot")
        sizes[pool] = (size, description)
    return sizes
