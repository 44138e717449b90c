"""The SS 12000 API source against the real local SS 12000 server, faults included."""

from __future__ import annotations

import datetime as dt
import json
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from autosynk.config import SS12000ApiSource
from autosynk.errors import SourceError
from autosynk.sources import ENTITIES
from autosynk.sources.ss12000_api import (
    EXCERPT_CHARS,
    answer_excerpt,
    extract,
    format_timestamp,
    parse_timestamp,
    retry_after_seconds,
)
from autosynk.ss12000_server import Fault, FaultPlan, SS12000Server
from tests.services.ss12000 import CLIENT_ID, CLIENT_SECRET, build_register, write_register

Start = Callable[..., SS12000Server]
Config = Callable[..., SS12000ApiSource]
UTC = dt.UTC


def read_out(out_dir: Path, name: str) -> list[dict[str, Any]]:
    return json.loads((out_dir / f"{name}.json").read_text(encoding="utf-8"))["data"]


def served(data_dir: Path, name: str) -> list[dict[str, Any]]:
    return json.loads((data_dir / f"{name}.json").read_text(encoding="utf-8"))["data"]


def assert_complete(out_dir: Path, data_dir: Path) -> None:
    for name in ENTITIES:
        assert read_out(out_dir, name) == served(data_dir, name), name
    assert not list(out_dir.glob(".*")), "temporary files left behind"


# --- pure helpers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-01T10:00:00Z", dt.datetime(2024, 3, 1, 10, 0, tzinfo=UTC)),
        ("2024-03-01T10:00:00", dt.datetime(2024, 3, 1, 10, 0, tzinfo=UTC)),  # naive = UTC
        ("2024-03-01T11:00:00+01:00", dt.datetime(2024, 3, 1, 10, 0, tzinfo=UTC)),
        ("2024-03-01T10:00:00.250Z", dt.datetime(2024, 3, 1, 10, 0, 0, 250000, tzinfo=UTC)),
    ],
)
def test_parse_timestamp(text: str, expected: dt.datetime) -> None:
    assert parse_timestamp(text) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (dt.datetime(2024, 3, 1, 10, 0, 5, 123, tzinfo=UTC), "2024-03-01T10:00:05Z"),
        (dt.datetime(2024, 3, 1, 10, 0), "2024-03-01T10:00:00Z"),
        (
            dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            "2024-03-01T10:00:00Z",
        ),
    ],
)
def test_format_timestamp(value: dt.datetime, expected: str) -> None:
    assert format_timestamp(value) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("1", 1.0),
        (" 2.5 ", 2.5),
        ("-3", 0.0),
        ("Fri, 01 Mar 2024 10:00:30 GMT", 30.0),
        ("Fri, 01 Mar 2024 09:00:00 GMT", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_seconds(header: str | None, expected: float | None) -> None:
    now = dt.datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
    assert retry_after_seconds(header, now) == expected


# --- full reads --------------------------------------------------------------------------------


def test_full_read_pages_and_expands(
    tmp_path: Path, ss12000_data: Path, start_ss12000: Start, ss12000_config: Config
) -> None:
    server = start_ss12000(ss12000_data)
    out = tmp_path / "out"
    counts = extract(ss12000_config(server), out)

    assert counts == {
        "organisations": 3,
        "persons": 46,
        "groups": 7,
        "duties": 4,
        "activities": 3,
        "full_read": 1,
    }
    assert_complete(out, ss12000_data)
    assert read_out(out, "persons")[0]["responsibles"], "responsibles need expand"
    for name in ENTITIES:
        assert stat.S_IMODE((out / f"{name}.json").stat().st_mode) == 0o600
    persons = server.requests_to("/persons")
    # 46 persons at 10 a page; the query went along with the first page token once, this
    # server refused that (400), and from then on the tokens went alone
    assert len(persons) == 6
    query = {"limit": "10", "expand": "responsibles"}
    assert persons[0].params == query
    probe = persons[1]
    assert probe.status == 400 and probe.params == {**query, "pageToken": probe.params["pageToken"]}
    assert all(list(r.params) == ["pageToken"] and r.status == 200 for r in persons[2:])


def test_server_strips_responsibles_without_expand_and_checks_page_tokens(
    ss12000_data: Path, start_ss12000: Start
) -> None:
    server = start_ss12000(ss12000_data)
    token = requests.post(
        server.token_url,
        data={"grant_type": "client_credentials"},
        auth=(CLIENT_ID, CLIENT_SECRET),
        timeout=5,
    ).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}

    plain = requests.get(f"{server.url}/persons", params={"limit": 5}, headers=auth, timeout=5)
    assert plain.status_code == 200
    assert all("responsibles" not in p for p in plain.json()["data"])
    expanded = requests.get(
        f"{server.url}/persons",
        params={"limit": 5, "expand": "responsibles"},
        headers=auth,
        timeout=5,
    ).json()
    assert expanded["data"][0]["responsibles"][0]["relationType"] == "Vårdnadshavare"

    page_token = expanded["pageToken"]
    combined = requests.get(
        f"{server.url}/persons",
        params={"pageToken": page_token, "limit": 5},
        headers=auth,
        timeout=5,
    )
    assert combined.status_code == 400
    server.forget_page_tokens()
    stale = requests.get(
        f"{server.url}/persons", params={"pageToken": page_token}, headers=auth, timeout=5
    )
    assert stale.status_code == 400
    no_token = requests.get(f"{server.url}/persons", timeout=5)
    assert no_token.status_code == 401


