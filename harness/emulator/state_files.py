"""What the emulator's stores (S3 objects, job logs, stacks) share: a folder of
their own under the state dir, a lock, and writes that are whole or absent."""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path


class FolderStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, fsync, rename: a crash leaves the old file or the new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("wb", dir=path.parent, delete=False, suffix=".tmp") as tmp:
        tmp.write(data)
        tmp.flush()
        os.fsync(tmp.fileno())
    os.replace(tmp.name, path)


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
