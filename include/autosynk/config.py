"""The run configuration: one YAML file serves the CLI and the DAGs alike (spec §10).

Unknown keys are errors; every error names the key and its line. Relative paths are taken
relative to the configuration file. Secrets never live in the file itself: name an
environment variable (``*_env``) instead, or, in Airflow, a connection.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from autosynk.errors import ConfigError
from autosynk.model import PRINCIPAL_ORDER, RELATION_ORDER
from autosynk.yamlfile import parse_model

CONFIG_ENV = "AUTOSYNK_CONFIG"
#: how a total export names the ``target`` section (the others are ``extra_targets``)
CONFIGURED_TARGET = "configured"
_TARGET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
#: five cron fields (minute hour day month weekday)
CRON = re.compile(r"^[\w*/,-]+(\s+[\w*/,-]+){4}$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _resolve(value: Path | None, info: ValidationInfo) -> Path | None:
    if value is None:
        return None
    base = (info.context or {}).get("base_dir")
    value = Path(value).expanduser()
    return value if value.is_absolute() or base is None else (Path(base) / value)


class PathsResolved(Strict):
    """Path fields of subclasses are made absolute against the configuration file."""

    @field_validator("*", mode="after")
    @classmethod
    def _absolute(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, Path):
            return _resolve(value, info)
        return value


def secret(value: str | None, env: str | None, what: str) -> str | None:
    """A secret given inline or by naming an environment variable."""
    if env:
        found = os.environ.get(env)
        if found is None:
            raise ConfigError(f"{what}: environment variable {env} is not set")
        return found
    return value


# --- sources -----------------------------------------------------------------------------


class SS12000FilesSource(PathsResolved):
    """A directory holding the five SS 12000 list responses as JSON files."""

    kind: Literal["ss12000-files"]
    path: Path


class SS12000ApiSource(PathsResolved):
    """An SS 12000 REST API (OAuth2 client credentials)."""

    kind: Literal["ss12000"]
    base_url: str
    token_url: str
    client_id: str
    client_secret: str | None = None
    client_secret_env: str | None = None
    #: how the client credentials reach the token endpoint: HTTP Basic (client_secret_basic),
    #: form fields (client_secret_post), or auto: Basic, then form fields on a 400/401/422
    token_auth: Literal["auto", "basic", "post"] = "auto"  # noqa: S105 - a method
    scope: str | None = None
    #: passed to the token endpoint as it is (some identity providers require it)
    audience: str | None = None
    page_size: int = Field(500, ge=1, le=10000)
    timeout_seconds: float = Field(60.0, gt=0)
    max_retries: int = Field(6, ge=0, le=20)
    max_backoff_seconds: float = Field(60.0, gt=0)
    #: incremental reads (meta.modified.after + deletedEntities) between full reads
    incremental: bool = False
    full_read_every_days: int = Field(7, ge=1)
    overlap_minutes: int = Field(30, ge=0)
    ca_file: Path | None = None
    #: in Airflow: take base URL and client credentials from this connection instead
    airflow_connection: str | None = None


class CsvExportSource(PathsResolved):
    """A directory of CSV/TSV files exported by the register (see docs/file-export.md)."""

    kind: Literal["csv-export"]
    path: Path
    encoding: str = "auto"
    delimiter: str | None = None
    columns: dict[str, dict[str, str]] = Field(default_factory=dict)


Source = Annotated[
    SS12000FilesSource | SS12000ApiSource | CsvExportSource, Field(discriminator="kind")
]


class LdapDirectory(PathsResolved):
    """LDAP/AD: staff e-mail and login names, matched to persons by an attribute."""

    url: str
    bind_dn: str | None = None
    bind_password: str | None = None
    bind_password_env: str | None = None
    base_dn: str
    search_filter: str = "(objectClass=person)"
    #: which directory attribute holds the value matched against the register
    match_attribute: str = "employeeNumber"
    #: which register value it is matched against
    match_on: Literal["civic_no", "eppn", "person_id"] = "civic_no"
    mail_attribute: str = "mail"
    login_attribute: str = "uid"
    start_tls: bool = False
    ca_file: Path | None = None
    page_size: int = Field(500, ge=1, le=5000)
    timeout_seconds: float = Field(30.0, gt=0)
    #: in Airflow: take URL and bind credentials from this connection instead
    airflow_connection: str | None = None


# --- staging, targets, packaging -----------------------------------------------------------


class Staging(Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    #: SQLAlchemy URL; relative SQLite paths are taken against the configuration file
    url: str = "sqlite:///staging.db"
    lock_wait_seconds: float = Field(0.0, ge=0)

    @field_validator("url", mode="after")
    @classmethod
    def _sqlite_relative(cls, value: str, info: ValidationInfo) -> str:
        prefix = "sqlite:///"
        if value.startswith(prefix) and not value.startswith(prefix + "/"):
            rest = value[len(prefix) :]
            if rest and rest != ":memory:":
                resolved = _resolve(Path(rest), info)
                return prefix + str(resolved)
        return value


class DirectoryTarget(PathsResolved):
    """A local (or mounted) folder: the embedded default."""

    kind: Literal["directory"]
    path: Path


class SftpTarget(PathsResolved):
    """Unikum's file server over SFTP; the host key is always pinned."""

    kind: Literal["sftp"]
    host: str
    port: int = Field(22, ge=1, le=65535)
    username: str
    private_key_file: Path | None = None
    private_key_passphrase_env: str | None = None
    password_env: str | None = None
    host_key: str | None = None
    known_hosts: Path | None = None
    remote_dir: str
    timeout_seconds: float = Field(30.0, gt=0)
    #: in Airflow: deliver through the SFTP provider's hook with this connection (its
    #: extra must pin host_key); host, username and key here serve the CLI
    airflow_connection: str | None = None


