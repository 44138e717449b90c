"""The delta engine (DuckDB) against the rules written out in plain Python.

``reference`` states delta.py's rules over sets and lists, one line per rule; hypothesis
draws small delivered states and nights over a pool of keys where every rule meets every
other (hold, forget, held guardian presence, still-named rows). The engine must give the
same rows, in the same order, and the same counts, whether it reads pandas frames
(``tests.delta_frames.compute``) or Parquet files (``diff``, as the pipeline does).
"""

from __future__ import annotations

import dataclasses
import stat
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autosynk import delta
from tests import delta_frames

Row = tuple[str, ...]
PERSONS = [f"p{i}" for i in range(5)]
SCHOOLS = ["u1", "u2"]
KEYS = PERSONS + SCHOOLS
SOURCES = [f"s{i}" for i in range(5)]
TRIPLES = sorted(
    [(t, a, b) for t in ("guardian_for", "mentor_for") for a in PERSONS for b in PERSONS]
    + [
        (t, a, u)
        for t in ("student_in_school", "external_user_in_school")
        for a in PERSONS
        for u in SCHOOLS
    ]
)


@dataclass
class Night:
    principals: list[Row]  # kind, key, source_id, hash, row (tonight's order)
    relations: list[Row]  # type, a, b (sorted, as the transform writes them)
    delivered_principals: list[Row]  # kind, key, source_id, hash
    delivered_relations: list[Row]
    held: set[str]
    protected_sources: set[str]
    protected_keys: set[str]


@st.composite
def nights(draw: st.DrawFn) -> Night:
    def principal(key: str) -> st.SearchStrategy[Row]:
        return st.tuples(
            st.sampled_from(["user", "class"]),
            st.just(key),
            st.sampled_from(SOURCES),
            st.sampled_from(["h1", "h2"]),
        )

    delivered_keys = draw(st.lists(st.sampled_from(KEYS), unique=True))
    tonight_keys = draw(st.permutations(draw(st.lists(st.sampled_from(KEYS), unique=True))))
    tonight = [(*draw(principal(k)), f"row of {k}") for k in tonight_keys]
    delivered = draw(st.sets(st.sampled_from(TRIPLES), max_size=12))
    # families: a guardian's presence at a school comes from their child's enrolment
    for guardian, child, school in draw(
        st.lists(st.tuples(*(st.sampled_from(PERSONS),) * 2, st.sampled_from(SCHOOLS)), max_size=2)
    ):
        delivered |= {
            ("guardian_for", guardian, child),
            ("student_in_school", child, school),
            ("external_user_in_school", guardian, school),
        }
    kept = draw(st.sets(st.sampled_from(sorted(delivered)))) if delivered else set()
    new = draw(st.sets(st.sampled_from(TRIPLES), max_size=6))
    return Night(
        principals=tonight,
        relations=sorted(kept | new),
        delivered_principals=[draw(principal(k)) for k in delivered_keys],
        delivered_relations=sorted(delivered),
        held=draw(st.sets(st.sampled_from(SOURCES), max_size=2)),
        protected_sources=draw(st.sets(st.sampled_from(SOURCES), max_size=1)),
        protected_keys=draw(st.sets(st.sampled_from([*KEYS, ""]), max_size=2)),
    )


def reference(n: Night) -> dict[str, object]:
    """The rules of delta.py, over plain sets."""
    forgotten_rows = [
        p for p in n.delivered_principals if p[2] in n.protected_sources or p[1] in n.protected_keys
    ]
    forgotten = {p[1] for p in forgotten_rows} | (n.protected_keys - {""})
    held = {p[1] for p in n.delivered_principals if p[2] in n.held and p not in forgotten_rows}
    old_hash = {p[1]: p[3] for p in n.delivered_principals}
    tonight = [p for p in n.principals if p[1] not in forgotten]
    to_send = [p for p in tonight if old_hash.get(p[1]) != p[3]]
    rel = [r for r in n.relations if r[1] not in forgotten and r[2] not in forgotten]
    adds = [r for r in rel if r not in set(n.delivered_relations)]
    gone = sorted(set(n.delivered_relations) - set(rel))
    children = {
        (g[1], s[2])
        for g in n.delivered_relations
        for s in n.delivered_relations
        if g[0] == "guardian_for" and s[0] == "student_in_school" and g[2] == s[1]
        if g[2] in held
    }
    forget = [r for r in gone if r[1] in forgotten or r[2] in forgotten]
    hold = [
        r
        for r in gone
        if r not in forget
        and (
            r[1] in held
            or r[2] in held
            or (r[0] == "external_user_in_school" and (r[1], r[2]) in children)
        )
    ]
    removes = [r for r in gone if r not in forget and r not in hold]
    still_named = {x for r in hold for x in r[1:]}
    present = {p[1] for p in tonight}
    dropped = sorted(
        (
            (p[0], p[1])
            for p in n.delivered_principals
            if p[1] not in present | held | still_named and p not in forgotten_rows
        ),
        key=lambda kind_key: kind_key[1],
    )
    new = [p for p in tonight if p[1] not in old_hash]
    return {
        "principals": to_send,
        "adds": adds,
        "removes": removes,
        "principal_deletes": [(*d, "delete") for d in dropped]
        + sorted(((p[0], p[1], "forget") for p in forgotten_rows), key=lambda d: d[1]),
        "relation_removes": [(*r, "remove") for r in removes] + [(*r, "forget") for r in forget],
        "counts": {
            "principals_sent": len(to_send),
            "principals_new": len(new),
            "principals_changed": len(to_send) - len(new),
            "principals_dropped": len(dropped),
            "relations_added": len(adds),
            "relations_removed": len(removes),
            "held_keys": len(held),
            "relations_held": len(hold),
            "forgotten_keys": len(forgotten_rows),
            "relations_forgotten": len(forget),
            "delivered_relations_before": len(n.delivered_relations),
        },
    }


