"""Source ``ss12000``: read the register from an SS 12000 REST API (OAuth2 client credentials).

All or nothing: each endpoint's pages are streamed into a hidden temporary file in
``out_dir`` (one page in memory at a time) and the five list files are renamed into place
only after every endpoint was read completely. Any failure raises :class:`SourceError` and
removes the temporary files.

Incremental mode (``incremental: true`` and a ``cache_dir``): the last complete register and
``state.json`` (last full read, last read) are kept in ``cache_dir``. Between full reads only
``meta.modified.after=<last read - overlap>`` and ``/deletedEntities?after=<same>`` are
fetched and merged into the cached copy (replace by id, drop deleted ids; a deleted id wins
over a changed one, because deletions are read after the changes). The cache is replaced
only after the merged snapshot is complete. The changes are held in memory while merging;
the cached register is read in batches (:func:`autosynk.sources.list_stream.iter_objects`).

Client credentials (``token_auth``) go by HTTP Basic (``basic``), as form fields (``post``),
or (``auto``) by Basic first and as form fields once the token endpoint answers 400, 401 or
422; what worked is logged once and kept for the run. A later page is asked for with the
query next to its page token, so servers whose tokens are plain offsets keep ``limit``,
``expand`` and ``meta.modified.after``; a server that refuses that gets the token alone
(see :meth:`SS12000Client._next_page`). A refused token or page is reported with the HTTP
status and the start of what the server said (:func:`answer_excerpt`).

``/deletedEntities`` may answer with a flat list (``{"data": [{"id", "entityType"}]}``) or
an object of per-type lists (``{"data": {"persons": ["id", ...], ...}}``); both are read.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import json
import logging
import os
import random
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.requests_client import OAuth2Session

from autosynk.config import SS12000ApiSource, secret
from autosynk.errors import SourceError
from autosynk.identity import mask
from autosynk.sources import ENTITIES
from autosynk.sources.list_stream import iter_objects
from autosynk.workspace import PRIVATE, write_private

log = logging.getLogger(__name__)

STATE_FILE = "state.json"
#: a Retry-After larger than this is not waited out in full (a stuck task helps nobody)
RETRY_AFTER_CEILING_SECONDS = 300.0
_EXPAND = {"persons": {"expand": "responsibles"}}
#: entityType spellings in /deletedEntities -> our endpoint names
_ENTITY_TYPES = {
    "organisation": "organisations",
    "person": "persons",
    "group": "groups",
    "duty": "duties",
    "activity": "activities",
    **{name: name for name in ENTITIES},
}
_TRANSPORT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)

Page = dict[str, Any]
_T = TypeVar("_T")


# --- timestamps ------------------------------------------------------------------------------


def parse_timestamp(text: str) -> dt.datetime:
    """An RFC 3339 / ISO 8601 timestamp as an aware datetime; naive ones are taken as UTC."""
    value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def format_timestamp(value: dt.datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, as query parameters want it."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def retry_after_seconds(header: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or an HTTP date)."""
    if header is None or not header.strip():
        return None
    text = header.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - (now or dt.datetime.now(dt.UTC))).total_seconds())


# --- the HTTP client -------------------------------------------------------------------------


class _StalePageToken(Exception):
    """The server no longer knows a page token: restart that endpoint."""


class _InconsistentRead(Exception):
    """The pages did not add up (an id repeated, a token loop): restart that endpoint."""


class _QueryRefused(Exception):
    """The server refused the query sent along with a page token."""