def test_bad_client_credentials_name_the_token_endpoint(
    tmp_path: Path, ss12000_data: Path, start_ss12000: Start, ss12000_config: Config
) -> None:
    server = start_ss12000(ss12000_data)
    cfg = ss12000_config(server, client_secret="wrong")
    with pytest.raises(SourceError, match=r"token endpoint .*/oauth2/token .*HTTP 401"):
        extract(cfg, tmp_path / "out")
    assert not list((tmp_path / "out").iterdir())


def test_secret_from_environment(
    tmp_path: Path,
    ss12000_data: Path,
    start_ss12000: Start,
    ss12000_config: Config,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = start_ss12000(ss12000_data)
    monkeypatch.setenv("SS12000_TEST_SECRET", CLIENT_SECRET)
    cfg = ss12000_config(server, client_secret=None, client_secret_env="SS12000_TEST_SECRET")
    assert extract(cfg, tmp_path / "out")["persons"] == 46


# --- faults that a retry overcomes --------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "extra_requests"),
    [
        (Fault("status", "/persons", nth=2, status=500), 1),
        (Fault("status", "/groups", nth=1, count=2, status=503), 2),
        (Fault("truncate", "/persons", nth=3), 1),
        (Fault("bad_shape", "/duties", nth=1), 1),
        (Fault("status", "/oauth2/token", nth=1, status=502), 0),
    ],
    ids=["500-then-ok", "503-twice-then-ok", "truncated-body", "no-data-list", "token-502"],
)
def test_transient_fault_is_retried(
    tmp_path: Path,
    ss12000_data: Path,
    start_ss12000: Start,
    ss12000_config: Config,
    fault: Fault,
    extra_requests: int,
) -> None:
    plan = FaultPlan([fault])
    server = start_ss12000(ss12000_data, plan)
    out = tmp_path / "out"
    extract(ss12000_config(server), out)
    assert_complete(out, ss12000_data)
    assert fault.fired == fault.count
    normal = {"/persons": 6, "/groups": 1, "/duties": 1}  # persons: 5 pages and the probe
    if fault.path in normal:
        assert plan.count(fault.path) == normal[fault.path] + extra_requests
    else:
        assert plan.count("/oauth2/token") == 2


def test_429_retry_after_is_honoured(
    tmp_path: Path, ss12000_data: Path, start_ss12000: Start, ss12000_config: Config
) -> None:
    fault = Fault("status", "/groups", nth=1, status=429, retry_after="1")
    server = start_ss12000(ss12000_data, FaultPlan([fault]))
    started = time.monotonic()
    extract(ss12000_config(server), tmp_path / "out")
    elapsed = time.monotonic() - started
    assert fault.fired == 1
    assert elapsed >= 1.0, "Retry-After: 1 was not waited out (backoff cap is 0.05 s)"
    assert_complete(tmp_path / "out", ss12000_data)


def test_slow_answer_beyond_timeout_is_retried(
    tmp_path: Path, ss12000_data: Path, start_ss12000: Start, ss12000_config: Config
) -> None:
    fault = Fault("slow", "/activities", nth=1, seconds=1.5)
    plan = FaultPlan([fault])
    server = start_ss12000(ss12000_data, plan)
    extract(ss12000_config(server, timeout_seconds=0.5), tmp_path / "out")
    assert plan.count("/activities") == 2
    assert_complete(tmp_path / "out", ss12000_data)


