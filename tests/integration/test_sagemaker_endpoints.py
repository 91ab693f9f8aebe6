"""Real-time endpoints: each one a serving container of its own, invoked through sagemaker-runtime."""

from __future__ import annotations

import hashlib
import time

import pytest
from botocore.exceptions import ClientError

from tests.conftest import job_label, own_containers
from tests.integration.helpers import ROLE, create_endpoint_config, training_request, unique, wait_for_job

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def models(aws_client, tiny_image):
    """Two models: trained on 2 and on 5 lines (the test image serves that count); the second
    takes 2 s to load."""
    sm, s3 = aws_client("sagemaker"), aws_client("s3")
    bucket = unique("endpoints")
    s3.create_bucket(Bucket=bucket)
    names = []
    for lines in (2, 5):
        s3.put_object(Bucket=bucket, Key=f"train-{lines}/data.csv", Body=b"x\n" * lines)
        job = unique(f"train-{lines}")
        channel = {
            "ChannelName": "train",
            "DataSource": {
                "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/train-{lines}/"}
            },
        }
        sm.create_training_job(**training_request(job, tiny_image, bucket, InputDataConfig=[channel]))
        trained, _ = wait_for_job(
            lambda job=job: sm.describe_training_job(TrainingJobName=job), "TrainingJobStatus"
        )
        model = unique(f"model-{lines}")
        sm.create_model(
            ModelName=model,
            ExecutionRoleArn=ROLE,
            PrimaryContainer={
                "Image": tiny_image,
                "ModelDataUrl": trained["ModelArtifacts"]["S3ModelArtifacts"],
                # the larger model loads for 2 s: an update to it is seen in progress
                "Environment": {"STARTUP_SECONDS": "2" if lines == 5 else "0"},
            },
        )
        config = unique(f"config-{lines}")
        create_endpoint_config(sm, config, model)
        names.append(config)
    return names


def wait_in_service(sm, name: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = sm.describe_endpoint(EndpointName=name)
        if answer["EndpointStatus"] not in ("Creating", "Updating"):
            return answer
        time.sleep(0.2)
    raise AssertionError(f"endpoint {name} still {answer['EndpointStatus']}")


def invoke(runtime, name: str, body: bytes) -> bytes:
    return runtime.invoke_endpoint(EndpointName=name, ContentType="text/csv", Body=body)["Body"].read()


def test_endpoints_serve_side_by_side_and_update_swaps_the_model(aws_client, models, docker_client):
    sm, runtime, logs = aws_client("sagemaker"), aws_client("sagemaker-runtime"), aws_client("logs")
    small, large = models
    first, second = unique("ep"), unique("ep")
    assert sm.create_endpoint(EndpointName=first, EndpointConfigName=small)["EndpointArn"].endswith(first)
    sm.create_endpoint(EndpointName=second, EndpointConfigName=large)
    assert sm.describe_endpoint(EndpointName=first)["EndpointStatus"] == "Creating"

    assert wait_in_service(sm, first)["EndpointStatus"] == "InService"
    assert wait_in_service(sm, second)["EndpointStatus"] == "InService"
    assert invoke(runtime, first, b"7,a\n8,b\n") == b"2,7\n2,8\n"
    assert invoke(runtime, second, b"7,a\n") == b"5,7\n"

    sm.update_endpoint(EndpointName=first, EndpointConfigName=large)
    assert sm.describe_endpoint(EndpointName=first)["EndpointStatus"] == "Updating"
    assert invoke(runtime, first, b"1\n") == b"2,1\n"  # the old model serves during the update
    updated = wait_in_service(sm, first)
    assert updated["EndpointConfigName"] == large
    assert invoke(runtime, first, b"1\n") == b"5,1\n"

    group = f"/aws/sagemaker/Endpoints/{first}"
    streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert streams and all(s["logStreamName"].startswith("AllTraffic/") for s in streams)

    for name in (first, second):
        sm.delete_endpoint(EndpointName=name)
    with pytest.raises(ClientError) as raised:
        invoke(runtime, first, b"1\n")
    assert raised.value.response["Error"]["Code"] == "ValidationError"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(
        first in job_label(c) or second in job_label(c) for c in own_containers(docker_client)
    ):
        time.sleep(0.2)
    assert not [c for c in own_containers(docker_client) if "endpoint/" in job_label(c)]


def test_a_reused_endpoint_name_is_refused(aws_client, models):
    sm = aws_client("sagemaker")
    name = unique("ep")
    sm.create_endpoint(EndpointName=name, EndpointConfigName=models[0])
    with pytest.raises(ClientError) as raised:
        sm.create_endpoint(EndpointName=name, EndpointConfigName=models[0])
    assert raised.value.response["Error"]["Code"] == "ResourceInUse"
    wait_in_service(sm, name)
    sm.delete_endpoint(EndpointName=name)


def test_an_endpoint_whose_image_is_missing_fails(aws_client):
    sm = aws_client("sagemaker")
    model, config, name = unique("m"), unique("c"), unique("ep")
    sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "mlharness/absent:1"})
    create_endpoint_config(sm, config, model)
    sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
    answer = wait_in_service(sm, name)
    assert answer["EndpointStatus"] == "Failed"
    assert "mlharness/absent:1 not found" in answer["FailureReason"]


