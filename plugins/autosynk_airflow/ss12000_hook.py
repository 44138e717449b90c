"""The SS 12000 API source from an Airflow connection (conn type ``http``).

Connection fields: ``schema`` (``https``) + ``host`` + ``port`` give ``base_url``; the host
may carry the API path (``register.example.se/ss12000/v2``) or be a whole URL. ``login``
is the OAuth2 client id, ``password`` the client secret. The extra holds the other
``SS12000ApiSource`` settings: ``token_url`` (required unless the run configuration has
it), ``scope``, ``page_size``, ``timeout_seconds``, ``incremental``, ...; an unknown
extra key is an error, as an unknown key in the run configuration is.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException
from pydantic import ValidationError

from autosynk.config import SS12000ApiSource
from autosynk.errors import ConfigError

#: settings the connection extra may set; the connection fields set the rest
EXTRA_KEYS = frozenset(SS12000ApiSource.model_fields) - {
    "kind",
    "base_url",
    "client_id",
    "client_secret",
    "client_secret_env",
    "airflow_connection",
}


class AutosynkSS12000Hook(BaseHook):
    """Reads an SS 12000 API connection; it never talks to the API itself."""

    conn_name_attr = "autosynk_ss12000_conn_id"
    default_conn_name = "autosynk_ss12000"
    conn_type = "http"
    hook_name = "autosynk SS 12000 API"

    def __init__(self, autosynk_ss12000_conn_id: str = default_conn_name) -> None:
        # no lookup here: hooks are built at DAG parse time, connections read at run time
        super().__init__()
        self.autosynk_ss12000_conn_id = autosynk_ss12000_conn_id

    def get_source_config(self, base: SS12000ApiSource | None = None) -> SS12000ApiSource:
        """The source settings: the connection's values over ``base`` (the run config's)."""
        conn_id = self.autosynk_ss12000_conn_id
        try:
            conn = self.get_connection(conn_id)
        except AirflowNotFoundException:
            raise ConfigError(f"Airflow connection {conn_id!r} is not defined") from None
        extra: dict[str, Any] = dict(conn.extra_dejson)
        unknown = sorted(set(extra) - EXTRA_KEYS)
        if unknown:
            raise ConfigError(
                f"Airflow connection {conn_id!r}: unknown extra key(s) {', '.join(unknown)}; "
                f"allowed: {', '.join(sorted(EXTRA_KEYS))}"
            )
        values: dict[str, Any] = base.model_dump() if base else {"kind": "ss12000"}
        values.update(extra)
        values["airflow_connection"] = conn_id
        if conn.host:
            values["base_url"] = base_url(conn.host, conn.schema, conn.port)
        if conn.login:
            values["client_id"] = conn.login
        if conn.password:
            # the connection's secret wins over one named by environment variable
            values["client_secret"] = conn.password
            values["client_secret_env"] = None
        try:
            return SS12000ApiSource.model_validate(values)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "connection"
            raise ConfigError(f"Airflow connection {conn_id!r}: {where}: {first['msg']}") from None


def base_url(host: str, schema: str | None, port: int | None) -> str:
    """``https://host[:port]/path`` from an http connection's host, schema and port."""
    text = host.strip().rstrip("/")
    if "://" not in text:
        text = f"{schema or 'https'}://{text}"
    parts = urlsplit(text)
    netloc = parts.netloc
    if port and parts.port is None:
        netloc = f"{netloc}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