def test_expired_token_is_refreshed_once(
    tmp_path: Path, ss12000_data: Path, start_ss12000: Start, ss12000_config: Config
) -> None:
    plan = FaultPlan([Fault("expire_token", "/persons", nth=3)])
    server = start_ss12000(ss12000_data, plan)
    extract(ss12000_config(server), tmp_path / "out")
    assert plan.count("/oauth2/token") == 2
    assert [r.status for r in server.log if r.status == 401] == [401]
    assert_complete(tmp_path / "out", ss12000_data)


def test_token_renewed_before_it_expires(
    tmp_path: Path, ss12000_data: Path, start_ss12000: Start, ss12000_config: Config
) -> None:
    # tokens live 1 s; two slow pages make the read outlast the first token
    plan = FaultPlan([Fault("slow", "/persons", nth=2, count=2, seconds=0.5)])
    server = start_ss12000(ss12000_data, plan, token_expires_in=1)
    extract(ss12000_config(server), tmp_path / "out")
    assert plan.count("/oauth2/token") >= 2
    assert not [r for r in server.log if r.status == 401], "renewal should precede a 401"


def test_stale_page_token_restarts_the_endpoint(
    tmp_path: Path, ss12000_data: Path, start_ss12000: Start, ss12000_config: Config
) -> None:
    fault = Fault("stale_page_token", "/persons", nth=2)
    plan = FaultPlan([fault])
    server = start_ss12000(ss12000_data, plan)
    extract(ss12000_config(server), tmp_path / "out")
    first_pages = [r for r in server.requests_to("/persons") if "pageToken" not in r.params]
    assert len(first_pages) == 2
    assert_complete(tmp_path / "out", ss12000_data)


# --- failures: nothing is written ---------------------------------------------------------------


def assert_no_files(out_dir: Path) -> None:
    """No list file and no temporary file is left in ``out_dir``."""
    if out_dir.exists():
        assert sorted(p.name for p in out_dir.iterdir()) == []


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (Fault("status", "/duties", nth=None, status=500), r"GET /duties .*HTTP 500"),
        (Fault("truncate", "/groups", nth=None), r"GET /groups .*not JSON"),
        (Fault("stale_page_token", "/persons", nth=None), r"GET /persons .*consistently"),
        (Fault("expire_token", "/organisations", nth=None), r"GET /organisations .*HTTP 401"),
        (Fault("status", "/oauth2/token", nth=None, status=503), r"token endpoint .*HTTP 503"),
    ],
    ids=[
        "persistent-500",
        "persistent-truncation",
        "stale-twice",
        "401-after-refresh",
        "token-down",
    ],
)
def test_persistent_fault_fails_without_files(
    tmp_path: Path,
    ss12000_data: Path,
    start_ss12000: Start,
    ss12000_config: Config,
    fault: Fault,
    message: str,
) -> None:
    server = start_ss12000(ss12000_data, FaultPlan([fault]))
    out = tmp_path / "out"
    with pytest.raises(SourceError, match=message) as caught:
        extract(ss12000_config(server), out)
    assert "\n" not in str(caught.value)
    assert_no_files(out)


def test_unreachable_server_is_a_source_error(
    tmp_path: Path, ss12000_data: Path, start_ss12000: Start, ss12000_config: Config
) -> None:
    server = start_ss12000(ss12000_data)
    cfg = ss12000_config(server, max_retries=1)
    server.stop()
    with pytest.raises(SourceError, match=r"token endpoint .* after 2 attempts: ConnectionError"):
        extract(cfg, tmp_path / "out")
    bad = ss12000_config(server, token_url="not a url", max_retries=0)
    with pytest.raises(
        SourceError, match=r"token endpoint not a url failed: (MissingSchema|InvalidURL)"
    ):
        extract(bad, tmp_path / "out")
    assert_no_files(tmp_path / "out")


