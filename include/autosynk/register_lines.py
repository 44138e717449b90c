"""A batch of raw entries (:class:`~autosynk.sources.list_stream.Lines`) straight into the
register's Arrow tables (:data:`autosynk.register_fields.SCHEMAS`), no Python object per
record.

``pyarrow.json`` parses the batch with an explicit schema of the fields
:data:`autosynk.register_fields.ENTITY_FIELDS` reads (every other field is skipped), and
``pyarrow.compute`` derives the same columns the record-by-record conversion does, each as
its field's kind says: :func:`~autosynk.register.text` is a trim of Python's
whitespace (``str.strip``) with null as ``""``, :func:`~autosynk.register.day` the first ten
characters of the trimmed text, :func:`~autosynk.register.ref_id` the trimmed id of
``{"id": ...}`` with blank as null; nested lists become child tables by
``list_flatten``/``list_parent_indices`` with their parent's id and their place.

A leaf that comes as a whole number instead of text (SS 12000's ``schoolYear`` is one) is
read as a number and written as its text, which is what ``str`` gives: the parser names
the leaf it met the other kind in, and the batch is parsed again with that leaf switched.

Anything the schema cannot take exactly makes :func:`lines_tables` answer None, and the
caller converts that batch from typed records as before. pyarrow refuses: a bare id where
``{"id": ...}`` is due (or a bare identity number for ``{"value": ...}``), a lone object
where an array is due, a number with a fraction or exponent or beyond 64 bits, a boolean or
an array or object where text is due, a text or number where a flag is due, a key twice in
one object, text that is not UTF-8 or holds a lone surrogate. Also refused here: a null
entry in an array of objects (the typed reader drops it, which shifts the places after it).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from autosynk.register_fields import ENTITY_FIELDS, SCHEMAS, TABLES_OF, Child, Field, Kind
from autosynk.sources.list_stream import Lines

STR = pa.string()
I64 = pa.int64()

#: exactly the characters Python's ``str.strip()`` removes (``str.isspace``; a test checks)
WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
#: JSON shapes: "s" a leaf read as text (or a whole number), "b" a flag,
#: dict an object, list a one-element list: an array of that
Shape = Any

#: field kind -> the JSON shape its leaf is read as
_KIND_SHAPES: dict[Kind, Shape] = {
    "text": "s",
    "row": "s",
    "day": "s",
    "id": "s",
    "ref": {"id": "s"},
    "value": {"value": "s"},
    "flag": "b",
    "blank": "s",
}


def _object_shape(fields: tuple[Field, ...], lists: tuple[Child, ...] = ()) -> dict[str, Shape]:
    shape: dict[str, Shape] = {}
    for key, sub in [
        *((f.source, _KIND_SHAPES[f.kind]) for f in fields),
        *((c.source, [_entry_shape(c)]) for c in lists),
    ]:
        if shape.setdefault(key, sub) != sub:
            raise ValueError(f"{key} is read as two shapes")
    return shape


def _entry_shape(child: Child) -> Shape:
    if child.of_values:
        return _KIND_SHAPES[child.fields[0].kind]
    return _object_shape(child.fields)


#: the entities this module reads (organisations are few: they stay record by record)
ENTITIES = ("persons", "groups", "duties", "activities")

#: entity -> the JSON shape of its records: what the parser reads of them
SHAPES: dict[str, dict[str, Shape]] = {
    entity: _object_shape(
        (Field("id", "id", "id"), *ENTITY_FIELDS[entity].fields), ENTITY_FIELDS[entity].children
    )
    for entity in ENTITIES
}

#: how often a batch is parsed again with a leaf switched between text and number
_RETRIES = 6
_SWITCH = re.compile(r"Column\(([^)]*)\) changed from (string|number) to (string|number)")


def _arrow_type(shape: Shape, numbers: frozenset[tuple[str, ...]], at: tuple[str, ...]) -> Any:
    if shape == "s":
        return I64 if at in numbers else STR
    if shape == "b":
        return pa.bool_()
    if isinstance(shape, list):
        return pa.list_(_arrow_type(shape[0], numbers, (*at, "[]")))
    return pa.struct(
        [(name, _arrow_type(sub, numbers, (*at, name))) for name, sub in shape.items()]
    )


def _json_schema(entity: str, numbers: frozenset[tuple[str, ...]]) -> pa.Schema:
    return pa.schema(
        [(name, _arrow_type(sub, numbers, (name,))) for name, sub in SHAPES[entity].items()]
    )


def _leaf(entity: str, path: tuple[str, ...]) -> bool:
    shape: Shape = SHAPES[entity]
    for part in path:
        if isinstance(shape, list) and part == "[]":
            shape = shape[0]
        elif isinstance(shape, dict) and part in shape:
            shape = shape[part]
        else:
            return False
    return shape == "s"


#: entity -> the leaves the last batch read as numbers (the next batch starts from them)
_numbers: dict[str, frozenset[tuple[str, ...]]] = {}


def _parse(entity: str, lines: Lines) -> pa.Table | None:
    numbers = _numbers.get(entity, frozenset())
    for _ in range(_RETRIES):
        options = pj.ParseOptions(
            explicit_schema=_json_schema(entity, numbers), unexpected_field_behavior="ignore"
        )
        try:
            table = pj.read_json(
                io.BytesIO(lines.data),
                read_options=pj.ReadOptions(use_threads=False, block_size=1 << 22),
                parse_options=options,
            )
            table.validate(full=True)  # (UTF-8: the parser does not check it)
        except (pa.ArrowException, ValueError) as exc:
            switch = _SWITCH.search(str(exc))
            path = tuple(switch.group(1).strip("/").split("/")) if switch else ()
            if not switch or not _leaf(entity, path):
                return None
            numbers = numbers ^ {path}
            continue
        _numbers[entity] = numbers
        return table if table.num_rows == len(lines) else None
    return None


# the leaves, as the record-by-record conversion reads them ----------------------------------


def _as_text(values: Any) -> Any:
    return values if values.type == STR else pc.cast(values, STR)


def _text(values: Any) -> Any:
    """:func:`autosynk.register.text`."""
    return pc.utf8_trim(_as_text(values), characters=WHITESPACE).fill_null("")


def _blank_null(values: Any) -> Any:
    return pc.if_else(pc.equal(values, ""), pa.scalar(None, STR), values)


def _ref(values: Any) -> Any:
    """:func:`autosynk.register.ref_id` of a leaf (an id) or of ``{"id": ...}``."""
    if pa.types.is_struct(values.type):
        values = pc.struct_field(values, "id")
    return _blank_null(pc.utf8_trim(_as_text(values), characters=WHITESPACE))


def _day(values: Any) -> Any:
    """:func:`autosynk.register.day`."""
    trimmed = pc.utf8_trim(_as_text(values), characters=WHITESPACE)
    return _blank_null(pc.utf8_slice_codeunits(trimmed, 0, 10))


def _flag(values: Any) -> Any:
    """``value is True``."""
    return values.fill_null(False)


def _field(values: Any, name: str) -> Any:
    return pc.struct_field(values, name)


class _Children:
    """One array column of a batch as a child table's rows: parent id and place."""

    def __init__(self, column: Any, ids: Any) -> None:
        flat = column.flatten()
        parents = pc.list_parent_indices(column)
        lengths = pc.list_value_length(column).fill_null(0).to_numpy(zero_copy_only=False)
        starts = np.cumsum(lengths) - lengths
        parent_index = parents.to_numpy(zero_copy_only=False)
        pos = np.arange(len(flat), dtype=np.int64) - starts[parent_index]
        parent = ids.take(parents)
        keep = pc.is_valid(parent)
        self.ok = not (pa.types.is_struct(flat.type) and flat.null_count)
        self.values = flat.filter(keep)
        self.parent = parent.filter(keep)
        self.pos = pa.array(pos, I64).filter(keep)

    def leaf(self, source: str) -> Any:
        """The entries' key ``source`` (``""``: the entries themselves)."""
        return _field(self.values, source) if source else self.values

    def table(self, name: str, columns: dict[str, Any]) -> pa.Table:
        return pa.Table.from_pydict(
            {"parent": self.parent, "pos": self.pos, **columns}, schema=SCHEMAS[name]
        )


