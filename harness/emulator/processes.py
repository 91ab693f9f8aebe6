"""Which process is which, across pid reuse and PID namespaces.

An instance id is `<PID namespace>:<pid>:<start time>`: the start time (clock ticks since
boot, from /proc) tells a live process from a later one that got the same pid, and the
namespace says whether a pid can be judged here at all. And `wait_until_ready`, for a child
that is starting.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable


def wait_until_ready(
    process: subprocess.Popen, ready: Callable[[], bool], timeout: float, poll_s: float = 0.02
) -> str | None:
    """Wait until ready() holds: None then, else why not: "exited" (the process ended first) or
    "timeout" (it is left running: the caller decides)."""
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            return "exited"
        if time.monotonic() > deadline:
            return "timeout"
        time.sleep(poll_s)
    return None


def instance_id(pid: int | None = None) -> str:
    pid = pid or os.getpid()
    return f"{pid_namespace()}:{pid}:{start_time(pid)}"


def judgeable(instance: str) -> bool:
    """Whether the instance's pid is of this PID namespace (else nothing can be said of it here)."""
    return _parse(instance)[0] == pid_namespace()


def alive(instance: str) -> bool:
    """Whether the process the instance id names still runs (False for another namespace's)."""
    namespace, pid, started = _parse(instance)
    if namespace != pid_namespace() or started == "gone":
        return False
    return pid_alive(pid) and start_time(pid) == started


def pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return "unknown"


def start_time(pid: int) -> str:
    """The process's start time ("gone" when it has ended: a zombie, its exit not yet collected
    by its parent, has ended too)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return "gone"
    if fields[0] in ("Z", "X"):  # field 3: the process's state
        return "gone"
    return fields[19]  # field 22 of stat, counted after the command name


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _parse(instance: str) -> tuple[str, int, str]:
    try:
        namespace, pid, started = instance.rsplit(":", 2)
        return namespace, int(pid), started
    except ValueError:
        return "", -1, ""
