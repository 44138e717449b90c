"""The delta: tonight's mapped state against what Unikum was last told.

Keyed comparison with content hashes, in pandas:

- a principals row is sent when its key is new or its hash changed;
- a relation is added when it is new, removed when it was delivered and is gone;
- a record quarantined tonight *holds* its delivered state: its rows are not dropped and
  no relation naming it is removed (a broken record must not become removals);
- a protected person is *forgotten*: dropped from the delivered state with every relation
  naming them, and never named in a file (spec §10).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from autosynk.errors import SafetyError
from autosynk.staging.store import Changes

PRINCIPAL_COLUMNS = ["kind", "key", "source_id", "hash", "row"]
RELATION_COLUMNS = ["type", "a", "b"]


@dataclass
class Delta:
    principals: pd.DataFrame  # rows to send: kind, key, source_id, hash, row
    adds: pd.DataFrame  # type, a, b
    removes: pd.DataFrame  # type, a, b
    changes: Changes
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (len(self.principals) or len(self.adds) or len(self.removes))


def _isin(column: pd.Series, values: set[str]) -> pd.Series:
    """``column.isin(values)`` for a string column, by Arrow's hash lookup.

    pandas converts every value of the set to an Arrow scalar one by one first, which
    takes seconds for the hundreds of thousands of keys of a municipality.
    """
    if not values or not len(column) or not isinstance(column.dtype, pd.StringDtype):
        return column.isin(list(values))
    found = pc.is_in(pa.array(column, pa.string()), value_set=pa.array(list(values), pa.string()))
    flags = pc.fill_null(found, False).to_numpy(zero_copy_only=False)
    return pd.Series(flags, index=column.index, dtype=bool)


def _names_any(frame: pd.DataFrame, keys: set[str]) -> pd.Series:
    if not keys or not len(frame):
        return pd.Series(False, index=frame.index)
    key_list = list(keys)
    return frame["a"].isin(key_list) | frame["b"].isin(key_list)


def _held_presence(gone: pd.DataFrame, delivered: pd.DataFrame, held: set[str]) -> pd.Series:
    """Guardian presence derived from a held child is held too.

    ``external_user_in_school`` names the guardian and the school, not the child it comes
    from; when that child is quarantined tonight, the presence must not be removed either.
    """
    if not held or not len(gone):
        return pd.Series(False, index=gone.index)
    held_list = list(held)
    guardians = delivered.loc[
        (delivered["type"] == "guardian_for") & delivered["b"].isin(held_list), ["a", "b"]
    ].rename(columns={"a": "guardian", "b": "child"})
    schools = delivered.loc[
        (delivered["type"] == "student_in_school") & delivered["a"].isin(held_list), ["a", "b"]
    ].rename(columns={"a": "child", "b": "school"})
    presence = guardians.merge(schools, on="child")[["guardian", "school"]].drop_duplicates()
    if not len(presence):
        return pd.Series(False, index=gone.index)
    keyed = gone.reset_index().merge(
        presence.assign(_held=True),
        left_on=["a", "b"],
        right_on=["guardian", "school"],
        how="left",
    )
    mask = (keyed["type"] == "external_user_in_school") & keyed["_held"].fillna(False).astype(bool)
    return (
        pd.Series(mask.to_numpy(), index=keyed["index"])
        .groupby(level=0)
        .any()
        .reindex(gone.index, fill_value=False)
    )


_ONLY_IN = """
    SELECT x.type, x.a, x.b FROM {left} x
    ANTI JOIN {right} y ON x.type = y.type AND x.a = y.a AND x.b = y.b
    ORDER BY x.type, x.a, x.b
"""


def relation_diff(
    tonight: pd.DataFrame, delivered: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Relations only tonight (adds) and only delivered (gone), each sorted by type, a, b.

    A full outer join in DuckDB: on a first night both sides hold millions of rows, which
    pandas' multi-column merge takes many times longer to join. Strings are compared and
    ordered by their bytes, the same order Python and pandas give.
    """
    con = duckdb.connect()
    try:
        con.register("tonight", _arrow(tonight))
        con.register("delivered", _arrow(delivered))
        adds = con.sql(_ONLY_IN.format(left="tonight", right="delivered")).to_arrow_table()
        gone = con.sql(_ONLY_IN.format(left="delivered", right="tonight")).to_arrow_table()
    finally:
        con.close()
    return _frame(adds), _frame(gone)


