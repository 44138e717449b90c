"""The production delta (:func:`autosynk.delta.diff`, Arrow) over pandas frames, for tests.

The property tests model nights in memory with frames; this adapter runs them through the
same engine the pipeline uses and hands back frames, the shape ``Staging.commit`` takes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa

from autosynk.delta import (
    DELIVERED_PRINCIPAL_COLUMNS,
    PRINCIPAL_COLUMNS,
    RELATION_COLUMNS,
    arrow_table,
    diff,
)
from autosynk.staging.store import Changes


@dataclass
class Delta:
    principals: pd.DataFrame  # rows to send: kind, key, source_id, hash, row
    adds: pd.DataFrame  # type, a, b
    removes: pd.DataFrame  # type, a, b
    changes: Changes
    counts: dict[str, int] = field(default_factory=dict)


def compute(
    principals: pd.DataFrame,
    relations: pd.DataFrame,
    delivered_principals: pd.DataFrame,
    delivered_relations: pd.DataFrame,
    *,
    held_source_ids: set[str],
    protected_source_ids: set[str],
    protected_keys: set[str],
) -> Delta:
    """Compare tonight (``principals``, ``relations``) with the delivered state."""
    result = diff(
        arrow_table(principals, PRINCIPAL_COLUMNS),
        arrow_table(relations, RELATION_COLUMNS),
        arrow_table(delivered_principals, DELIVERED_PRINCIPAL_COLUMNS),
        arrow_table(delivered_relations, RELATION_COLUMNS),
        held_source_ids=held_source_ids,
        protected_source_ids=protected_source_ids,
        protected_keys=protected_keys,
    )
    to_send = _or_tonight(result.principals, principals, PRINCIPAL_COLUMNS)
    adds = _or_tonight(result.adds, relations, RELATION_COLUMNS)
    changes = Changes(
        principal_upserts=to_send,
        principal_deletes=_frame(result.principal_deletes),
        relation_adds=adds,
        relation_removes=_frame(result.relation_removes),
    )
    return Delta(to_send, adds, _frame(result.removes), changes, result.counts)


def _or_tonight(table: pa.Table | None, tonight: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    if table is not None:
        return _frame(table)
    return tonight[columns].reset_index(drop=True)


def _frame(table: pa.Table) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(table[c], dtype="str") for c in table.column_names})
