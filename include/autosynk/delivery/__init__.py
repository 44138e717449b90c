"""Delivery targets: a local folder or Unikum's SFTP server.

Every target uploads under a temporary name, verifies size and sha256, then renames
atomically to the final name; a retry that finds the final name holding the same bytes
does not upload again.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class DeliveryRecord:
    """What arrived where (no personal data: file names, sizes, checksums, times)."""

    name: str
    remote_path: str
    size: int
    sha256: str
    delivered_at: str  # ISO 8601 with offset, Europe/Stockholm
    already_there: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
