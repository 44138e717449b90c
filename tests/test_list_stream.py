"""Streaming a list file: the batches, joined, are exactly what the whole-file reader reads."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autosynk.errors import SourceError
from autosynk.records import decoder, read_typed_snapshot, to_records
from autosynk.register import read_list
from autosynk.register_columns import read_columns
from autosynk.sources import ENTITIES, list_stream
from autosynk.sources.list_stream import count_entries, iter_objects, iter_records
from tests import tiny_register as tiny


def _whole(tmp_path: Path, entity: str, content: bytes) -> list[Any]:
    """What the whole-file reader (read_typed_snapshot before streaming) reads: the reference.

    The file decoded in one piece into typed records; a file that breaks the typed shape
    decoded generically and converted record by record; errors from the generic reader.
    """
    path = tmp_path / "whole" / f"{entity}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    try:
        return decoder(entity).decode(content).data
    except (msgspec.ValidationError, msgspec.DecodeError):
        return to_records(entity, read_list(path, entity))


def _streamed(path: Path, entity: str, batch_size: int) -> list[Any]:
    batches = list(iter_records(path, entity, batch_size))
    assert all(0 < len(batch) <= batch_size for batch in batches)
    return [record for batch in batches for record in batch]


@pytest.fixture(params=[1, 2, 3, 7, 64, 1 << 20], ids=lambda n: f"chunk{n}")
def chunk_bytes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Every document read in chunks this small: each boundary falls everywhere once."""
    monkeypatch.setattr(list_stream, "CHUNK_BYTES", request.param)
    monkeypatch.setattr(list_stream, "_NO_END", max(2 * request.param, 64))
    return int(request.param)


DOCUMENTS = {
    "compact": b'{"data":[{"id":"a"},{"id":"b"},{"id":"c"}]}',
    "odd whitespace": (
        b' \r\n\t{ "data" :\n[\t{ "id" : "a" }\r\n,\n\n{"id":"b"}  ,{"id":"c"}\n]\t}\n '
    ),
    "escapes": (
        b'{"data":[{"id":"a\\"]}"},{"id":"b\\\\"},{"id":"c\\\\\\"{["},'
        b'{"id":"\\\\\\\\","givenName":"x\\ny\\u005d"}]}'
    ),
    "unicode": (
        '{"data":[{"id":"å","givenName":"Åsa 😀 ]}"},{"id":"\\u00e5\\ud83d\\ude00"}]}'.encode()
    ),
    "nested arrays": (
        b'{"data":[{"id":"p","enrolments":[{"schoolYear":[1,[2,[3]]]},{"cancelled":{"a":[]}}],'
        b'"emails":[]},{"id":"q","responsibles":[{"person":{"id":"g"}},{"relationType":"]"}]}]}'
    ),
    "data key last": b'{"meta":{"data":[{"id":"no"}],"x":"\\"data\\":["},"pageToken":null,'
    b'"data":[{"id":"a"},{"id":"b"}]}',
    "keys on both sides": b'{"a":[1,{"b":"]"}],"data":[{"id":"a"}],"z":{"data":5}}',
    "data key spelt with an escape": b'{"d\\u0061ta":[{"id":"a"}]}',
    "empty data": b'{"data":[]}',
    "empty data, spaced": b'{"data": [ \n ] }',
    "one entry": b'{"data":[{}]}',
    "a data value that is no list, then one that is": b'{"data":{"id":1},"data":[{"id":"a"}]}',
    "dirty shapes": (
        b'{"data":[{"id":"a","enrolments":{"schoolYear":7}},{"id":"b","phoneNumbers":["0",null]},'
        b'{"id":3,"civicNo":201001011234,"addresses":null},{"id":"d","enrolments":[{"enroledAt":42}]}]}'
    ),
}


@pytest.mark.parametrize("batch_size", [1, 2, 3, 50_000])
@pytest.mark.parametrize("name", list(DOCUMENTS))
def test_documents_read_as_the_whole_file_reader_reads_them(
    tmp_path: Path, chunk_bytes: int, name: str, batch_size: int
) -> None:
    content = DOCUMENTS[name]
    path = tmp_path / "persons.json"
    path.write_bytes(content)
    assert _streamed(path, "persons", batch_size) == _whole(tmp_path, "persons", content)


def test_a_document_reads_its_entries_in_order(tmp_path: Path, chunk_bytes: int) -> None:
    path = tmp_path / "groups.json"
    path.write_bytes(DOCUMENTS["escapes"])
    ids = [g.id for g in _streamed(path, "groups", 2)]
    assert ids == ['a"]}', "b\\", 'c\\"{[', "\\\\"]


