"""The AWS target's whole path, with the local AWS standing in for AWS (endpoint override):
ECR push to the registry behind it, change-set deploys, runs, confirmation for prod."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid

import boto3
import pytest

from tests import ROOT
from tests.integration.helpers import fire_inference_schedule

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def aws_env(local_aws, job_image, tmp_path_factory):
    suffix = uuid.uuid4().hex[:6]
    env = {
        **os.environ,
        "MLHARNESS_AWS_ENDPOINT_URL": local_aws.endpoint_url,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "MLHARNESS_HOME": str(tmp_path_factory.mktemp("aws-home")),
        "MLHARNESS_STACK_NAME": f"aws-{suffix}",
        "MLHARNESS_ARTIFACT_BUCKET": f"aws-{suffix}-{{account_id}}",
    }
    return env, f"aws-{suffix}"


def harness(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_deploy_pushes_the_image_by_digest_and_a_second_deploy_is_a_no_op(local_aws, aws_env):
    env, stack = aws_env
    first = harness(env, "deploy", "--target", "aws", "dev")
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    assert f"AWS account 123456789012, region us-east-1 through {local_aws.endpoint_url}" in first.stdout
    pushed = r"pushed 127\.0\.0\.1:\d+/mlharness/job:\w+ \(sha256:[0-9a-f]{64}\)"
    there = r"image mlharness/job:\w+ is in ECR already: 127\.0\.0\.1:\d+/mlharness/job@sha256:[0-9a-f]{64}"
    assert re.search(pushed, first.stdout) or re.search(there, first.stdout), first.stdout
    assert f"stack {stack} created" in first.stdout

    cfn = boto3.client("cloudformation", endpoint_url=local_aws.endpoint_url, region_name="us-east-1")
    parameters = {
        p["ParameterKey"]: p["ParameterValue"]
        for p in cfn.describe_stacks(StackName=stack)["Stacks"][0]["Parameters"]
    }  # noqa: E501
    assert re.fullmatch(r"127\.0\.0\.1:\d+/mlharness/job@sha256:[0-9a-f]{64}", parameters["JobImageUri"])
    assert parameters["ArtifactBucket"] == f"{stack}-123456789012"

    again = harness(env, "deploy", "--target", "aws", "dev")
    assert again.returncode == 0 and f"stack {stack}: no changes" in again.stdout


def test_a_scheduled_run_before_any_model_is_published_fails_saying_so(local_aws, aws_env):
    env, stack = aws_env
    schedule = ("--set", "schedules.inference.expression=rate(1 day)")
    deployed = harness(env, "deploy", "--target", "aws", "dev", *schedule)
    assert deployed.returncode == 0, deployed.stdout[-2000:] + deployed.stderr[-2000:]
    assert f"stack {stack}: Add InferenceSchedule (AWS::Events::Rule)" in deployed.stdout
    status = harness(env, "status", "--target", "aws", "dev", *schedule)
    assert f"inference schedule: rate(1 day) ENABLED (rule {stack}-InferenceSchedule" in status.stdout
    assert "does not fire" not in status.stdout  # that is the local target's caveat

    fired = fire_inference_schedule(local_aws.endpoint_url, stack)

    assert fired["status"] == "FAILED" and fired["error"] == "NoPublishedModel"
    assert fired["cause"].startswith(f"no model is published at s3://{stack}-123456789012/models/latest.json")


def test_run_on_the_aws_target_uses_the_pushed_image(local_aws, aws_env):
    env, stack = aws_env
    result = harness(
        env,
        "run",
        "--target",
        "aws",
        "dev",
        "--pipeline",
        "training",
        "--set",
        "inputs.data.generate.rows=1500",
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert re.search(r"metrics: accuracy=0\.\d+", result.stdout)
    sm = boto3.client("sagemaker", endpoint_url=local_aws.endpoint_url, region_name="us-east-1")
    job = re.search(r"job (training-\S+-train): Completed", result.stdout).group(1)
    image = sm.describe_training_job(TrainingJobName=job)["AlgorithmSpecification"]["TrainingImage"]
    assert "@sha256:" in image


def test_inference_on_a_machine_with_no_records_uses_the_published_model(local_aws, aws_env, tmp_path):
    env, _ = aws_env
    env = {**env, "MLHARNESS_HOME": str(tmp_path)}  # another machine: no run recorded here
    result = harness(
        env,
        "run",
        "--target",
        "aws",
        "dev",
        "--pipeline",
        "inference",
        "--set",
        "inputs.data.generate.rows=1500",
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert re.search(
        r"inference uses the model of run training-\S+ \(published at s3://\S+\)\n", result.stdout
    )
    assert re.search(r"predictions: s3://\S+/runs/inference-\S+/predictions", result.stdout)


def test_a_kms_key_encrypts_the_bucket_and_every_job_volume_and_output(local_aws, aws_env):
    env, _ = aws_env
    suffix = uuid.uuid4().hex[:6]
    kms = boto3.client("kms", endpoint_url=local_aws.endpoint_url, region_name="us-east-1")
    key_arn = kms.create_key(Description="mlharness test")["KeyMetadata"]["Arn"]
    kms.create_alias(AliasName=f"alias/kms-{suffix}", TargetKeyId=key_arn)
    env = {**env, "MLHARNESS_STACK_NAME": f"kms-{suffix}", "MLHARNESS_ARTIFACT_BUCKET": f"kms-{suffix}"}
    kms_setting = ("--set", f"aws.kms_key_id=alias/kms-{suffix}")

    result = harness(env, "run", "--target", "aws", "dev", "--pipeline", "training", *kms_setting)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    s3 = boto3.client("s3", endpoint_url=local_aws.endpoint_url, region_name="us-east-1")
    rules = s3.get_bucket_encryption(Bucket=f"kms-{suffix}")["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": key_arn,
    }
    sm = boto3.client("sagemaker", endpoint_url=local_aws.endpoint_url, region_name="us-east-1")
    run_id = re.search(r"training run (training-\S+) SUCCEEDED", result.stdout).group(1)
    train = sm.describe_training_job(TrainingJobName=f"{run_id}-train")
    assert train["ResourceConfig"]["VolumeKmsKeyId"] == train["OutputDataConfig"]["KmsKeyId"] == key_arn
    preprocess = sm.describe_processing_job(ProcessingJobName=f"{run_id}-preprocess")
    assert preprocess["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == key_arn
    assert preprocess["ProcessingOutputConfig"]["KmsKeyId"] == key_arn


def test_an_unknown_kms_key_is_one_line_before_the_stack_is_touched(local_aws, aws_env):
    env, _ = aws_env
    env = {**env, "MLHARNESS_STACK_NAME": "kms-missing"}
    result = harness(env, "deploy", "--target", "aws", "dev", "--set", "aws.kms_key_id=alias/not-there")
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: aws.kms_key_id alias/not-there: "), line
    cfn = boto3.client("cloudformation", endpoint_url=local_aws.endpoint_url, region_name="us-east-1")
    assert "kms-missing" not in [s["StackName"] for s in cfn.list_stacks()["StackSummaries"]]


def test_prod_asks_before_changing_anything_and_refuses_without_a_terminal(local_aws, aws_env):
    env, _ = aws_env
    env = {**env, "MLHARNESS_STACK_NAME": "guarded-prod"}
    result = subprocess.run(
        [sys.executable, "-m", "harness", "deploy", "--target", "aws", "prod"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: environment prod asks for confirmation: run with --yes to proceed"
    )
    cfn = boto3.client("cloudformation", endpoint_url=local_aws.endpoint_url, region_name="us-east-1")
    stacks = [s for s in cfn.list_stacks()["StackSummaries"] if s["StackName"] == "guarded-prod"]
    assert all(s["StackStatus"] in ("REVIEW_IN_PROGRESS", "DELETE_COMPLETE") for s in stacks)


def test_no_credentials_is_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        MLHARNESS_AWS_ENDPOINT_URL="http://127.0.0.1:1",  # nothing may leave the machine, whatever happens
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_EC2_METADATA_DISABLED="true",
        MLHARNESS_HOME=str(tmp_path),
    )
    result = harness(env, "deploy", "--target", "aws", "dev")
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: no usable AWS credentials for environment dev: ")
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_endpoint_pipeline_runs_on_the_aws_target_and_destroy_removes_it(local_aws, aws_env):
    env, stack = aws_env
    polling = ("--set", "settings.endpoint.poll_seconds=1")

    result = harness(env, "run", "--target", "aws", "dev", "--pipeline", "endpoint", *polling)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "smoke test: 5 answer(s) for 5 sample row(s)" in result.stdout
    status = harness(env, "status", "--target", "aws", "dev", "--pipeline", "endpoint")
    assert re.search(rf"endpoint endpoint-{stack} \(from endpoint run \S+\): InService", status.stdout)

    destroyed = harness(env, "destroy", "--target", "aws", "dev")
    assert destroyed.returncode == 0, destroyed.stderr
    assert f"endpoint endpoint-{stack} deleted" in destroyed.stdout
    sagemaker = boto3.client("sagemaker", endpoint_url=local_aws.endpoint_url, region_name="us-east-1")
    assert f"endpoint-{stack}" not in [e["EndpointName"] for e in sagemaker.list_endpoints()["Endpoints"]]
