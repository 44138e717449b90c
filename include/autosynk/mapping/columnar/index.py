"""Records by id: a record without an id, or an id that appears twice, is quarantined.

Every entity's table is narrowed to the records with a unique id, and its child tables
to the rows of those records (in Arrow, then named for the queries that follow).

Persons are named by a code once indexed (:func:`code_persons`), not by their 36-character
id: a person's row in the ``persons`` table, or past its end a person the register names
but does not hold. ``person_ids`` gives each code its id back (for quarantine entries,
the order by register id and the rows' source ids).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from autosynk.mapping.columnar.joins import keys_of, positions, stacked
from autosynk.register_columns import TABLES_OF

if TYPE_CHECKING:
    from autosynk.mapping.columnar.night import Night

#: entity table -> the word quarantine entries use for it
ENTITY_WORD = {
    "organisations": "organisation",
    "persons": "person",
    "groups": "group",
    "duties": "duty",
    "activities": "activity",
}


def index_records(night: Night, columns: Mapping[str, pa.Table]) -> None:
    for entity, tables in TABLES_OF.items():
        records = _unique_records(night, entity, columns[entity])
        night.put(entity, records)
        # the register's tables hold no child rows of records without an id: only
        # repeated ids leave child rows to drop
        every_one = records.num_rows == columns[entity].num_rows - columns[entity]["id"].null_count
        ids = records["id"]
        for child in tables[1:]:
            rows = columns[child]
            if entity == "persons":
                rows = _parent_coded(rows, ids)
            elif not every_one:
                rows = rows.filter(pc.is_in(rows["parent"], value_set=ids))
            night.put(child, rows)
    code_persons(night)


#: the columns that name a person by reference (table, column)
PERSON_REFERENCES = (
    ("person_responsibles", "person"),
    ("group_memberships", "person"),
    ("duties", "person"),
)


def _parent_coded(rows: pa.Table, ids: pa.ChunkedArray) -> pa.Table:
    """A person's child rows with ``parent`` as the person's code (the person's row);
    rows of a person who is not kept are dropped."""
    code = positions(rows["parent"], ids)
    rows = rows.set_column(rows.schema.get_field_index("parent"), "parent", code)
    return rows.filter(pc.is_valid(code)) if code.null_count else rows


def code_persons(night: Night) -> None:
    """Every reference to a person (:data:`PERSON_REFERENCES`) as the person's code; the
    table ``person_ids`` (id: each code's register id).

    A reference to a person not in the ``persons`` table (a dangling one) is coded past
    its end, one code per id, so that the mapping can still report it by its id.
    """
    ids = keys_of(night.arrow["persons"]["id"])
    named = [night.arrow[table][column] for table, column in PERSON_REFERENCES]
    kept = [positions(column, ids) for column in named]
    absent = pc.unique(
        stacked(
            *(
                column.filter(pc.and_(pc.is_valid(column), pc.is_null(at)))
                for column, at in zip(named, kept, strict=True)
            )
        )
    )
    for (table, column), values, at in zip(PERSON_REFERENCES, named, kept, strict=True):
        code = at
        if len(absent):
            past_end = pc.add(positions(values, absent), pa.scalar(len(ids), pa.int32()))
            code = pc.coalesce(at, past_end)
        rows = night.arrow[table]
        night.put(table, rows.set_column(rows.schema.get_field_index(column), column, code))
    night.put("person_ids", pa.table({"id": pa.chunked_array([ids, absent], pa.string())}))


def _unique_records(night: Night, entity: str, records: pa.Table) -> pa.Table:
    word = ENTITY_WORD[entity]
    ids = records["id"]
    for _ in range(ids.null_count):
        night.quarantine(word, "(no id)", f"{word} record without an id")
    counts = pc.value_counts(ids.drop_null()) if len(ids) else None
    if counts is None or len(counts) == len(ids) - ids.null_count:
        return records.filter(pc.is_valid(ids)) if ids.null_count else records
    repeated = counts.filter(pc.greater(counts.field("counts"), 1)).field("values")
    for record_id in sorted(repeated.to_pylist()):
        night.quarantine(word, record_id, f"{word} id appears more than once in the register")
    keep = pc.and_(pc.is_valid(ids), pc.invert(pc.is_in(ids, value_set=repeated)))
    return records.filter(keep)
