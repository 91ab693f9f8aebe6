"""The watcher of a local AWS cleans up once, when its local AWS has ended, and not before."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

from harness.emulator import containers, processes, reaper


def test_it_waits_for_the_instance_to_end_then_removes_what_it_left(monkeypatch):
    removed = []
    monkeypatch.setattr(containers, "remove_containers_of", lambda instance: removed.append(instance) or 2)
    monkeypatch.setattr(containers, "remove_networks_of", lambda instance: 1)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    instance = processes.instance_id(child.pid)
    outcome = []
    watcher = threading.Thread(target=lambda: outcome.append(reaper.watch(instance, poll=0.05)))
    watcher.start()
    time.sleep(0.3)
    assert removed == []  # it still runs: nothing is touched
    child.kill()
    child.wait()
    watcher.join(timeout=10)
    assert removed == [instance] and outcome == [3]


def test_a_reused_pid_is_not_the_instance():
    here = processes.instance_id()
    namespace, pid, _ = here.rsplit(":", 2)
    assert not processes.alive(f"{namespace}:{pid}:1")  # same pid, another start time


def test_a_process_that_exited_but_is_not_yet_collected_is_not_alive():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5)"])
    instance = processes.instance_id(child.pid)
    assert processes.alive(instance)
    deadline = time.monotonic() + 10
    while processes.alive(instance) and time.monotonic() < deadline:
        time.sleep(0.05)  # it exits; nobody has waited for it yet: a zombie
    assert not processes.alive(instance)
    child.wait()
