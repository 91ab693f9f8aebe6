"""The local target never leaves the machine, whatever credentials the environment holds.

Every Python process the harness starts (the CLI, the local AWS, the job runner) is
audited at the socket level through Python's audit hooks; the test fails on any
connection outside this machine and on any name lookup other than localhost.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests import ROOT

pytestmark = [pytest.mark.docker, pytest.mark.slow]

REAL_LOOKING = {
    "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "AWS_SESSION_TOKEN": "FwoGZXIvYXdzEXAMPLETOKEN",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_REGION": "eu-west-1",
    "AWS_ENDPOINT_URL": "https://s3.eu-west-1.amazonaws.com",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def local_addresses() -> set[str]:
    """Addresses of this machine: loopback and the Docker networks' gateways."""
    gateways = "{{range .IPAM.Config}}{{.Gateway}} {{end}}"
    result = subprocess.run(
        ["docker", "network", "inspect", "-f", gateways, "mlharness-jobs", "bridge"],
        capture_output=True,
        text=True,
    )
    return set(result.stdout.split())


def test_a_local_run_makes_no_connection_off_the_machine_and_looks_up_no_name(tmp_path, job_image):
    audit = tmp_path / "net.jsonl"
    env = {
        **os.environ,
        **REAL_LOOKING,
        "PYTHONPATH": str(Path(__file__).parent / "net_audit"),
        "MLHARNESS_NET_AUDIT": str(audit),
        "MLHARNESS_HOME": str(tmp_path / "home"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "harness", "run", "--target", "local", "--pipeline", "training",
         "--set", f"emulator.port={free_port()}", "--set", f"emulator.state_dir={tmp_path / 'aws'}",
         "--set", "inputs.data.generate.rows=1000", "--set", "artifact_bucket=safety-check",
         "--set", "stack_name=safety"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]

    events = [json.loads(line) for line in audit.read_text().splitlines()]
    processes = {e["pid"] for e in events}
    assert len(processes) >= 2  # the CLI and the local AWS it started were both audited
    allowed = local_addresses()
    off_machine = [
        e for e in events
        if e["kind"] == "connect" and not (_loopback(e["target"][0]) or e["target"][0] in allowed)
    ]  # fmt: skip
    lookups = [e for e in events if e["kind"] == "lookup" and not _local_name(e["target"])]
    assert off_machine == [], off_machine[:5]
    assert lookups == [], lookups[:5]


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _local_name(host: str) -> bool:
    return host in ("localhost", "None") or _loopback(host) or _is_address(host)


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False
