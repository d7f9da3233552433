"""Files only their owner may read (private keys): made with that mode from the start, never
widened for a moment, and never written over (O_EXCL) so that two writers cannot mix."""

from __future__ import annotations

import os
from pathlib import Path

OWNER_ONLY = 0o600


def write_new_private(path: Path, data: str | bytes) -> None:
    """Create `path` (it must not exist), readable and writable by its owner alone, holding `data`."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, OWNER_ONLY)
    with os.fdopen(fd, "wb" if isinstance(data, bytes) else "w") as out:
        out.write(data)