def test_persistent_500_stops_after_max_retries(
    tmp_path: Path, ss12000_data: Path, start_ss12000: Start, ss12000_config: Config
) -> None:
    plan = FaultPlan([Fault("status", "/groups", nth=None, status=500)])
    server = start_ss12000(ss12000_data, plan)
    with pytest.raises(SourceError, match="after 3 attempts"):
        extract(ss12000_config(server, max_retries=2), tmp_path / "out")
    assert plan.count("/groups") == 3
    assert plan.count("/duties") == 0, "a failed endpoint must stop the read"
    assert_no_files(tmp_path / "out")


def test_duplicate_ids_across_pages_fail_as_inconsistent(
    tmp_path: Path, start_ss12000: Start, ss12000_config: Config
) -> None:
    register = build_register()
    register["groups"].append(dict(register["groups"][0]))  # page 2 repeats page 1's id
    data = write_register(tmp_path / "dup", register)
    server = start_ss12000(data)
    out = tmp_path / "out"
    with pytest.raises(SourceError, match=r"GET /groups could not be read consistently"):
        extract(ss12000_config(server, page_size=5), out)
    assert len([r for r in server.requests_to("/groups") if "limit" in r.params]) == 2
    assert_no_files(out)


# --- incremental reads --------------------------------------------------------------------------


@pytest.mark.parametrize("deleted_shape", ["lists", "flat"])
def test_incremental_merges_changes_and_deletions(
    tmp_path: Path,
    ss12000_data: Path,
    start_ss12000: Start,
    ss12000_config: Config,
    deleted_shape: str,
) -> None:
    server = start_ss12000(ss12000_data, deleted_shape=deleted_shape)
    cfg = ss12000_config(server, incremental=True, full_read_every_days=7)
    cache = tmp_path / "cache"
    t0 = dt.datetime.now(UTC)

    first = extract(cfg, tmp_path / "run1", cache_dir=cache, now=t0)
    assert first["full_read"] == 1
    state = json.loads((cache / "state.json").read_text())
    assert state["last_full_read"] == state["last_read"] == format_timestamp(t0)

    person = dict(served(ss12000_data, "persons")[4])
    person["familyName"] = "Ändrad"
    server.put("persons", person)
    newcomer = {"id": "p-new", "givenName": "Ny", "familyName": "Elev", "meta": {}}
    server.put("persons", newcomer)
    server.delete("groups", "g-03")
    server.log.clear()

    second = extract(cfg, tmp_path / "run2", cache_dir=cache, now=t0 + dt.timedelta(hours=1))
    assert second["full_read"] == 0
    assert second["changed"] == 2 and second["deleted"] == 1
    persons = {p["id"]: p for p in read_out(tmp_path / "run2", "persons")}
    assert persons[person["id"]]["familyName"] == "Ändrad"
    assert persons[person["id"]]["responsibles"] == person["responsibles"]
    assert "p-new" in persons and len(persons) == 47
    assert "g-03" not in {g["id"] for g in read_out(tmp_path / "run2", "groups")}
    assert len(read_out(tmp_path / "run2", "groups")) == 6
    assert read_out(tmp_path / "run2", "duties") == served(ss12000_data, "duties")
    since = format_timestamp(t0 - dt.timedelta(minutes=30))
    assert server.requests_to("/persons")[0].params["meta.modified.after"] == since
    assert server.requests_to("/deletedEntities")[0].params == {"after": since}
    assert len(server.requests_to("/persons")) == 1  # only the changes were read

    # the merged register equals what a full read of the server now gives
    fresh = extract(ss12000_config(server), tmp_path / "fresh")
    assert fresh["persons"] == 47
    for name in ENTITIES:
        by_id = {e["id"]: e for e in read_out(tmp_path / "fresh", name)}
        assert {e["id"]: e for e in read_out(tmp_path / "run2", name)} == by_id, name
    assert json.loads((cache / "persons.json").read_text())["data"] == read_out(
        tmp_path / "run2", "persons"
    )


def test_incremental_does_a_full_read_after_the_period(
    tmp_path: Path, ss12000_data: Path, start_ss12000: Start, ss12000_config: Config
) -> None:
    server = start_ss12000(ss12000_data)
    cfg = ss12000_config(server, incremental=True, full_read_every_days=7)
    cache = tmp_path / "cache"
    t0 = dt.datetime(2025, 3, 1, 1, 0, tzinfo=UTC)
    assert extract(cfg, tmp_path / "r1", cache_dir=cache, now=t0)["full_read"] == 1
    day6 = t0 + dt.timedelta(days=6)
    assert extract(cfg, tmp_path / "r2", cache_dir=cache, now=day6)["full_read"] == 0
    server.log.clear()
    day8 = t0 + dt.timedelta(days=8)
    assert extract(cfg, tmp_path / "r3", cache_dir=cache, now=day8)["full_read"] == 1
    assert not [r for r in server.log if "meta.modified.after" in r.params]
    assert not server.requests_to("/deletedEntities")
    state = json.loads((cache / "state.json").read_text())
    assert state["last_full_read"] == format_timestamp(day8)
    assert_complete(tmp_path / "r3", ss12000_data)


