"""A real Airflow deployment on Celery, started once for the session.

``airflow_deployment`` (session) runs what ``make airflow-up`` runs
(``scripts/local_airflow.py``): api-server, scheduler, dag-processor, triggerer and two
Celery workers from the project's venv, the metadata database on PostgreSQL, Redis as the
broker, the project's ``dags/`` and ``plugins/``. Everything is on free loopback ports,
with a Celery queue of its own (deployments may share a Redis database) and a tenants
folder holding two municipalities:

- ``alfa``: staging in a PostgreSQL database of its own, delivering over SFTP to its own
  sshd through the Airflow connection ``autosynk_sftp_alfa``;
- ``beta``: staging in the schema ``beta`` of a shared database, delivering to another
  sshd through ``autosynk_sftp_beta``.

Both read a small demo register from their own folder and keep their own work base. More
municipalities can join while it runs (:meth:`AirflowDeployment.add_municipality`; the
dag-processor rereads the DAG file every few seconds); the connection
``autosynk_sftp_extra`` (alfa's server, its own upload folder ``/upload/extra``) is there
for them.

The tests that use it run together, in their own order (``pytest_collection_modifyitems``
below): last in one process, so that the deployment is not busy beside the other tests,
and first on one worker of their own under xdist. Test settings, all in
the deployment's own configuration: every task but ``report`` is
retried once, 2 s later (a cluster policy); a task whose worker vanished is failed after
20 s without a heartbeat; schedules never fire by themselves (runs are triggered). Set
``AUTOSYNK_TEST_REDIS_URL`` to give the broker a database of its own and
``AUTOSYNK_TEST_DB_PREFIX`` for the names of the databases made here.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest

from autosynk.demo.generate import generate
from scripts.local_airflow import Deployment, DeploymentError, Settings
from tests.airflow_rest import AirflowRest

if TYPE_CHECKING:  # imported when used: pytest registers tests.services.* as plugins
    from tests.services.smtp import Mailbox
    from tests.services.sshd import Sshd

PG = "postgres@127.0.0.1:5432"
NIGHTLY = "unikum_nightly_sync"
PASSWORD = "admin-password-for-tests"
#: the cluster policy of the test deployment: one quick retry instead of three slow ones
TEST_POLICY = """\
import datetime as dt


def task_policy(task):
    task.retries = 0 if task.task_id == "report" else 1
    task.retry_delay = dt.timedelta(seconds=2)
    task.retry_exponential_backoff = 0