Target = Annotated[DirectoryTarget | SftpTarget, Field(discriminator="kind")]


class Pgp(PathsResolved):
    """OpenPGP: encrypt to Unikum's key, sign with the municipality's (GnuPG)."""

    gnupghome: Path | None = None
    recipient_key_file: Path | None = None
    signer_key_file: Path | None = None
    recipient: str
    signer: str
    passphrase_env: str | None = None


class Naming(Strict):
    #: replace å ä ö and other non-ASCII letters in file names
    ascii_only: bool = False


class FileFormat(Strict):
    line_ending: Literal["lf", "crlf"] = "lf"
    #: the order of the four columns of a relation row (spec §4, [assumed])
    relation_columns: tuple[
        Literal["operation", "type", "first", "second"],
        Literal["operation", "type", "first", "second"],
        Literal["operation", "type", "first", "second"],
        Literal["operation", "type", "first", "second"],
    ] = ("operation", "type", "first", "second")
    #: removes after all adds, in reverse dependency order (spec §4, [assumed])
    removes_after_adds: bool = True

    @field_validator("relation_columns")
    @classmethod
    def _each_once(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != 4:
            raise ValueError("must name operation, type, first and second once each")
        return value


class Limit(Strict):
    """One guard: how many adds, changes or removes of one type a run may carry.

    A count trips the guard when it is above ``max_rows``, or when it is at least
    ``min_rows`` and more than ``max_share`` of what is delivered for the type (with
    nothing delivered, any count of at least ``min_rows`` is more than any share).
    """

    #: largest share of what is delivered for the type (None: no share limit)
    max_share: float | None = Field(0.15, ge=0)
    #: counts below this never trip the share limit (an ordinary school day)
    min_rows: int = Field(200, ge=0)
    #: refuse above this many rows whatever the share (None: no absolute limit)
    max_rows: int | None = Field(None, ge=0)


class Limits(Strict):
    """The limits of one type (or the defaults), per operation; unset = the default's."""

    add: Limit | None = None
    change: Limit | None = None
    remove: Limit | None = None


#: what a run's delta is guarded by, per operation, unless set otherwise
DEFAULT_LIMITS = Limits(add=Limit(), change=Limit(), remove=Limit())


class Guards(Strict):
    """Guard limits: ``defaults`` per operation, and ``types`` overriding them for a
    principals row type (``user``, ``class``, ``school``) or a relation type."""

    #: what an operation is held to where neither ``types`` nor ``defaults`` say
    fallback: ClassVar[Limits] = DEFAULT_LIMITS
    #: limits of types that differ from ``fallback`` unless the configuration says otherwise
    builtin_types: ClassVar[dict[str, Limits]] = {}

    defaults: Limits = Limits()
    types: dict[str, Limits] = Field(default_factory=dict)

    @field_validator("types")
    @classmethod
    def _known_types(cls, value: dict[str, Limits]) -> dict[str, Limits]:
        for name, limits in value.items():
            if name not in PRINCIPAL_ORDER and name not in RELATION_ORDER:
                known = ", ".join((*PRINCIPAL_ORDER, *RELATION_ORDER))
                raise ValueError(f"unknown type {name!r}; known: {known}")
            if name in RELATION_ORDER and limits.change is not None:
                raise ValueError(f"{name}: relations are added or removed, never changed")
        return value

    def limit(self, type_name: str, operation: str) -> Limit:
        """The limit for ``operation`` (add | change | remove) of ``type_name``: the
        configured type's, a built-in type's, the configured default, the fallback."""
        for limits in (
            self.types.get(type_name),
            self.builtin_types.get(type_name),
            self.defaults,
            self.fallback,
        ):
            found = getattr(limits, operation) if limits is not None else None
            if found is not None:
                return found
        raise AssertionError(f"no limit for {operation}")  # pragma: no cover - fallback has all


_UNLIMITED = Limit(max_share=None)


class SchoolYearGuards(Guards):
    """The school-year change's own budget (``safety.school_year``).

    The change detaches last year's groups and their memberships and rewrites every
    pupil's årskurs on purpose, so those are not limited; what stays guarded is what a
    year change does not explain: pupils, guardians and staff leaving schools or the
    sync (a partial export), and a surge of new records.
    """

    fallback: ClassVar[Limits] = Limits(
        add=Limit(max_share=0.5),
        change=_UNLIMITED,
        remove=Limit(max_share=0.35),
    )
    builtin_types: ClassVar[dict[str, Limits]] = {
        name: Limits(add=_UNLIMITED, remove=_UNLIMITED)
        for name in (
            "class",
            "class_in_school",
            "student_in_class",
            "teacher_in_class",
            "mentor_for",
            "administrator_for",
        )
    }

    #: a plan with pupils at a school without any group cannot be applied (spec §9.4)
    block_on_students_without_group: bool = True


class Safety(Guards):
    """Refuse deltas that look like a catastrophe rather than a school night.

    A refused run delivers nothing and leaves the staging state as it was; its plan can be
    approved (``autosynk run --approve PLAN``, or the approval task in Airflow).
    """

    #: largest share of all delivered relations one night may remove (all types together)
    max_remove_fraction: float = Field(0.15, ge=0, le=1)
    #: that guard only applies once at least this many relations would go
    min_removes_to_guard: int = Field(200, ge=0)
    #: the school-year change's own limits (the nightly keeps refusing such a delta)
    school_year: SchoolYearGuards = SchoolYearGuards()


class Retention(Strict):
    """How long each kind of data is kept, in days (``null``: until removed by hand).

    ``autosynk housekeeping`` removes what is older. Never removed, whatever its age: the
    delivered state, and everything a run that can still be finished, retried or approved
    needs (see docs/retention.md).
    """

    #: a run's work directory: register snapshot, mapped rows, delta, package
    work_days: int | None = Field(14, ge=1)
    #: run summaries and reports (in the work base and beside delivered files), and the
    #: quarantine ledger rows of a run
    reports_days: int | None = Field(90, ge=1)
    #: delivered files in a local folder target (the outbox)
    outbox_days: int | None = Field(14, ge=1)
    #: history rows of keys no longer delivered, counted from the key's last event
    history_days: int | None = Field(365, ge=1)
    #: run and delivery ledger rows (counts, file names and checksums only)
    ledger_days: int | None = Field(730, ge=1)


class RunConfig(Strict):
    # defaults are validated too: a default work_base is taken from the file's folder
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    municipality: str = Field(min_length=1)
    organisation_id: str = Field(min_length=1)
    mapping: Path | None = None
    source: Source
    directory: LdapDirectory | None = None
    staging: Staging = Staging()
    target: Target
    #: other targets a total may be sent to by name (e.g. Unikum's test server); a delivery
    #: there never advances the staging state
    extra_targets: dict[str, Target] = Field(default_factory=dict)
    encoding: Literal["utf-8", "iso-8859-1"] = "utf-8"
    packaging: Literal["plain", "zip", "zip+pgp"] = "plain"
    pgp: Pgp | None = None
    naming: Naming = Naming()
    format: FileFormat = FileFormat()
    safety: Safety = Safety()
    retention: Retention = Retention()
    #: where each run keeps its work directory (local path, or a fsspec URL on shared storage)
    work_base: str = "work"
    timezone: str = "Europe/Stockholm"
    #: Unikum imports at night: a delivery after this local time is flagged late
    deadline: str = Field("23:00", pattern=r"^\d{2}:\d{2}$")
    #: Airflow only: this municipality's slot per DAG (DAG name -> cron, in ``timezone``),
    #: e.g. ``{unikum_nightly_sync: "40 20 * * *"}``; the CLI ignores it
    schedules: dict[str, str] = Field(default_factory=dict)

    @field_validator("schedules", mode="after")
    @classmethod
    def _cron(cls, value: dict[str, str]) -> dict[str, str]:
        for dag, cron in value.items():
            if not CRON.match(cron.strip()):
                raise ValueError(f"{dag}: {cron!r} is not a cron expression of five fields")
        return value

    @field_validator("mapping", mode="after")
    @classmethod
    def _mapping_path(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return _resolve(value, info)

    @field_validator("work_base", mode="after")
    @classmethod
    def _work_base(cls, value: str, info: ValidationInfo) -> str:
        if "://" in value:
            return value
        resolved = _resolve(Path(value), info)
        return str(resolved)

    @model_validator(mode="before")
    @classmethod
    def _defaults_see_the_file(cls, data: Any) -> Any:
        # a default staging section still resolves its SQLite path against the file
        if isinstance(data, dict) and "staging" not in data:
            data = {**data, "staging": {}}
        return data

    @field_validator("extra_targets", mode="after")
    @classmethod
    def _target_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if name == CONFIGURED_TARGET or not _TARGET_NAME.fullmatch(name):
                raise ValueError(
                    f"{name!r} cannot name a target: use letters, digits, - and _, "
                    f"and not {CONFIGURED_TARGET!r} (that is the target section itself)"
                )
        return value

    @model_validator(mode="after")
    def _pgp_needed(self) -> RunConfig:
        if self.packaging == "zip+pgp" and self.pgp is None:
            raise ValueError("packaging zip+pgp needs a pgp section")
        return self


def load_config(path: str | Path | None = None) -> RunConfig:
    """Load the run configuration from ``path`` or from ``$AUTOSYNK_CONFIG``."""
    if path is None:
        path = os.environ.get(CONFIG_ENV)
        if not path:
            raise ConfigError(f"no configuration: pass --config or set {CONFIG_ENV}")
    return parse_model(RunConfig, Path(path))