def test_incremental_without_cache_state_reads_everything(
    tmp_path: Path, ss12000_data: Path, start_ss12000: Start, ss12000_config: Config
) -> None:
    server = start_ss12000(ss12000_data)
    cfg = ss12000_config(server, incremental=True)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "state.json").write_text("{not json")
    assert extract(cfg, tmp_path / "r1", cache_dir=cache)["full_read"] == 1
    assert extract(cfg, tmp_path / "r2", cache_dir=None)["full_read"] == 1


def test_failed_incremental_leaves_cache_and_out_dir_alone(
    tmp_path: Path, ss12000_data: Path, start_ss12000: Start, ss12000_config: Config
) -> None:
    plan = FaultPlan()
    server = start_ss12000(ss12000_data, plan)
    cfg = ss12000_config(server, incremental=True, max_retries=1)
    cache = tmp_path / "cache"
    t0 = dt.datetime.now(UTC)
    extract(cfg, tmp_path / "r1", cache_dir=cache, now=t0)
    before = {p.name: p.read_bytes() for p in cache.iterdir()}
    server.delete("groups", "g-01")
    plan.faults.append(Fault("status", "/deletedEntities", nth=None, status=500))
    with pytest.raises(SourceError, match="deletedEntities"):
        extract(cfg, tmp_path / "r2", cache_dir=cache, now=t0 + dt.timedelta(hours=1))
    assert_no_files(tmp_path / "r2")
    assert {p.name: p.read_bytes() for p in cache.iterdir()} == before


# --- servers met in the wild: client authentication, error words, offset page tokens ---------


@pytest.mark.parametrize(
    ("text", "hide", "expected"),
    [
        ('{"error": "invalid_client"}', (), '{"error": "invalid_client"}'),
        ("line one\n  line two\t end ", (), "line one line two end"),
        ("no person 19900101-0017 here", (), "no person 19900101-**** here"),
        ("run cli__20261201T134346271234Z", (), "run cli__20261201T134346271234Z"),
        ("bad secret s3cret-for-tests!", ("s3cret-for-tests",), "bad secret ***!"),
        ("x" * 250, (), "x" * 199 + "…"),
        # masked before the cut: no digit of the number's tail survives it
        ("x" * 190 + " 19900101-0017", (), "x" * 190 + " 19900101…"),
        ("", (), ""),
    ],
)
def test_answer_excerpt(text: str, hide: tuple[str, ...], expected: str) -> None:
    assert answer_excerpt(text, hide) == expected
    assert len(answer_excerpt(text, hide)) <= EXCERPT_CHARS


@pytest.mark.parametrize(
    ("server_takes", "token_auth", "sent", "error"),
    [
        ("any", "auto", [("basic", 200)], None),
        ("basic", "auto", [("basic", 200)], None),
        ("post", "auto", [("basic", 422), ("post", 200)], None),
        ("post", "post", [("post", 200)], None),
        ("basic", "basic", [("basic", 200)], None),
        (
            "post",
            "basic",
            [("basic", 422)],
            r"refused the client credentials: HTTP 422: .*client_id.*field required",
        ),
        (
            "basic",
            "post",
            [("post", 401)],
            r"refused the client credentials: HTTP 401: .*invalid_client.*HTTP Basic is required",
        ),
    ],
)
def test_token_auth_against_servers_that_take_one_way(
    tmp_path: Path,
    ss12000_data: Path,
    start_ss12000: Start,
    ss12000_config: Config,
    server_takes: str,
    token_auth: str,
    sent: list[tuple[str, int]],
    error: str | None,
) -> None:
    server = start_ss12000(ss12000_data, client_auth=server_takes)
    cfg = ss12000_config(server, token_auth=token_auth)
    if error is None:
        extract(cfg, tmp_path / "out")
        assert_complete(tmp_path / "out", ss12000_data)
    else:
        with pytest.raises(SourceError, match=error) as caught:
            extract(cfg, tmp_path / "out")
        assert "\n" not in str(caught.value)
        assert_no_files(tmp_path / "out")
    assert [(r.auth, r.status) for r in server.token_requests] == sent


