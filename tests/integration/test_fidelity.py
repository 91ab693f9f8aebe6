"""The local AWS notes what it does not reproduce as jobs run and requests come: a training job
asking for GPUs, spot, a VPC and KMS keys, in an image SageMaker could not pull (not in ECR);
an operation it refuses; a job served from the step cache. The run's report (and
--strict-fidelity) read these notes."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from harness.emulator import LocalAWS, fidelity
from tests.integration.helpers import training_request, unique, wait_for_job

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_a_job_asking_for_what_does_not_run_here_is_reported_kind_by_kind(aws_client, local_aws, tiny_image):
    sm, s3 = aws_client("sagemaker"), aws_client("s3")
    bucket = unique("fidelity")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="train/part-1.csv", Body=b"1,a\n")
    name = unique("fidelity-train")
    request = training_request(
        name,
        tiny_image,
        bucket,
        ResourceConfig={"InstanceType": "ml.g4dn.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 1},
        EnableManagedSpotTraining=True,
        StoppingCondition={"MaxRuntimeInSeconds": 300, "MaxWaitTimeInSeconds": 600},
        VpcConfig={"Subnets": ["subnet-0abc"], "SecurityGroupIds": ["sg-0abc"]},
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/models", "KmsKeyId": "alias/models"},
    )
    sm.create_training_job(**request)
    answer, _ = wait_for_job(lambda: sm.describe_training_job(TrainingJobName=name), "TrainingJobStatus")
    assert answer["TrainingJobStatus"] == "Completed"  # what it could do, it did

    findings = fidelity.fetch(local_aws.endpoint_url, name, since=None)
    assert {f["subject"] for f in findings} == {name}
    by_kind = {f["kind"]: f["message"] for f in findings}
    # its role does not exist here, so AWS would deny its data's staging: IAM (soft on this local AWS) says so
    assert set(by_kind) == {"gpu", "spot", "network", "kms", "iam", "image"}
    assert by_kind["image"].startswith(f"image {tiny_image} is not in ECR: SageMaker runs images from ECR")
    assert by_kind["iam"].startswith(
        f"on AWS this call would be denied: User: arn:aws:sts::123456789012:assumed-role/sagemaker/{name} "
    )
    assert (
        "ml.g4dn.xlarge has 4 vCPUs and 16 GiB on AWS and 1 GPU(s), which it does not have here"
        in by_kind["gpu"]
    )
    assert (
        by_kind["kms"]
        == "KMS key alias/models (OutputDataConfig.KmsKeyId) accepted; nothing was encrypted with it"
    )


def test_a_refused_operation_is_reported_for_the_runs_since_it(aws_client, local_aws):
    before = time.time()
    with pytest.raises(ClientError) as refused:
        aws_client("sagemaker").create_compilation_job(
            CompilationJobName=unique("compile"),
            RoleArn="arn:aws:iam::123456789012:role/r",
            OutputConfig={"S3OutputLocation": "s3://b/o", "TargetDevice": "ml_m5"},
            StoppingCondition={"MaxRuntimeInSeconds": 60},
        )
    assert refused.value.response["Error"]["Code"] == "UnsupportedOperation"
    findings = fidelity.fetch(local_aws.endpoint_url, "no-such-run-", since=before)
    assert {
        "subject": "",
        "kind": "unsupported",
        "message": "sagemaker:CreateCompilationJob was refused as unsupported",
    } in findings
    assert fidelity.fetch(local_aws.endpoint_url, "no-such-run-", since=time.time() + 1) == []


def test_a_job_served_from_the_step_cache_is_reported(tmp_path, tiny_image):
    import boto3

    with LocalAWS(state_dir=tmp_path / "state", cache=True, iam="off") as aws:

        def client(service):
            return boto3.client(service, endpoint_url=aws.endpoint_url, region_name="us-east-1")

        sm = client("sagemaker")
        client("s3").create_bucket(Bucket="cached")
        client("s3").put_object(Bucket="cached", Key="train/part-1.csv", Body=b"1,a\n")
        first, second = unique("cached-a"), unique("cached-b")
        for name in (first, second):
            sm.create_training_job(**training_request(name, tiny_image, "cached"))
            wait_for_job(
                lambda name=name: sm.describe_training_job(TrainingJobName=name), "TrainingJobStatus"
            )

        def reported(job: str) -> list[dict]:  # the tiny image is not in ECR: each job says so too
            return [f for f in fidelity.fetch(aws.endpoint_url, job, since=None) if f["kind"] != "image"]

        assert reported(first) == []
        assert reported(second) == [
            {
                "subject": second,
                "kind": "cache",
                "message": f"served from the step cache (the outputs of job {first}): its code did not run",
            }
        ]
