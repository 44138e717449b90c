"""Session-wide test setup.

Airflow reads its configuration when first imported, so its environment is set here,
before any test module imports it. Service fixtures live in ``tests/services/`` and are
registered as plugins.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="autosynk-airflow-"))
_ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("AIRFLOW_HOME", str(_AIRFLOW_HOME))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(_ROOT / "dags"))
os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(_ROOT / "plugins"))
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
os.environ.setdefault("AIRFLOW__SECRETS__BACKEND", "tests.parse_guard.ParseTimeLookupGuard")

pytest_plugins = sorted(
    f"tests.services.{p.stem}"
    for p in (Path(__file__).parent / "services").glob("*.py")
    if p.stem != "__init__"
)