def test_auto_logs_what_worked_once_and_keeps_it_for_the_run(
    tmp_path: Path,
    ss12000_data: Path,
    start_ss12000: Start,
    ss12000_config: Config,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # the token is revoked halfway: the new one is asked for as form fields straight away
    plan = FaultPlan([Fault("expire_token", "/persons", nth=3)])
    server = start_ss12000(ss12000_data, plan, client_auth="post")
    with caplog.at_level("INFO", logger="autosynk.sources.ss12000_api"):
        extract(ss12000_config(server), tmp_path / "out")
    assert [(r.auth, r.status) for r in server.token_requests] == [
        ("basic", 422),
        ("post", 200),
        ("post", 200),
    ]
    accepted = [r.getMessage() for r in caplog.records if "accepted the client" in r.getMessage()]
    assert len(accepted) == 1 and "as form fields" in accepted[0]
    assert_complete(tmp_path / "out", ss12000_data)


def test_a_wrong_secret_still_ends_in_one_clear_line(
    tmp_path: Path, ss12000_data: Path, start_ss12000: Start, ss12000_config: Config
) -> None:
    server = start_ss12000(ss12000_data, client_auth="post")
    cfg = ss12000_config(server, client_secret="not-the-s3cret")
    with pytest.raises(SourceError) as caught:
        extract(cfg, tmp_path / "out")
    message = str(caught.value)
    assert message == (
        f"ss12000: token endpoint {server.token_url} refused the client credentials "
        '(HTTP Basic: HTTP 422, then form fields): HTTP 401: {"error": "invalid_client"}'
    )
    assert "not-the-s3cret" not in message


def test_scope_and_audience_reach_the_token_endpoint(
    tmp_path: Path, ss12000_data: Path, start_ss12000: Start, ss12000_config: Config
) -> None:
    server = start_ss12000(ss12000_data, client_auth="post")
    cfg = ss12000_config(server, scope="ss12000:read", audience="https://register.example.se")
    extract(cfg, tmp_path / "out")
    assert server.token_requests[-1].form == {
        "grant_type": "client_credentials",
        "scope": "ss12000:read",
        "audience": "https://register.example.se",
        "client_id": CLIENT_ID,
    }


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (
            Fault("status", "/groups", nth=None, status=403, body={"message": "no grant"}),
            'ss12000: GET /groups failed: HTTP 403: {"message": "no grant"}',
        ),
        (
            Fault("status", "/groups", nth=None, status=503, body="down for maintenance"),
            'ss12000: GET /groups failed after 4 attempts: HTTP 503: "down for maintenance"',
        ),
        (
            Fault("status", "/persons", nth=None, status=404, body={"detail": "Not Found"}),
            'ss12000: GET /persons failed: HTTP 404: {"detail": "Not Found"}',
        ),
    ],
    ids=["403", "503-to-the-end", "404"],
)
def test_a_refused_page_quotes_the_server(
    tmp_path: Path,
    ss12000_data: Path,
    start_ss12000: Start,
    ss12000_config: Config,
    fault: Fault,
    message: str,
) -> None:
    server = start_ss12000(ss12000_data, FaultPlan([fault]))
    with pytest.raises(SourceError) as caught:
        extract(ss12000_config(server), tmp_path / "out")
    assert str(caught.value) == message


def test_a_quoted_answer_is_short_and_masked(
    tmp_path: Path, ss12000_data: Path, start_ss12000: Start, ss12000_config: Config
) -> None:
    body = {"message": f"person 19900101-0017 is not yours (secret {CLIENT_SECRET})" + "!" * 400}
    fault = Fault("status", "/persons", nth=None, status=403, body=body)
    server = start_ss12000(ss12000_data, FaultPlan([fault]))
    with pytest.raises(SourceError) as caught:
        extract(ss12000_config(server), tmp_path / "out")
    message = str(caught.value)
    quoted = message.split("HTTP 403: ", 1)[1]
    assert quoted.startswith('{"message": "person 19900101-**** is not yours (secret ***)!!')
    assert len(quoted) == EXCERPT_CHARS and quoted.endswith("…")
    assert "0017" not in message and CLIENT_SECRET not in message