"""


#: the test modules that use the deployment (nodeid paths): under xdist one worker runs them
DEPLOYMENT_MODULES = ("tests/test_airflow_approvals.py", "tests/test_airflow_deployment.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests on the deployment run together, so that it starts once and stops right after
    them. In one process they run last, instead of idling beside every other test of the
    session; under xdist (``-n``) they come first, as one unit for one worker
    (:func:`pytest_xdist_make_scheduler`), so that the other worker takes the rest of the
    suite while the deployment works."""
    uses = [item for item in items if "airflow_deployment" in getattr(item, "fixturenames", ())]
    elsewhere = sorted({i.nodeid.split("::")[0] for i in uses} - set(DEPLOYMENT_MODULES))
    if elsewhere:
        raise pytest.UsageError(f"add {', '.join(elsewhere)} to DEPLOYMENT_MODULES")
    others = [item for item in items if item not in uses]
    items[:] = uses + others if hasattr(config, "workerinput") else others + uses


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """xdist's scheduling by scope with every test its own scope, but one scope for the
    deployment's modules. (xdist's ``loadgroup`` would do it, but its group marks do not
    reach the node ids of pytest 9.)"""
    from xdist.scheduler import LoadScopeScheduling

    class DeploymentTestsTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return "airflow-deployment" if module in DEPLOYMENT_MODULES else nodeid

    return DeploymentTestsTogether(config, log)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _admin(sql: str) -> None:
    with psycopg.connect(f"postgresql://{PG}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def _forget_queue(redis_url: str, queue: str) -> None:
    """Remove this session's Celery queue from the broker (other sessions' stay)."""
    import redis

    with contextlib.suppress(redis.RedisError):
        client = redis.Redis.from_url(redis_url, socket_timeout=5)
        client.delete(queue, f"_kombu.binding.{queue}")
        client.close()


@dataclass
class Municipality:
    """One municipality of the test deployment and where to look at its nights."""

    name: str
    config: Path
    folder: Path  # its subfolder of the tenants folder: register, work base
    staging_url: str
    sftp: Sshd | None = None
    upload_dir: Path | None = None  # local path of its remote folder on the server

    @property
    def dag_id(self) -> str:
        return f"{NIGHTLY}__{self.name}"

    def delivered(self) -> list[str]:
        """The Unikum files on its server, sorted by name (temp names are not there)."""
        if self.upload_dir is None or not self.upload_dir.exists():
            return []
        return sorted(p.name for p in self.upload_dir.iterdir() if p.is_file())


@dataclass
class AirflowDeployment:
    deployment: Deployment
    api: AirflowRest
    tenants_dir: Path
    municipalities: dict[str, Municipality] = field(default_factory=dict)
    servers: dict[str, Sshd] = field(default_factory=dict)
    mailbox: Mailbox | None = None  # where its notices go (an SMTP server on loopback)

    @property
    def base_url(self) -> str:
        return self.deployment.settings.base_url

    def add_municipality(self, municipality: Municipality, config_text: str) -> Municipality:
        """Write its run configuration into the folder and wait until its DAG is parsed."""
        municipality.config.write_text(config_text, encoding="utf-8")
        self.municipalities[municipality.name] = municipality
        self.deployment.wait_for_dags([municipality.dag_id], timeout=120)
        return municipality

    def mails(self, about: str) -> list[str]:
        """The notices the deployment sent that name ``about`` (a run id), as texts."""
        return [text for text in self.mailbox.texts() if about in text] if self.mailbox else []

    def ensure_workers(self) -> None:
        """Restart any worker a test killed, and wait until it is ready."""
        for name in self.deployment.workers:
            if self.deployment.pid(name) is None:
                self.deployment.start(name)
        self.deployment.wait_healthy(180)


def municipality_config(
    m: Municipality, conn_id: str, remote_dir: str, municipality: str, schedule: str
) -> str:
    return (
        f"municipality: {municipality}\n"
        f"organisation_id: {m.name}-kommun\n"
        f"source: {{kind: ss12000-files, path: {m.name}/register}}\n"
        f"staging: {{url: '{m.staging_url}'}}\n"
        "target:\n"
        "  kind: sftp\n"
        f"  airflow_connection: {conn_id}\n"
        "  host: 127.0.0.1\n"
        "  username: autosynk-sftp\n"
        f"  remote_dir: {remote_dir}\n"
        f"work_base: {m.name}/work\n"
        f"schedules: {{{NIGHTLY}: '{schedule}'}}\n"
    )


def sftp_connection(server: Sshd) -> str:
    return json.dumps(
        {
            "conn_type": "sftp",
            "host": server.host,
            "port": server.port,
            "login": server.username,
            "extra": {
                "key_file": str(server.private_key),
                "host_key": server.host_key,
                "conn_timeout": 5,
            },
        }
    )


@pytest.fixture(scope="session")
def airflow_deployment() -> Iterator[AirflowDeployment]:
    from tests.services.smtp import running_smtp
    from tests.services.sshd import running_sshd

    if shutil.which("redis-server") is None and not os.environ.get("AUTOSYNK_TEST_REDIS_URL"):
        pytest.skip("the Airflow deployment needs Redis: apt-get install -y redis-server")
    prefix = os.environ.get("AUTOSYNK_TEST_DB_PREFIX", "autosynk_test_")
    token = uuid.uuid4().hex[:8]
    meta_db, alfa_db, shared_db = (f"{prefix}{part}_{token}" for part in ("af", "alfa", "shared"))
    home = Path(tempfile.mkdtemp(prefix="autosynk-airflow-deployment-"))
    tenants = home / "tenants"
    with ExitStack() as stack:
        for name in (meta_db, alfa_db, shared_db):
            _admin(f'CREATE DATABASE "{name}"')
            stack.callback(_admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        with psycopg.connect(f"postgresql://{PG}/{shared_db}", autocommit=True) as conn:
            conn.execute("CREATE SCHEMA beta")
        servers = {
            "alfa": stack.enter_context(running_sshd("alfa")),
            "beta": stack.enter_context(running_sshd("beta")),
        }
        staging = {
            "alfa": f"postgresql+psycopg://{PG}/{alfa_db}",
            "beta": f"postgresql+psycopg://{PG}/{shared_db}?options=-csearch_path%3Dbeta",
        }
        municipalities = {}
        for seed, name in ((21, "alfa"), (22, "beta")):
            folder = tenants / name
            generate(folder / "register", seed=seed, scale="small")
            server = servers[name]
            upload, remote = server.user_dir(name)
            municipalities[name] = Municipality(
                name=name,
                config=tenants / f"{name}.yaml",
                folder=folder,
                staging_url=staging[name],
                sftp=server,
                upload_dir=upload,
            )
            slot = "30 20 * * *" if name == "alfa" else "45 20 * * *"
            municipalities[name].config.write_text(
                municipality_config(
                    municipalities[name], f"autosynk_sftp_{name}", remote, name.title(), slot
                )
            )
        extra_conns = {
            f"AIRFLOW_CONN_AUTOSYNK_SFTP_{name.upper()}": sftp_connection(server)
            for name, server in servers.items()
        }
        extra_conns["AIRFLOW_CONN_AUTOSYNK_SFTP_EXTRA"] = sftp_connection(servers["alfa"])
        mailbox = stack.enter_context(running_smtp())
        extra_conns.update(
            {
                "AIRFLOW_CONN_AUTOSYNK_MAIL": mailbox.connection(),
                "AUTOSYNK_NOTIFY_EMAIL_CONN_ID": "autosynk_mail",
                "AUTOSYNK_NOTIFY_EMAIL_TO": "integration@example.se",
                "AUTOSYNK_NOTIFY_EMAIL_FROM": "autosynk@example.se",
            }
        )
        settings = Settings(
            home=home / "airflow",
            port=_free_port(),
            metadata_db=f"postgresql+psycopg2://{PG}/{meta_db}",
            redis_url=os.environ.get("AUTOSYNK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
            workers=2,
            worker_concurrency=2,
            queue=f"autosynk-test-{token}",
            tenants_dir=tenants,
            admin_password=PASSWORD,
            worker_log_server_port=_free_port(),
            trigger_log_server_port=_free_port(),
            scheduler_health_port=_free_port(),
            extra_env={
                **extra_conns,
                "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            },
            local_settings=TEST_POLICY,
        )
        deployment = Deployment(settings)
        stack.callback(_forget_queue, settings.redis_url, settings.queue)
        stack.callback(shutil.rmtree, home, True)
        stack.callback(deployment.down, 10.0)
        started = time.monotonic()
        try:
            deployment.up(timeout=300, wait_for_dags=[m.dag_id for m in municipalities.values()])
        except DeploymentError as exc:
            pytest.fail(f"the Airflow deployment did not start: {exc}")
        took = time.monotonic() - started
        print(f"\nAirflow deployment up in {took:.1f} s at {settings.base_url}")
        api = AirflowRest(settings.base_url, "admin", PASSWORD)
        api.token()
        yield AirflowDeployment(deployment, api, tenants, municipalities, servers, mailbox)
