"""A local Airflow deployment from the project's own venv, in the shape of docker-compose.yml.

    python scripts/local_airflow.py up       # start; prints the UI address and the login
    python scripts/local_airflow.py down     # stop what `up` started
    python scripts/local_airflow.py status   # which components run

(`make airflow-up` / `make airflow-down` call these.) The components are those of the
compose file: the api-server (UI, REST and execution API) on 127.0.0.1, the scheduler, the
dag-processor, the triggerer and Celery workers, with the metadata database on PostgreSQL
and Redis as the Celery broker. They run as processes of this machine, each in its own
session, their PIDs and logs under the Airflow home.

Settings, all optional, by environment variable:

    AUTOSYNK_AIRFLOW_HOME     the Airflow home (default .airflow in the project)
    AUTOSYNK_AIRFLOW_PORT     the api-server's port on 127.0.0.1 (default 8080)
    AUTOSYNK_AIRFLOW_DB       the metadata database, created when missing
                              (default postgresql+psycopg2://postgres@127.0.0.1:5432/autosynk_airflow)
    AUTOSYNK_REDIS_URL        the Celery broker (default redis://127.0.0.1:6379/0); when
                              nothing answers there on loopback, a redis-server is started
    AUTOSYNK_CELERY_WORKERS   how many Celery workers (default 1)
    AUTOSYNK_TENANTS_DIR      the municipalities' run configurations (default: the two demo
                              municipalities in examples/tenants/)
    AIRFLOW_ADMIN_PASSWORD    the UI user admin's password; without it one is generated
                              once, kept in the home, and printed
    AUTOSYNK_UI_TIMEZONE      the UI's default time zone (default Europe/Stockholm)
    AUTOSYNK_POOL_REGISTER_READS, AUTOSYNK_POOL_SFTP_UPLOADS   pool sizes (default 2 each)

Everything an `airflow` command needs to talk to this deployment is written to
``<home>/environment`` (mode 0600): ``source .airflow/environment`` and run ``airflow ...``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psutil

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
DEMO_TENANTS = ROOT / "examples" / "tenants"
DEFAULT_DB = "postgresql+psycopg2://postgres@127.0.0.1:5432/autosynk_airflow"
CORE_COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
ADMIN = "admin"
#: the caller's variables a component must not inherit
NOT_PASSED_ON = frozenset(
    {"AIRFLOW_HOME", "AIRFLOW_CONFIG", "AUTOSYNK_CONFIG", "PYTEST_CURRENT_TEST"}
)


@dataclass
class Settings:
    """Where and how the deployment runs; ``from_environment`` reads the documented variables."""

    home: Path
    port: int = 8080
    metadata_db: str = DEFAULT_DB
    redis_url: str = "redis://127.0.0.1:6379/0"
    workers: int = 1
    worker_concurrency: int = 4
    #: the Celery queue: deployments sharing one Redis database need queues of their own
    queue: str = "default"
    tenants_dir: Path | None = DEMO_TENANTS
    admin_password: str | None = None
    ui_timezone: str = "Europe/Stockholm"
    worker_log_server_port: int = 8793
    trigger_log_server_port: int = 8794
    scheduler_health_port: int = 8974
    pool_sizes: Mapping[str, str] = field(default_factory=dict)
    #: more environment for every component (tests: AIRFLOW_CONN_*, short time-outs)
    extra_env: Mapping[str, str] = field(default_factory=dict)
    #: the text of airflow_local_settings.py (cluster policies), if any
    local_settings: str | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Settings:
        tenants = environ.get("AUTOSYNK_TENANTS_DIR")
        return cls(
            home=Path(environ.get("AUTOSYNK_AIRFLOW_HOME") or ROOT / ".airflow").absolute(),
            port=int(environ.get("AUTOSYNK_AIRFLOW_PORT") or 8080),
            metadata_db=environ.get("AUTOSYNK_AIRFLOW_DB") or DEFAULT_DB,
            redis_url=environ.get("AUTOSYNK_REDIS_URL") or "redis://127.0.0.1:6379/0",
            workers=int(environ.get("AUTOSYNK_CELERY_WORKERS") or 1),
            tenants_dir=Path(tenants).absolute() if tenants else DEMO_TENANTS,
            admin_password=environ.get("AIRFLOW_ADMIN_PASSWORD") or None,
            ui_timezone=environ.get("AUTOSYNK_UI_TIMEZONE") or "Europe/Stockholm",
            pool_sizes={
                k: v
                for k, v in environ.items()
                if k in ("AUTOSYNK_POOL_REGISTER_READS", "AUTOSYNK_POOL_SFTP_UPLOADS")
            },
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class DeploymentError(RuntimeError):
    """The deployment could not be started or stopped; the message says why and where."""


class Deployment:
    """Start, watch and stop the components; a test can kill and restart any one of them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.home
        self.pids = self.home / "pids"
        self.logs = self.home / "component-logs"
        self._password: tuple[str, str] | None = None

    # -- what every component shares ------------------------------------------------------

    @property
    def components(self) -> list[str]:
        return [*CORE_COMPONENTS, *self.workers]

    @property
    def workers(self) -> list[str]:
        return [f"worker-{n}" for n in range(1, self.settings.workers + 1)]

    def _secrets(self) -> dict[str, str]:
        """Keys every component must share, made once and kept (0600) across restarts."""
        path = self.home / "secrets.json"
        if path.exists():
            kept: dict[str, str] = json.loads(path.read_text())
            return kept
        from cryptography.fernet import Fernet

        made = {
            "fernet_key": Fernet.generate_key().decode(),
            "jwt_secret": secrets.token_hex(32),
            "api_secret_key": secrets.token_hex(32),
        }
        _write_private(path, json.dumps(made))
        return made

    @property
    def passwords_file(self) -> Path:
        return self.home / "simple_auth_manager_passwords.json"

    def admin_password(self) -> tuple[str, str]:
        """The admin's password and where it came from (given, kept or generated)."""
        if self._password is None:
            self._password = self._admin_password()
        return self._password

    def _admin_password(self) -> tuple[str, str]:
        given = self.settings.admin_password
        if given:
            _write_private(self.passwords_file, json.dumps({ADMIN: given}))
            return given, "from AIRFLOW_ADMIN_PASSWORD"
        if self.passwords_file.exists():
            with contextlib.suppress(ValueError, KeyError):
                return str(json.loads(self.passwords_file.read_text())[ADMIN]), "kept from before"
        made = secrets.token_urlsafe(18)
        _write_private(self.passwords_file, json.dumps({ADMIN: made}))
        return made, "generated"

    def environment(self) -> dict[str, str]:
        """The Airflow configuration of every component, as docker-compose.yml sets it."""
        s = self.settings
        keys = self._secrets()
        backend = "db+" + _without_driver(s.metadata_db)
        env = {
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.passwords_file),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": s.metadata_db,
            "AIRFLOW__CELERY__RESULT_BACKEND": backend,
            "AIRFLOW__CELERY__BROKER_URL": s.redis_url,
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(s.worker_concurrency),
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": s.queue,
            "AIRFLOW__CORE__FERNET_KEY": keys["fernet_key"],
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "true",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "false",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{s.base_url}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": keys["jwt_secret"],
            "AIRFLOW__API__SECRET_KEY": keys["api_secret_key"],
            "AIRFLOW__API__BASE_URL": s.base_url,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(s.port),
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "true",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": "127.0.0.1",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(s.scheduler_health_port),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(s.worker_log_server_port),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(s.trigger_log_server_port),
            "AUTOSYNK_UI_TIMEZONE": s.ui_timezone,
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        }
        if s.tenants_dir is not None:
            env["AUTOSYNK_TENANTS_DIR"] = str(s.tenants_dir)
        env.update(s.pool_sizes)
        env.update(s.extra_env)
        return env

    def _process_env(self) -> dict[str, str]:
        """This process's environment without Airflow settings of its own, then ours."""
        # the caller's own Airflow settings (a test session's, say) must not leak in;
        # connections (AIRFLOW_CONN_*) and secrets named by the run configurations may
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("AIRFLOW__") and k not in NOT_PASSED_ON
        }
        return {**base, **self.environment()}

    # -- up -------------------------------------------------------------------------------

    def up(self, timeout: float = 300.0, *, wait_for_dags: Iterable[str] = ()) -> None:
        """Start everything not running yet and wait until all of it is healthy."""
        self.home.mkdir(parents=True, exist_ok=True)
        for folder in (self.pids, self.logs, self.home / "config"):
            folder.mkdir(exist_ok=True)
        if self.settings.local_settings is not None:
            (self.home / "config" / "airflow_local_settings.py").write_text(
                self.settings.local_settings
            )
        self.ensure_redis()
        self.ensure_database()
        self.admin_password()
        env = self._process_env()
        exports = sorted(self.environment().items())
        _write_private(
            self.home / "environment",
            "".join(f"export {k}={shlex.quote(v)}\n" for k, v in exports),
        )
        self._airflow(["db", "migrate"], env, timeout=timeout)
        pools = self._write_pools()
        importing = subprocess.Popen(
            [str(VENV_BIN / "airflow"), "pools", "import", str(pools)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in self.components:
            if self.pid(name) is None:
                self.start(name)
        _, errors = importing.communicate(timeout=timeout)
        if importing.returncode != 0:
            raise DeploymentError(f"airflow pools import failed: {errors.strip()[-500:]}")
        self.wait_healthy(timeout)
        if wait_for_dags:
            self.wait_for_dags(wait_for_dags, timeout)

    def _write_pools(self) -> Path:
        sys.path.insert(0, str(ROOT / "plugins"))
        try:
            from autosynk_airflow.tenants import pool_sizes
        finally:
            sys.path.pop(0)
        env = {**os.environ, **self.settings.pool_sizes}
        pools = {
            name: {"slots": size, "description": description, "include_deferred": False}
            for name, (size, description) in pool_sizes(env).items()
        }
        path = self.home / "pools.json"
        path.write_text(json.dumps(pools, indent=2))
        return path

    def _airflow(self, args: list[str], env: Mapping[str, str], timeout: float) -> str:
        done = subprocess.run(
            [str(VENV_BIN / "airflow"), *args],
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip()[-1500:]
            raise DeploymentError(f"airflow {' '.join(args)} failed:\n{tail}")
        return done.stdout

    def command(self, name: str) -> list[str]:
        airflow = str(VENV_BIN / "airflow")
        if name in CORE_COMPONENTS:
            return [airflow, name]
        if name == "redis":
            parts = urlsplit(self.settings.redis_url)
            return [
                shutil.which("redis-server") or "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(parts.port or 6379),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.home),
            ]
        if name in self.workers:
            command = [
                airflow,
                "celery",
                "worker",
                "--celery-hostname",
                f"{name}@%h",
                "--pid",
                str(self.pids / f"{name}.celery.pid"),
            ]
            if name != self.workers[0]:
                command.append("--skip-serve-logs")  # the first worker serves the log files
            return command
        raise DeploymentError(f"no component {name!r}")

    def start(self, name: str) -> int:
        """Start one component in its own session; its PID is its process group."""
        log_path = self.logs / f"{name}.log"
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                self.command(name),
                env=self._process_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.home,
            )
        (self.pids / f"{name}.pid").write_text(f"{process.pid}\n")
        return process.pid

    def pid(self, name: str) -> int | None:
        """The component's PID while it runs (a stale PID file counts as not running)."""
        path = self.pids / f"{name}.pid"
        try:
            pid = int(path.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    # -- health ---------------------------------------------------------------------------

    def health(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(  # noqa: S310 - our own loopback URL
                f"{self.settings.base_url}/api/v2/monitor/health", timeout=5
            ) as response:
                found: dict[str, Any] = json.loads(response.read())
                return found
        except (OSError, ValueError, urllib.error.URLError):
            return None

    def worker_ready(self, name: str) -> bool:
        log = self.logs / f"{name}.log"
        return (
            self.pid(name) is not None
            and log.exists()
            and f"{name}@" in log.read_text(errors="replace")
            and " ready." in log.read_text(errors="replace")
        )

    def wait_healthy(self, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        missing: list[str] = []
        while time.monotonic() < deadline:
            dead = [name for name in self.components if self.pid(name) is None]
            if dead:
                raise DeploymentError(
                    f"{', '.join(dead)} exited; see {self.logs}/{dead[0]}.log:\n"
                    + _tail(self.logs / f"{dead[0]}.log")
                )
            health = self.health() or {}
            missing = [
                part
                for part in ("metadatabase", "scheduler", "triggerer", "dag_processor")
                if (health.get(part) or {}).get("status") != "healthy"
            ]
            missing += [name for name in self.workers if not self.worker_ready(name)]
            if not missing:
                return
            time.sleep(0.5)
        raise DeploymentError(f"not healthy after {timeout:.0f} s: {', '.join(missing)}")

    def wait_for_dags(self, dag_ids: Iterable[str], timeout: float = 120.0) -> None:
        """Wait until the dag-processor has serialized these DAGs (they show in the UI)."""
        import psycopg

        wanted = set(dag_ids)
        deadline = time.monotonic() + timeout
        url = _libpq_url(self.settings.metadata_db)
        found: set[str] = set()
        while time.monotonic() < deadline:
            with contextlib.suppress(psycopg.Error), psycopg.connect(url) as conn:
                rows = conn.execute("SELECT dag_id FROM serialized_dag").fetchall()
                found = {row[0] for row in rows}
            if wanted <= found:
                return
            time.sleep(0.5)
        raise DeploymentError(f"DAGs not parsed after {timeout:.0f} s: {sorted(wanted - found)}")

    # -- services it needs ----------------------------------------------------------------

    def ensure_database(self) -> None:
        """Create the metadata database when it does not exist yet."""
        import psycopg

        parts = urlsplit(_libpq_url(self.settings.metadata_db))
        name = parts.path.lstrip("/")
        admin = urlunsplit(parts._replace(path="/postgres"))
        try:
            with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
                exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if exists.fetchone() is None:
                    conn.execute(f'CREATE DATABASE "{name}"')
        except psycopg.Error as exc:
            raise DeploymentError(
                f"PostgreSQL at {parts.hostname}:{parts.port or 5432} is not usable ({exc}); "
                "start it (make setup) or set AUTOSYNK_AIRFLOW_DB"
            ) from None

    def ensure_redis(self) -> None:
        """Use the Redis the broker URL names; start one on loopback when none answers."""
        parts = urlsplit(self.settings.redis_url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 6379
        if _redis_answers(host, port):
            return
        if host not in ("127.0.0.1", "localhost"):
            raise DeploymentError(f"no Redis answers at {host}:{port} ({self.settings.redis_url})")
        if shutil.which("redis-server") is None:
            raise DeploymentError("no Redis on loopback and no redis-server: make setup")
        self.start("redis")
        deadline = time.monotonic() + 20
        while not _redis_answers(host, port):
            if time.monotonic() > deadline or self.pid("redis") is None:
                raise DeploymentError(f"redis-server did not start; see {self.logs}/redis.log")
            time.sleep(0.1)

    # -- down and faults ------------------------------------------------------------------

    def stop(self, name: str, timeout: float = 30.0) -> None:
        """Stop one component (SIGTERM to its process group, SIGKILL after ``timeout``)."""
        pid = self.pid(name)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(FileNotFoundError):
            (self.pids / f"{name}.pid").unlink()

    def kill(self, name: str) -> list[int]:
        """SIGKILL a component and every process under it (a machine lost); return the PIDs.

        Task processes put themselves in process groups of their own, so the tree is
        walked by parent PID, not by group.
        """
        pid = self.pid(name)
        if pid is None:
            return []
        try:
            victims = [pid, *(p.pid for p in psutil.Process(pid).children(recursive=True))]
        except psutil.NoSuchProcess:
            return []
        for victim in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
        return victims

    def down(self, timeout: float = 30.0) -> list[str]:
        """Stop every component: SIGTERM to all at once, SIGKILL what is left after ``timeout``."""
        running = {name: self.pid(name) for name in [*reversed(self.components), "redis"]}
        stopping = {name: pid for name, pid in running.items() if pid is not None}
        for pid in stopping.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while any(_alive(pid) for pid in stopping.values()) and time.monotonic() < deadline:
            time.sleep(0.1)
        for name, pid in stopping.items():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(FileNotFoundError):
                (self.pids / f"{name}.pid").unlink()
        return list(stopping)

    def status(self) -> dict[str, int | None]:
        return {name: self.pid(name) for name in [*self.components, "redis"]}


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    path.chmod(0o600)


def _without_driver(url: str) -> str:
    """``postgresql+psycopg2://...`` -> ``postgresql://...`` (Celery's result backend)."""
    scheme, rest = url.split("://", 1)
    return f"{scheme.split('+', 1)[0]}://{rest}"


def _libpq_url(url: str) -> str:
    return _without_driver(url)


def _redis_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _demo_registers(tenants: Path) -> None:
    """Generate the demo municipalities' registers the first time (as `make demo` does)."""
    for seed, name in ((7, "exempelby"), (11, "provby")):
        register = tenants / name / "register"
        if tenants == DEMO_TENANTS and not (register / "persons.json").exists():
            subprocess.run(
                [
                    str(VENV_BIN / "autosynk"),
                    "demo",
                    "generate",
                    "--out",
                    str(register),
                    "--seed",
                    str(seed),
                    "--scale",
                    "small",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            print(f"generated a demo register for {name} in {register}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("action", choices=["up", "down", "status"])
    args = parser.parse_args(argv)
    deployment = Deployment(Settings.from_environment(os.environ))
    try:
        if args.action == "down":
            stopped = deployment.down()
            print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
            return 0
        if args.action == "status":
            for name, pid in deployment.status().items():
                print(f"{name:14} {'running, pid ' + str(pid) if pid else 'stopped'}")
            return 0
        if deployment.settings.tenants_dir == DEMO_TENANTS:
            _demo_registers(DEMO_TENANTS)
        started = time.monotonic()
        deployment.up()
    except (DeploymentError, subprocess.SubprocessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    password, origin = deployment.admin_password()
    s = deployment.settings
    print(f"Airflow is up on Celery ({s.workers} worker(s)) in {time.monotonic() - started:.0f} s")
    print(f"  UI and REST API   {s.base_url}   user {ADMIN}, password {password} ({origin})")
    print(f"  municipalities    {s.tenants_dir}")
    print(f"  logs              {deployment.logs}  (task logs: {s.home}/logs)")
    print(f"  airflow CLI       source {s.home}/environment && airflow dags list")
    print("  stop              make airflow-down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
