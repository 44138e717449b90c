"""A small SS 12000 API server for tests and ``autosynk demo serve`` (standard library only).

It serves the five list files of a snapshot folder (``organisations.json``, ...,
``{"data": [...]}``) under ``<url>`` = ``http://host:port/ss12000/v2`` and issues OAuth2
client-credentials tokens at ``<token_url>`` = ``http://host:port/oauth2/token``.

Protocol: Bearer token on every call; ``limit`` (default 100); opaque ``pageToken`` (the
next page is asked for with ``pageToken`` alone; anything else next to it is a 400);
``expand=responsibles`` on ``/persons`` (responsibles are stripped otherwise);
``meta.modified.after``; ``/deletedEntities?after=`` answering with per-type id lists,
``{"data": {"persons": ["id", ...], "groups": [...], ...}}`` (the SS 12000 shape), or with
``deleted_shape="flat"`` a list of ``{"id", "entityType"}``. Deletions come from an
optional ``deletedEntities.json`` (``{"data": [{"id", "entityType", "deletedAt"}]}``) and
from :meth:`SS12000Server.delete`.

Two modes copy servers met in the wild. ``client_auth``: ``"any"`` takes the client
credentials by HTTP Basic or as form fields; ``"basic"`` only by HTTP Basic (401
``invalid_client`` otherwise); ``"post"`` only as form fields, answering 422 with a
FastAPI-style ``field required`` body when they are missing. ``page_tokens``: ``"opaque"``
tokens remember the query and refuse one next to them (as above); ``"offset"`` tokens are
plain offsets, and a later page is answered from the query sent with it: asked for with
the token alone, it loses ``limit``, ``expand`` and ``meta.modified.after``.

A :class:`FaultPlan` injects the failures real registers show (429, 5xx, slow answers,
truncated bodies, tokens that expire early, page tokens that go stale) and counts requests.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import copy
import datetime as dt
import json
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from autosynk.errors import SourceError
from autosynk.sources import ENTITIES
from autosynk.sources.ss12000_api import format_timestamp, parse_timestamp

API_PATH = "/ss12000/v2"
TOKEN_PATH = "/oauth2/token"  # noqa: S105 - a path, not a password
DEFAULT_LIMIT = 100
MAX_LIMIT = 10000
_ENTITY_TYPE = {
    "organisations": "Organisation",
    "persons": "Person",
    "groups": "Group",
    "duties": "Duty",
    "activities": "Activity",
}
_ENDPOINT_OF_TYPE = {v.lower(): k for k, v in _ENTITY_TYPE.items()} | {n: n for n in ENTITIES}

ClientAuth = Literal["any", "basic", "post"]
PageTokens = Literal["opaque", "offset"]
FaultKind = Literal["status", "slow", "truncate", "expire_token", "stale_page_token", "bad_shape"]


@dataclass
class Fault:
    """One rule: on the ``nth`` matching request (1-based; None = every one), ``count`` times.

    ``path`` is a prefix of the request path below the API root (``/persons``) or the token
    path (``/oauth2/token``). Kinds:

    - ``status``: answer ``status`` (429, 500, 503, ...) with ``retry_after`` if given, and
      ``body`` (default ``{"message": "injected"}``);
    - ``slow``: wait ``seconds`` before answering normally;
    - ``truncate``: send half of the normal JSON body, then close the connection;
    - ``expire_token``: revoke the presented token and answer 401, forcing a refresh;
    - ``stale_page_token``: answer 400 (only requests carrying a ``pageToken`` match);
    - ``bad_shape``: answer 200 with a JSON object that has no ``data`` list.
    """

    kind: FaultKind
    path: str = "/"
    nth: int | None = 1
    count: int = 1
    status: int = 500
    retry_after: str | None = None
    seconds: float = 0.0
    body: Any = None
    matched: int = field(default=0, init=False)
    fired: int = field(default=0, init=False)

    def applies(self, path: str, has_page_token: bool) -> bool:
        """Count a request against this rule; True when the rule fires for it."""
        if not path.startswith(self.path):
            return False
        if self.kind == "stale_page_token" and not has_page_token:
            return False
        self.matched += 1
        hit = self.nth is None or self.nth <= self.matched < self.nth + self.count
        if hit:
            self.fired += 1
        return hit


@dataclass
class FaultPlan:
    """The rules, tried in order (the first that fires wins), and a count of requests."""

    faults: list[Fault] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def pick(self, path: str, has_page_token: bool) -> Fault | None:
        with self._lock:
            self.requests[path] += 1
            chosen = None
            for fault in self.faults:
                if fault.applies(path, has_page_token) and chosen is None:
                    chosen = fault
            return chosen

    def count(self, prefix: str = "/") -> int:
        """How many requests reached a path starting with ``prefix``."""
        with self._lock:
            return sum(n for path, n in self.requests.items() if path.startswith(prefix))


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str
    params: dict[str, str]
    status: int


@dataclass(frozen=True)
class TokenRequest:
    """What a token request carried: how the client authenticated, and the form without
    the secret (so tests can see ``scope`` and ``audience`` arrive)."""

    auth: Literal["basic", "post", "none"]
    form: dict[str, str]
    status: int


@dataclass(frozen=True)
class _Cursor:
    endpoint: str
    params: dict[str, str]
    offset: int


class _Register:
    """The served data, the deletions, the tokens and the page cursors (thread-safe)."""

    def __init__(self, data_dir: Path) -> None:
        self.lock = threading.Lock()
        self.entities: dict[str, list[dict[str, Any]]] = {}
        for name in ENTITIES:
            path = data_dir / f"{name}.json"
            try:
                data = json.loads(path.read_bytes())["data"]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise SourceError(f"ss12000 server: {path} is not a data-list file") from exc
            if not isinstance(data, list):
                raise SourceError(f"ss12000 server: {path} has no data list")
            self.entities[name] = data
        #: (endpoint, id, deleted at or None = always reported)
        self.deleted: list[tuple[str, str, dt.datetime | None]] = []
        deleted_file = data_dir / "deletedEntities.json"
        if deleted_file.is_file():
            for entry in json.loads(deleted_file.read_bytes()).get("data", []):
                endpoint = _ENDPOINT_OF_TYPE.get(str(entry.get("entityType", "")).lower())
                if endpoint and entry.get("id"):
                    at = entry.get("deletedAt")
                    self.deleted.append(
                        (endpoint, entry["id"], parse_timestamp(at) if at else None)
                    )
        self.tokens: dict[str, float] = {}
        self.cursors: dict[str, _Cursor] = {}


class SS12000Server:
    """A running server: ``url``, ``token_url``, ``stop()``; a context manager."""

    def __init__(
        self,
        data_dir: Path,
        host: str,
        port: int,
        *,
        client_id: str,
        client_secret: str,
        faults: FaultPlan | None,
        token_expires_in: int,
        deleted_shape: Literal["lists", "flat"],
        client_auth: ClientAuth = "any",
        page_tokens: PageTokens = "opaque",
    ) -> None:
        self.register = _Register(data_dir)
        self.client_auth = client_auth
        self.page_tokens = page_tokens
        self.token_requests: list[TokenRequest] = []
        self.client_id = client_id
        self.client_secret = client_secret
        self.faults = faults or FaultPlan()
        self.token_expires_in = token_expires_in
        self.deleted_shape = deleted_shape
        self.log: list[RequestRecord] = []
        self._httpd = ThreadingHTTPServer((host, port), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.ss12000 = self  # type: ignore[attr-defined]
        bound_host, bound_port = self._httpd.server_address[:2]
        root = f"http://{bound_host!s}:{bound_port}"
        self.url = root + API_PATH
        self.token_url = root + TOKEN_PATH
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},  # so stop() returns promptly
            name="ss12000-server",
            daemon=True,
        )

    _stopped = False

    def start(self) -> SS12000Server:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> SS12000Server:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    # changing the register while it runs (tests, demos) --------------------------------------

    def put(self, endpoint: str, entity: dict[str, Any]) -> None:
        """Add or replace an entity by id, stamping ``meta.modified`` with now."""
        entity = copy.deepcopy(entity)
        meta = entity.setdefault("meta", {})
        meta["modified"] = format_timestamp(dt.datetime.now(dt.UTC))
        meta.setdefault("created", meta["modified"])
        with self.register.lock:
            items = self.register.entities[endpoint]
            for i, old in enumerate(items):
                if old.get("id") == entity["id"]:
                    items[i] = entity
                    return
            items.append(entity)

    def delete(self, endpoint: str, entity_id: str) -> None:
        """Remove an entity and report it in ``/deletedEntities`` from now on."""
        with self.register.lock:
            items = self.register.entities[endpoint]
            items[:] = [e for e in items if e.get("id") != entity_id]
            self.register.deleted.append((endpoint, entity_id, dt.datetime.now(dt.UTC)))

    def forget_page_tokens(self) -> None:
        """Make every issued page token unknown (as after a server restart)."""
        with self.register.lock:
            self.register.cursors.clear()

    def requests_to(self, path: str) -> list[RequestRecord]:
        return [r for r in self.log if r.path == path]

    # answering ------------------------------------------------------------------------------

    def issue_token(self, form: dict[str, str], basic: tuple[str, str] | None) -> tuple[int, Any]:
        in_form = "client_id" in form or "client_secret" in form
        used: Literal["basic", "post", "none"] = (
            "basic" if basic is not None else "post" if in_form else "none"
        )
        status, body = self._token_answer(form, basic)
        shown = {k: v for k, v in form.items() if k != "client_secret"}
        self.token_requests.append(TokenRequest(used, shown, status))
        return status, body

    def _token_answer(self, form: dict[str, str], basic: tuple[str, str] | None) -> tuple[int, Any]:
        if self.client_auth == "post":
            # as a FastAPI endpoint with required form fields answers
            missing = [name for name in ("client_id", "client_secret") if name not in form]
            if missing:
                detail = [
                    {"loc": ["body", name], "msg": "field required", "type": "value_error.missing"}
                    for name in missing
                ]
                return 422, {"detail": detail}
            basic = None
        if self.client_auth == "basic" and basic is None:
            return 401, {
                "error": "invalid_client",
                "error_description": "client authentication by HTTP Basic is required",
            }
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}
        client_id, client_secret = basic or (form.get("client_id"), form.get("client_secret"))
        if client_id != self.client_id or client_secret != self.client_secret:
            return 401, {"error": "invalid_client"}
        token = secrets.token_urlsafe(24)
        with self.register.lock:
            self.register.tokens[token] = time.monotonic() + self.token_expires_in
        return 200, {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.token_expires_in,
        }

    def token_valid(self, authorization: str | None) -> str | None:
        if not authorization or not authorization.startswith("Bearer "):
            return None
        token = authorization[len("Bearer ") :].strip()
        with self.register.lock:
            until = self.register.tokens.get(token)
        return token if until is not None and time.monotonic() < until else None

    def revoke(self, token: str | None) -> None:
        with self.register.lock:
            self.register.tokens.pop(token or "", None)

    def list_page(self, endpoint: str, params: dict[str, str]) -> tuple[int, Any]:
        if self.page_tokens == "offset":
            # the token is where to start; everything else is what came with it
            query = dict(params)
            try:
                offset = int(query.pop("pageToken", "0"))
            except ValueError:
                offset = -1
            if offset < 0:
                return 400, {"message": "pageToken is not an offset"}
            return self._page(endpoint, query, offset, lambda _query, at: str(at))
        if "pageToken" in params:
            if len(params) > 1:
                return 400, {"message": "pageToken cannot be combined with other parameters"}
            with self.register.lock:
                cursor = self.register.cursors.get(params["pageToken"])
            if cursor is None or cursor.endpoint != endpoint:
                return 400, {"message": "unknown or expired pageToken"}
        else:
            cursor = _Cursor(endpoint, params, 0)

        def remember(query: dict[str, str], at: int) -> str:
            token = _new_page_token()
            self.register.cursors[token] = _Cursor(endpoint, query, at)
            return token

        return self._page(endpoint, cursor.params, cursor.offset, remember)

    def _page(
        self,
        endpoint: str,
        query: dict[str, str],
        offset: int,
        next_token: Callable[[dict[str, str], int], str],
    ) -> tuple[int, Any]:
        try:
            limit = int(query.get("limit", DEFAULT_LIMIT))
            after = (
                parse_timestamp(query["meta.modified.after"])
                if "meta.modified.after" in query
                else None
            )
        except ValueError:
            return 400, {"message": "bad limit or meta.modified.after"}
        if not 1 <= limit <= MAX_LIMIT:
            return 400, {"message": f"limit must be 1..{MAX_LIMIT}"}
        expand = {part.strip() for part in query.get("expand", "").split(",") if part.strip()}
        with self.register.lock:
            items = [e for e in self.register.entities[endpoint] if _modified_after(e, after)]
            chunk = copy.deepcopy(items[offset : offset + limit])
            body: dict[str, Any] = {"data": chunk}
            if offset + limit < len(items):
                body["pageToken"] = next_token(query, offset + limit)
        if endpoint == "persons" and "responsibles" not in expand:
            for person in chunk:
                person.pop("responsibles", None)
        return 200, body

    def deleted_page(self, params: dict[str, str]) -> tuple[int, Any]:
        try:
            after = parse_timestamp(params["after"]) if "after" in params else None
        except ValueError:
            return 400, {"message": "bad after"}
        with self.register.lock:
            found = [
                (endpoint, entity_id)
                for endpoint, entity_id, at in self.register.deleted
                if after is None or at is None or at > after
            ]
        if self.deleted_shape == "flat":
            flat = [{"id": i, "entityType": _ENTITY_TYPE[e]} for e, i in found]
            return 200, {"data": flat}
        lists: dict[str, list[str]] = {name: [] for name in ENTITIES}
        for endpoint, entity_id in found:
            lists[endpoint].append(entity_id)
        return 200, {"data": lists}


def _new_page_token() -> str:
    # opaque to the client: random bytes, looked up in the server's cursor table
    return base64.urlsafe_b64encode(secrets.token_bytes(12)).decode().rstrip("=")


def _modified_after(entity: dict[str, Any], after: dt.datetime | None) -> bool:
    if after is None:
        return True
    modified = (entity.get("meta") or {}).get("modified")
    if not modified:
        return True  # unknown age: report it rather than lose a change
    try:
        return parse_timestamp(modified) > after
    except ValueError:
        return True


class _Handler(BaseHTTPRequestHandler):
    server_version = "autosynk-ss12000/1"
    protocol_version = "HTTP/1.0"  # one request per connection keeps truncation simple

    @property
    def app(self) -> SS12000Server:
        return self.server.ss12000  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request log is kept in SS12000Server.log

    def do_GET(self) -> None:
        # the client may have given up (a slow-answer fault): nothing left to answer
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._get()

    def do_POST(self) -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._post()

    def _params(self) -> tuple[str, dict[str, str]]:
        split = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        return unquote(split.path), params

    def _post(self) -> None:
        path, _ = self._params()
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8", "replace")
        form = {k: v[-1] for k, v in parse_qs(raw).items()}
        if path != TOKEN_PATH:
            self._answer("POST", path, form, 404, {"message": "not found"})
            return
        fault = self.app.faults.pick(path, False)
        if fault is not None and self._apply_early(fault, "POST", path, form):
            return
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.seconds)
        status, body = self.app.issue_token(form, self._basic_auth())
        self._answer("POST", path, {}, status, body, fault)

    def _get(self) -> None:
        full_path, params = self._params()
        if not full_path.startswith(API_PATH + "/"):
            self._answer("GET", full_path, params, 404, {"message": "not found"})
            return
        path = full_path[len(API_PATH) :]
        fault = self.app.faults.pick(path, "pageToken" in params)
        if fault is not None and self._apply_early(fault, "GET", path, params):
            return
        if self.app.token_valid(self.headers.get("Authorization")) is None:
            self._answer("GET", path, params, 401, {"message": "invalid or expired token"})
            return
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.seconds)  # after the token check: the answer is slow, not the call
        endpoint = path.strip("/")
        if endpoint in ENTITIES:
            status, body = self.app.list_page(endpoint, params)
        elif endpoint == "deletedEntities":
            status, body = self.app.deleted_page(params)
        else:
            status, body = 404, {"message": "not found"}
        self._answer("GET", path, params, status, body, fault)

    def _apply_early(self, fault: Fault, method: str, path: str, params: dict[str, str]) -> bool:
        """Faults that replace the answer; True when the request is done."""
        if fault.kind == "status":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            body = {"message": "injected"} if fault.body is None else fault.body
            self._answer(method, path, params, fault.status, body, None, headers)
            return True
        if fault.kind == "expire_token":
            self.app.revoke(self._bearer())
            self._answer(method, path, params, 401, {"message": "token expired"})
            return True
        if fault.kind == "stale_page_token":
            self._answer(method, path, params, 400, {"message": "unknown or expired pageToken"})
            return True
        if fault.kind == "bad_shape":
            self._answer(method, path, params, 200, {"items": "not a list"})
            return True
        return False  # slow, truncate: applied to the normal answer

    def _bearer(self) -> str | None:
        value = self.headers.get("Authorization") or ""
        return value[len("Bearer ") :].strip() if value.startswith("Bearer ") else None

    def _basic_auth(self) -> tuple[str, str] | None:
        value = self.headers.get("Authorization") or ""
        if not value.startswith("Basic "):
            return None
        try:
            decoded = base64.b64decode(value[len("Basic ") :]).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        client_id, _, client_secret = decoded.partition(":")
        return client_id, client_secret

    def _answer(
        self,
        method: str,
        path: str,
        params: dict[str, str],
        status: int,
        body: Any,
        fault: Fault | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.app.log.append(RequestRecord(method, path, params, status))
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        truncate = fault is not None and fault.kind == "truncate" and status == 200
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        if status == 401:
            self.send_header("WWW-Authenticate", 'Bearer error="invalid_token"')
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if truncate:
            # no Content-Length: the client reads to the close and gets half a document
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def serve(
    data_dir: Path,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    client_id: str,
    client_secret: str,
    faults: FaultPlan | None = None,
    token_expires_in: int = 3600,
    deleted_shape: Literal["lists", "flat"] = "lists",
    client_auth: ClientAuth = "any",
    page_tokens: PageTokens = "opaque",
) -> SS12000Server:
    """Start serving ``data_dir`` in a background thread; ``port=0`` picks a free port."""
    return SS12000Server(
        data_dir,
        host,
        port,
        client_id=client_id,
        client_secret=client_secret,
        faults=faults,
        token_expires_in=token_expires_in,
        deleted_shape=deleted_shape,
        client_auth=client_auth,
        page_tokens=page_tokens,
    ).start()


def main_serve(argv: Sequence[str] | None = None) -> int:
    """``autosynk demo serve --data DIR --port N``: serve a demo snapshot until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="autosynk demo serve")
    parser.add_argument("--data", type=Path, required=True, help="folder with the five files")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8120)
    parser.add_argument("--client-id", default="autosynk-demo")
    parser.add_argument("--client-secret", default="autosynk-demo")
    parser.add_argument("--token-expires-in", type=int, default=3600)
    parser.add_argument(
        "--client-auth",
        choices=["any", "basic", "post"],
        default="any",
        help="accept client credentials by HTTP Basic, as form fields, or either",
    )
    parser.add_argument(
        "--page-tokens",
        choices=["opaque", "offset"],
        default="opaque",
        help="opaque tokens that remember the query, or plain offsets that do not",
    )
    args = parser.parse_args(argv)
    server = serve(
        args.data,
        args.host,
        args.port,
        client_id=args.client_id,
        client_secret=args.client_secret,
        token_expires_in=args.token_expires_in,
        client_auth=args.client_auth,
        page_tokens=args.page_tokens,
    )
    print(f"SS 12000 API: {server.url}")
    print(f"token URL:    {server.token_url}  (client {args.client_id})")
    print("Ctrl-C stops the server.", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0
