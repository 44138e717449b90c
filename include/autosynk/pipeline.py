"""One night, stage by stage: the functions the DAG tasks and the CLI call.

Every stage takes the run configuration and the run id, returns a small dict (counts, file
names: what XCom may carry, never personal data), and is idempotent: run again with the
same run id it either redoes its work from the same inputs or, once the run's package is
built, returns what it did the first time. Large data moves as files in the run's work
directory (see :mod:`autosynk.workspace`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import io
import json
import logging
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ParamSpec, TypeVar
from zoneinfo import ZoneInfo

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from upath import UPath

from autosynk import delta as delta_engine
from autosynk import memory_return, plans
from autosynk.config import DirectoryTarget, RunConfig, SftpTarget, Target
from autosynk.delivery import DeliveryRecord
from autosynk.errors import ConfigError, DeliveryError, SourceError, StateError
from autosynk.identity import mask
from autosynk.mapping.columnar import map_columns
from autosynk.mapping.result import QuarantineEntry
from autosynk.mapping.spec import load_mapping
from autosynk.progress import stage
from autosynk.register import collector_paused
from autosynk.register_columns import read_columns
from autosynk.sources import ENTITIES
from autosynk.sources.snapshot import take_snapshot
from autosynk.staging import snapshot
from autosynk.staging.store import ChangeFrame, Changes, Staging, frame_rows
from autosynk.unikum import writer
from autosynk.workspace import RunWorkspace, private_file

log = logging.getLogger("autosynk")
P = ParamSpec("P")
R = TypeVar("R")

#: entity lists that may never be empty: an empty one is a broken export, not a quiet night
REQUIRED_ENTITIES = ("organisations", "persons", "groups", "duties")

Uploader = Callable[[list[Path]], list[DeliveryRecord]]


# -- helpers ----------------------------------------------------------------------------


def staging_for(cfg: RunConfig) -> Staging:
    return Staging(cfg.staging.url)


def workspace_for(cfg: RunConfig, run_id: str) -> RunWorkspace:
    return RunWorkspace(cfg.work_base, run_id)


def local_now(cfg: RunConfig) -> dt.datetime:
    return dt.datetime.now(ZoneInfo(cfg.timezone))


def _missing(ws: RunWorkspace, *parts: str) -> StateError:
    return StateError(
        f"{'/'.join(parts)} is missing from the work directory of run {ws.run_id}: "
        "run the earlier stages first"
    )


def _read_frame(ws: RunWorkspace, *parts: str) -> pd.DataFrame:
    try:
        data = ws.read_bytes(*parts)
    except FileNotFoundError:
        raise _missing(ws, *parts) from None
    return pd.read_parquet(io.BytesIO(data))


def _row_hash(rows: pd.Series) -> pd.Series:
    return rows.map(lambda row: hashlib.blake2b(row.encode(), digest_size=16).hexdigest())


def _file_entry(path: Path) -> dict[str, Any]:
    """A packaged file's name, size and sha256 (read chunk by chunk)."""
    from autosynk.unikum.packaging import file_digest

    size, digest = file_digest(path)
    return {"name": path.name, "size": size, "sha256": digest}


def _gives_memory_back(function: Callable[P, R]) -> Callable[P, R]:
    """A stage that works on millions of rows hands its memory back when it ends, so
    that a night's later stages in one process never add up what each of them used:
    DuckDB's database (see :func:`autosynk.delta.release`), tables held in reference
    cycles, and the pages Arrow's allocator keeps for reuse (which neither DuckDB nor
    Python objects can reuse)."""

    @functools.wraps(function)
    def stage_function(*args: P.args, **kwargs: P.kwargs) -> R:
        with memory_return.giving_back():
            try:
                return function(*args, **kwargs)
            finally:
                delta_engine.release()

    return stage_function


def _run_or_fail(st: Staging, run_id: str) -> dict[str, Any]:
    found = st.get_run(run_id)
    if found is None:
        raise StateError(f"run {run_id} is not in the run ledger: start it with prepare")
    return found


# -- stages -----------------------------------------------------------------------------


