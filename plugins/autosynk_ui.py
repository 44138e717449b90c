"""Airflow plugin: the UI shows Europe/Stockholm time unless the user picks another zone.

See ``autosynk_airflow.ui_timezone``; ``AUTOSYNK_UI_TIMEZONE`` names another default.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from autosynk_airflow.ui_timezone import UiDefaultTimezone


class AutosynkUiPlugin(AirflowPlugin):
    name = "autosynk_ui"
    fastapi_root_middlewares = [  # noqa: RUF012 - Airflow's plugin interface
        {"middleware": UiDefaultTimezone, "name": "autosynk UI default time zone"}
    ]
