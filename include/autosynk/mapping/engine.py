"""From a register snapshot to Unikum's objects and relations, per the mapping spec.

:func:`map_register` maps a snapshot held in memory (records or plain dicts): it reads it
into the register's tables (:mod:`autosynk.register_columns`) and applies the mapping
column-wise (:mod:`autosynk.mapping.columnar`). The pipeline reads the snapshot's files
straight into tables instead (:func:`autosynk.register_columns.read_columns`).

Quarantine entries name the register record and the reason (ids masked); a quarantined
record keeps its last delivered state (the delta holds it), it never becomes removals.
"""

from __future__ import annotations

from autosynk.mapping.columnar import MappedTables, map_columns
from autosynk.mapping.result import Mapped, QuarantineEntry
from autosynk.mapping.spec import MappingSpec
from autosynk.records import Person
from autosynk.register import Snapshot
from autosynk.register_columns import snapshot_columns

__all__ = ["Mapped", "MappedTables", "QuarantineEntry", "map_register"]


def map_register(
    snapshot: Snapshot,
    spec: MappingSpec,
    organisation_id: str,
    today: str,
    encoding: str,
    *,
    consume: bool = False,
) -> Mapped:
    """Map one snapshot. ``today`` is the evaluation date (``YYYY-MM-DD``, Europe/Stockholm).

    ``consume``: the caller drops the snapshot afterwards, so the person records' lists
    (enrolments, guardians, contact details) are emptied once they are in the tables.
    """
    columns = snapshot_columns(snapshot.entities, snapshot.directory, trim=spec.transforms.trim)
    if consume:
        for person in snapshot.entities.get("persons") or ():
            if isinstance(person, Person):
                person.enrolments = person.responsibles = None
                person.addresses = person.emails = person.phoneNumbers = None
    return map_columns(columns, spec, organisation_id, today, encoding).to_mapped()
