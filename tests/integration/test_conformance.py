"""The AWS-recorded Step Functions conformance suite, run against the emulator.

The suite lives in the team's shared folder beside the repository; the test is
skipped where that folder is absent (a clone elsewhere).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.emulator import LocalAWS

RUNNER = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "run_conformance.py"
# Measured: all 888 (884 before the JSONata causes named their field).
MINIMUM_PASSES = 888

pytestmark = pytest.mark.slow


@pytest.mark.skipif(not RUNNER.exists(), reason=f"conformance runner not found at {RUNNER}")
def test_the_emulator_passes_the_aws_recorded_conformance_cases(tmp_path):
    report = tmp_path / "report.json"
    with LocalAWS(state_dir=tmp_path / "state", docker_gateway=False) as aws:
        completed = subprocess.run(
            [
                sys.executable,
                str(RUNNER),
                "--endpoint",
                aws.endpoint_url,
                "--report",
                str(report),
                "--jobs",
                "4",
            ],
            capture_output=True,
            text=True,
            timeout=900,
        )
    assert completed.returncode == 0, completed.stderr[-2000:]
    totals = json.loads(report.read_text())["totals"]
    failures = [r["id"] for r in json.loads(report.read_text())["results"] if r["outcome"] != "pass"]
    assert totals["pass"] >= MINIMUM_PASSES and not failures, failures
