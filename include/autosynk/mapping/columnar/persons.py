"""Persons resolved to identity numbers: who may be sent, and who is held and why.

Only persons the night needs are looked at: every party of a relation by register id,
and the guardians of exported pupils (with the pupils). Protected persons anywhere in the
register are never sent and are forgotten if they ever were (spec §6).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from autosynk.identity import InvalidIdentity, mask, normalise
from autosynk.mapping.columnar.identity import identity_numbers

if TYPE_CHECKING:
    from autosynk.mapping.columnar.night import Night


def resolve(night: Night) -> None:
    """The table ``key_of`` (person, key); quarantine entries and counts."""
    protected = protected_persons(night)
    frame = night.arrow_of(
        "WITH needed AS (SELECT person FROM person_rel UNION SELECT a FROM person_pair "
        "UNION SELECT b FROM person_pair UNION SELECT guardian FROM guardians "
        "UNION SELECT child FROM guardians) "
        "SELECT n.person, p.civic_no, p.status, (pr.id IS NOT NULL) AS protected, "
        "(p.id IS NOT NULL) AS present FROM needed n "
        "LEFT JOIN persons p ON p.id = n.person LEFT JOIN protected pr ON pr.id = n.person"
    )
    del protected
    night.counts["protected_persons_with_roles"] = pc.sum(frame["protected"]).as_py() or 0
    night.put("key_of", identity_keys(night, frame))


def protected_persons(night: Night) -> pa.Table:
    """The table ``protected``: persons whose marking is not an unprotected one (anywhere
    in the register: never sent, forgotten if they ever were)."""
    spec = night.spec
    persons = night.arrow["persons"]
    marked = pc.invert(
        pc.is_in(persons["marking"], value_set=pa.array(spec.unprotected_markings, pa.string()))
    )
    missing = persons["marking_missing"]
    flag = pc.if_else(missing, pa.scalar(spec.missing_marking_is_protected), marked)
    protected = persons.filter(flag).select(["id", "civic_no"])
    for person_id, civic in zip(
        protected["id"].to_pylist(), protected["civic_no"].to_pylist(), strict=True
    ):
        try:
            key = normalise(civic).value
        except InvalidIdentity:
            key = ""
        night.protected.append((person_id, key))
    night.counts["protected_persons"] = len(night.protected)
    night.put("protected", protected)
    return protected


def identity_keys(night: Night, needed: pa.Table) -> pa.Table:
    """(person, key) of every needed person who can be sent under their identity number.

    Held: a person missing from the register (warning), an invalid number, a number that
    several needed person records carry (all of them, protected and excluded ones too).
    Not sent without a word: persons whose status is excluded (counted).
    """
    spec = night.spec
    frame = needed.to_pandas()
    frame = frame.sort_values("person", kind="stable", ignore_index=True)
    numbers, reasons = identity_numbers(frame["civic_no"].fillna("").tolist())
    frame["number"] = pd.Series(numbers, dtype=object)
    frame["reason"] = reasons
    candidate = frame["present"] & ~frame["protected"]
    dangling = ~frame["present"] & ~frame["protected"]
    excluded = candidate & frame["status"].isin(spec.excluded_person_status)
    invalid = candidate & ~excluded & frame["number"].isna()
    eligible = candidate & ~excluded & frame["number"].notna()
    eligible_numbers = frame.loc[eligible, "number"]
    shared_numbers = set(eligible_numbers[eligible_numbers.duplicated(keep=False)])
    counts = night.counts
    if dangling.any():
        counts["dangling_person_references"] += int(dangling.sum())
    if excluded.any():
        counts["excluded_status_persons"] += int(excluded.sum())
    # one entry per person, by register id (the order the persons were looked at)
    for person_id, present, reason in frame.loc[
        dangling | invalid, ["person", "present", "reason"]
    ].itertuples(index=False):
        if present:
            night.quarantine("person", person_id, f"identity number: {reason}")
        else:
            night.quarantine(
                "person", person_id, "referenced person is not in the register", "warning"
            )
    if shared_numbers:
        holders = frame[frame["present"] & frame["number"].isin(shared_numbers)]
        holders = holders.sort_values(["number", "person"], kind="stable")
        for person_id, number in holders[["person", "number"]].itertuples(index=False):
            night.quarantine(
                "person",
                person_id,
                f"identity number {mask(number)} is used by several person records",
            )
    sent = frame[eligible & ~frame["number"].isin(shared_numbers)]
    return pa.table(
        {
            "person": pa.array(sent["person"].tolist(), pa.string()),
            "key": pa.array(sent["number"].tolist(), pa.string()),
        }
    )
