"""Persons resolved to identity numbers: who may be sent, and who is held and why.

Only persons the night needs are looked at: every party of a relation by register id,
and the guardians of exported pupils (with the pupils). Protected persons anywhere in the
register are never sent and are forgotten if they ever were (spec §6).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from autosynk.identity import InvalidIdentity, mask, normalise
from autosynk.mapping.columnar.identity import identity_numbers
from autosynk.mapping.columnar.joins import among, stacked

if TYPE_CHECKING:
    from autosynk.mapping.columnar.night import Night


def resolve(night: Night) -> None:
    """The table ``key_of`` (person, key); quarantine entries and counts."""
    protected = protected_persons(night)
    guardians = night.arrow["guardians"]
    needed = pc.unique(
        stacked(
            night.arrow["person_rel"]["person"],
            night.arrow["person_pair"]["a"],
            night.arrow["person_pair"]["b"],
            guardians["guardian"],
            guardians["child"],
        )
    )
    persons = night.arrow["persons"]
    at = rows_of(needed, persons.num_rows)
    frame = pa.table(
        {
            "person": needed,
            "id": pc.take(night.arrow["person_ids"]["id"], needed),
            "civic_no": pc.take(persons["civic_no"], at),
            "status": pc.take(persons["status"], at),
            "protected": among(needed, protected),
            "present": pc.is_valid(at),
        }
    )
    del protected
    night.counts["protected_persons_with_roles"] = pc.sum(frame["protected"]).as_py() or 0
    night.put("key_of", identity_keys(night, frame))


def rows_of(persons: pa.ChunkedArray | pa.Array, held: int) -> pa.ChunkedArray | pa.Array:
    """Each person's row in the ``persons`` table (their code), null for a person the
    register names but does not hold (coded past its ``held`` rows)."""
    return pc.if_else(pc.less(persons, held), persons, pa.scalar(None, persons.type))


def protected_persons(night: Night) -> pa.Array:
    """The persons (codes) whose marking is not an unprotected one (anywhere in the
    register: never sent, forgotten if they ever were)."""
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
    return pc.indices_nonzero(flag).cast(pa.int32())


def identity_keys(night: Night, needed: pa.Table) -> pa.Table:
    """(person, key) of every needed person who can be sent under their identity number.

    Held: a person missing from the register (warning), an invalid number, a number that
    several needed person records carry (all of them, protected and excluded ones too).
    Not sent without a word: persons whose status is excluded (counted).
    """
    spec = night.spec
    frame = needed.sort_by("id")  # the order the persons are looked at: by register id
    numbers, reasons = identity_numbers(pc.fill_null(frame["civic_no"], "").combine_chunks())
    number = pa.array(numbers, pa.string())
    present = frame["present"].to_numpy()
    unprotected = ~frame["protected"].to_numpy()
    has_number = pc.is_valid(number).to_numpy(zero_copy_only=False)
    candidate = present & unprotected
    dangling = ~present & unprotected
    excluded = (
        candidate
        & pc.fill_null(
            pc.is_in(frame["status"], value_set=pa.array(spec.excluded_person_status, pa.string())),
            False,
        ).to_numpy()
    )
    invalid = candidate & ~excluded & ~has_number
    eligible = candidate & ~excluded & has_number
    eligible_numbers = number.filter(pa.array(eligible))
    counted = pc.value_counts(eligible_numbers)
    shared = counted.field("values").filter(pc.greater(counted.field("counts"), 1))
    counts = night.counts
    if dangling.any():
        counts["dangling_person_references"] += int(dangling.sum())
    if excluded.any():
        counts["excluded_status_persons"] += int(excluded.sum())
    person = frame["id"]
    # one entry per person, by register id (the order the persons were looked at)
    for at in np.flatnonzero(dangling | invalid).tolist():
        if present[at]:
            night.quarantine("person", person[at].as_py(), f"identity number: {reasons[at]}")
        else:
            night.quarantine(
                "person", person[at].as_py(), "referenced person is not in the register", "warning"
            )
    is_shared = pc.fill_null(pc.is_in(number, value_set=shared), False).to_numpy(
        zero_copy_only=False
    )
    if len(shared):
        holders = np.flatnonzero(present & is_shared).tolist()
        held = person.take(pa.array(holders, pa.int64())).to_pylist()
        ids = dict(zip(holders, held, strict=True))
        for at in sorted(holders, key=lambda at: (numbers[at], ids[at])):
            night.quarantine(
                "person",
                ids[at],
                f"identity number {mask(numbers[at] or '')} is used by several person records",
            )
    sent = pa.array(eligible & ~is_shared)
    return pa.table({"person": frame["person"].filter(sent), "key": number.filter(sent)})
