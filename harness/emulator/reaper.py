"""The watcher of one local AWS, in a process of its own: when the local AWS ends, however it
ends (kill -9 included), what it left on the Docker engine goes with it at once (its job and
serving containers, network sandboxes and job networks), not when another local AWS starts.

Started by the local AWS in a session of its own, so a signal to the local AWS's process
group does not reach it; it polls the local AWS's instance (pid and start time, so a reused
pid is not mistaken for it) and exits once it has cleaned up.

    python -m harness.emulator.reaper INSTANCE
"""

from __future__ import annotations

import subprocess
import sys
import time

from harness.emulator import containers, processes

POLL_SECONDS = 0.5


def start(instance: str) -> subprocess.Popen:
    """Start the watcher of `instance` (this process's, normally)."""
    return subprocess.Popen(
        [sys.executable, "-m", "harness.emulator.reaper", instance],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def watch(instance: str, poll: float = POLL_SECONDS) -> int:
    """Wait for the instance to end, then remove what it left; how many things were removed."""
    while processes.alive(instance):
        time.sleep(poll)
    return containers.remove_containers_of(instance) + containers.remove_networks_of(instance)


if __name__ == "__main__":
    watch(sys.argv[1])
