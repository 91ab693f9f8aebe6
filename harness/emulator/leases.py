"""Who uses a local AWS, and who may run one on a state dir.

A local AWS that a command started (a *managed* one) is shared: every command using it
holds a lease, a file `<state dir>/leases/<instance id>` of its own process. The local
AWS stops itself once no live lease is left and nothing runs (no execution, no job), so
the last one out stops it, a killed command never orphans it, and an execution left
running goes on to its end. A lease of a process that is gone is stale and removed.

One state dir has one local AWS: it holds an exclusive lock on `<state dir>/.lock`
(a second one refuses, naming the pid that holds it).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from harness.emulator import processes

LEASES = "leases"
LOCK = ".lock"


class StateDirInUse(RuntimeError):
    pass


def acquire(state_dir: Path) -> Path:
    """A lease for this process; release() gives it back."""
    folder = Path(state_dir) / LEASES
    folder.mkdir(parents=True, exist_ok=True)
    lease = folder / processes.instance_id()
    lease.write_text(str(os.getpid()))
    return lease


def release(lease: Path | None) -> None:
    if lease is not None:
        lease.unlink(missing_ok=True)


def live(state_dir: Path) -> list[str]:
    """The instance ids of processes holding a lease now (stale leases are removed)."""
    folder = Path(state_dir) / LEASES
    holders = []
    for lease in sorted(folder.glob("*")) if folder.is_dir() else []:
        if processes.alive(lease.name):
            holders.append(lease.name)
        elif processes.judgeable(lease.name):
            lease.unlink(missing_ok=True)
        else:
            holders.append(lease.name)  # another PID namespace: cannot tell, so count it
    return holders


class StateDirLock:
    """The exclusive lock one local AWS holds on its state dir while it runs."""

    def __init__(self, state_dir: Path):
        self.path = Path(state_dir) / LOCK
        self._file = None

    def acquire(self) -> StateDirLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115  (held open while the lock is held)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise StateDirInUse(
                f"the state dir {self.path.parent} is in use by the local AWS with pid {holder}: "
                "use that one, stop it, or give another --state-dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle
        return self

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (waiting for it): for work on a local AWS that two
    commands must not do at once, such as deploying one stack."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