def evaluation_date_for(
    cfg: RunConfig, given: str | dt.date | None = None, floor: str | None = None
) -> str:
    """The date the register is evaluated at: ``given``, else today where the run is, or
    ``floor`` (an applied school-year change's effective date) when that is later."""
    if given is None or given == "":
        today = local_now(cfg).date().isoformat()
        return max(today, floor) if floor else today
    if isinstance(given, dt.date):
        return given.isoformat()
    return evaluation_date_for_text(given)


def evaluation_date_for_text(given: str) -> str:
    try:
        return dt.date.fromisoformat(str(given).strip()).isoformat()
    except ValueError:
        raise ConfigError(f"evaluation date {given!r} is not a date (YYYY-MM-DD)") from None


@stage("prepare", lambda result: None)
def prepare(
    cfg: RunConfig,
    run_id: str,
    kind: str = "nightly",
    dag_run_id: str | None = None,
    *,
    evaluation_date: str | dt.date | None = None,
) -> dict[str, Any]:
    """Migrate staging, take the run lock, open the ledger row and the work directory.

    ``evaluation_date`` (default: today in the configured time zone, or the effective
    date of the last applied school-year change when that is later, spec §10) is recorded
    in the run ledger; the transform evaluates the register at it. A retry keeps the
    first one.
    """
    st = staging_for(cfg)
    revision = st.upgrade()
    st.acquire(run_id, cfg.staging.lock_wait_seconds)
    st.start_run(run_id, kind, dag_run_id)
    run = _run_or_fail(st, run_id)
    date = run["evaluation_date"]
    if date is None:
        date = evaluation_date_for(cfg, evaluation_date, floor=st.latest_effective_date())
        st.update_run(run_id, evaluation_date=date)
    ws = workspace_for(cfg, run_id)
    ws.root.mkdir(parents=True, exist_ok=True)
    log.info(
        "run %s: staging at revision %s, register evaluated at %s, work directory %s",
        run_id,
        revision,
        date,
        ws.root,
    )
    return {
        "run_id": run_id,
        "work_dir": str(ws.root),
        "staging_revision": revision,
        "evaluation_date": date,
    }


def _extracted(result: dict[str, Any]) -> tuple[int, str]:
    """Records where the source counted them, else bytes (files are counted when mapped)."""
    records = [result[name] for name in (*ENTITIES, "directory_entries") if name in result]
    if records:
        return sum(records), "records"
    return sum(v for k, v in result.items() if k.endswith("_bytes")), "bytes"


@stage("extract", _extracted)
def extract(cfg: RunConfig, run_id: str) -> dict[str, Any]:
    """Take the night's snapshot from the register (and the directory) into ``extract/``."""
    st = staging_for(cfg)
    st.acquire(run_id, cfg.staging.lock_wait_seconds)
    ws = workspace_for(cfg, run_id)
    cache = None
    if ws.is_local:
        cache = Path(ws.root.parent.path) / "source-cache"
    with ws.local_dir("extract") as folder:
        counts = take_snapshot(cfg, folder, cache_dir=cache)
    st.update_run(run_id, status="extracted")
    log.info("run %s: extracted %s", run_id, counts)
    return counts


