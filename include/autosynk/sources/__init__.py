"""Sources: each writes a raw SS 12000-shaped snapshot of the register into a folder.

The snapshot is the five list files (``organisations.json``, ``persons.json``,
``groups.json``, ``duties.json``, ``activities.json``, each ``{"data": [...]}``) plus,
from the directory, ``directory.json``. A source that cannot read everything raises
:class:`autosynk.errors.SourceError`; it never leaves a partial snapshot behind.
"""

ENTITIES = ("organisations", "persons", "groups", "duties", "activities")