def test_a_binary_body_reaches_the_model_byte_for_byte(aws_client, models):
    sm, runtime = aws_client("sagemaker"), aws_client("sagemaker-runtime")
    name = unique("ep")
    sm.create_endpoint(EndpointName=name, EndpointConfigName=models[0])
    assert wait_in_service(sm, name)["EndpointStatus"] == "InService"
    payload = b"\x93NUMPY\x01\x00" + bytes(range(256)) * 4  # not UTF-8: an .npy header and raw bytes
    answer = runtime.invoke_endpoint(EndpointName=name, ContentType="application/x-npy", Body=payload)
    assert answer["Body"].read().decode() == hashlib.sha256(payload).hexdigest()
    # CSV that is not UTF-8 kills the test image's handler: the connection closes without an answer
    with pytest.raises(runtime.exceptions.ModelError, match=r"Received server error \(0\) from primary"):
        runtime.invoke_endpoint(EndpointName=name, ContentType="text/csv", Body=b"\xff\xfe,1\n")
    sm.delete_endpoint(EndpointName=name)


def test_a_model_made_from_a_model_package_serves(aws_client, models):
    """What `ModelPackage.deploy()` sends: a model that names only the package."""
    sm, runtime = aws_client("sagemaker"), aws_client("sagemaker-runtime")
    served = sm.describe_model(
        ModelName=sm.describe_endpoint_config(EndpointConfigName=models[1])["ProductionVariants"][0][
            "ModelName"
        ]
    )["PrimaryContainer"]
    group = unique("group")
    sm.create_model_package_group(ModelPackageGroupName=group)
    package = sm.create_model_package(
        ModelPackageGroupName=group,
        InferenceSpecification={
            "Containers": [{"Image": served["Image"], "ModelDataUrl": served["ModelDataUrl"]}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
    )["ModelPackageArn"]
    described = sm.describe_model_package(ModelPackageName=package)
    assert (described["ModelPackageName"], described["ModelPackageVersion"]) == (group, 1)
    model, config, name = unique("pkg-model"), unique("pkg-config"), unique("pkg-ep")
    sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={"ModelPackageName": package})
    create_endpoint_config(sm, config, model)
    sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
    assert wait_in_service(sm, name)["EndpointStatus"] == "InService"
    assert invoke(runtime, name, b"a,1\n") == b"5,a\n"  # the package's model: trained on 5 lines
    sm.delete_endpoint(EndpointName=name)


def test_many_clients_at_once_lose_nothing_and_the_local_aws_answers_throughout(
    aws_client, models, local_aws
):
    """A load test: bounded in time, its figures printed, never asserted as timings."""
    import concurrent.futures
    import statistics
    import threading
    import urllib.request

    from botocore.config import Config

    sm, s3 = aws_client("sagemaker"), aws_client("s3")
    endpoint, bucket = unique("ep-load"), unique("load")
    s3.create_bucket(Bucket=bucket)
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=models[0])
    assert wait_in_service(sm, endpoint)["EndpointStatus"] == "InService"
    clients, seconds = 12, 8.0
    config = Config(max_pool_connections=clients, retries={"max_attempts": 1})
    errors, latencies, written = [], [], []
    health_failures: list[str] = []
    stop = threading.Event()

    def watch_health():
        while not stop.is_set():
            try:
                with urllib.request.urlopen(
                    f"{local_aws.endpoint_url}/_localstack/health", timeout=5
                ) as answer:
                    assert answer.status == 200
            except Exception as ex:  # noqa: BLE001  (any failure is the finding)
                health_failures.append(repr(ex))
            time.sleep(0.2)

    def client_loop(number: int):
        import boto3

        def make(service):
            return boto3.client(
                service, endpoint_url=local_aws.endpoint_url, region_name="us-east-1", config=config
            )

        s3c, smc, sfn, runtime = (
            make("s3"),
            make("sagemaker"),
            make("stepfunctions"),
            make("sagemaker-runtime"),
        )
        calls = [
            lambda i: s3c.put_object(Bucket=bucket, Key=f"c{number}/{i}", Body=f"{number}-{i}".encode()),
            lambda i: (
                s3c.get_object(Bucket=bucket, Key=f"c{number}/{i}")["Body"].read() == f"{number}-{i}".encode()
                or errors.append(f"c{number}/{i} read back wrong")
            ),
            lambda i: sfn.list_state_machines(maxResults=5),
            lambda i: smc.describe_endpoint(EndpointName=endpoint),
            lambda i: invoke(runtime, endpoint, b"1,a\n") == b"2,1\n" or errors.append("a wrong prediction"),
        ]
        deadline = time.monotonic() + seconds
        i = 0
        while time.monotonic() < deadline:
            for call in calls:
                started = time.monotonic()
                try:
                    call(i)
                except Exception as ex:  # noqa: BLE001
                    errors.append(f"client {number}: {ex!r}"[:200])
                latencies.append(time.monotonic() - started)
            written.append(f"c{number}/{i}")
            i += 1

    watcher = threading.Thread(target=watch_health, daemon=True)
    watcher.start()
    with concurrent.futures.ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(client_loop, range(clients)))
    stop.set()
    watcher.join()
    sm.delete_endpoint(EndpointName=endpoint)

    kept = {o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in page.get("Contents", [])}  # fmt: skip
    p99 = statistics.quantiles(latencies, n=100)[98]
    print(f"\nload: {clients} clients for {seconds:.0f} s: {len(latencies)} requests, "
          f"{len(latencies) / seconds:.0f}/s, p50 {statistics.median(latencies) * 1000:.0f} ms, "
          f"p99 {p99 * 1000:.0f} ms")  # fmt: skip
    assert errors == [], errors[:5]
    assert set(written) <= kept  # no object lost
    assert health_failures == [], health_failures[:3]
