"""`python -m harness emulator env`: a user's shell or notebook, pointed at the local AWS by the
printed export lines alone, runs the SageMaker SDK as a notebook's first cells do."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests import ROOT

pytestmark = [pytest.mark.docker, pytest.mark.slow]

NOTEBOOK = """
import sys
import sagemaker
from sagemaker.estimator import Estimator

session = sagemaker.Session()
bucket = session.default_bucket()
session.upload_string_as_file_body("1\\n2\\n", bucket, "train/rows.csv")
estimator = Estimator(image_uri=sys.argv[1], instance_count=1, instance_type="ml.m5.large")
estimator.fit({"train": f"s3://{bucket}/train/"}, wait=True, logs="None")
print("bucket", bucket)
print("role", estimator.role)
print("model", estimator.model_data)
"""


def exported(lines: str) -> dict[str, str]:
    found = {}
    for line in lines.splitlines():
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            found[name] = shlex.split(value)[0]
    return found


def test_the_printed_environment_lets_a_stock_sdk_notebook_train_without_bucket_or_role(
    local_aws, tiny_image, tmp_path
):
    port = local_aws.endpoint_url.rsplit(":", 1)[1]
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}
    printed = subprocess.run(
        [sys.executable, "-m", "harness", "emulator", "env", "--port", port],
        cwd=ROOT, capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.splitlines()[0] == "unset AWS_PROFILE AWS_SESSION_TOKEN"
    variables = exported(printed.stdout)
    assert variables["AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{port}"
    assert variables["SAGEMAKER_USER_CONFIG_OVERRIDE"].startswith(str(tmp_path / "config"))
    profile = subprocess.run(  # what scripts such as `deploy.sh` read the region with
        [Path(sys.executable).with_name("aws"), "configure", "get", "region"],
        capture_output=True, text=True, timeout=60,
        env={"PATH": os.environ["PATH"], "AWS_CONFIG_FILE": variables["AWS_CONFIG_FILE"]},
    )  # fmt: skip
    assert profile.stdout.strip() == "us-east-1"

    user = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAGEMAKER_"))}
    notebook = subprocess.run(
        [sys.executable, "-c", NOTEBOOK, tiny_image],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env={**user, **variables},
    )  # fmt: skip

    assert notebook.returncode == 0, notebook.stderr[-3000:]
    assert "bucket sagemaker-us-east-1-123456789012" in notebook.stdout
    assert "role arn:aws:iam::123456789012:role/mlharness-sagemaker-execution" in notebook.stdout
    assert "model s3://sagemaker-us-east-1-123456789012/" in notebook.stdout


def test_env_without_a_local_aws_is_one_line():
    result = subprocess.run(
        [sys.executable, "-m", "harness", "emulator", "env", "--port", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: no local AWS answers at http://127.0.0.1:1 ")
    assert len(result.stderr.strip().splitlines()) == 1 and result.stdout == ""
