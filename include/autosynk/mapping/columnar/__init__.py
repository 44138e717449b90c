"""The mapping spec applied column-wise: the register's tables in, Unikum's rows out.

Reads like the spec (``../shared/spec/ss12000-to-unikum.md``): every record type is
indexed (:mod:`.index`), schools and classes chosen (:mod:`.schools`), every relation
type is one join over the register's tables (:mod:`.relations`), persons are resolved to
identity numbers (:mod:`.persons`) and the users' rows built (:mod:`.users`). The work is
done by Arrow's compute functions and joins over the register's tables (:mod:`.joins`),
the same kernels for a small register and a city; Python only sees the few thousand
schools and groups and, per exported person, the values of their row.

Quarantine entries name the register record and the reason (ids masked); a quarantined
record keeps its last delivered state (the delta holds it), it never becomes removals.
"""

from __future__ import annotations

from autosynk.mapping.columnar.night import MappedTables, map_columns

__all__ = ["MappedTables", "map_columns"]
