"""The AWS-recorded Step Functions conformance suite, run against the emulator.

The cases and their runner live in tests/conformance/ (Apache-2.0, see its NOTICE).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.emulator import LocalAWS
from tests.integration.engines import ENGINE_IDS, ENGINES

RUNNER = Path(__file__).resolve().parents[1] / "conformance" / "run_conformance.py"
CASES = 888  # the default engine passes all (884 before the JSONata causes named their field)

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("engine", ENGINES, ids=ENGINE_IDS)
def test_the_engine_passes_the_aws_recorded_conformance_cases(engine, tmp_path):
    """The default engine passes all; LocalStack's own fails exactly the cases where its
    interpreter is known to differ from AWS (README: the table of the two engines)."""
    why = engine.missing()
    if why:
        pytest.skip(f"{engine.name} engine: {why}")
    report = tmp_path / "report.json"
    with LocalAWS(state_dir=tmp_path / "state", docker_gateway=False, engine=engine.name) as aws:
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
    results = json.loads(report.read_text())
    failures = {r["id"].split("#")[0] for r in results["results"] if r["outcome"] != "pass"}
    assert failures == engine.conformance_differences, failures ^ engine.conformance_differences
    assert results["totals"]["pass"] == CASES - sum(
        1 for r in results["results"] if r["id"].split("#")[0] in engine.conformance_differences
    )
