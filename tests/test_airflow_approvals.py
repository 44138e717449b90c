"""Approvals on the real Airflow deployment, answered through the REST API as the UI does.

A municipality of its own (``omega``) joins the session's deployment. Its refused night
waits at the approval task, is approved through *Required actions*' endpoint and delivers
exactly its plan, once; a refused night that is rejected delivers nothing; the register's
school-year change waits at the school-year DAG's approval, is approved, and the next
nightly delivers nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import shutil
import time

import pytest

from autosynk.demo.generate import generate
from autosynk.demo.rollover import rollover
from autosynk.pipeline import local_now
from autosynk.staging.store import Staging
from tests.services.airflow_deployment import AirflowDeployment, Municipality

pytestmark = [pytest.mark.airflow, pytest.mark.postgres]

NAME = "omega"
NIGHTLY = f"unikum_nightly_sync__{NAME}"
SCHOOL_YEAR = f"unikum_school_year_change__{NAME}"


@pytest.fixture(scope="module")
def omega(airflow_deployment: AirflowDeployment) -> Municipality:
    d = airflow_deployment
    folder = d.tenants_dir / NAME
    config = d.tenants_dir / f"{NAME}.yaml"
    day = local_now(load_config_for_clock()).date()
    generate(folder / "register", seed=51, scale="small", today=day)
    town = Municipality(
        name=NAME,
        config=config,
        folder=folder,
        staging_url=f"sqlite:///{folder}/state/staging.db",
    )
    d.add_municipality(
        town,
        f"municipality: {NAME.title()}\norganisation_id: {NAME}-kommun\n"
        f"source: {{kind: ss12000-files, path: {NAME}/register}}\n"
        f"staging: {{url: '{town.staging_url}'}}\n"
        f"target: {{kind: directory, path: {NAME}/out}}\n"
        f"work_base: {NAME}/work\n",
    )
    d.deployment.wait_for_dags([SCHOOL_YEAR], timeout=120)
    for dag_id in (NIGHTLY, SCHOOL_YEAR):
        d.api.unpause(dag_id)
    return town


def load_config_for_clock():
    from autosynk.config import RunConfig

    return RunConfig.model_validate(
        {
            "municipality": "x",
            "organisation_id": "x",
            "source": {"kind": "ss12000-files", "path": "."},
            "target": {"kind": "directory", "path": "."},
        }
    )


def files(town: Municipality) -> dict[str, bytes]:
    out = town.folder / "out"
    return {p.name: p.read_bytes() for p in sorted(out.glob(f"{NAME.title()}_*"))}


def delivered_relations(town: Municipality) -> set[tuple[str, str, str]]:
    staging = Staging(town.staging_url)
    try:
        return set(staging.delivered_relations().itertuples(index=False, name=None))
    finally:
        staging.dispose()


def vanish_children(town: Municipality, share: float, seed: int) -> None:
    path = town.folder / "register" / "persons.json"
    persons = json.loads(path.read_text(encoding="utf-8"))["data"]
    children = [p["id"] for p in persons if p.get("enrolments")]
    gone = set(random.Random(seed).sample(children, int(len(children) * share)))
    kept = [p for p in persons if p["id"] not in gone]
    path.write_text(json.dumps({"data": kept}, ensure_ascii=False), encoding="utf-8")


def wait_for_question(d: AirflowDeployment, dag_id: str, run_id: str) -> dict:
    """The approval task's question, once *Required actions* lists it."""
    d.api.wait_for_task(dag_id, run_id, "approval", {"awaiting_input", "deferred"}, timeout=300)
    (question,) = d.api.hitl_requests(dag_id, run_id)
    return question


#: an identity number written out in full
FULL_NUMBER = re.compile(r"(?<!\d)(?:19|20)\d{6}[-+]?\d{4}(?!\d)")


def wait_for_mail(d: AirflowDeployment, run_id: str, count: int = 1) -> list[str]:
    deadline = time.monotonic() + 60
    while len(d.mails(run_id)) < count and time.monotonic() < deadline:
        time.sleep(0.5)
    return d.mails(run_id)


