"""`python -m harness emulator env`: a user's shell or notebook, pointed at the local AWS by the
printed export lines alone, runs the SageMaker SDK as a notebook's first cells do."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import pytest

from tests import ROOT
from tests.integration.helpers import emulator_env, exported

pytestmark = [pytest.mark.docker, pytest.mark.slow]

NOTEBOOK = """
import sys
import sagemaker
from sagemaker.estimator import Estimator

session = sagemaker.Session()
print("account", session.account_id())  # asks STS at AWS's own address
print("execution role", sagemaker.get_execution_role())
bucket = session.default_bucket()
session.upload_string_as_file_body("1\\n2\\n", bucket, "train/rows.csv")
estimator = Estimator(image_uri=sys.argv[1], instance_count=1, instance_type="ml.m5.large")
estimator.fit({"train": f"s3://{bucket}/train/"}, wait=True, logs="None")
print("bucket", bucket)
print("role", estimator.role)
print("model", estimator.model_data)
"""


def test_the_printed_environment_lets_a_stock_sdk_notebook_train_without_bucket_or_role(
    local_aws, tiny_image, tmp_path
):
    port = local_aws.endpoint_url.rsplit(":", 1)[1]
    printed = emulator_env(local_aws, tmp_path / "config")
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.splitlines()[0] == "unset AWS_PROFILE"
    variables = exported(printed.stdout)
    assert variables["AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{port}"
    assert variables["AWS_SESSION_TOKEN"] and variables["AWS_ACCESS_KEY_ID"].startswith("ASIA")
    assert variables["SAGEMAKER_USER_CONFIG_OVERRIDE"].startswith(str(tmp_path / "config"))
    profile = subprocess.run(  # what scripts such as `deploy.sh` read the region with
        [Path(sys.executable).with_name("aws"), "configure", "get", "region"],
        capture_output=True, text=True, timeout=60,
        env={"PATH": os.environ["PATH"], "AWS_CONFIG_FILE": variables["AWS_CONFIG_FILE"]},
    )  # fmt: skip
    assert profile.stdout.strip() == "us-east-1"
    user = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAGEMAKER_"))}
    pass_state = '{"Type": "Pass", "Result": 7, "End": true}'
    tested = subprocess.run(  # sent to the `sync-` host on AWS: the environment keeps it on the local AWS
        [Path(sys.executable).with_name("aws"), "stepfunctions", "test-state", "--definition", pass_state,
         "--role-arn", variables["SAGEMAKER_ROLE_ARN"], "--query", "output", "--output", "text"],
        capture_output=True, text=True, timeout=60, env={**user, **variables},
    )  # fmt: skip
    assert tested.returncode == 0 and tested.stdout.strip() == "7", tested.stderr

    notebook = subprocess.run(
        [sys.executable, "-c", NOTEBOOK, tiny_image],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env={**user, **variables},
    )  # fmt: skip

    assert notebook.returncode == 0, notebook.stderr[-3000:]
    assert "account 123456789012" in notebook.stdout
    assert "execution role arn:aws:iam::123456789012:role/mlharness-sagemaker-execution" in notebook.stdout
    assert "bucket sagemaker-us-east-1-123456789012" in notebook.stdout
    assert "role arn:aws:iam::123456789012:role/mlharness-sagemaker-execution" in notebook.stdout
    assert "model s3://sagemaker-us-east-1-123456789012/" in notebook.stdout


def test_the_shell_is_a_session_of_the_execution_role_with_the_owners_rights(local_aws, tmp_path):
    """STS names the shell as a SageMaker notebook's session; the role has AWS's managed policy
    attached; what the shell does is not evaluated (it may create a bucket the role could not)."""
    variables = exported(emulator_env(local_aws, tmp_path / "config").stdout)
    session = boto3.Session(
        aws_access_key_id=variables["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=variables["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=variables["AWS_SESSION_TOKEN"],
        region_name="us-east-1",
    )
    identity = session.client("sts", endpoint_url=local_aws.endpoint_url).get_caller_identity()
    assert (
        identity["Arn"]
        == "arn:aws:sts::123456789012:assumed-role/mlharness-sagemaker-execution/mlharness-shell"
    )
    assert identity["UserId"].startswith("AROA") and identity["UserId"].endswith(":mlharness-shell")
    iam = session.client("iam", endpoint_url=local_aws.endpoint_url)
    attached = iam.list_attached_role_policies(RoleName="mlharness-sagemaker-execution")["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["AmazonSageMakerFullAccess"]
    s3 = session.client("s3", endpoint_url=local_aws.endpoint_url)
    s3.create_bucket(Bucket=f"owner-{uuid.uuid4().hex[:8]}")


def test_env_without_a_local_aws_is_one_line():
    result = subprocess.run(
        [sys.executable, "-m", "harness", "emulator", "env", "--port", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: no local AWS answers at http://127.0.0.1:1 ")
    assert len(result.stderr.strip().splitlines()) == 1 and result.stdout == ""