def _columns(table: pa.Table) -> dict[str, Any]:
    return {name: table.column(name).combine_chunks() for name in table.column_names}


def _seq(seq0: int, n: int) -> Any:
    return pa.array(np.arange(seq0, seq0 + n, dtype=np.int64), I64)


def _blank(values: Any) -> Any:
    """``value in (None, "")``."""
    missing = pc.is_null(values)
    if values.type == STR:
        missing = pc.or_(missing, pc.equal(values, "").fill_null(False))
    return missing


def _value(values: Any) -> Any:
    """:func:`autosynk.register.text` of ``{"value": ...}``."""
    return _text(_field(values, "value"))


#: field kind -> how its column is read (``row``: see :func:`lines_tables`)
_READ: dict[Kind, Callable[[Any], Any]] = {
    "text": _text,
    "day": _day,
    "id": _ref,
    "ref": _ref,
    "value": _value,
    "flag": _flag,
    "blank": _blank,
}


def _read(fields: tuple[Field, ...], leaf: Callable[[str], Any], row: Any) -> dict[str, Any]:
    """Each field's column, its leaf read as its kind says."""
    return {f.column: (row if f.kind == "row" else _READ[f.kind])(leaf(f.source)) for f in fields}


def _convert(entity: str, c: dict[str, Any], seq0: int, row: Any) -> dict[str, pa.Table] | None:
    spec = ENTITY_FIELDS[entity]
    ids = _ref(c["id"])
    kids = [(child, _Children(c[child.source], ids)) for child in spec.children]
    # (a null among values is read as a null value, as as_list does; among objects the
    # typed reader drops it, which shifts the places after it)
    if not all(kid.ok for child, kid in kids if not child.of_values):
        return None
    own = {"seq": _seq(seq0, len(ids)), "id": ids, **_read(spec.fields, c.__getitem__, row)}
    tables = {entity: pa.Table.from_pydict(own, schema=SCHEMAS[entity])}
    for child, kid in kids:
        tables[child.table] = kid.table(child.table, _read(child.fields, kid.leaf, row))
    return tables


def lines_tables(
    entity: str, lines: Lines, seq0: int, *, trim: bool = True
) -> dict[str, pa.Table] | None:
    """The entity's tables (as :func:`autosynk.register_columns.entity_columns` makes them)
    for one batch whose first entry is the file's ``seq0``-th; None when the batch holds
    something this path cannot take exactly (see the module docstring)."""
    table = _parse(entity, lines)
    if table is None:
        return None

    def row(values: Any) -> Any:
        return _text(values) if trim else _as_text(values).fill_null("")

    tables = _convert(entity, _columns(table), seq0, row)
    if tables is None:
        return None
    assert tuple(tables) == TABLES_OF[entity]
    return tables