def _arrow(frame: pd.DataFrame) -> pa.Table:
    return pa.table(
        {c: pa.array(frame[c].astype("str").array, pa.string()) for c in RELATION_COLUMNS}
    )


def _frame(table: pa.Table) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(table[c], dtype="str") for c in RELATION_COLUMNS})


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
    dp = delivered_principals
    forgotten_mask = _isin(dp["source_id"], protected_source_ids) | _isin(dp["key"], protected_keys)
    forgotten = set(dp.loc[forgotten_mask, "key"]) | (protected_keys - {""})
    held = set(dp.loc[_isin(dp["source_id"], held_source_ids) & ~forgotten_mask, "key"])

    # principals ------------------------------------------------------------------------
    tonight = principals[~_isin(principals["key"], forgotten)]
    merged = tonight.merge(dp[["key", "hash"]], on="key", how="left", suffixes=("", "_old"))
    send_mask = merged["hash_old"].isna() | (merged["hash"] != merged["hash_old"])
    to_send = merged.loc[send_mask, PRINCIPAL_COLUMNS].reset_index(drop=True)
    # relations -------------------------------------------------------------------------
    rel = relations[~_names_any(relations, forgotten)]
    adds, gone = relation_diff(rel, delivered_relations)
    forget_rel = _names_any(gone, forgotten)
    hold_rel = (
        _names_any(gone, held) | _held_presence(gone, delivered_relations, held)
    ) & ~forget_rel
    removes = gone.loc[~forget_rel & ~hold_rel].reset_index(drop=True)
    relation_removes = pd.concat(
        [removes.assign(op="remove"), gone.loc[forget_rel].assign(op="forget")],
        ignore_index=True,
    )

    # a delivered row stays while a held relation still names it, even when nothing
    # tonight does (a guardian whose only child is quarantined)
    still_named = set(gone.loc[hold_rel, "a"]) | set(gone.loc[hold_rel, "b"])
    present = set(tonight["key"])
    gone_mask = ~_isin(dp["key"], present | held | still_named) & ~forgotten_mask
    deletes = pd.concat(
        [
            dp.loc[gone_mask, ["kind", "key"]].assign(op="delete"),
            dp.loc[forgotten_mask, ["kind", "key"]].assign(op="forget"),
        ],
        ignore_index=True,
    )

    counts = {
        "principals_sent": len(to_send),
        "principals_new": int(merged["hash_old"].isna().sum()),
        "principals_changed": int(send_mask.sum() - merged["hash_old"].isna().sum()),
        "principals_dropped": int(gone_mask.sum()),
        "relations_added": len(adds),
        "relations_removed": len(removes),
        "held_keys": len(held),
        "relations_held": int(hold_rel.sum()),
        "forgotten_keys": int(forgotten_mask.sum()),
        "relations_forgotten": int(forget_rel.sum()),
        "delivered_relations_before": len(delivered_relations),
    }
    changes = Changes(
        principal_upserts=to_send,
        principal_deletes=deletes,
        relation_adds=adds,
        relation_removes=relation_removes,
    )
    return Delta(to_send, adds, removes, changes, counts)


def guard_mass_removal(delta: Delta, max_fraction: float, min_removes: int) -> None:
    """Refuse a delta that would remove more than ``max_fraction`` of delivered relations."""
    removed = delta.counts["relations_removed"]
    before = delta.counts["delivered_relations_before"]
    if removed < max(min_removes, 1) or before == 0:
        return
    if removed / before > max_fraction:
        raise SafetyError(
            f"refused: tonight would remove {removed} of {before} delivered relations "
            f"({removed / before:.0%}, limit {max_fraction:.0%}). If the register really "
            "changed this much (e.g. the school-year change), rerun with --allow-mass-removal "
            "(Airflow: trigger with param allow_mass_removal=true)"
        )