def test_a_refused_night_waits_and_delivers_its_plan_once_approved(
    airflow_deployment: AirflowDeployment, omega: Municipality
) -> None:
    d, api = airflow_deployment, airflow_deployment.api
    first = api.trigger(NIGHTLY)
    assert api.wait_for_run(NIGHTLY, first, timeout=300) == "success", api.explain(NIGHTLY, first)
    assert api.task_states(NIGHTLY, first)["approval"] == "skipped"  # guards passed
    before_files, before_state = files(omega), delivered_relations(omega)
    assert len(before_files) == 2

    vanish_children(omega, 0.4, seed=3)
    refused = api.trigger(NIGHTLY)
    question = wait_for_question(d, NIGHTLY, refused)
    assert "Refused by its guards" in question["body"]
    assert "student_in_school" in question["body"] and "report.html" in question["body"]
    (notice,) = wait_for_mail(d, refused)  # a person is told the plan waits
    plan_id = Staging(omega.staging_url).get_run(refused)["plan_id"]
    assert f"plan {plan_id} of {NIGHTLY} waits for approval" in notice
    assert "report.html" in notice and not FULL_NUMBER.search(notice.replace(refused, ""))
    assert files(omega) == before_files and delivered_relations(omega) == before_state

    run = Staging(omega.staging_url).get_run(refused)
    assert run["status"] == "refused"
    package = omega.folder / "work" / _run_dir(refused) / "package" / "out"
    frozen = {f["name"]: (package / f["name"]).read_bytes() for f in run["plan"]["files"]}

    api.answer_hitl(NIGHTLY, refused, "approval", ["Approve"])
    assert api.wait_for_run(NIGHTLY, refused, timeout=300) == "success", api.explain(
        NIGHTLY, refused
    )
    new = {k: v for k, v in files(omega).items() if k not in before_files}
    assert new == frozen  # exactly the plan's bytes, delivered once
    ledger = Staging(omega.staging_url).get_run(refused)
    assert ledger["status"] == "committed"
    assert ledger["plan"]["approved_by"].startswith("airflow:")
    assert delivered_relations(omega) != before_state


def test_a_rejected_night_delivers_nothing(
    airflow_deployment: AirflowDeployment, omega: Municipality
) -> None:
    d, api = airflow_deployment, airflow_deployment.api
    before_files, before_state = files(omega), delivered_relations(omega)
    shutil.copytree(omega.folder / "register", omega.folder / "register-delivered")
    vanish_children(omega, 0.5, seed=4)
    refused = api.trigger(NIGHTLY)
    wait_for_question(d, NIGHTLY, refused)
    api.answer_hitl(NIGHTLY, refused, "approval", ["Reject"])
    assert api.wait_for_run(NIGHTLY, refused, timeout=300) == "failed"
    waiting, ended = wait_for_mail(d, refused, 2)  # waits for approval, then did not complete
    assert "did not complete" in ended and "was rejected or not answered in time" in ended
    assert "report.html" in ended
    assert "waits for approval" in waiting
    states = api.task_states(NIGHTLY, refused)
    assert states["deliver"] == states["commit_state"] == "skipped"
    assert files(omega) == before_files and delivered_relations(omega) == before_state
    staging = Staging(omega.staging_url)
    assert staging.get_run(refused)["status"] == "rejected"
    assert staging.lock_holder() is None


def test_the_school_year_change_is_approved_through_the_api(
    airflow_deployment: AirflowDeployment, omega: Municipality
) -> None:
    d, api = airflow_deployment, airflow_deployment.api
    # the register is as delivered again, and makes its own year change
    shutil.rmtree(omega.folder / "register")
    shutil.copytree(omega.folder / "register-delivered", omega.folder / "register")
    rollover(omega.folder / "register", seed=5, today=_today())
    before_files = files(omega)

    effective = dt.date(_today().year + (1 if _today().month >= 7 else 0), 7, 1)
    year = f"{effective.year}/{(effective.year + 1) % 100:02d}"
    change = api.trigger(SCHOOL_YEAR, {"school_year": year})
    question = wait_for_question(d, SCHOOL_YEAR, change)
    assert "School-year checklist" in question["body"]
    assert "Leavers" in question["body"] and "(blocking)" not in question["body"]
    assert files(omega) == before_files

    # meanwhile the nightly cannot run: the lock is the school-year change's
    blocked = api.trigger(NIGHTLY)
    assert api.wait_for_run(NIGHTLY, blocked, timeout=300) == "failed"
    log = "\n".join(api.task_log(NIGHTLY, blocked, "prepare", 1))
    assert "waiting for approval of plan" in log
    assert files(omega) == before_files

    api.answer_hitl(SCHOOL_YEAR, change, "approval", ["Approve"])
    assert api.wait_for_run(SCHOOL_YEAR, change, timeout=300) == "success", api.explain(
        SCHOOL_YEAR, change
    )
    assert len(files(omega)) == len(before_files) + 2

    after = files(omega)
    next_night = api.trigger(NIGHTLY)
    assert api.wait_for_run(NIGHTLY, next_night, timeout=300) == "success"
    assert files(omega) == after  # nothing to deliver after the change


def _today() -> dt.date:
    return local_now(load_config_for_clock()).date()


def _run_dir(run_id: str) -> str:
    from autosynk.workspace import safe_run_dir

    return safe_run_dir(run_id)