class _Busy(Exception):
    """A 429 or 5xx answer: worth asking again (raised from inside a request)."""

    def __init__(self, response: requests.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


class _NoToken(Exception):
    """The token endpoint answered, but with no usable token."""

    def __init__(self, response: requests.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


#: ``token_auth`` -> Authlib's name for the client authentication method, and in words
_AUTH_METHODS = {"basic": "client_secret_basic", "post": "client_secret_post"}
_AUTH_WORDS = {"basic": "HTTP Basic", "post": "form fields"}
#: token endpoint answers after which ``auto`` sends the credentials as form fields instead
_TRY_FORM_FIELDS_ON = (400, 401, 422)
#: at most this much of a server's answer is quoted in an error
EXCERPT_CHARS = 200


def answer_excerpt(text: str, hide: tuple[str, ...] = ()) -> str:
    """The start of a server's answer for a one-line error.

    Whitespace is folded to single spaces, values in ``hide`` (our own secrets, should the
    server echo them) become ``***``, identity numbers are masked, and the result is cut
    to :data:`EXCERPT_CHARS` characters (an ellipsis marks the cut).
    """
    for value in hide:
        if value:
            text = text.replace(value, "***")
    one_line = mask(" ".join(text.split()))
    if len(one_line) > EXCERPT_CHARS:
        one_line = one_line[: EXCERPT_CHARS - 1] + "…"
    return one_line


class SS12000Client:
    """Bearer-authenticated GETs with token refresh, retries, backoff and page validation.

    The OAuth2 side is Authlib's client-credentials session: it builds the token request
    (client authentication by HTTP Basic or as form fields, ``scope``, ``audience``) and
    reads the token. Fetching and renewing the token stays here, because Authlib's own
    renewal runs inside a page request, where a 502 from the token endpoint would not be
    retried and a failure would be reported as the page's; here both are retried with the
    same backoff and named for what failed.
    """

    def __init__(
        self, cfg: SS12000ApiSource, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.cfg = cfg
        self.base_url = cfg.base_url.rstrip("/")
        self._secret = secret(cfg.client_secret, cfg.client_secret_env, "ss12000 client_secret")
        if not self._secret:
            raise SourceError("ss12000: no client_secret or client_secret_env configured")
        self._sleep = sleep
        self._session = OAuth2Session(
            client_id=cfg.client_id,
            client_secret=self._secret,
            scope=cfg.scope,
            token_endpoint=cfg.token_url,
            grant_type="client_credentials",
        )
        self._session.verify = str(cfg.ca_file) if cfg.ca_file else True
        self._session.headers["Accept"] = "application/json"
        self._session.register_compliance_hook("access_token_response", _judge_token_answer)
        self._token: str | None = None
        self._token_valid_until = 0.0
        #: the client authentication the token endpoint accepted (``auto``: learnt once)
        auth = cfg.token_auth
        self._auth: str | None = None if auth == "auto" else auth
        #: does the server take the query along with a page token? None: not known yet
        self._query_with_token: bool | None = None

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> SS12000Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _hidden(self) -> tuple[str, ...]:
        return tuple(v for v in (self._secret, self._token) if v)

    def _answer(self, response: requests.Response) -> str:
        """``HTTP <status>: <the start of the body>`` for an error message."""
        try:
            body = response.text
        except (requests.RequestException, UnicodeError):  # pragma: no cover - unreadable
            body = ""
        excerpt = answer_excerpt(body, self._hidden())
        return f"HTTP {response.status_code}" + (f": {excerpt}" if excerpt else "")

    # token ---------------------------------------------------------------------------------

    def _bearer(self) -> str:
        if self._token is None or time.monotonic() >= self._token_valid_until:
            self._fetch_token()
        assert self._token is not None
        return self._token

    def _fetch_token(self) -> None:
        """A new token; with ``token_auth: auto`` Basic first, then form fields."""
        url = self.cfg.token_url
        methods = [self._auth] if self._auth else ["basic", "post"]
        first_refusal = ""
        for method in methods:
            try:
                token = self._request_token(method)
            except _NoToken as refused:
                response = refused.response
                status = response.status_code
                if len(methods) == 2 and method == "basic" and status in _TRY_FORM_FIELDS_ON:
                    first_refusal = f"HTTP Basic: HTTP {status}, then form fields"
                    log.info(
                        "ss12000: token endpoint %s refused HTTP Basic (HTTP %s); "
                        "sending the client credentials as form fields",
                        url,
                        status,
                    )
                    continue
                tried = f" ({first_refusal})" if first_refusal else ""
                if status == 200:
                    raise SourceError(
                        f"ss12000: token endpoint {url} sent no usable token: "
                        f"{self._answer(response)}"
                    ) from None
                if status in (*_TRY_FORM_FIELDS_ON, 403):
                    raise SourceError(
                        f"ss12000: token endpoint {url} refused the client credentials{tried}: "
                        f"{self._answer(response)}"
                    ) from None
                raise SourceError(
                    f"ss12000: token endpoint {url} answered {self._answer(response)}"
                ) from None
            if self._auth is None:
                log.info(
                    "ss12000: token endpoint %s accepted the client credentials as %s; "
                    "sending them so for the rest of the run",
                    url,
                    _AUTH_WORDS[method],
                )
                self._auth = method
            self._keep_token(token)
            return

    def _request_token(self, method: str) -> dict[str, Any]:
        """One token request by Authlib (retried as any request is); raises :class:`_NoToken`."""
        session = self._session
        session.token_endpoint_auth_method = _AUTH_METHODS[method]
        extra = {"audience": self.cfg.audience} if self.cfg.audience else {}
        what = f"token endpoint {self.cfg.token_url}"
        try:
            token: dict[str, Any] = self._send(
                what,
                lambda: session.fetch_token(
                    self.cfg.token_url,
                    grant_type="client_credentials",
                    timeout=self.cfg.timeout_seconds,
                    **extra,
                ),
            )
        except (AuthlibBaseError, ValueError, TypeError) as exc:  # e.g. expires_in: "an hour"
            raise SourceError(f"ss12000: {what} sent no usable token ({exc})") from None
        return token

    def _keep_token(self, token: dict[str, Any]) -> None:
        try:
            expires_in = float(token.get("expires_in") or 3600)
        except (TypeError, ValueError):
            expires_in = 3600.0
        # renew a little before the server would: a fifth of the lifetime, at most a minute
        margin = min(60.0, expires_in / 5)
        self._token = str(token["access_token"])
        self._token_valid_until = time.monotonic() + expires_in - margin

    # requests ------------------------------------------------------------------------------

    def _backoff(self, attempt: int) -> float:
        cap = min(self.cfg.max_backoff_seconds, 0.5 * 2**attempt)
        return cap * random.uniform(0.5, 1.0)

    def _send(self, what: str, call: Callable[[], _T]) -> _T:
        """``call`` until it is neither busy (429/5xx) nor failing in transport, or retries
        run out."""
        attempts = self.cfg.max_retries + 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                return call()
            except requests.exceptions.SSLError as exc:
                # a certificate problem does not go away by asking again
                raise SourceError(f"ss12000: {what}: TLS verification failed (ca_file?)") from exc
            except _TRANSPORT_ERRORS as exc:
                if last:
                    raise SourceError(
                        f"ss12000: {what} failed after {attempts} attempts: {type(exc).__name__}"
                    ) from exc
                log.warning("ss12000: %s: %s; retrying", what, type(exc).__name__)
                self._sleep(self._backoff(attempt))
            except requests.RequestException as exc:  # a bad URL and the like
                raise SourceError(f"ss12000: {what} failed: {type(exc).__name__}") from exc
            except _Busy as busy:
                response = busy.response
                status = response.status_code
                if last:
                    raise SourceError(
                        f"ss12000: {what} failed after {attempts} attempts: "
                        f"{self._answer(response)}"
                    ) from None
                wait = self._backoff(attempt)
                if status == 429:
                    asked = retry_after_seconds(response.headers.get("Retry-After"))
                    if asked is not None:
                        wait = min(asked, max(RETRY_AFTER_CEILING_SECONDS, wait))
                log.warning("ss12000: %s: HTTP %s; retrying in %.1f s", what, status, wait)
                response.close()
                self._sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def get_page(self, path: str, params: dict[str, str], *, probing: bool = False) -> Page:
        """One validated list page; retries transient failures and unreadable bodies.

        ``probing``: the query goes along with a page token for the first time, and a 400
        or 422 means the server refuses that combination (:class:`_QueryRefused`).
        """
        what = f"GET {path}"
        url = self.base_url + path
        attempts = self.cfg.max_retries + 1
        refreshed = False
        attempt = 0
        while True:
            response = self._send(
                what,
                lambda: _busy_is_retried(
                    self._session.get(
                        url,
                        params=params,
                        headers={"Authorization": f"Bearer {self._bearer()}"},
                        timeout=self.cfg.timeout_seconds,
                        withhold_token=True,  # the bearer is ours: see the class docstring
                    )
                ),
            )
            status = response.status_code
            if status == 401 and not refreshed:
                # the token expired or was revoked early: fetch a new one, once per page
                refreshed = True
                self._token = None
                continue
            if probing and status in (400, 422):
                raise _QueryRefused(self._answer(response))
            if status in (400, 404, 410) and "pageToken" in params:
                raise _StalePageToken(f"HTTP {status} on a page token")
            if status != 200:
                raise SourceError(f"ss12000: {what} failed: {self._answer(response)}")
            try:
                page = response.json()
                problem = _page_problem(page)
            except ValueError:
                problem = "a body that is not JSON (truncated?)"
            if problem is None:
                return page
            attempt += 1
            if attempt >= attempts:
                raise SourceError(f"ss12000: {what} returned {problem} {attempts} times")
            log.warning("ss12000: %s returned %s; retrying", what, problem)
            self._sleep(self._backoff(attempt))

    def pages(self, path: str, params: dict[str, str]) -> Iterator[Page]:
        """Every page of a list: the first with ``params``, the rest by their page token."""
        page = self.get_page(path, params)
        seen_tokens: set[str] = set()
        while True:
            yield page
            token = page.get("pageToken")
            if not token:
                return
            if token in seen_tokens:
                raise _InconsistentRead("the server sent the same page token twice")
            seen_tokens.add(token)
            page = self._next_page(path, params, token)

    def _next_page(self, path: str, params: dict[str, str], token: str) -> Page:
        """The page after ``token``.

        Some servers' page tokens are plain offsets: a later page asked for with the token
        alone loses ``limit``, ``expand`` and ``meta.modified.after`` (responsibles vanish,
        an incremental read turns into a full one). Others keep the query in the token and
        refuse it next to one (SS 12000: a page token is not combined with other filters).
        So the query goes along with the token until the server refuses that once; from
        then on, for the rest of the run, the token goes alone.
        """
        if self._query_with_token is not False:
            probing = self._query_with_token is None
            try:
                page = self.get_page(path, {**params, "pageToken": token}, probing=probing)
            except _QueryRefused as refused:
                log.info(
                    "ss12000: GET %s: the server refused the query next to a page token (%s); "
                    "sending page tokens alone",
                    path,
                    refused,
                )
            else:
                if probing:
                    log.info("ss12000: the server takes the query along with page tokens")
                    self._query_with_token = True
                return page
        page = self.get_page(path, {"pageToken": token})
        self._query_with_token = False
        return page


def _busy_is_retried(response: requests.Response) -> requests.Response:
    if response.status_code == 429 or response.status_code >= 500:
        raise _Busy(response)
    return response


def _judge_token_answer(response: requests.Response) -> requests.Response:
    """Authlib's hook on the token endpoint's answer, before it reads the token."""
    _busy_is_retried(response)
    if response.status_code != 200:
        raise _NoToken(response)
    try:
        body = response.json()
    except ValueError:
        raise _NoToken(response) from None
    token = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise _NoToken(response)
    return response


def _page_problem(page: Any) -> str | None:
    if not isinstance(page, dict):
        return "a body that is not a JSON object"
    if not isinstance(page.get("data"), list | dict):
        return "a body without a data list"
    token = page.get("pageToken")
    if token is not None and not isinstance(token, str):
        return "a pageToken that is not a string"
    return None


# --- reading an endpoint into a sink ---------------------------------------------------------


class _ListFile:
    """``{"data": [...]}`` streamed to a hidden 0600 file, one entity at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[str] | None = None
        self.count = 0

    def begin(self) -> None:
        self.close()
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE)
        os.fchmod(fd, PRIVATE)
        self._handle = os.fdopen(fd, "w", encoding="utf-8")
        self._handle.write('{"data": [')
        self.count = 0

    def add(self, entity: dict[str, Any]) -> None:
        assert self._handle is not None
        self._handle.write(",\n" if self.count else "\n")
        self._handle.write(json.dumps(entity, ensure_ascii=False))
        self.count += 1

    def finish(self) -> None:
        assert self._handle is not None
        self._handle.write("\n]}\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self.close()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def discard(self) -> None:
        self.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


class _Changes:
    """Changed entities of an incremental read, by id (small, so kept in memory)."""

    def __init__(self) -> None:
        self.by_id: dict[str, dict[str, Any]] = {}

    def begin(self) -> None:
        self.by_id = {}

    def add(self, entity: dict[str, Any]) -> None:
        self.by_id[entity["id"]] = entity


def _read_entities(
    client: SS12000Client, name: str, params: dict[str, str], sink: _ListFile | _Changes
) -> None:
    """Read one endpoint completely into ``sink``; an inconsistent read is restarted once."""

    def read_once() -> None:
        sink.begin()
        seen: set[str] = set()
        for page in client.pages(f"/{name}", params):
            data = page["data"]
            if not isinstance(data, list):
                raise SourceError(f"ss12000: GET /{name} returned data that is not a list")
            for entity in data:
                entity_id = entity.get("id") if isinstance(entity, dict) else None
                if not isinstance(entity_id, str) or not entity_id:
                    raise SourceError(f"ss12000: GET /{name} returned an entry without an id")
                if entity_id in seen:
                    raise _InconsistentRead("an id came twice across pages")
                seen.add(entity_id)
                sink.add(entity)

    _restarting_once(f"/{name}", read_once)


def _restarting_once(path: str, read: Callable[[], None]) -> None:
    """Run ``read``; a stale page token or an inconsistent read starts it over, once."""
    for round_ in (1, 2):
        try:
            read()
            return
        except (_StalePageToken, _InconsistentRead) as exc:
            if round_ == 2:
                raise SourceError(
                    f"ss12000: GET {path} could not be read consistently ({exc}), twice"
                ) from exc
            log.warning("ss12000: GET %s: %s; reading it again from the start", path, exc)


def _read_deleted(client: SS12000Client, after: str) -> dict[str, set[str]]:
    """Ids deleted since ``after``, per endpoint name; accepts both answer shapes."""
    deleted: dict[str, set[str]] = {}

    def read_once() -> None:
        deleted.clear()
        deleted.update({name: set() for name in ENTITIES})
        for page in client.pages("/deletedEntities", {"after": after}):
            _collect_deleted(page["data"], deleted)

    _restarting_once("/deletedEntities", read_once)
    return deleted


def _collect_deleted(data: list[Any] | dict[str, Any], deleted: dict[str, set[str]]) -> None:
    if isinstance(data, list):
        for entry in data:
            if not isinstance(entry, dict):
                raise SourceError("ss12000: GET /deletedEntities returned a malformed entry")
            name = _ENTITY_TYPES.get(str(entry.get("entityType", "")).lower())
            if name is not None and isinstance(entry.get("id"), str):
                deleted[name].add(entry["id"])
        return
    for key, ids in data.items():
        name = _ENTITY_TYPES.get(str(key).lower())
        if name is None or not isinstance(ids, list):
            continue  # types we do not read (absences, rooms, ...)
        for item in ids:
            item_id = item.get("id") if isinstance(item, dict) else item
            if isinstance(item_id, str):
                deleted[name].add(item_id)


# --- full and incremental reads --------------------------------------------------------------


def _part(out_dir: Path, name: str) -> Path:
    return out_dir / f".{name}.json.part"


def _publish(out_dir: Path, files: dict[str, _ListFile]) -> None:
    for name, part in files.items():
        part.path.replace(out_dir / f"{name}.json")


def _full_read(client: SS12000Client, out_dir: Path) -> dict[str, int]:
    files = {name: _ListFile(_part(out_dir, name)) for name in ENTITIES}
    try:
        for name in ENTITIES:
            params = {"limit": str(client.cfg.page_size), **_EXPAND.get(name, {})}
            _read_entities(client, name, params, files[name])
            files[name].finish()
        _publish(out_dir, files)
    finally:
        for part in files.values():
            part.discard()
    return {name: files[name].count for name in ENTITIES}


def _incremental_read(
    client: SS12000Client, out_dir: Path, cache_dir: Path, since: dt.datetime
) -> dict[str, int]:
    after = format_timestamp(since)
    changes = {name: _Changes() for name in ENTITIES}
    for name in ENTITIES:
        params = {
            "limit": str(client.cfg.page_size),
            "meta.modified.after": after,
            **_EXPAND.get(name, {}),
        }
        _read_entities(client, name, params, changes[name])
    deleted = _read_deleted(client, after)

    files = {name: _ListFile(_part(out_dir, name)) for name in ENTITIES}
    try:
        for name in ENTITIES:
            _merge(cache_dir / f"{name}.json", changes[name].by_id, deleted[name], files[name])
        _publish(out_dir, files)
    finally:
        for part in files.values():
            part.discard()
    counts = {name: files[name].count for name in ENTITIES}
    counts["changed"] = sum(len(c.by_id) for c in changes.values())
    counts["deleted"] = sum(len(ids) for ids in deleted.values())
    return counts


def _merge(
    cached_file: Path, changed: dict[str, dict[str, Any]], deleted: set[str], out: _ListFile
) -> None:
    pending = dict(changed)
    out.begin()
    try:  # streamed: one batch of the cached register in memory at a time
        for batch in iter_objects(cached_file, cached_file.stem):
            for entity in batch:
                entity_id = entity.get("id")
                if entity_id in deleted:
                    continue
                out.add(pending.pop(entity_id, entity))
    except (OSError, SourceError) as exc:
        raise SourceError(f"ss12000: the cached register {cached_file} is unreadable") from exc
    for entity_id, entity in pending.items():
        if entity_id not in deleted:
            out.add(entity)
    out.finish()


# --- the cache -------------------------------------------------------------------------------


def _load_state(cache_dir: Path, cfg: SS12000ApiSource) -> dict[str, dt.datetime] | None:
    """The cache's state if it holds a complete register of this API, else None."""
    try:
        raw = json.loads((cache_dir / STATE_FILE).read_text(encoding="utf-8"))
        if raw.get("base_url") != cfg.base_url:
            return None
        state = {
            "last_full_read": parse_timestamp(raw["last_full_read"]),
            "last_read": parse_timestamp(raw["last_read"]),
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if not all((cache_dir / f"{name}.json").is_file() for name in ENTITIES):
        return None
    return state


def _update_cache(
    out_dir: Path, cache_dir: Path, cfg: SS12000ApiSource, full_read: dt.datetime, now: dt.datetime
) -> None:
    # the register files first, the state last: merging is idempotent, so a crash in
    # between only makes the next run fetch a few changes again
    cache_dir.mkdir(parents=True, exist_ok=True)
    for name in ENTITIES:
        tmp = cache_dir / f".{name}.json.part"
        shutil.copyfile(out_dir / f"{name}.json", tmp)
        tmp.chmod(PRIVATE)
        tmp.replace(cache_dir / f"{name}.json")
    state = {
        "base_url": cfg.base_url,
        "last_full_read": format_timestamp(full_read),
        "last_read": format_timestamp(now),
    }
    write_private(cache_dir / STATE_FILE, json.dumps(state, indent=2).encode() + b"\n")


# --- entry point -----------------------------------------------------------------------------


def extract(
    cfg: SS12000ApiSource,
    out_dir: Path,
    *,
    cache_dir: Path | None = None,
    now: dt.datetime | None = None,
) -> dict[str, int]:
    """Write the five list files into ``out_dir`` and return the entity counts.

    ``full_read`` in the result is 1 for a full read and 0 for an incremental one.
    """
    now = now or dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    out_dir.mkdir(parents=True, exist_ok=True)
    use_cache = cfg.incremental and cache_dir is not None
    state = _load_state(cache_dir, cfg) if use_cache and cache_dir is not None else None
    incremental = state is not None and now - state["last_full_read"] < dt.timedelta(
        days=cfg.full_read_every_days
    )
    with SS12000Client(cfg) as client:
        if incremental and state is not None and cache_dir is not None:
            since = state["last_read"] - dt.timedelta(minutes=cfg.overlap_minutes)
            counts = _incremental_read(client, out_dir, cache_dir, since)
            full_read_at = state["last_full_read"]
        else:
            counts = _full_read(client, out_dir)
            full_read_at = now
    counts["full_read"] = 0 if incremental else 1
    if use_cache and cache_dir is not None:
        _update_cache(out_dir, cache_dir, cfg, full_read_at, now)
    log.info("ss12000: read %s", counts)
    return counts
