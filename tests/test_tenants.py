"""The tenants folder: names, what parse time reads, isolation, and how a task finds its file."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from autosynk.config import load_config
from autosynk.errors import ConfigError
from autosynk.tenants import (
    NAME,
    check_isolation,
    config_path_of,
    discover,
    tenant_name,
    tenants_dir,
)
from autosynk_airflow import tenants as airflow_tenants


@pytest.mark.parametrize(
    ("file_name", "expected"),
    [
        ("exempelby.yaml", "exempelby"),
        ("Malmö.yaml", "malmo"),
        ("Upplands Väsby.yml", "upplands_vasby"),
        ("Håbo.YAML", "habo"),
        ("Ale--kommun.yaml", "ale--kommun"),
        ("a__b.yaml", "a_b"),  # "__" separates DAG and municipality in DAG ids
        ("  Örebro kommun (test) .yaml", "orebro_kommun_test"),
        ("Strängnäs_2.yaml", "strangnas_2"),
        ("ÅÄÖ.yaml", "aao"),
        ("Straße.yaml", "stra_e"),  # no ASCII decomposition: a separator, not a silent drop
        ("日本.yaml", ""),  # nothing usable left
        ("-.yaml", ""),
    ],
)
def test_tenant_name(file_name: str, expected: str) -> None:
    assert tenant_name(file_name) == expected
    if expected:
        assert NAME.match(expected)


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("malmo", True),
        ("upplands_vasby", True),
        ("a-b", True),
        ("a__b", False),
        ("_a", False),
        ("a_", False),
        ("Malmo", False),
        ("", False),
    ],
)
def test_name_pattern(name: str, valid: bool) -> None:
    assert bool(NAME.match(name)) is valid


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, None),
        ({"AUTOSYNK_TENANTS_DIR": ""}, None),
        ({"AUTOSYNK_TENANTS_DIR": "  "}, None),
        ({"AUTOSYNK_TENANTS_DIR": "/srv/tenants"}, Path("/srv/tenants")),
    ],
)
def test_tenants_dir(environ: dict[str, str], expected: Path | None) -> None:
    assert tenants_dir(environ) == expected


def _config(
    folder: Path, name: str, *, staging: str | None = None, work: str | None = None
) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(
        f"municipality: {name.title()}\norganisation_id: {name}\n"
        f"source: {{kind: ss12000-files, path: {name}/register}}\n"
        f"staging: {{url: 'sqlite:///{staging or name + '/staging.db'}'}}\n"
        f"target: {{kind: directory, path: {name}/out}}\n"
        f"work_base: {work or name + '/work'}\n",
        encoding="utf-8",
    )
    return path


def test_discover_reads_the_folder_and_the_few_keys_parsing_needs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _config(tmp_path, "alfa")
    (tmp_path / "Beta.yml").write_text(
        "municipality: Béta\ntimezone: Europe/Helsinki\n"
        "schedules: {unikum_nightly_sync: '5 21 * * *', other: 7}\n"
    )
    (tmp_path / "gamma.yaml").write_text("municipality: [not closed\n")
    (tmp_path / "delta.yaml").write_text("- a list, not a mapping\n")
    (tmp_path / "_mapping.yaml").write_text("{}\n")
    (tmp_path / ".hidden.yaml").write_text("{}\n")
    (tmp_path / "notes.txt").write_text("not a configuration\n")
    (tmp_path / "alfa").mkdir()
    (tmp_path / "alfa" / "mapping.yaml").write_text("{}\n")
    (tmp_path / "ALFA.yaml").write_text("municipality: Alfa again\n")  # sorts first, yet...
    (tmp_path / "日本.yaml").write_text("{}\n")
    with caplog.at_level(logging.ERROR, logger="autosynk"):
        found = discover(tmp_path)
    assert [t.name for t in found] == ["alfa", "beta", "delta", "gamma"]
    by_name = {t.name: t for t in found}
    assert by_name["alfa"].config_path == tmp_path / "alfa.yaml"  # ...the exact name wins
    assert by_name["alfa"].municipality == "Alfa"
    assert by_name["beta"].municipality == "Béta"
    assert by_name["beta"].timezone == "Europe/Helsinki"
    assert dict(by_name["beta"].schedules) == {"unikum_nightly_sync": "5 21 * * *"}
    assert by_name["gamma"].municipality is None and dict(by_name["gamma"].schedules) == {}
    assert by_name["delta"].municipality is None
    # the files left out are named in the log, with what to do
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "ALFA.yaml: its tenant name 'alfa' is taken by alfa.yaml" in messages
    assert "日本.yaml" in messages and "no usable tenant name" in messages


def test_a_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"AUTOSYNK_TENANTS_DIR=.*no such folder"):
        discover(tmp_path / "nowhere")


def test_config_path_of_finds_the_file_by_tenant_name(tmp_path: Path) -> None:
    path = _config(tmp_path, "alfa")
    (tmp_path / "Upplands Väsby.yaml").write_text("municipality: x\n")
    assert config_path_of("alfa", tmp_path) == path
    assert config_path_of("upplands_vasby", tmp_path) == tmp_path / "Upplands Väsby.yaml"
    with pytest.raises(ConfigError, match="no run configuration for municipality 'beta'"):
        config_path_of("beta", tmp_path)


def test_isolation_refuses_a_shared_staging_or_work_base(tmp_path: Path) -> None:
    _config(tmp_path, "alfa")
    _config(tmp_path, "beta")
    check_isolation("alfa", tmp_path)  # each its own: fine
    _config(tmp_path, "gamma", staging="alfa/staging.db")
    with pytest.raises(ConfigError, match="'gamma' shares its staging database with 'alfa'"):
        check_isolation("gamma", tmp_path)
    with pytest.raises(ConfigError, match="'alfa' shares its staging database with 'gamma'"):
        check_isolation("alfa", tmp_path)
    check_isolation("beta", tmp_path)  # not beta's problem
    _config(tmp_path, "gamma", work="beta/work")
    with pytest.raises(ConfigError, match="'gamma' shares its work base with 'beta'"):
        check_isolation("gamma", tmp_path)


def test_isolation_skips_a_broken_neighbour_but_not_its_own_file(tmp_path: Path) -> None:
    _config(tmp_path, "alfa")
    (tmp_path / "beta.yaml").write_text("municipality: [broken\n")
    check_isolation("alfa", tmp_path)  # beta's broken file is beta's night's problem
    with pytest.raises(ConfigError, match=r"beta.yaml line \d+: not valid YAML"):
        check_isolation("beta", tmp_path)


def test_schedules_in_the_run_configuration(tmp_path: Path) -> None:
    path = _config(tmp_path, "alfa")
    text = path.read_text()
    path.write_text(text + "schedules: {unikum_nightly_sync: '40 20 * * 1-5'}\n")
    assert load_config(path).schedules == {"unikum_nightly_sync": "40 20 * * 1-5"}
    path.write_text(text + "schedules: {unikum_nightly_sync: '20:40'}\n")
    with pytest.raises(ConfigError, match=r"schedules.*'20:40' is not a cron expression"):
        load_config(path)


@pytest.mark.parametrize(
    ("dag_id", "tenant"),
    [
        ("unikum_nightly_sync", None),
        ("unikum_nightly_sync__malmo", "malmo"),
        ("unikum_school_year_change__upplands_vasby", "upplands_vasby"),
        ("__malmo", None),
        ("unikum_nightly_sync__", None),
    ],
)
def test_tenant_of_a_dag_id(dag_id: str, tenant: str | None) -> None:
    assert airflow_tenants.tenant_of(dag_id) == tenant


def test_a_task_finds_its_file_from_its_dag_id(tmp_path: Path) -> None:
    path = _config(tmp_path, "alfa")
    env = {"AUTOSYNK_TENANTS_DIR": str(tmp_path)}
    assert airflow_tenants.config_path_for_dag("unikum_nightly_sync__alfa", env) == path
    assert airflow_tenants.config_path_for_dag("unikum_nightly_sync", env) is None
    assert airflow_tenants.config_path_for_dag("unikum_nightly_sync__alfa", {}) is None
    with pytest.raises(ConfigError, match="'beta'"):
        airflow_tenants.config_path_for_dag("unikum_nightly_sync__beta", env)


def test_without_a_folder_there_is_one_municipality_with_todays_dag_ids() -> None:
    (only,) = airflow_tenants.municipalities({})
    assert only.name is None and only.config_path is None
    assert only.dag_id("unikum_nightly_sync") == "unikum_nightly_sync"
    assert only.describe("Nightly sync") == "Nightly sync"
    assert only.cron("unikum_nightly_sync", "30 20 * * *") == "30 20 * * *"


def test_a_municipality_with_an_unusable_slot_gets_the_default(tmp_path: Path) -> None:
    (tmp_path / "alfa.yaml").write_text(
        "municipality: Alfa\ntimezone: Mars/Olympus\nschedules: {unikum_nightly_sync: '1 2 3'}\n"
    )
    (alfa,) = airflow_tenants.municipalities({"AUTOSYNK_TENANTS_DIR": str(tmp_path)})
    assert alfa.dag_id("unikum_nightly_sync") == "unikum_nightly_sync__alfa"
    timetable = alfa.timetable("unikum_nightly_sync", "30 20 * * *")
    assert timetable.expression == "30 20 * * *"
    assert "Europe/Stockholm" in str(timetable.timezone)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, {"autosynk_register_reads": 2, "autosynk_sftp_uploads": 2}),
        (
            {"AUTOSYNK_POOL_REGISTER_READS": "4", "AUTOSYNK_POOL_SFTP_UPLOADS": " 1 "},
            {"autosynk_register_reads": 4, "autosynk_sftp_uploads": 1},
        ),
        (
            {"AUTOSYNK_POOL_SFTP_UPLOADS": ""},
            {"autosynk_register_reads": 2, "autosynk_sftp_uploads": 2},
        ),
    ],
)
def test_pool_sizes(environ: dict[str, str], expected: dict[str, int]) -> None:
    sizes = airflow_tenants.pool_sizes(environ)
    assert {name: size for name, (size, _) in sizes.items()} == expected
    assert all(description.startswith("autosynk: ") for _, description in sizes.values())


def test_a_pool_needs_a_slot() -> None:
    with pytest.raises(ValueError, match="AUTOSYNK_POOL_REGISTER_READS=0"):
        airflow_tenants.pool_sizes({"AUTOSYNK_POOL_REGISTER_READS": "0"})
