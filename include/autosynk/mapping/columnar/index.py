"""Records by id: a record without an id, or an id that appears twice, is quarantined.

Every entity's table is narrowed to the records with a unique id, and its child tables
to the rows of those records (in Arrow, then named for the queries that follow).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

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
            if not every_one:
                rows = rows.filter(pc.is_in(rows["parent"], value_set=ids))
            night.put(child, rows)


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