ERRORS = {
    "not JSON": b"{not json",
    "empty file": b"",
    "truncated in the data": b'{"data":[{"id":"a"},{"id":"b"',
    "truncated after an entry": b'{"data":[{"id":"a"},',
    "truncated after the data": b'{"data":[{"id":"a"}]',
    "broken inside an entry": b'{"data":[{"id":"a"},{"id" "b"}]}',
    "broken before the data": b'{"x":tru,"data":[{"id":"a"}]}',
    "broken after the data": b'{"data":[{"id":"a"}],"x":nul}',
    "trailing characters": b'{"data":[{"id":"a"}]} x',
    "trailing comma": b'{"data":[{"id":"a"},]}',
    "leading comma": b'{"data":[,{"id":"a"}]}',
    "two commas": b'{"data":[{"id":"a"},,{"id":"b"}]}',
    "no comma": b'{"data":[{"id":"a"} {"id":"b"}]}',
    "unbalanced": b'{"data":[{"id":"a"}}',
    "data is an object": b'{"data": {"id": 1}}',
    "data is missing": b'{"items":[{"id":"a"}]}',
    "top level is a list": b'[{"data":[{"id":"a"}]}]',
    "entries that are not objects": b'{"data": [1, 2]}',
    "some entries not objects": b'{"data":[{"id":"a"},"x",{"id":"b"},null,[],{"id":"c"}]}',
    "not objects, and broken later": b'{"data":[1,{"id":"a"},{"id" "b"}]}',
}


@pytest.mark.parametrize("batch_size", [1, 2, 50_000])
@pytest.mark.parametrize("name", list(ERRORS))
def test_a_broken_file_is_the_whole_file_readers_error(
    tmp_path: Path, chunk_bytes: int, name: str, batch_size: int
) -> None:
    content = ERRORS[name]
    with pytest.raises(SourceError) as whole:
        _whole(tmp_path, "persons", content)
    path = tmp_path / "persons.json"
    path.write_bytes(content)
    with pytest.raises(SourceError) as streamed:
        _streamed(path, "persons", batch_size)
    assert str(streamed.value) == str(whole.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"^duties: file duties\.json is missing"):
        list(iter_records(tmp_path / "duties.json", "duties"))


def test_a_second_data_list_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "persons.json"
    path.write_bytes(b'{"data":[{"id":"a"}],"data":[{"id":"b"}]}')
    with pytest.raises(SourceError, match="holds the top-level key data twice"):
        list(iter_records(path, "persons"))


