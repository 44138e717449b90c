"""Run-time glue for the DAGs: find the run configuration, name the run.

Nothing here runs at DAG parse time: the DAG files only reference these functions.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from autosynk.config import CONFIG_ENV, RunConfig, SftpTarget, SS12000ApiSource, load_config
from autosynk.errors import ConfigError
from autosynk.pipeline import Uploader
from autosynk.tenants import check_isolation, tenants_dir
from autosynk_airflow import tenants

CONFIG_VARIABLE = "autosynk_config"
log = logging.getLogger("autosynk")


def config_path() -> str:
    """The configuration file of the running task's DAG.

    With a tenants folder (``AUTOSYNK_TENANTS_DIR``): the file of the municipality the
    DAG id names. Otherwise the Airflow Variable ``autosynk_config``, else ``$AUTOSYNK_CONFIG``.
    """
    from airflow.sdk import Variable

    tenant_file = tenants.config_path_for_dag(current_dag_id())
    if tenant_file is not None:
        return str(tenant_file)
    path = Variable.get(CONFIG_VARIABLE, default=None) or os.environ.get(CONFIG_ENV)
    if not path:
        raise ConfigError(
            f"no autosynk configuration: set the Airflow Variable {CONFIG_VARIABLE} or the "
            f"environment variable {CONFIG_ENV} to the path of the run configuration"
        )
    return str(path)


def run_config() -> RunConfig:
    path = config_path()
    name = tenants.tenant_of(current_dag_id())
    folder = tenants_dir()
    if name is not None and folder is not None:
        # another municipality on the same staging or work base would corrupt both
        check_isolation(name, folder)
    return load_config(path)


def current_dag_id() -> str:
    from airflow.sdk import get_current_context

    return str(get_current_context()["dag"].dag_id)


def current_run_id() -> str:
    """The DAG run's id: it names the run in staging and its work directory."""
    from airflow.sdk import get_current_context

    context = get_current_context()
    return str(context["run_id"])


def airflow_config() -> RunConfig:
    """The run configuration with credentials taken from Airflow connections where named."""
    cfg = run_config()
    updates: dict[str, Any] = {}
    source = cfg.source
    if isinstance(source, SS12000ApiSource) and source.airflow_connection:
        from autosynk_airflow.ss12000_hook import AutosynkSS12000Hook

        hook = AutosynkSS12000Hook(source.airflow_connection)
        updates["source"] = hook.get_source_config(base=source)
    if cfg.directory is not None and cfg.directory.airflow_connection:
        from autosynk_airflow.ldap_hook import AutosynkLdapHook

        ldap = AutosynkLdapHook(cfg.directory.airflow_connection)
        updates["directory"] = ldap.get_directory_config(base=cfg.directory)
    return cfg.model_copy(update=updates) if updates else cfg


def airflow_uploader(cfg: RunConfig) -> Uploader | None:
    """Deliver through the SFTP provider's hook when the target names a connection."""
    target = cfg.target
    if not isinstance(target, SftpTarget) or not target.airflow_connection:
        return None
    from autosynk_airflow.sftp_delivery import deliver_with_sftp_hook

    conn_id, remote_dir = target.airflow_connection, target.remote_dir
    return lambda files: deliver_with_sftp_hook(conn_id, files, remote_dir)


def export_config() -> RunConfig:
    """The run configuration with the target the total export's trigger form chose."""
    from airflow.sdk import get_current_context

    from autosynk.total_export import export_config as choose

    params = get_current_context()["params"]
    return choose(run_config(), params["target"], rebaseline=bool(params["rebaseline"]))


def report_and_judge(
    cfg: RunConfig,
    run_id: str,
    approval: dict[str, Any] | None = None,
    finished: tuple[str, ...] = ("committed", "dry-run"),
) -> dict[str, Any]:
    """Write the report, release the lock, and fail the DAG run unless the night committed
    (or was a dry run; ``finished`` names other ends, such as ``delivered`` for a total
    that does not advance the staging state). A plan still waiting here was rejected or
    not answered in time."""
    from autosynk import pipeline, plans
    from autosynk.errors import AutosynkError
    from autosynk.identity import mask
    from autosynk.staging.store import AWAITING_APPROVAL

    run = pipeline.staging_for(cfg).get_run(run_id)
    status = run["status"] if run else "not started"
    if status in finished:
        result = pipeline.report(cfg, run_id)
        log.info("report: %s", result["report"])
        return result
    if run is None:
        raise AutosynkError("the night stopped before it started; see the failed task's log")
    if status == "blocked":
        result = pipeline.report(cfg, run_id)
        raise AutosynkError(
            f"{mask(run['message'] or 'blocked')}; plan {run['plan_id']} cannot be applied; "
            f"nothing was delivered; report: {result['report']}"
        )
    if status in AWAITING_APPROVAL:
        reason = _why_not_approved(approval)
        plans.reject(cfg, run_id, reason)
        result = pipeline.report(cfg, run_id)
        raise AutosynkError(
            f"refused: plan {run['plan_id']} {reason}; nothing was delivered; "
            f"report: {result['report']}"
        )
    reason = run["message"] or f"the night stopped after stage status {status!r}"
    result = pipeline.report(cfg, run_id, failed=reason)
    raise AutosynkError(
        f"failed: {mask(reason)}; nothing was committed; report: {result['report']}"
    )


def _why_not_approved(answer: dict[str, Any] | None) -> str:
    # a rejection (or a timeout, which answers Reject) skips delivery from inside the
    # approval task, which then hands on no answer: only an approval is recorded
    if not answer:
        return "was rejected or not answered in time"
    if answer.get("timedout"):
        return "was not answered in time"
    user = (answer.get("responded_by_user") or {}).get("name") or "a user"
    return f"was rejected by {user}"