@stage("transform", lambda result: (result["principals"] + result["relations"], "rows"))
@collector_paused()
@_gives_memory_back
def transform(cfg: RunConfig, run_id: str, *, mentor_links: bool | None = None) -> dict[str, Any]:
    """Map and validate the snapshot into ``mapped/`` (principals, relations, quarantine).

    ``mentor_links`` overrides the mapping spec's ``mentor_links`` for this run (the
    school-year change's trigger form may).
    """
    memory_return.mapped_heap_blocks()  # the mapping's arrays go back as they are freed
    st = staging_for(cfg)
    st.acquire(run_id, cfg.staging.lock_wait_seconds)
    run = _run_or_fail(st, run_id)
    ws = workspace_for(cfg, run_id)
    mapping = load_mapping(cfg.mapping)
    if mentor_links is not None:
        mapping = mapping.model_copy(update={"mentor_links": mentor_links})
    with ws.local_dir("extract") as folder:
        columns = read_columns(folder, trim=mapping.transforms.trim)
        rejected_rows = _export_problems(folder)
    empty = [name for name in REQUIRED_ENTITIES if not columns.records(name)]
    if empty:
        raise SourceError(
            f"the register snapshot has no {', '.join(empty)}: refusing to treat an empty "
            "export as a night in which everyone left"
        )
    today = run["evaluation_date"] or evaluation_date_for(cfg)
    sizes = {f"snapshot_{name}": columns.records(name) for name in ENTITIES}
    mapped = map_columns(columns, mapping, cfg.organisation_id, today, cfg.encoding)

    mapped.quarantine.extend(rejected_rows)
    principals = mapped.principals.to_pandas().astype("str")
    mapped.principals = mapped.principals.slice(0, 0)
    principals["hash"] = _row_hash(principals["row"]) if len(principals) else pd.Series(dtype="str")
    relations = mapped.relations
    duplicated = principals["key"].duplicated(keep=False)
    if duplicated.any():  # the same external id for two objects: hold both, send neither
        for kind, source_id in principals.loc[duplicated, ["kind", "source_id"]].itertuples(
            index=False
        ):
            mapped.quarantine.append(_dup_entry(kind, source_id))
        dropped = pa.array(sorted(set(principals.loc[duplicated, "key"])), pa.string())
        principals = principals[~duplicated]
        relations = relations.filter(
            pc.invert(pc.or_(pc.is_in(relations["a"], dropped), pc.is_in(relations["b"], dropped)))
        )
    quarantine = pd.DataFrame(
        [(q.entity, q.source_id, q.severity, q.reason) for q in mapped.quarantine],
        columns=["entity", "source_id", "severity", "reason"],
        dtype="str",
    )
    protected = pd.DataFrame(mapped.protected, columns=["source_id", "key"], dtype="str")
    ws.write_parquet(principals, "mapped", "principals.parquet")
    ws.write_parquet(relations, "mapped", "relations.parquet")
    ws.write_parquet(quarantine, "mapped", "quarantine.parquet")
    ws.write_parquet(protected, "mapped", "protected.parquet")
    st.record_quarantine(run_id, quarantine.to_dict("records"))
    counts: dict[str, Any] = dict(sorted(mapped.counts.items()))
    counts.update(
        principals=len(principals),
        relations=len(relations),
        quarantined=int((quarantine["severity"] == "error").sum()),
        warnings=int((quarantine["severity"] == "warning").sum()),
        **sizes,
    )
    st.update_run(run_id, status="transformed")
    log.info(
        "run %s: mapped %d principals, %d relations, %d quarantined",
        run_id,
        len(principals),
        len(relations),
        counts["quarantined"],
    )
    return counts


def _export_problems(folder: Path) -> list[QuarantineEntry]:
    """Rows a file export rejected (``problems.json``), as quarantine entries by file:line."""
    path = folder / "problems.json"
    if not path.exists():
        return []
    entries = json.loads(path.read_text(encoding="utf-8")).get("data", [])
    return [
        QuarantineEntry("export-row", f"{e.get('file')}:{e.get('line')}", mask(e.get("reason")))
        for e in entries
    ]


def relation_table(relations: set[tuple[str, str, str]]) -> pa.Table:
    """Relations sorted by (type, a, b), as ``sorted()`` would order them.

    Sorted by DuckDB, not by Python tuples: a first night has millions, and DuckDB sorts
    them on both cores in a fraction of the time. Strings compare by their UTF-8 bytes,
    which is code point order, how Python compares strings. (Text that is not valid
    Unicode never gets here: the snapshot reader refuses a lone surrogate as invalid JSON.)
    """
    types, firsts, seconds = zip(*relations, strict=True) if relations else ((), (), ())
    table = pa.table(
        {
            "type": pa.array(types, pa.string()),
            "a": pa.array(firsts, pa.string()),
            "b": pa.array(seconds, pa.string()),
        }
    )
    con = delta_engine.connection()
    try:
        con.register("relations", table)
        return con.sql("SELECT type, a, b FROM relations ORDER BY type, a, b").to_arrow_table()
    finally:
        con.close()


def _dup_entry(kind: str, source_id: str) -> QuarantineEntry:
    entity = {"user": "person", "class": "group", "school": "organisation"}[kind]
    return QuarantineEntry(entity, source_id, "external id or identity number is not unique")


def _to_send(result: dict[str, Any]) -> tuple[int, str]:
    keys = ("to_send_principals", "to_send_adds", "to_send_removes")
    return sum(int(result[k]) for k in keys), "rows to send"


