"""docker-compose.yml: valid for Compose (checked offline) and keeping the deployment policy.

Docker cannot run here; Debian's ``docker-compose`` validates and renders the file without an
engine. The rendered configuration (``config``) is what the policy assertions read, so
anchors, merges and ${VAR} substitution are applied exactly as Compose applies them.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
WORK_MOUNT = "/opt/airflow/work"

pytestmark = pytest.mark.skipif(
    shutil.which("docker-compose") is None, reason="docker-compose is not installed"
)


def compose(*args: str, env_file: Path = ENV_EXAMPLE) -> subprocess.CompletedProcess[str]:
    # a clean environment: only the env file may supply values
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "ENV_FILE_PATH": str(env_file)}
    return subprocess.run(
        ["docker-compose", "--env-file", str(env_file), "-f", str(COMPOSE), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def rendered() -> dict[str, Any]:
    done = compose("config")
    assert done.returncode == 0, done.stderr
    config: dict[str, Any] = yaml.safe_load(done.stdout)
    return config


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return config


def airflow_services(config: dict[str, Any]) -> dict[str, Any]:
    services: dict[str, Any] = config["services"]
    return {n: s for n, s in services.items() if n.startswith("airflow-") or n == "flower"}


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value.strip("'")
    return values


def test_config_is_valid() -> None:
    done = compose("config", "-q")
    assert done.returncode == 0, done.stderr


def test_missing_secret_is_refused_not_defaulted(tmp_path: Path) -> None:
    partial = tmp_path / "partial.env"
    values = env_example()
    del values["AUTOSYNK_DB_PASSWORD"]
    partial.write_text("".join(f"{k}='{v}'\n" for k, v in values.items()))
    done = compose("config", "-q", env_file=partial)
    assert done.returncode != 0
    assert "set AUTOSYNK_DB_PASSWORD in .env" in done.stderr


def test_the_reference_services_are_all_there(rendered: dict[str, Any]) -> None:
    assert set(rendered["services"]) == {
        "postgres",
        "autosynk-postgres",
        "redis",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-worker",
        "airflow-triggerer",
        "airflow-init",
        "airflow-cli",
        "flower",
    }
    commands = {n: s.get("command") for n, s in airflow_services(rendered).items()}
    assert commands["airflow-apiserver"] == "api-server"
    assert commands["airflow-dag-processor"] == "dag-processor"
    assert commands["airflow-worker"] == "celery worker"
    assert rendered["services"]["flower"]["profiles"] == ["flower"]


def test_every_airflow_service_runs_the_one_image_with_celery(rendered: dict[str, Any]) -> None:
    services = airflow_services(rendered)
    assert {s["image"] for s in services.values()} == {"autosynk-airflow:3.3.2"}
    assert {s["build"]["context"] for s in services.values()} == {str(ROOT)}
    for name, service in services.items():
        env = service["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://:@redis:6379/0", name
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == (
            "http://airflow-apiserver:8080/execution/"
        )
        assert env["AUTOSYNK_CONFIG"] == "/opt/airflow/config/autosynk.yaml", name
        # the production connections reach every container from the env file
        assert {"AIRFLOW_CONN_AUTOSYNK_SS12000", "AIRFLOW_CONN_AUTOSYNK_LDAP"} <= set(env)
        assert "AIRFLOW_CONN_AUTOSYNK_SFTP" in env


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """target -> source; Compose 1.x renders volumes as 'source:target[:mode]'."""
    found = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            found[volume["target"]] = volume["source"]
        else:
            source, target, *_ = volume.split(":")
            found[target] = source
    return found


@pytest.mark.parametrize(
    "name", ["airflow-scheduler", "airflow-worker", "airflow-dag-processor", "airflow-init"]
)
def test_the_work_base_is_one_shared_volume(rendered: dict[str, Any], name: str) -> None:
    assert mounts(rendered["services"][name])[WORK_MOUNT] == "autosynk-work"
    assert "autosynk-work" in rendered["volumes"]


def test_code_is_mounted_read_only(raw: dict[str, Any]) -> None:
    volumes = raw["x-airflow-common"]["volumes"]
    for target in ("/opt/airflow/dags", "/opt/airflow/plugins", "/opt/airflow/project/include"):
        assert any(v.endswith(f":{target}:ro") for v in volumes), target


def test_databases_and_broker_are_healthchecked_dependencies(rendered: dict[str, Any]) -> None:
    services = rendered["services"]
    for name in ("postgres", "redis", "autosynk-postgres"):
        assert services[name]["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
    for name, service in airflow_services(rendered).items():
        assert service["depends_on"]["postgres"] == {"condition": "service_healthy"}, name
        assert service["depends_on"]["redis"] == {"condition": "service_healthy"}, name
    worker = services["airflow-worker"]["depends_on"]
    assert worker["autosynk-postgres"] == {"condition": "service_healthy"}
    assert worker["airflow-init"] == {"condition": "service_completed_successfully"}


SECRET_NAME = re.compile(r"PASSWORD|SECRET|FERNET|_KEY$", re.IGNORECASE)
URL_PASSWORD = re.compile(r"://[^:/@\s]*:([^@\s]+)@")


def is_secret_name(key: str) -> bool:
    # *_FILE and *_DIR name where secrets live, not the secrets themselves
    return bool(SECRET_NAME.search(key)) and not key.endswith(("_FILE", "_DIR"))


VAR_ONLY = re.compile(r"^\$\{[A-Z_][A-Z0-9_]*(:[?-][^}]*)?\}$")


def test_no_secret_is_written_into_the_file(raw: dict[str, Any]) -> None:
    text = COMPOSE.read_text()
    assert "PRIVATE KEY" not in text and "-----BEGIN" not in text
    # the reference file's airflow/airflow default password is not kept
    assert "airflow:airflow@" not in text and "POSTGRES_PASSWORD: airflow" not in text
    checked = 0
    for service in [raw["x-airflow-common"], *raw["services"].values()]:
        for key, value in (service.get("environment") or {}).items():
            value = str(value)
            if is_secret_name(key):
                assert VAR_ONLY.match(value), f"{key} must be a ${{VAR}} reference"
                checked += 1
            for password in URL_PASSWORD.findall(value):
                assert VAR_ONLY.match(password), f"{key} holds an inline URL password"
                checked += 1
    assert checked >= 8  # the rule looked at the real secrets, not at nothing


def test_key_material_is_a_read_only_secret_on_the_worker_only(raw: dict[str, Any]) -> None:
    declared = raw["secrets"]
    assert all(set(s) == {"file"} for s in declared.values())  # files on the host, not inline
    users = {n for n, s in raw["services"].items() if s.get("secrets")}
    assert users == {"airflow-worker"}
    assert set(raw["services"]["airflow-worker"]["secrets"]) == set(declared)
    # the SFTP connection's key file is the secret compose mounts at /run/secrets/<name>
    sftp = json.loads(env_example()["AIRFLOW_CONN_AUTOSYNK_SFTP"])
    assert sftp["extra"]["key_file"] == "/run/secrets/unikum_sftp_key"
    assert "unikum_sftp_key" in declared
    assert "host_key" in sftp["extra"] and "no_host_key_check" not in sftp["extra"]


def test_the_image_bakes_in_no_secrets_or_local_config() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert dockerfile.startswith("#") and "FROM ${AIRFLOW_IMAGE}" in dockerfile
    assert "ARG AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.11" in dockerfile
    copied = [line for line in dockerfile.splitlines() if line.startswith(("COPY", "ADD"))]
    assert copied, "the Dockerfile copies the project"
    for line in copied:
        assert not re.search(r"secrets|\.env|config/|\.asc|id_|\bkey", line), line
    assert "-c /opt/airflow/project/constraints.txt" in dockerfile


def test_env_example_holds_placeholders_only() -> None:
    values = env_example()
    for key, value in values.items():
        if is_secret_name(key) and value:
            assert value.startswith("<") and value.endswith(">"), key
    for conn in ("AUTOSYNK_SS12000", "AUTOSYNK_LDAP", "AUTOSYNK_SFTP"):
        parsed = json.loads(values[f"AIRFLOW_CONN_{conn}"])
        assert parsed.get("password", "<x>").startswith("<"), conn


# -- the local deployment (`make airflow-up`) is the same shape ------------------------------

#: settings that make the deployment what it is, equal in both
SHARED_SETTINGS = (
    "AIRFLOW__CORE__EXECUTOR",
    "AIRFLOW__CORE__AUTH_MANAGER",
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION",
    "AIRFLOW__CORE__LOAD_EXAMPLES",
    "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK",
    "AUTOSYNK_UI_TIMEZONE",
    "AUTOSYNK_POOL_REGISTER_READS",
    "AUTOSYNK_POOL_SFTP_UPLOADS",
)


def local_environment(tmp_path: Path) -> tuple[Any, dict[str, str]]:
    from scripts.local_airflow import Deployment, Settings

    deployment = Deployment(
        Settings.from_environment(
            {
                "AUTOSYNK_AIRFLOW_HOME": str(tmp_path),
                "AUTOSYNK_POOL_REGISTER_READS": "2",
                "AUTOSYNK_POOL_SFTP_UPLOADS": "2",
            }
        )
    )
    return deployment, deployment.environment()


def test_the_local_deployment_runs_the_same_components(
    rendered: dict[str, Any], tmp_path: Path
) -> None:
    deployment, _ = local_environment(tmp_path)
    compose_commands = {
        s["command"]
        for n, s in airflow_services(rendered).items()
        if n not in ("airflow-init", "airflow-cli", "flower")
    }
    local_commands = {" ".join(deployment.command(name)[1:3]) for name in deployment.components}
    assert local_commands == compose_commands
    assert compose_commands == {
        "api-server",
        "scheduler",
        "dag-processor",
        "triggerer",
        "celery worker",
    }


def test_the_local_deployment_has_the_same_settings(
    rendered: dict[str, Any], tmp_path: Path
) -> None:
    _, local = local_environment(tmp_path)
    compose = rendered["services"]["airflow-scheduler"]["environment"]
    for key in SHARED_SETTINGS:
        assert str(local[key]).lower() == str(compose[key]).lower(), key
    for key, prefix in (
        ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql+psycopg2://"),
        ("AIRFLOW__CELERY__RESULT_BACKEND", "db+postgresql://"),
        ("AIRFLOW__CELERY__BROKER_URL", "redis://"),
    ):
        assert local[key].startswith(prefix) and compose[key].startswith(prefix), key
    # the API on loopback only, and every secret made here, never a default
    assert local["AIRFLOW__API__HOST"] == "127.0.0.1"
    for key in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET"):
        assert len(local[key]) >= 32 and "<" not in local[key]
    assert (tmp_path / "secrets.json").stat().st_mode & 0o777 == 0o600


def test_airflow_init_creates_the_pools_the_dags_use(raw: dict[str, Any]) -> None:
    from autosynk_airflow.tenants import POOLS

    script = "\n".join(raw["services"]["airflow-init"]["command"])
    for pool, (variable, _, _) in POOLS.items():
        assert f'airflow pools set {pool} "$${{{variable}}}"' in script, pool
    env = raw["x-airflow-common"]["environment"]
    assert env["AUTOSYNK_TENANTS_DIR"] == "${AUTOSYNK_TENANTS_DIR:-}"
    assert "AUTOSYNK_TENANTS_DIR" in env_example()
