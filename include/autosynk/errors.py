"""The errors autosynk raises on purpose: each carries a one-line, operator-readable message.

Anything else that escapes is a bug. The CLI prints ``error: <message>`` for these and
exits non-zero; Airflow shows the same message in the task log.
"""


class AutosynkError(Exception):
    """Base class: a clear failure the operator can act on."""


class ConfigError(AutosynkError):
    """The run configuration or mapping spec is wrong (names the key and line)."""


class SourceError(AutosynkError):
    """A source could not be read completely and consistently; nothing downstream runs."""


class SafetyError(AutosynkError):
    """A delta looks like a catastrophe (mass removal, empty source) and was refused."""


class DeliveryError(AutosynkError):
    """A package could not be delivered and verified; the staging state is untouched."""


class PackagingError(AutosynkError):
    """Files could not be packaged (encoding, zip, OpenPGP)."""


class LockError(AutosynkError):
    """Another run holds the staging lock."""


class StateError(AutosynkError):
    """The staging database or the run's work directory is not in the expected state."""


class StagingUnreachable(StateError):
    """The staging database cannot be reached: down, refusing, or the connection was lost."""
