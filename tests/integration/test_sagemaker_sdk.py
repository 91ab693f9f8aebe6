"""The SageMaker Python SDK, unchanged, trains through the local AWS and streams the job's logs."""

from __future__ import annotations

import pytest

from tests.integration.helpers import ROLE, unique

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_estimator_fit_with_logs_reads_the_jobs_cloudwatch_stream(
    local_aws, aws_client, tiny_image, monkeypatch, capsys
):
    import boto3
    import sagemaker
    from sagemaker.estimator import Estimator
    from sagemaker.telemetry import telemetry_logging

    # The SDK would post telemetry to an AWS host (a user opts out in the SDK's config file).
    monkeypatch.setattr(telemetry_logging, "_send_telemetry_request", lambda *args, **kwargs: None)
    monkeypatch.setenv("AWS_ENDPOINT_URL", local_aws.endpoint_url)
    s3 = aws_client("s3")
    bucket = unique("sdk")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="train/rows.csv", Body=b"1\n2\n")
    session = sagemaker.Session(boto_session=boto3.Session(region_name="us-east-1"), default_bucket=bucket)
    estimator = Estimator(
        image_uri=tiny_image,
        role=ROLE,
        instance_count=1,
        instance_type="ml.m5.large",
        output_path=f"s3://{bucket}/models",
        sagemaker_session=session,
    )

    estimator.fit({"train": f"s3://{bucket}/train/"}, wait=True, logs="All", job_name=unique("sdk-job"))

    assert estimator.model_data.startswith(f"s3://{bucket}/models/")
    assert "trained on 2 lines" in capsys.readouterr().out
