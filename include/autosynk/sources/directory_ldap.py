"""The directory source: staff e-mail addresses and login names from LDAP / Active Directory.

A paged search (RFC 2696 simple paged results) under ``base_dn`` reads, for every entry,
the attribute matched against the register (``match_attribute``), the mail and login
attributes, ``givenName``, ``sn`` and the DN. ``extract`` writes them as
``directory.json`` (``{"data": [{"match", "mail", "login", "given_name", "family_name",
"dn"}]}``), sorted by match value and DN so the same directory gives the same bytes.

The read is all or nothing: a bind, TLS, network or timeout failure, and any search
result other than success (a size or time limit cut off part way, a referral, a page
error) raise :class:`SourceError`; no file is written then.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ldap3
from ldap3.core import exceptions as ldap_errors

from autosynk.config import LdapDirectory, secret
from autosynk.errors import SourceError
from autosynk.identity import InvalidIdentity, mask, normalise
from autosynk.workspace import write_private

log = logging.getLogger(__name__)

PAGED_RESULTS_OID = "1.2.840.113556.1.4.319"
GIVEN_NAME = "givenName"
FAMILY_NAME = "sn"


@dataclass
class DirectoryRead:
    """What one search found: the usable entries and the counts of those left out."""

    entries: list[dict[str, str | None]] = field(default_factory=list)
    without_match: int = 0
    invalid_civic_no: int = 0
    #: match values held by more than one entry (all are kept, ordered by DN)
    duplicate_matches: int = 0

    def counts(self) -> dict[str, int]:
        return {
            "directory_entries": len(self.entries),
            "directory_without_match": self.without_match,
            "directory_invalid_civic_no": self.invalid_civic_no,
            "directory_duplicate_matches": self.duplicate_matches,
        }


def extract(cfg: LdapDirectory, out_path: Path) -> int:
    """Search the directory and write ``out_path`` (0600, atomically); return the count."""
    found = read_directory(cfg)
    payload = json.dumps({"data": found.entries}, ensure_ascii=False, indent=2, sort_keys=True)
    write_private(out_path, payload.encode() + b"\n")
    return len(found.entries)


def read_directory(cfg: LdapDirectory) -> DirectoryRead:
    """Search the whole directory; raises :class:`SourceError` unless every page arrived."""
    found = DirectoryRead()
    with _failures_as_source_error(cfg):
        conn = connection_from(cfg)
        try:
            for attributes, dn in _paged_entries(conn, cfg):
                _collect(found, cfg, attributes, dn)
        finally:
            with contextlib.suppress(ldap_errors.LDAPException, OSError):
                conn.unbind()
    found.entries.sort(key=lambda entry: (entry["match"] or "", entry["dn"] or ""))
    matches = [entry["match"] for entry in found.entries]
    found.duplicate_matches = len(matches) - len(set(matches))
    log.info("directory %s: %d usable entries under %s", cfg.url, len(found.entries), cfg.base_dn)
    if found.without_match or found.invalid_civic_no or found.duplicate_matches:
        # counts only: the values themselves are personal data
        log.warning(
            "directory %s: %d entries read; left out %d without %s and %d with an invalid "
            "civic number; %d match values are held by more than one entry",
            cfg.url,
            len(found.entries),
            found.without_match,
            cfg.match_attribute,
            found.invalid_civic_no,
            found.duplicate_matches,
        )
    return found


def connection_from(cfg: LdapDirectory) -> ldap3.Connection:
    """An open, bound (and, if asked, StartTLS-protected) connection; the caller unbinds.

    ``ldaps://`` URLs use TLS from the start; ``start_tls`` upgrades an ``ldap://`` one.
    Certificates are always verified: against ``ca_file`` when given, else the system's CAs.
    Failures raise :class:`SourceError` with a one-line message.
    """
    with _failures_as_source_error(cfg):
        use_ssl = cfg.url.lower().startswith("ldaps://")
        tls = ldap3.Tls(
            validate=ssl.CERT_REQUIRED,
            ca_certs_file=str(cfg.ca_file) if cfg.ca_file else None,
        )
        server = ldap3.Server(
            cfg.url,
            use_ssl=use_ssl,
            tls=tls,
            get_info=ldap3.NONE,
            connect_timeout=cfg.timeout_seconds,
        )
        password = secret(cfg.bind_password, cfg.bind_password_env, "directory.bind_password")
        conn = ldap3.Connection(
            server,
            user=cfg.bind_dn,
            password=password,
            authentication=ldap3.SIMPLE if cfg.bind_dn else ldap3.ANONYMOUS,
            auto_bind=ldap3.AUTO_BIND_NONE,
            read_only=True,
            raise_exceptions=True,
            # ldap3 packs this into SO_RCVTIMEO as whole seconds
            receive_timeout=max(1, math.ceil(cfg.timeout_seconds)),
            auto_referrals=False,
        )
        try:
            conn.open()
            if cfg.start_tls and not use_ssl:
                conn.start_tls()
            conn.bind()
        except BaseException:
            # closing a half-open (e.g. failed TLS) socket fails too: keep the first error
            with contextlib.suppress(ldap_errors.LDAPException, OSError):
                conn.unbind()
            raise
        return conn


def _paged_entries(
    conn: ldap3.Connection, cfg: LdapDirectory
) -> Iterator[tuple[dict[str, Any], str]]:
    wanted = [cfg.match_attribute, cfg.mail_attribute, cfg.login_attribute, GIVEN_NAME]
    wanted.append(FAMILY_NAME)
    cookie: bytes | None = None
    read = 0
    while True:
        conn.search(
            cfg.base_dn,
            cfg.search_filter,
            search_scope=ldap3.SUBTREE,
            attributes=sorted(set(wanted)),
            paged_size=cfg.page_size,
            paged_cookie=cookie,
            time_limit=max(1, math.ceil(cfg.timeout_seconds)),
        )
        # ldap3 does not raise for size/time limits or referrals: each means a short read
        result = conn.result
        if result.get("result") != 0:
            raise SourceError(
                f"directory {cfg.url}: search under {cfg.base_dn} stopped after {read} "
                f"entries: {result.get('description')} {_one_line(result.get('message'))}".rstrip()
            )
        for item in conn.response or []:
            if item.get("type") != "searchResEntry":
                continue  # continuation references (AD) point outside the base
            read += 1
            yield dict(item.get("attributes") or {}), str(item.get("dn"))
        control = (result.get("controls") or {}).get(PAGED_RESULTS_OID) or {}
        cookie = (control.get("value") or {}).get("cookie")
        if not cookie:
            return


def _collect(found: DirectoryRead, cfg: LdapDirectory, attrs: dict[str, Any], dn: str) -> None:
    by_name = {name.lower(): value for name, value in attrs.items()}
    raw_match = _first(by_name.get(cfg.match_attribute.lower()))
    if raw_match is None:
        found.without_match += 1
        return
    match = raw_match
    if cfg.match_on == "civic_no":
        try:
            match = normalise(raw_match).value
        except InvalidIdentity:
            found.invalid_civic_no += 1
            return
    found.entries.append(
        {
            "match": match,
            "mail": _first(by_name.get(cfg.mail_attribute.lower())),
            "login": _first(by_name.get(cfg.login_attribute.lower())),
            "given_name": _first(by_name.get(GIVEN_NAME.lower())),
            "family_name": _first(by_name.get(FAMILY_NAME.lower())),
            "dn": dn,
        }
    )


def _first(value: Any) -> str | None:
    """One value of a possibly multi-valued attribute: the smallest, so reads repeat."""
    values = value if isinstance(value, list | tuple) else [value]
    texts = []
    for item in values:
        if isinstance(item, bytes):
            try:
                item = item.decode("utf-8")
            except UnicodeDecodeError:
                continue
        if item is None:
            continue
        text = str(item).strip()
        if text:
            texts.append(text)
    return min(texts) if texts else None


def _one_line(text: object) -> str:
    return " ".join(str(text or "").split())


@contextlib.contextmanager
def _failures_as_source_error(cfg: LdapDirectory) -> Iterator[None]:
    """Turn ldap3's and the socket layer's exceptions into a one-line SourceError."""
    try:
        yield
    except SourceError:
        raise
    except (ldap_errors.LDAPException, OSError) as exc:
        raise SourceError(mask(f"directory {cfg.url}: {_describe(exc)}")) from None


def _describe(exc: BaseException) -> str:
    text = _one_line(exc)
    lowered = text.lower()
    if isinstance(exc, ldap_errors.LDAPInvalidCredentialsResult):
        return "bind refused: invalid credentials (check bind_dn and the password)"
    if isinstance(exc, ldap_errors.LDAPBindError | ldap_errors.LDAPAuthMethodNotSupportedResult):
        return f"bind refused: {text}"
    timeouts = (
        ldap_errors.LDAPResponseTimeoutError,
        ldap_errors.LDAPTimeLimitExceededResult,
        TimeoutError,
    )
    if isinstance(exc, timeouts) or "timed out" in lowered:
        return "no answer in time (timeout_seconds)"
    tls_errors = (ldap_errors.LDAPStartTLSError, ldap_errors.LDAPCertificateError, ssl.SSLError)
    if isinstance(exc, tls_errors) or "certificate" in lowered or "ssl" in lowered:
        # the certificate error's own text carries the whole certificate: keep it short
        return f"TLS failed: {_tls_reason(lowered)} (check ca_file and the server's name)"
    if isinstance(exc, ldap_errors.LDAPSocketOpenError | ConnectionError):
        return f"cannot connect: {_socket_reason(lowered)}"
    if isinstance(exc, ldap_errors.LDAPCommunicationError):
        return "connection lost while reading"
    if isinstance(exc, ldap_errors.LDAPInvalidFilterError):
        return "search_filter is not a valid LDAP filter"
    if isinstance(exc, ldap_errors.LDAPNoSuchObjectResult):
        return "base_dn does not exist"
    if isinstance(exc, ldap_errors.LDAPOperationResult):
        return f"{exc.description or 'operation failed'}: {_one_line(exc.message)}".rstrip(": ")
    return f"{type(exc).__name__}: {text[:200]}"


def _tls_reason(lowered: str) -> str:
    if "certificate verify failed" in lowered or "unknown ca" in lowered:
        return "server certificate not trusted"
    if "doesn't match" in lowered or "hostname" in lowered:
        return "server certificate does not name this host"
    if "wrong version number" in lowered or "unexpected eof" in lowered:
        return "no TLS on this port"
    return "handshake error"


def _socket_reason(lowered: str) -> str:
    for needle, reason in (
        ("refused", "connection refused"),
        ("name or service not known", "unknown host"),
        ("unreachable", "network unreachable"),
        ("invalid server address", "invalid server address"),
    ):
        if needle in lowered:
            return reason
    return lowered[:160] or "socket error"
