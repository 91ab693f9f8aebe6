"""What the emulator's stores (S3 objects, job logs, stacks) share: a folder of
their own under the state dir, a lock, writes that are whole or absent, and a
quarantine for files found damaged (moved aside and named, so the rest loads)."""

from __future__ import annotations

import errno
import json
import logging
import os
import tempfile
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)


class StateDirFull(OSError):
    """The state dir's disk is full: nothing more can be kept."""


class FolderStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()


class OutsideTheStore(ValueError):
    """A name (from a request) that would make a path outside its store's folder."""


def inside(root: Path, *parts: str) -> Path:
    """root/parts..., refused (OutsideTheStore) when a part is empty, `.`, `..`, or holds a
    separator: names from requests become file names, never paths."""
    for part in parts:
        if part in ("", ".", "..") or "/" in part or "\\" in part or "\0" in part:
            raise OutsideTheStore(f"{part!r} cannot name a file in {root}")
    return Path(root).joinpath(*parts)


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, fsync, rename: a crash leaves the old file or the new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        with tempfile.NamedTemporaryFile("wb", dir=path.parent, delete=False, suffix=".tmp") as tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp.name, path)
    except OSError as ex:
        if tmp is not None:
            Path(tmp.name).unlink(missing_ok=True)
        if ex.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StateDirFull(ex.errno, f"the local AWS's state dir is full: {path.parent}") from ex
        raise


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def quarantine(path: Path, why: str) -> Path:
    """Move a damaged file aside (<name>.damaged-<time>) and say so; the store loads the rest."""
    aside = path.with_name(f"{path.name}.damaged-{int(time.time())}")
    try:
        path.replace(aside)
    except OSError:
        return path
    log.warning("%s is damaged (%s): moved aside to %s", path, why, aside)
    return aside
