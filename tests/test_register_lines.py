"""Raw entries straight into Arrow (register_lines) give exactly the typed records' tables."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autosynk.errors import SourceError
from autosynk.register_columns import TABLES_OF, batch_tables, entity_columns, read_columns
from autosynk.register_lines import ENTITIES, WHITESPACE, lines_tables
from autosynk.sources.list_stream import Lines, iter_lines, iter_records
from tests import register_strategies as reg

#: what each property example did: batches the fast path took, batches it left
SEEN = {"fast": 0, "fell_back": 0}


def _write(path: Path, items: list[Any], style: str) -> None:
    if style == "pretty":  # newlines inside entries: made spaces before pyarrow sees them
        text = json.dumps({"data": items}, indent=2, ensure_ascii=False)
    elif style == "ascii":  # every non-ASCII character a \\u escape
        text = json.dumps({"data": items})
    else:
        text = json.dumps({"data": items}, ensure_ascii=False, separators=(",", ":"))
    path.write_text(text, encoding="utf-8")


def _typed(path: Path, entity: str, batch_size: int, trim: bool) -> dict[str, pa.Table]:
    return entity_columns(entity, iter_records(path, entity, batch_size), trim=trim)


def _fast(path: Path, entity: str, batch_size: int, trim: bool) -> dict[str, pa.Table]:
    """As entity_columns reads Lines, counting the batches that fell back."""
    parts: dict[str, list[pa.Table]] = {name: [] for name in TABLES_OF[entity]}
    seq = 0
    for batch in iter_lines(path, entity, batch_size):
        assert isinstance(batch, Lines)
        tables, fell_back = batch_tables(entity, batch, seq, trim=trim)
        SEEN["fell_back" if fell_back else "fast"] += 1
        for name, table in tables.items():
            parts[name].append(table)
        seq += len(batch)
    joined = entity_columns(entity, iter_lines(path, entity, batch_size), trim=trim)
    for name, tables in parts.items():
        if tables:
            assert pa.concat_tables(tables).combine_chunks().equals(joined[name])
    return joined


def _assert_same(expected: dict[str, pa.Table], got: dict[str, pa.Table]) -> None:
    assert list(got) == list(expected)
    for name, table in expected.items():
        assert got[name].schema == table.schema, name
        assert got[name].to_pylist() == table.to_pylist(), name
        assert got[name].equals(table), name


_PADS = st.sampled_from(
    ("", "", " ", "\x1c", "\x1f ", "\x85", "\u3000\xa0", "\u200b", "\ufeff", "\t\n", "\x00")
)


def _padded(value: Any, pad: str) -> Any:
    """Every text value with ``pad`` both sides (zero-width space and BOM are no
    whitespace to Python: they must stay)."""
    if isinstance(value, str):
        return f"{pad}{value}{pad}"
    if isinstance(value, list):
        return [_padded(v, pad) for v in value]
    if isinstance(value, dict):
        return {k: _padded(v, pad) for k, v in value.items()}
    return value


def _compare(entities: dict[str, list[Any]], tmp: Path, style: str, size: int, trim: bool) -> None:
    for entity in ENTITIES:
        path = tmp / f"{entity}.json"
        _write(path, entities.get(entity) or [], style)
        _assert_same(_typed(path, entity, size, trim), _fast(path, entity, size, trim))


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(
    register=reg.dirty_registers(),
    pad=_PADS,
    style=st.sampled_from(("compact", "pretty", "ascii")),
    size=st.sampled_from((1, 2, 3, 50)),
    trim=st.booleans(),
)
def _dirty(tmp_path: Path, register: Any, pad: str, style: str, size: int, trim: bool) -> None:
    _compare(_padded(register.entities, pad), tmp_path, style, size, trim)


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(
    night=reg.nights(),
    allow_invalid=st.booleans(),
    style=st.sampled_from(("compact", "pretty")),
    size=st.sampled_from((2, 50)),
)
def _clean(tmp_path: Path, night: Any, allow_invalid: bool, style: str, size: int) -> None:
    _compare(reg.register(night, allow_invalid), tmp_path, style, size, True)


def test_dirty_registers_read_as_the_typed_records_read(tmp_path: Path) -> None:
    SEEN.update(fast=0, fell_back=0)
    _dirty(tmp_path)
    # both paths must have been taken, many times
    assert SEEN["fast"] > 200, SEEN
    assert SEEN["fell_back"] > 200, SEEN


def test_clean_registers_read_as_the_typed_records_read(tmp_path: Path) -> None:
    SEEN.update(fast=0, fell_back=0)
    _clean(tmp_path)
    assert SEEN["fast"] > 50, SEEN


def test_whitespace_is_what_str_strip_removes() -> None:
    assert "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()) == WHITESPACE


#: (entity, records, whether the fast path takes the batch)
CASES: dict[str, tuple[str, list[dict[str, Any]], bool]] = {
    "python whitespace trimmed": (
        "persons",
        [{"id": "\x1cp1\x85", "givenName": "\u3000Åsa\x1f", "familyName": "\u200bBo\u200b"}],
        True,
    ),
    "blank id: no children": (
        "persons",
        [{"id": " ", "emails": [{"value": "a@b.se"}]}, {"id": "p2", "emails": [{}]}],
        True,
    ),
    "number as id and school year": (
        "persons",
        [{"id": 7, "enrolments": [{"enroledAt": {"id": 12}, "schoolYear": 3}]}],
        True,
    ),
    "school year as text": (
        "persons",
        [{"id": "p1", "enrolments": [{"schoolYear": " 9 "}]}],
        True,
    ),
    "number and text school years in one batch": (
        "persons",
        [{"id": "p1", "enrolments": [{"schoolYear": 3}, {"schoolYear": "3"}]}],
        False,
    ),
    "negative zero and a negative number": (
        "persons",
        [{"id": -0, "enrolments": [{"schoolYear": -1}]}],
        True,
    ),
    "a number with a fraction": ("persons", [{"id": "p1", "givenName": 3.0}], False),
    "a number with an exponent": ("groups", [{"id": "g1", "startDate": 1e3}], False),
    "a number beyond 64 bits": ("duties", [{"id": 2**64}], False),
    "a boolean as text": ("persons", [{"id": "p1", "givenName": True}], False),
    "a bare civic number": ("persons", [{"id": "p1", "civicNo": "19870202-4569"}], False),
    "a civic number object": ("persons", [{"id": "p1", "civicNo": {"value": " 1 "}}], True),
    "a bare reference": ("groups", [{"id": "g1", "organisation": "u1"}], False),
    "a lone object for an array": (
        "groups",
        [{"id": "g1", "groupMemberships": {"person": {"id": "p1"}}}],
        False,
    ),
    "a null entry in an array of objects": (
        "duties",
        [{"id": "d1", "assignmentRole": [None, {"group": {"id": "k1"}}]}],
        False,
    ),
    "a null group of an activity": (
        "activities",
        [{"id": "a1", "groups": [None, {"id": " k1 "}, {}]}],
        True,
    ),
    "a bare group id of an activity": ("activities", [{"id": "a1", "groups": ["k1"]}], False),
    "a null principal name": (
        "persons",
        [{"id": "p1", "eduPersonPrincipalNames": [None, " a@b.se "]}],
        True,
    ),
    "a lone principal name": ("persons", [{"id": "p1", "eduPersonPrincipalNames": "a"}], False),
    "a flag as text": ("persons", [{"id": "p1", "phoneNumbers": [{"mobile": "true"}]}], False),
    "flags": (
        "persons",
        [{"id": "p1", "phoneNumbers": [{"mobile": True}, {"mobile": None}, {}]}],
        True,
    ),
    "security marking missing, blank, padded": (
        "persons",
        [
            {"id": "p1"},
            {"id": "p2", "securityMarking": ""},
            {"id": "p3", "securityMarking": " "},
            {"id": "p4", "securityMarking": None},
        ],
        True,
    ),
    "dates with time, blank, long, non-ASCII": (
        "groups",
        [
            {"id": "g1", "startDate": " 2020-08-15T00:00:00Z", "endDate": ""},
            {"id": "g2", "startDate": "åååååååååååå", "endDate": "\u3000"},
        ],
        True,
    ),
    "a date as a number": ("groups", [{"id": "g1", "startDate": 20200815}], True),
    "fields the mapping does not read, of any kind": (
        "duties",
        [{"id": "d1", "meta": {"x": [1, 2.5, None, {"y": True}]}, "extra": 1e300}],
        True,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("trim", [True, False])
def test_edge_values(tmp_path: Path, case: str, trim: bool) -> None:
    entity, records, fast = CASES[case]
    path = tmp_path / f"{entity}.json"
    _write(path, records, "compact")
    (batch,) = iter_lines(path, entity)
    assert (lines_tables(entity, batch, 0, trim=trim) is not None) is fast
    _assert_same(_typed(path, entity, 50, trim), entity_columns(entity, [batch], trim=trim))


def test_a_key_twice_falls_back_to_the_last(tmp_path: Path) -> None:
    path = tmp_path / "persons.json"
    path.write_bytes(b'{"data":[{"id":"p1","givenName":"A","givenName":"B"}]}')
    (batch,) = iter_lines(path, "persons")
    assert lines_tables("persons", batch, 0) is None
    tables = entity_columns("persons", [batch])
    assert tables["persons"].column("given_name").to_pylist() == ["B"]
    _assert_same(_typed(path, "persons", 50, True), tables)


def test_an_escaped_key_is_its_name(tmp_path: Path) -> None:
    path = tmp_path / "persons.json"
    path.write_bytes(b'{"data":[{"\\u0069d":"p1","given\\u004eame":"A"}]}')
    (batch,) = iter_lines(path, "persons")
    tables = lines_tables("persons", batch, 0)
    assert tables is not None
    assert tables["persons"].select(["id", "given_name"]).to_pylist() == [
        {"id": "p1", "given_name": "A"}
    ]
    _assert_same(_typed(path, "persons", 50, True), tables)


def test_text_that_is_not_utf8_is_the_typed_readers_error(tmp_path: Path) -> None:
    """(The typed reader's error is msgspec's UnicodeDecodeError, not yet a SourceError.)"""
    path = tmp_path / "persons.json"
    path.write_bytes(b'{"data":[{"id":"p1","givenName":"\xff"}]}')
    with pytest.raises((SourceError, UnicodeDecodeError)) as typed:
        _typed(path, "persons", 50, True)
    (batch,) = iter_lines(path, "persons")
    assert lines_tables("persons", batch, 0) is None
    with pytest.raises((SourceError, UnicodeDecodeError)) as fast:
        entity_columns("persons", [batch])
    assert type(fast.value) is type(typed.value)


def test_lines_are_one_object_a_line(tmp_path: Path) -> None:
    path = tmp_path / "groups.json"
    path.write_bytes(b'{"data": [\r\n {"id":\n"g1"} ,\n\t{"id": "g\\n2"},{}\n]}')
    batches = list(iter_lines(path, "groups", 2))
    assert [len(b) for b in batches] == [2, 1]
    assert batches[0].data == b'{"id": "g1"}\n{"id": "g\\n2"}'
    assert [json.loads(line) for line in batches[0].data.split(b"\n")] == [
        {"id": "g1"},
        {"id": "g\n2"},
    ]


@pytest.mark.parametrize(
    "content",
    [b'{"data":[{"id":"g1"},3]}', b'{"data":[{"id":"g1"}', b'{"data":{}}', b"not json"],
)
def test_broken_files_are_the_same_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "groups.json"
    path.write_bytes(content)
    with pytest.raises(SourceError) as typed:
        list(iter_records(path, "groups"))
    with pytest.raises(SourceError) as lines:
        list(iter_lines(path, "groups"))
    assert str(lines.value) == str(typed.value)


def test_read_columns_fast_and_typed_agree(tmp_path: Path) -> None:
    from tests import tiny_register as tiny

    for entity, items in tiny.register().items():
        _write(tmp_path / f"{entity}.json", items, "pretty")
    fast, typed = read_columns(tmp_path, batch_size=3), read_columns(tmp_path, fast=False)
    _assert_same(typed.tables, fast.tables)
