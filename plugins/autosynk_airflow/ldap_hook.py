"""The LDAP/AD directory from an Airflow connection (conn type ``ldap``).

Connection fields: ``host`` (a name, or a whole ``ldap://`` / ``ldaps://`` URL) and
``port`` give the URL; ``login`` is the bind DN and ``password`` its password; ``schema``
may hold the base DN. The extra holds the other ``LdapDirectory`` settings:
``base_dn`` (wins over ``schema``), ``search_filter``, ``match_attribute``, ``match_on``,
``mail_attribute``, ``login_attribute``, ``start_tls``, ``ca_file``, ``page_size``,
``timeout_seconds``, and ``use_ssl`` (``true``: ``ldaps://``). An unknown extra key is an
error, as an unknown key in the run configuration is. The DAG hands the result to
``autosynk.sources.directory_ldap.extract``.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook
from pydantic import ValidationError

from autosynk.config import LdapDirectory
from autosynk.errors import ConfigError

#: settings the connection extra may set; the connection fields set the rest
EXTRA_KEYS = (
    frozenset(LdapDirectory.model_fields)
    - {"url", "bind_dn", "bind_password", "bind_password_env", "airflow_connection"}
) | {"use_ssl"}


class AutosynkLdapHook(BaseHook):
    """Reads an LDAP connection; it never talks to the directory itself."""

    conn_name_attr = "autosynk_ldap_conn_id"
    default_conn_name = "autosynk_ldap"
    conn_type = "ldap"
    hook_name = "autosynk LDAP directory"

    def __init__(self, autosynk_ldap_conn_id: str = default_conn_name) -> None:
        # no lookup here: hooks are built at DAG parse time, connections read at run time
        super().__init__()
        self.autosynk_ldap_conn_id = autosynk_ldap_conn_id

    def get_directory_config(self, base: LdapDirectory | None = None) -> LdapDirectory:
        """The directory settings: the connection's values over ``base`` (the run config's)."""
        conn_id = self.autosynk_ldap_conn_id
        conn = self.get_connection(conn_id)
        extra: dict[str, Any] = dict(conn.extra_dejson)
        unknown = sorted(set(extra) - EXTRA_KEYS)
        if unknown:
            raise ConfigError(
                f"Airflow connection {conn_id!r}: unknown extra key(s) {', '.join(unknown)}; "
                f"allowed: {', '.join(sorted(EXTRA_KEYS))}"
            )
        use_ssl = _flag(extra.pop("use_ssl", False))
        values: dict[str, Any] = base.model_dump() if base else {}
        if conn.schema:
            values["base_dn"] = conn.schema
        values.update(extra)
        values["airflow_connection"] = conn_id
        if conn.host:
            values["url"] = ldap_url(conn.host, conn.port, use_ssl)
        if conn.login:
            values["bind_dn"] = conn.login
        if conn.password:
            # the connection's secret wins over one named by environment variable
            values["bind_password"] = conn.password
            values["bind_password_env"] = None
        try:
            return LdapDirectory.model_validate(values)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "connection"
            raise ConfigError(f"Airflow connection {conn_id!r}: {where}: {first['msg']}") from None


def ldap_url(host: str, port: int | None, use_ssl: bool) -> str:
    """``ldap[s]://host[:port]`` from a connection's host (a name or a whole URL)."""
    text = host.strip().rstrip("/")
    if "://" not in text:
        text = f"{'ldaps' if use_ssl else 'ldap'}://{text}"
    has_port = text.rsplit("]", 1)[-1].count(":") > 1  # scheme's colon + a port's
    if port and not has_port:
        text = f"{text}:{port}"
    return text


def _flag(value: object) -> bool:
    """Extras typed in the UI arrive as text: accept true/false, yes/no, 1/0."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "1", "on")
    return bool(value)