def test_a_dirty_batch_says_it_is_read_record_by_record(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "persons.json"
    path.write_bytes(DOCUMENTS["dirty shapes"])
    with caplog.at_level(logging.INFO, logger="autosynk.sources.list_stream"):
        list(iter_records(path, "persons"))
    assert "persons.json" in caplog.text and "record by record" in caplog.text


def test_brackets_in_texts_switch_to_the_exact_scan(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    records = [
        {"id": f"p{i}", "givenName": "}" if i % 3 else "{[", "emails": []} for i in range(50)
    ]
    content = json.dumps({"data": records}).encode()
    path = tmp_path / "persons.json"
    path.write_bytes(content)
    with caplog.at_level(logging.INFO, logger="autosynk.sources.list_stream"):
        assert _streamed(path, "persons", 4) == _whole(tmp_path, "persons", content)
    assert "scanning exactly from there" in caplog.text


def test_memory_is_bounded_by_the_batch_not_the_file(tmp_path: Path, monkeypatch) -> None:
    """The reader's buffer never holds much more than a batch's bytes and a chunk."""
    monkeypatch.setattr(list_stream, "CHUNK_BYTES", 4096)
    record = {"id": "x" * 80, "enrolments": [{"schoolYear": 7}] * 3}
    count = 20_000
    path = tmp_path / "persons.json"
    with path.open("w") as out:
        out.write('{"data":[' + ",".join(json.dumps(record) for _ in range(count)) + "]}")
    per_record = len(json.dumps(record)) + 1
    reader = list_stream._ListReader(path, "persons", 100, None)
    largest, seen = 0, 0
    for batch in reader.batches():
        largest = max(largest, len(reader.buf))
        seen += len(batch)
    assert seen == count
    assert largest <= 100 * per_record + 2 * 4096
    assert path.stat().st_size > 50 * largest


def test_iter_objects_and_count_entries_take_any_list_file(tmp_path: Path) -> None:
    path = tmp_path / "directory.json"
    path.write_bytes(b'{"data":[{"match":"a","mail":"a@x"},{"match":"b"}],"next":null}')
    assert [e for b in iter_objects(path, "directory", 1) for e in b] == [
        {"match": "a", "mail": "a@x"},
        {"match": "b"},
    ]
    assert count_entries(path, "directory") == 2


# -- the property: any document, any batch and chunk size, the whole-file reader's result ---

_TEXT = st.text(alphabet=st.sampled_from('ab ]}[{",:\\\nåÅ😀\u2028'), max_size=6)
_LEAF = st.none() | st.booleans() | st.integers(-5, 10**12) | _TEXT
_JSON = st.recursive(
    _LEAF,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=8,
)
_ARRAYS = ["enrolments", "responsibles", "addresses", "emails", "phoneNumbers"]
_ARRAYS += ["assignmentRole", "groupMemberships", "teachers"]
_FIELDS = ["id", "civicNo", "givenName", "person", "dutyAt", "groups", "organisation", *_ARRAYS]
_ENTRY = st.dictionaries(st.sampled_from(_FIELDS) | _TEXT, _JSON, max_size=5)
_LIST_FIELD = st.sampled_from(_ARRAYS)
_ENTRY_WITH_ARRAY = st.builds(
    lambda entry, field, items: {**entry, field: items},
    _ENTRY,
    _LIST_FIELD,
    st.lists(_ENTRY | _JSON, max_size=3),
)


@st.composite
def _documents(draw: st.DrawFn) -> tuple[str, bytes]:
    entity = draw(st.sampled_from(ENTITIES))
    entries = draw(st.lists(_ENTRY | _ENTRY_WITH_ARRAY, max_size=8))
    if draw(st.integers(0, 9)) == 0:  # now and then an entry that is not an object
        entries.insert(draw(st.integers(0, len(entries))), draw(_LEAF))
    before = draw(st.dictionaries(st.sampled_from(["meta", "pageToken", "x"]), _JSON, max_size=2))
    after = draw(st.dictionaries(st.sampled_from(["next", "y"]), _JSON, max_size=2))
    document = {**before, "data": entries, **after}
    style = draw(st.sampled_from(["compact", "spaced", "indented", "ascii"]))
    if style == "compact":
        text = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    elif style == "spaced":
        text = json.dumps(document, separators=(" , ", " : "), ensure_ascii=False)
    elif style == "indented":
        text = json.dumps(document, indent="\t", ensure_ascii=False)
    else:
        text = json.dumps(document, indent=1)
    if draw(st.booleans()):  # sometimes cut short or with a byte too many
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.sampled_from(["", "}", ",", " "]))
    return entity, text.encode()


@settings(
    max_examples=600,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    document=_documents(),
    batch_size=st.integers(1, 5),
    chunk=st.sampled_from([1, 5, 16, 1 << 16]),
)
def test_streaming_equals_the_whole_file_reader(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    document: tuple[str, bytes],
    batch_size: int,
    chunk: int,
) -> None:
    monkeypatch.setattr(list_stream, "CHUNK_BYTES", chunk)
    monkeypatch.setattr(list_stream, "_NO_END", max(2 * chunk, 64))
    entity, content = document
    try:
        expected: list[Any] | str = _whole(tmp_path, entity, content)
    except SourceError as exc:
        expected = str(exc)
    path = tmp_path / f"{entity}.json"
    path.write_bytes(content)
    try:
        got: list[Any] | str = _streamed(path, entity, batch_size)
    except SourceError as exc:
        got = str(exc)
    assert got == expected


# -- the file source's extract: copied and checked chunk by chunk -----------------------------


def test_the_file_source_copies_checks_and_counts(tmp_path: Path) -> None:
    from autosynk.config import SS12000FilesSource
    from autosynk.sources import ss12000_files

    data = tiny.register()
    source = tiny.write(tmp_path / "register", data)
    out = tmp_path / "extract"
    out.mkdir()
    counts = ss12000_files.extract(SS12000FilesSource(kind="ss12000-files", path=source), out)
    for name in ENTITIES:
        copied = out / f"{name}.json"
        assert copied.read_bytes() == (source / f"{name}.json").read_bytes()
        assert copied.stat().st_mode & 0o777 == 0o600
        assert counts[name] == len(data[name])
        assert counts[f"{name}_bytes"] == copied.stat().st_size


def test_the_file_source_stops_a_broken_file_with_the_transforms_error(tmp_path: Path) -> None:
    from autosynk.config import SS12000FilesSource
    from autosynk.sources import ss12000_files

    source = tiny.write(tmp_path / "register")
    (source / "groups.json").write_bytes(b'{"data": [{"id": "g1"}, 7]}')
    with pytest.raises(SourceError) as whole:
        read_typed_snapshot(source)
    out = tmp_path / "extract"
    out.mkdir()
    with pytest.raises(SourceError) as extracted:
        ss12000_files.extract(SS12000FilesSource(kind="ss12000-files", path=source), out)
    assert (
        str(extracted.value)
        == str(whole.value)
        == ("groups: groups.json holds 1 entries that are not objects")
    )


def test_text_that_is_not_utf8_is_a_source_error_on_every_path(tmp_path: Path) -> None:
    """Bad input is one clear line naming the file, never a codec's traceback."""
    for name in ("organisations", "groups", "duties", "activities"):
        (tmp_path / f"{name}.json").write_text('{"data": []}', encoding="utf-8")
    (tmp_path / "persons.json").write_bytes(
        b'{"data": [{"id": "a", "givenName": "ok"}, {"id": "b", "givenName": "\xff\xfe"}]}'
    )
    with pytest.raises(SourceError, match=r"persons: persons.json holds text that is not UTF-8"):
        list(iter_records(tmp_path / "persons.json", "persons"))
    for fast in (True, False):
        with pytest.raises(SourceError, match=r"persons: .*text that is not UTF-8"):
            read_columns(tmp_path, fast=fast)
