"""Deliver through Airflow's SFTP provider: the connection gives host, user and key.

The upload itself is ``autosynk.delivery.sftp.upload_verified``, the same code the CLI
runs. The connection must pin the server's host key in its extra ``host_key``
(``"ssh-ed25519 AAAA..."``): without it the provider would trust whatever the worker's
``~/.ssh/known_hosts`` says, so such a connection is refused, as is ``no_host_key_check``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autosynk.delivery import DeliveryRecord
from autosynk.errors import ConfigError, DeliveryError


def _pinned_hook(conn_id: str, conn_retry_attempts: int) -> Any:
    from airflow.providers.sftp.hooks.sftp import SFTPHook

    try:
        hook = SFTPHook(ssh_conn_id=conn_id, conn_retry_attempts=conn_retry_attempts)
    except ValueError as exc:  # the provider's message for a malformed host_key extra
        raise ConfigError(f"Airflow connection {conn_id!r}: {exc}") from exc
    except Exception as exc:
        if type(exc).__name__ == "AirflowNotFoundException":
            raise ConfigError(f"Airflow connection {conn_id!r} is not defined") from exc
        raise
    if hook.no_host_key_check or hook.allow_host_key_change:
        raise ConfigError(
            f"Airflow connection {conn_id!r}: no_host_key_check/allow_host_key_change are "
            "refused; pin the server's key in the extra host_key"
        )
    if hook.host_key is None:
        raise ConfigError(
            f"Airflow connection {conn_id!r} has no host_key in its extra; pin the server's "
            "key there (as in known_hosts: 'ssh-ed25519 AAAA...')"
        )
    hook.look_for_keys = False  # only the connection's own key, never ~/.ssh/id_*
    return hook


def deliver_with_sftp_hook(
    conn_id: str, files: list[Path], remote_dir: str, *, conn_retry_attempts: int = 3
) -> list[DeliveryRecord]:
    """Deliver ``files`` into ``remote_dir`` over the SFTP connection ``conn_id``."""
    import paramiko

    from autosynk.delivery.sftp import connection_error, upload_verified

    hook = _pinned_hook(conn_id, conn_retry_attempts)
    where = f"SFTP connection {conn_id!r} ({hook.username}@{hook.remote_host}:{hook.port})"
    try:
        with hook.get_managed_conn() as sftp:
            channel = sftp.get_channel()
            if channel is not None:  # a hung server fails the task instead of stalling it
                channel.settimeout(float(hook.conn_timeout or 30) * 4)
            records: list[DeliveryRecord] = upload_verified(sftp, files, remote_dir)
            return records
    except DeliveryError:
        raise
    except (OSError, EOFError, paramiko.SSHException) as exc:
        # upload_verified turns its own failures into DeliveryError: this is the connecting
        raise connection_error(exc, where) from exc