@stage("delta", _to_send)
@collector_paused()
@_gives_memory_back
def compute_delta(cfg: RunConfig, run_id: str, *, total: bool = False) -> dict[str, Any]:
    """Compare with the delivered state; write ``delta/``. Frozen once the package exists.

    The guards judge the delta later, in the plan (:mod:`autosynk.plans`), once its
    package is built: a refused run keeps the exact bytes a person may approve.
    """
    st = staging_for(cfg)
    st.acquire(run_id, cfg.staging.lock_wait_seconds)
    run = _run_or_fail(st, run_id)
    if run["package"] is not None:
        log.info("run %s: package already built; its delta stands", run_id)
        return dict(run["package"]["delta_counts"])
    ws = workspace_for(cfg, run_id)
    quarantine = _read_frame(ws, "mapped", "quarantine.parquet")
    protected = _read_frame(ws, "mapped", "protected.parquet")
    base_run = st.last_committed_run()
    with _delta_parts(ws) as parts:
        result = delta_engine.diff(
            mapped_source(ws, "principals.parquet"),
            mapped_source(ws, "relations.parquet"),
            *snapshot.delivered_state(cfg.work_base, st, base_run, run_id),
            held_source_ids=quarantine.loc[quarantine["severity"] == "error", "source_id"],
            protected_source_ids=protected["source_id"],
            protected_keys=protected["key"],
            out=parts,
        )
        # Where every row of tonight's file is to be sent (a first night, a total), the
        # file itself is the delta file: linked or copied, not decoded and encoded again.
        sent, added = result.principals, result.adds
        _delta_file(ws, None if total else sent, "principals.parquet", "principals")
        _delta_file(ws, sent, "principals.parquet", "state-principal-upserts")
        _delta_file(ws, None if total else added, "relations.parquet", "adds")
        _delta_file(ws, added, "relations.parquet", "state-relation-adds")
        _delta_file(ws, result.removes, "", "removes")
        _delta_file(ws, result.principal_deletes, "", "state-principal-deletes")
        _delta_file(ws, result.relation_removes, "", "state-relation-removes")
    counts = dict(result.counts)
    counts.update(
        total=total,
        to_send_principals=result.tonight_principals if total else counts["principals_sent"],
        to_send_adds=result.tonight_relations if total else counts["relations_added"],
        to_send_removes=counts["relations_removed"],
    )
    ws.write_json(
        {"counts": counts, "by_type": result.by_type, "base_run": base_run}, "delta", "delta.json"
    )
    st.update_run(run_id, status="delta", base_run=base_run)
    log.info(
        "run %s: delta %s: %d principals, %d relation adds, %d relation removes to send",
        run_id,
        "(total)" if total else "(changes)",
        counts["to_send_principals"],
        counts["to_send_adds"],
        counts["to_send_removes"],
    )
    return counts


def mapped_source(ws: RunWorkspace, name: str) -> delta_engine.Source:
    """A mapped frame where DuckDB can read it: the file on a local disk, else in memory."""
    if not ws.exists("mapped", name):
        raise _missing(ws, "mapped", name)
    if ws.is_local:
        return ws.local_path("mapped", name)
    return pq.read_table(io.BytesIO(ws.read_bytes("mapped", name)))


def delta_source(ws: RunWorkspace, name: str) -> writer.Frame:
    """A delta file where the writer can stream it: the file on a local disk, else its table."""
    if ws.is_local:
        if not ws.exists("delta", name):
            raise _missing(ws, "delta", name)
        return ws.local_path("delta", name)
    return read_table(ws, "delta", name)


def _source_rows(source: writer.Frame) -> int:
    if isinstance(source, Path):
        return int(pq.ParquetFile(source).metadata.num_rows)
    return len(source)


def read_table(ws: RunWorkspace, *parts: str) -> pa.Table:
    """A Parquet file of the run's work directory as an Arrow table."""
    try:
        return pq.read_table(io.BytesIO(ws.read_bytes(*parts)))
    except FileNotFoundError:
        raise _missing(ws, *parts) from None


@contextlib.contextmanager
def _delta_parts(ws: RunWorkspace) -> Iterator[Path | None]:
    """A private folder in ``delta/`` for the files the delta writes (None: not on a local
    disk, the delta comes as tables); what is left in it goes when the stage is done."""
    if not ws.is_local:
        yield None
        return
    folder = ws.local_path("delta")
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".parts-", dir=folder) as parts:
        yield Path(parts)


