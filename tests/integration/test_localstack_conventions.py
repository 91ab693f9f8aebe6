"""LocalStack's conventions on a running local AWS, with stock LocalStack tools: init hooks that
seed it before it says it is ready (awslocal in a ready.d script), /_localstack/health and
/_localstack/init as LocalStack answers them, `awslocal` and localstack-client sessions
pointed at it by LOCALSTACK_HOST, and a shutdown.d script run when it stops."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from harness.emulator import LocalAWS
from tests.integration.helpers import awslocal

pytestmark = pytest.mark.slow

SEED = """#!/bin/bash
set -euo pipefail
awslocal s3 mb s3://seeded-by-ready-hook
echo '{"rows": 3}' | awslocal s3 cp - s3://seeded-by-ready-hook/manifest.json
"""


def _hook(root: Path, stage: str, name: str, body: str) -> None:
    (root / stage).mkdir(parents=True, exist_ok=True)
    (root / stage / name).write_text(body)
    (root / stage / name).chmod(0o755)


@pytest.fixture(scope="module")
def hooked(tmp_path_factory):
    """A local AWS with a hooks root: a boot marker and a seeding ready hook."""
    base = tmp_path_factory.mktemp("localstack-hooks")
    root = base / "init"
    _hook(root, "boot.d", "01-mark.sh", f"#!/bin/sh\ntouch {base}/booted\n")
    _hook(root, "ready.d", "10-seed.sh", SEED)
    aws = LocalAWS(state_dir=base / "state", docker_gateway=False, init_dir=root).start()
    aws.base = base
    yield aws
    aws.stop()


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 (loopback)
        return json.loads(answer.read())


def test_ready_hooks_have_run_before_it_says_ready_and_init_says_so(hooked):
    assert (hooked.base / "booted").exists()
    ready = _get(f"{hooked.endpoint_url}/_localstack/init/ready")
    assert ready == {
        "completed": True,
        "scripts": [{"stage": "READY", "name": "10-seed.sh", "state": "SUCCESSFUL"}],
    }
    everything = _get(f"{hooked.endpoint_url}/_localstack/init")
    assert everything["completed"] == {"BOOT": True, "START": True, "READY": True, "SHUTDOWN": False}


def test_health_answers_a_localstack_style_wait_loop(hooked):
    health = _get(f"{hooked.endpoint_url}/_localstack/health")
    for service in ("s3", "stepfunctions", "sagemaker", "cloudformation", "iam", "sts", "logs", "events"):
        assert health["services"][service] == "running"
    if shutil.which("curl"):  # as CI scripts wait on it
        subprocess.run(
            ["curl", "-sf", f"{hooked.endpoint_url}/_localstack/health"], check=True, capture_output=True
        )


def test_awslocal_and_localstack_client_reach_it_by_localstack_host(hooked):
    host = hooked.endpoint_url.split("://", 1)[1]
    listed = awslocal(host, "s3", "ls")
    assert listed.returncode == 0, listed.stderr
    assert "seeded-by-ready-hook" in listed.stdout

    from localstack_client.session import Session

    s3 = Session(localstack_host=host).client("s3")
    body = s3.get_object(Bucket="seeded-by-ready-hook", Key="manifest.json")["Body"].read()
    assert json.loads(body) == {"rows": 3}


def test_shutdown_hooks_run_when_it_stops(tmp_path):
    root = tmp_path / "init"
    _hook(root, "shutdown.d", "99-mark.py", f"open({str(tmp_path / 'stopped')!r}, 'w').write('bye')\n")
    with LocalAWS(state_dir=tmp_path / "state", docker_gateway=False, init_dir=root):
        assert not (tmp_path / "stopped").exists()
    assert (tmp_path / "stopped").read_text() == "bye"


def test_hanging_hooks_are_killed_at_their_limit_and_neither_start_nor_stop_hangs(tmp_path):
    root = tmp_path / "init"
    pid_file = tmp_path / "hung"
    _hook(root, "ready.d", "10-hangs.sh", f"#!/bin/sh\necho $$ >> {pid_file}\nsleep 600\n")
    _hook(root, "ready.d", "20-seeds.sh", f"#!/bin/sh\ntouch {tmp_path / 'seeded'}\n")
    _hook(root, "shutdown.d", "10-hangs.sh", f"#!/bin/sh\necho $$ >> {pid_file}\nsleep 600\n")
    aws = LocalAWS(state_dir=tmp_path / "state", docker_gateway=False, init_dir=root, hook_timeout=2)
    started = time.monotonic()
    aws.start()
    try:
        assert time.monotonic() - started < 30
        with urllib.request.urlopen(f"{aws.endpoint_url}/_localstack/init/ready", timeout=10) as answer:
            states = {s["name"]: s["state"] for s in json.load(answer)["scripts"]}
        assert states == {"10-hangs.sh": "ERROR", "20-seeds.sh": "SUCCESSFUL"}
        assert (tmp_path / "seeded").exists()
    finally:
        stopping = time.monotonic()
        aws.stop(timeout=30)
    assert aws.process.returncode == 0 and time.monotonic() - stopping < 20  # SIGTERM was enough
    log = aws.log_file.read_text()
    assert "10-hangs.sh (READY) failed: did not finish within 2 s: killed" in log
    assert "10-hangs.sh (SHUTDOWN) failed: did not finish within 2 s: killed" in log
    hung = [int(pid) for pid in pid_file.read_text().split()]
    assert len(hung) == 2 and not any(Path(f"/proc/{pid}").exists() for pid in hung)