def frame(rows: list[Row], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns, dtype="str")


def rows(data: pd.DataFrame | pa.Table) -> list[Row]:
    if isinstance(data, pa.Table):
        return list(zip(*(data[c].to_pylist() for c in data.column_names), strict=True))
    return list(data.itertuples(index=False, name=None))


def frames(n: Night) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return (
        frame(n.principals, delta.PRINCIPAL_COLUMNS),
        frame(n.relations, delta.RELATION_COLUMNS),
        frame(n.delivered_principals, delta.DELIVERED_PRINCIPAL_COLUMNS),
        frame(n.delivered_relations, delta.RELATION_COLUMNS),
    )


SETTINGS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@SETTINGS
@given(night=nights())
def test_compute_follows_the_rules(night: Night) -> None:
    expected = reference(night)
    result = delta_frames.compute(
        *frames(night),
        held_source_ids=night.held,
        protected_source_ids=night.protected_sources,
        protected_keys=night.protected_keys,
    )
    assert rows(result.principals) == expected["principals"]
    assert rows(result.adds) == expected["adds"]
    assert rows(result.removes) == expected["removes"]
    assert rows(result.changes.principal_upserts) == expected["principals"]
    assert rows(result.changes.relation_adds) == expected["adds"]
    assert rows(result.changes.principal_deletes) == expected["principal_deletes"]
    assert rows(result.changes.relation_removes) == expected["relation_removes"]
    assert result.counts == expected["counts"]


def read(data: pa.Table | Path) -> pa.Table:
    return pq.read_table(data) if isinstance(data, Path) else data


@SETTINGS
@given(night=nights(), to_files=st.booleans())
def test_diff_over_parquet_files_follows_the_rules(
    night: Night, to_files: bool, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Parquet files in; tables out, or (``to_files``) Parquet files written by DuckDB."""
    tmp_path = tmp_path_factory.mktemp("night")
    paths = []
    for name, data in zip(("p", "r", "dp", "dr"), frames(night), strict=True):
        path = tmp_path / f"{name}.parquet"
        data.to_parquet(path, index=False)  # as the transform and the copy write them
        paths.append(path)
    expected = reference(night)
    found = delta.diff(
        *paths,
        held_source_ids=night.held,
        protected_source_ids=night.protected_sources,
        protected_keys=night.protected_keys,
        out=tmp_path / "delta" if to_files else None,
    )
    written = [found.principals, found.adds, found.removes]
    written += [found.principal_deletes, found.relation_removes]
    assert all(isinstance(data, Path) == to_files for data in written if data is not None)
    if to_files:  # private files, nothing half-written left beside them
        files = sorted((tmp_path / "delta").iterdir())
        assert files == sorted(data for data in written if data is not None)
        assert {stat.S_IMODE(f.stat().st_mode) for f in files} == {0o600}
    result = dataclasses.replace(
        found,
        principals=None if found.principals is None else read(found.principals),
        adds=None if found.adds is None else read(found.adds),
        removes=read(found.removes),
        principal_deletes=read(found.principal_deletes),
        relation_removes=read(found.relation_removes),
    )
    # None: every one of tonight's rows, as they are
    sent = night.principals if result.principals is None else rows(result.principals)
    added = night.relations if result.adds is None else rows(result.adds)
    assert sent == expected["principals"]
    assert added == expected["adds"]
    assert rows(result.removes) == expected["removes"]
    assert rows(result.principal_deletes) == expected["principal_deletes"]
    assert rows(result.relation_removes) == expected["relation_removes"]
    assert result.counts == expected["counts"]


def test_against_an_empty_state_everything_is_tonights_file_as_it_is(tmp_path: Path) -> None:
    tonight = frame(
        [("user", "k1", "s1", "h1", "r1"), ("user", "k2", "s2", "h1", "r2")],
        delta.PRINCIPAL_COLUMNS,
    )
    relations = frame([("guardian_for", "k1", "k2")], delta.RELATION_COLUMNS)
    empty_p = frame([], delta.DELIVERED_PRINCIPAL_COLUMNS)
    empty_r = frame([], delta.RELATION_COLUMNS)
    for data, name in ((tonight, "p"), (relations, "r"), (empty_p, "dp"), (empty_r, "dr")):
        pq.write_table(
            pa.Table.from_pandas(data, preserve_index=False), tmp_path / f"{name}.parquet"
        )
    paths = [tmp_path / f"{name}.parquet" for name in ("p", "r", "dp", "dr")]
    kept = delta.diff(*paths, held_source_ids=(), protected_source_ids=(), protected_keys=())
    assert kept.principals is None and kept.adds is None
    assert kept.counts["principals_new"] == 2 and kept.counts["relations_added"] == 1
    # a protected key tonight: not everything is sent, so the rows are spelled out
    forgotten = delta.diff(
        *paths, held_source_ids=(), protected_source_ids=(), protected_keys={"k2"}
    )
    assert rows(forgotten.principals) == [("user", "k1", "s1", "h1", "r1")]
    assert forgotten.adds is not None and forgotten.adds.num_rows == 0