def _delta_file(ws: RunWorkspace, data: delta_engine.Source | None, mapped: str, name: str) -> None:
    """``delta/<name>.parquet``: ``data`` (a file written by the delta, or a table), or
    (None) the mapped file as it is."""
    if data is None:
        ws.link_from(ws.path("mapped", mapped), "delta", f"{name}.parquet")
    elif isinstance(data, Path):
        ws.link_from(UPath(data), "delta", f"{name}.parquet")
    else:
        ws.write_parquet(data, "delta", f"{name}.parquet")


def _advance_delivered_copy(
    cfg: RunConfig, st: Staging, run: dict[str, Any], changes: Changes | None = None
) -> None:
    """After a commit, the Parquet copy of the delivered state follows the database."""
    ws = workspace_for(cfg, run["run_id"])

    def committed() -> Changes:
        return changes if changes is not None else _frozen_changes(ws)

    snapshot.follow_commit(cfg.work_base, st, run, ws, committed)


_STATE_FILES = (
    "state-principal-upserts.parquet",
    "state-principal-deletes.parquet",
    "state-relation-adds.parquet",
    "state-relation-removes.parquet",
)


def _frozen_changes(ws: RunWorkspace) -> Changes:
    """The package's pending state: its files where they are on a local disk (read batch
    by batch), else as tables."""
    frames: list[ChangeFrame] = []
    for name in _STATE_FILES:
        if not ws.exists("package", "state", name):
            raise _missing(ws, "package", "state", name)
        if ws.is_local:
            frames.append(ws.local_path("package", "state", name))
        else:
            frames.append(read_table(ws, "package", "state", name))
    return Changes(*frames)


