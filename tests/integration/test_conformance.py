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

CONFORMANCE = Path(__file__).resolve().parents[1] / "conformance"
RUNNER = CONFORMANCE / "run_conformance.py"
# (cases file, how many): AWS-recorded; and the project's own, written from AWS's documentation
# for what the recorded ones do not reach (a key that is also a grammar token, a definite path
# after an index)
CASE_FILES = [("asl-cases.jsonl", 888), ("documented-cases.jsonl", 10)]

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("engine", ENGINES, ids=ENGINE_IDS)
def test_the_engine_passes_the_conformance_cases(engine, tmp_path):
    """The default engine passes all; LocalStack's own fails exactly the cases where its
    interpreter is known to differ from AWS (README: the table of the two engines)."""
    why = engine.missing()
    if why:
        pytest.skip(f"{engine.name} engine: {why}")
    results = []
    with LocalAWS(state_dir=tmp_path / "state", docker_gateway=False, engine=engine.name) as aws:
        for cases, count in CASE_FILES:
            report = tmp_path / f"{cases}.report.json"
            completed = subprocess.run(
                [
                    sys.executable,
                    str(RUNNER),
                    "--endpoint",
                    aws.endpoint_url,
                    "--cases",
                    str(CONFORMANCE / cases),
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
            ran = json.loads(report.read_text())["results"]
            assert len(ran) == count, (cases, len(ran))
            results += ran
    failures = {r["id"].split("#")[0] for r in results if r["outcome"] != "pass"}
    assert failures == engine.conformance_differences, failures ^ engine.conformance_differences
