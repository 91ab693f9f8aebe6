"""The dev environment on a real AWS account: deploy, a second deploy is a no-op, train,
then infer from another machine's view (the published model), status reads the stack."""

import os
import subprocess
import sys

from tests import ROOT

ENV = os.environ.get("MLHARNESS_AWS_ENV", "dev")


def harness(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "MLHARNESS_AWS_ENDPOINT_URL"} | env
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], cwd=ROOT, env=environment, capture_output=True, text=True,
        timeout=3600,
    )  # fmt: skip


def test_deploy_twice_then_train_on_aws():
    first = harness("deploy", "--target", "aws", ENV, "--yes")
    assert first.returncode == 0, first.stderr
    second = harness("deploy", "--target", "aws", ENV, "--yes")
    assert second.returncode == 0 and ": no changes" in second.stdout
    run = harness("run", "--target", "aws", ENV, "--pipeline", "training", "--yes")
    assert run.returncode == 0, run.stdout[-3000:]


def test_inference_with_no_local_record_uses_the_published_model(tmp_path):
    run = harness(
        "run", "--target", "aws", ENV, "--pipeline", "inference", "--yes", MLHARNESS_HOME=str(tmp_path)
    )
    assert run.returncode == 0, run.stdout[-3000:]
    assert "inference uses the model of training run training-" in run.stdout
    status = harness("status", "--target", "aws", ENV, MLHARNESS_HOME=str(tmp_path))
    assert status.returncode == 0 and "inference schedule: " in status.stdout