def _token(server: SS12000Server) -> dict[str, str]:
    response = requests.post(
        server.token_url,
        data={"grant_type": "client_credentials"},
        auth=(CLIENT_ID, CLIENT_SECRET),
        timeout=5,
    )
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_offset_page_tokens_lose_the_query_when_sent_alone(
    ss12000_data: Path, start_ss12000: Start
) -> None:
    """The server mode is what it claims: a token alone drops limit and expand."""
    server = start_ss12000(ss12000_data, page_tokens="offset")
    auth = _token(server)
    query = {"limit": "5", "expand": "responsibles"}
    first = requests.get(f"{server.url}/persons", params=query, headers=auth, timeout=5).json()
    assert first["pageToken"] == "5" and len(first["data"]) == 5
    alone = requests.get(
        f"{server.url}/persons", params={"pageToken": "5"}, headers=auth, timeout=5
    ).json()
    assert len(alone["data"]) == 41 and "pageToken" not in alone  # the default limit, 100
    assert not any("responsibles" in p for p in alone["data"])
    along = requests.get(
        f"{server.url}/persons", params={**query, "pageToken": "5"}, headers=auth, timeout=5
    ).json()
    assert len(along["data"]) == 5 and along["pageToken"] == "10"
    assert any(p.get("responsibles") for p in along["data"])


@pytest.mark.parametrize("page_size", [7, 10000])
def test_offset_page_tokens_give_the_whole_register(
    tmp_path: Path,
    ss12000_data: Path,
    start_ss12000: Start,
    ss12000_config: Config,
    page_size: int,
) -> None:
    server = start_ss12000(ss12000_data, page_tokens="offset")
    extract(ss12000_config(server, page_size=page_size), tmp_path / "out")
    assert_complete(tmp_path / "out", ss12000_data)
    persons = server.requests_to("/persons")
    assert len(persons) == -(-46 // page_size)
    query = {"limit": str(page_size), "expand": "responsibles"}
    assert all({k: v for k, v in r.params.items() if k != "pageToken"} == query for r in persons)


def test_offset_page_tokens_incremental_read(
    tmp_path: Path, ss12000_data: Path, start_ss12000: Start, ss12000_config: Config
) -> None:
    server = start_ss12000(ss12000_data, page_tokens="offset")
    cfg = ss12000_config(server, incremental=True, page_size=7)
    cache = tmp_path / "cache"
    t0 = dt.datetime.now(UTC)
    assert extract(cfg, tmp_path / "run1", cache_dir=cache, now=t0)["full_read"] == 1
    for person in served(ss12000_data, "persons")[:20:2]:  # ten changes: two pages of 7
        server.put("persons", {**person, "familyName": "Ändrad"})
    server.delete("persons", "p-guardian-020")
    server.log.clear()

    second = extract(cfg, tmp_path / "run2", cache_dir=cache, now=t0 + dt.timedelta(hours=1))
    assert (second["full_read"], second["changed"], second["deleted"]) == (0, 10, 1)
    pages = server.requests_to("/persons")
    assert len(pages) == 2
    assert all("meta.modified.after" in r.params and "expand" in r.params for r in pages)
    fresh = extract(ss12000_config(server), tmp_path / "fresh")
    assert fresh["persons"] == 45
    for name in ENTITIES:
        by_id = {e["id"]: e for e in read_out(tmp_path / "fresh", name)}
        assert {e["id"]: e for e in read_out(tmp_path / "run2", name)} == by_id, name


# --- the demo command ---------------------------------------------------------------------------


def test_main_serve_serves_a_folder(ss12000_data: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = (
        "import sys; from autosynk.ss12000_server import main_serve; "
        "sys.exit(main_serve(sys.argv[1:]))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "--data", str(ss12000_data), "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("SS 12000 API: http://127.0.0.1:")
        token = requests.post(
            f"http://127.0.0.1:{port}/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=("autosynk-demo", "autosynk-demo"),
            timeout=5,
        ).json()["access_token"]
        answer = requests.get(
            f"http://127.0.0.1:{port}/ss12000/v2/groups",
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
        )
        assert len(answer.json()["data"]) == 7
    finally:
        proc.terminate()
        proc.wait(timeout=10)
