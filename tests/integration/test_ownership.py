"""One owner for a local AWS a command started, and records that say what is known: the last
command out stops it, commands on one port share it, SIGTERM leaves no orphan and no record
RUNNING, one state dir has one local AWS, `status` reconciles what it cannot see any more."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from harness.emulator import EmulatorError, LocalAWS, processes
from tests import ROOT
from tests.conftest import own_containers
from tests.integration.helpers import emulators_on, free_port

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture
def own(tmp_path, job_image):
    """A port and state dir of this test's own, and the CLI pointed at them."""
    port, state = free_port(), tmp_path / "state"
    settings = [f"emulator.port={port}", f"emulator.state_dir={state}", "inputs.data.generate.rows=1000"]

    def command(*args: str) -> list[str]:
        return [sys.executable, "-m", "harness", *args, *[x for s in settings for x in ("--set", s)]]

    command.port, command.state, command.home = port, state, tmp_path / "home"
    command.env = {**os.environ, "MLHARNESS_HOME": str(tmp_path / "home")}
    yield command
    for pid in emulators_on(state):
        os.kill(pid, signal.SIGKILL)


def records_of(home) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((home / "runs" / "local").glob("*.json"))]


def test_two_first_runs_at_once_share_one_local_aws_that_stops_after_the_last(own):
    runs = [
        subprocess.Popen(own("run", "--target", "local", "--pipeline", "training"), cwd=ROOT, env=own.env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]  # fmt: skip
    outputs = [run.communicate(timeout=600)[0] for run in runs]

    assert [run.returncode for run in runs] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    assert sum("started the local AWS" in out for out in outputs) == 1
    assert sum(f"using the local AWS at http://127.0.0.1:{own.port}" in out for out in outputs) == 1
    deadline = time.monotonic() + 20
    while emulators_on(own.state) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert emulators_on(own.state) == []  # the last one out stopped it
    assert not list((own.state / "leases").glob("*"))
    assert [r["status"] for r in records_of(own.home)] == ["SUCCEEDED", "SUCCEEDED"]


def test_sigterm_stops_the_execution_records_it_and_orphans_nothing(own, docker_client):
    run = subprocess.Popen(own("run", "--target", "local", "--pipeline", "training"), cwd=ROOT, env=own.env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    for line in run.stdout:
        if line.startswith("-> Train"):
            break
    # this test's local AWS: the engine may hold other local AWSs' containers, dead or alive
    (instance,) = [processes.instance_id(pid) for pid in emulators_on(own.state)]
    run.send_signal(signal.SIGTERM)
    _, err = run.communicate(timeout=120)

    assert run.returncode == 143 and err.strip().splitlines()[-1] == "terminated"
    (record,) = records_of(own.home)
    assert (record["status"], record["error"]) == ("ABORTED", "Terminated")
    deadline = time.monotonic() + 20
    while emulators_on(own.state) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert emulators_on(own.state) == []
    assert own_containers(docker_client, instance) == []  # none outlives the local AWS that started it


def _detached_training_run(own) -> dict:
    """The record of a training run started with --detach: RUNNING."""
    started = subprocess.run(own("run", "--target", "local", "--pipeline", "training", "--detach"), cwd=ROOT,
                             env=own.env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert started.returncode == 0, started.stdout[-2000:] + started.stderr
    (running,) = records_of(own.home)
    assert running["status"] == "RUNNING"
    return running


def test_status_reconciles_a_run_whose_local_aws_is_gone(own):
    running = _detached_training_run(own)
    for pid in emulators_on(own.state):
        os.kill(pid, signal.SIGKILL)  # the local AWS dies

    status = subprocess.run(own("status", "--target", "local"), cwd=ROOT, env=own.env, capture_output=True,
                            text=True, timeout=120)  # fmt: skip

    assert status.returncode == 0, status.stderr
    assert f"{running['run_id']}" in status.stdout and " LOST " in status.stdout
    (lost,) = records_of(own.home)
    assert lost["status"] == "LOST" and "did not keep what became of it" in lost["cause"]


def test_a_run_whose_local_aws_finished_it_and_stopped_is_settled_from_what_it_kept(own):
    _detached_training_run(own)
    deadline = time.monotonic() + 300
    while emulators_on(own.state) and time.monotonic() < deadline:
        time.sleep(0.5)  # the managed local AWS runs the execution to its end, then stops
    assert emulators_on(own.state) == []

    status = subprocess.run(own("status", "--target", "local"), cwd=ROOT, env=own.env, capture_output=True,
                            text=True, timeout=120)  # fmt: skip

    assert status.returncode == 0, status.stderr
    (settled,) = records_of(own.home)
    assert settled["status"] == "SUCCEEDED", settled  # not LOST: how it ended was kept
    assert settled["outputs"] and settled["steps"]
    assert not [step for step in settled["steps"] if step["status"] == "RUNNING"]
    assert emulators_on(own.state) == []  # status read it without starting one


def test_one_state_dir_has_one_local_aws(tmp_path):
    with LocalAWS(state_dir=tmp_path, docker_gateway=False) as first:
        with pytest.raises(EmulatorError) as refused:
            LocalAWS(state_dir=tmp_path, docker_gateway=False).start()
        assert f"the state dir {tmp_path} is in use by the local AWS with pid {first.info['pid']}" in str(
            refused.value
        )