@stage("write", lambda result: (len(result.get("files", [])), "files"))
@collector_paused()
@_gives_memory_back
def write(
    cfg: RunConfig,
    run_id: str,
    *,
    taken: Callable[[str], bool] | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Write and package the files once per run; a retry returns the same package."""
    from autosynk.unikum.naming import next_free_stem
    from autosynk.unikum.packaging import build_package

    st = staging_for(cfg)
    st.acquire(run_id, cfg.staging.lock_wait_seconds)
    run = _run_or_fail(st, run_id)
    if run["package"] is not None:
        return dict(run["package"])
    ws = workspace_for(cfg, run_id)
    meta = ws.read_json("delta", "delta.json")
    principals = delta_source(ws, "principals.parquet")
    adds = delta_source(ws, "adds.parquet")
    removes = delta_source(ws, "removes.parquet")
    # freeze the pending state with the package: commit applies exactly what was sent
    # (files are replaced, never changed in place: on a local disk a link freezes them)
    for name in _STATE_FILES:
        if not ws.exists("delta", name):
            raise _missing(ws, "delta", name)
        ws.link_from(ws.path("delta", name), "package", "state", name)
    package: dict[str, Any] = {"delta_counts": meta["counts"], "files": [], "stem": None}
    if not any(_source_rows(source) for source in (principals, adds, removes)):
        package["nothing_to_deliver"] = True
    else:
        moment = now or local_now(cfg)
        exists = taken or _taken_on_target(cfg)
        stem = next_free_stem(cfg.municipality, moment, exists, ascii_only=cfg.naming.ascii_only)
        with ws.local_dir("package", "files") as folder, ws.local_dir("package", "out") as out:
            # written batch by batch as the rows come out of the sort: never whole in memory
            plain = [folder / f"{stem}.principals", folder / f"{stem}.relations"]
            with private_file(plain[0]) as handle:
                writer.write_principals(principals, cfg.format, cfg.encoding, handle)
            with private_file(plain[1]) as handle:
                writer.write_relations(adds, removes, cfg.format, cfg.encoding, handle)
            built = build_package(
                plain, stem, cfg.packaging, out, pgp=cfg.pgp, passphrase=_pgp_passphrase(cfg)
            )
            package["files"] = [_file_entry(p) for p in built]
        package["stem"] = stem
        package["nothing_to_deliver"] = False
    st.update_run(run_id, status="packaged", package=package)
    if package["nothing_to_deliver"]:
        log.info("run %s: wrote nothing: nothing to deliver", run_id)
    else:
        log.info(
            "run %s: wrote %s, %d file(s), %d bytes",
            run_id,
            package["stem"],
            len(package["files"]),
            sum(f["size"] for f in package["files"]),
        )
    return package


def _pgp_passphrase(cfg: RunConfig) -> str | None:
    from autosynk.config import secret

    if cfg.pgp is None or cfg.pgp.passphrase_env is None:
        return None
    return secret(None, cfg.pgp.passphrase_env, "pgp.passphrase_env")


def _taken_on_target(cfg: RunConfig) -> Callable[[str], bool]:
    """Is a stem already used on a local target? (Remote names are checked on upload.)"""
    target = cfg.target
    if isinstance(target, DirectoryTarget):
        folder = target.path

        def taken(stem: str) -> bool:
            return any(folder.glob(f"{stem}.*")) if folder.is_dir() else False

        return taken
    return lambda stem: False


@stage("plan", lambda result: (sum(result["totals"].values()), "changes"))
def plan(
    cfg: RunConfig, run_id: str, *, dry_run: bool = False, allow_mass_removal: bool = False
) -> dict[str, Any]:
    """The run's plan: its frozen package judged by the guards (:mod:`autosynk.plans`).

    The plan's report is written at once, so a refused plan can be read before anyone
    approves it.
    """
    outline = plans.make_plan(cfg, run_id, dry_run=dry_run, allow_mass_removal=allow_mass_removal)
    return with_report(cfg, run_id, outline)


def with_report(cfg: RunConfig, run_id: str, outline: dict[str, Any]) -> dict[str, Any]:
    """A plan's outline with its report written and named, and its text for people."""
    where = write_report(cfg, run_id)
    log.info(
        "run %s: plan %s is %s; report: %s", run_id, outline["plan_id"], outline["status"], where
    )
    plan_made = _run_or_fail(staging_for(cfg), run_id)["plan"]
    return {**outline, "report": where, "body": plans.describe(plan_made, where)}


def write_report(cfg: RunConfig, run_id: str) -> str:
    """Write the run's summary and HTML report as they stand; returns the report's path."""
    from autosynk.report import write_reports

    st = staging_for(cfg)
    written = write_reports(cfg, st, _run_or_fail(st, run_id), workspace_for(cfg, run_id))
    return str(written["html"])


@stage("deliver", lambda result: (result["delivered"], "files"))
def deliver(
    cfg: RunConfig,
    run_id: str,
    *,
    uploader: Uploader | None = None,
    approved_by: str | None = None,
    target: Target | None = None,
) -> dict[str, Any]:
    """Deliver the run's package and verify it arrived (same size and sha256).

    Only a plan that passed its guards, or one a person approved (``approved_by``), is
    delivered, and only while the delivered state is the one it was computed against.
    ``target``: deliver there instead of the configured target (see
    :mod:`autosynk.total_export`).
    """
    if target is not None:
        cfg = cfg.model_copy(update={"target": target})
    st = staging_for(cfg)
    st.acquire(run_id, cfg.staging.lock_wait_seconds)
    run = _run_or_fail(st, run_id)
    package = run["package"]
    if package is None:
        raise StateError(f"run {run_id} has no package yet: run the write stage first")
    if run["status"] not in ("delivered", "committed") and not plans.ready_to_deliver(
        cfg, st, run, approved_by
    ):
        log.info("run %s: a dry run delivers nothing", run_id)
        return {"delivered": 0, "dry_run": True}
    if package.get("nothing_to_deliver"):
        st.update_run(run_id, status="delivered")
        log.info("run %s: delivered 0 files: nothing to deliver", run_id)
        return {"delivered": 0, "nothing_to_deliver": True}
    ws = workspace_for(cfg, run_id)
    with ws.local_dir("package", "out") as folder:
        files = [folder / f["name"] for f in package["files"]]
        for entry, path in zip(package["files"], files, strict=True):
            if _file_entry(path)["sha256"] != entry["sha256"]:
                raise StateError(
                    f"{path.name} in the work directory no longer matches its "
                    "checksum; refusing to deliver it"
                )
        records = (uploader or _default_uploader(cfg))(files)
    expected = {f["name"]: f["sha256"] for f in package["files"]}
    arrived = {r.name: r.sha256 for r in records}
    if arrived != expected:
        raise DeliveryError(
            "delivery could not be verified: checksums on the target differ from the package"
        )
    from autosynk.delivery.sftp import is_late

    rows = []
    for record in records:
        late = is_late(dt.datetime.fromisoformat(record.delivered_at), cfg.deadline, cfg.timezone)
        rows.append({**record.as_dict(), "late": late})
    late_names = [r["name"] for r in rows if r["late"]]
    if late_names:  # one line for the night, however many files
        log.warning(
            "run %s: %d file(s) arrived after the %s deadline: %s",
            run_id,
            len(late_names),
            cfg.deadline,
            ", ".join(late_names),
        )
    st.record_deliveries(run_id, rows)
    st.update_run(run_id, status="delivered")
    log.info(
        "run %s: delivered %d file(s), verified by sha256, %d already there",
        run_id,
        len(records),
        sum(1 for r in records if r.already_there),
    )
    return {
        "delivered": len(records),
        "files": [r.name for r in records],
        "late": any(r["late"] for r in rows),
        "already_there": sum(1 for r in records if r.already_there),
    }


def _default_uploader(cfg: RunConfig) -> Uploader:
    target = cfg.target
    if isinstance(target, DirectoryTarget):
        from autosynk.delivery.directory import deliver_directory

        return lambda files: deliver_directory(target.path, files)
    if isinstance(target, SftpTarget):
        from autosynk.delivery.sftp import deliver_sftp

        return lambda files: deliver_sftp(target, files)
    raise StateError(f"unsupported target {target!r}")  # pragma: no cover


def _committed_rows(result: dict[str, Any]) -> tuple[int, str]:
    keys = ("principal_upserts", "principal_deletes", "relation_adds", "relation_removes")
    return sum(int(result.get(k, 0)) for k in keys), "rows"


@stage("commit", _committed_rows)
@collector_paused()
@_gives_memory_back
def commit(cfg: RunConfig, run_id: str) -> dict[str, Any]:
    """Advance the delivered state to what this run delivered (one transaction)."""
    st = staging_for(cfg)
    st.acquire(run_id, cfg.staging.lock_wait_seconds)
    run = _run_or_fail(st, run_id)
    if run["status"] == "committed":
        _advance_delivered_copy(cfg, st, run)
        log.info("run %s: committed before; nothing more to commit", run_id)
        return {"committed": False, "already_committed": True}
    if run["status"] == "dry-run":
        return {"committed": False, "dry_run": True}
    ws = workspace_for(cfg, run_id)
    changes = _frozen_changes(ws)
    applied = st.commit(run_id, changes)
    _advance_delivered_copy(cfg, st, run, changes)
    rows = [
        frame_rows(frame)
        for frame in (
            changes.principal_upserts,
            changes.principal_deletes,
            changes.relation_adds,
            changes.relation_removes,
        )
    ]
    log.info(
        "run %s: committed %d principal upserts, %d deletes, %d relation adds, %d removes",
        run_id,
        *rows,
    )
    return {
        "committed": applied,
        "principal_upserts": rows[0],
        "principal_deletes": rows[1],
        "relation_adds": rows[2],
        "relation_removes": rows[3],
    }


def report(
    cfg: RunConfig, run_id: str, *, failed: str | None = None, release: bool = True
) -> dict[str, Any]:
    """Write ``run-summary.json`` and ``report.html``, and release the run lock."""
    st = staging_for(cfg)
    run = _run_or_fail(st, run_id)
    if failed and run["status"] != "committed":
        st.update_run(run_id, status="failed", message=failed[:2000])
        run = _run_or_fail(st, run_id)
    from autosynk.report import write_reports

    written = write_reports(cfg, st, run, workspace_for(cfg, run_id))
    summary = written["data"]
    st.update_run(run_id, ended_at=dt.datetime.now(dt.UTC), counts=summary["counts"])
    if release:
        st.release(run_id)
    log.info("run %s: report: status %s, %s", run_id, summary["status"], written["html"])
    return {
        "summary": written["summary"],
        "report": written["html"],
        "status": summary["status"],
        "plan_id": summary["plan"]["plan_id"] if summary["plan"] else None,
        "nothing_to_deliver": summary["nothing_to_deliver"],
    }
