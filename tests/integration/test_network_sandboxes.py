"""Single-host jobs start in a network namespace made before they were asked for (a sandbox):
each job still gets a namespace of its own, named algo-1, that reaches the local AWS; a used
sandbox is removed; an image that cannot hold one runs its jobs as before; none outlives
`close()`."""

from __future__ import annotations

import time

import pytest

from harness.emulator import containers, processes
from harness.emulator.sagemaker.network_sandboxes import SANDBOX_KIND_LABEL, SANDBOX_LABEL, NetworkSandboxes
from tests.integration.helpers import (
    ROLE,
    create_endpoint_config,
    training_request,
    unique,
    wait_for_job,
    wait_for_running_container,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow]

PROBE = (
    "import socket, time, boto3\n"
    "print('host', socket.gethostname())\n"
    "boto3.client('s3').list_buckets()\n"
    "print('reached the local AWS')\n"
    "time.sleep(1.5)\n"  # long enough for the test to see where it runs
)


def _probe_job(sm, logs, docker_client, image: str) -> tuple[list[str], str]:
    """The job's output, and the network mode its container ran with."""
    name = unique("sandboxed")
    arn = sm.create_processing_job(
        ProcessingJobName=name,
        RoleArn=ROLE,
        AppSpecification={"ImageUri": image, "ContainerEntrypoint": ["python3", "-c", PROBE]},
        ProcessingResources={
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}
        },
    )["ProcessingJobArn"]
    wait_for_running_container(docker_client, arn)
    (container,) = docker_client.api.containers(filters={"label": f"{containers.JOB_LABEL}={arn}"})
    mode = docker_client.api.inspect_container(container["Id"])["HostConfig"]["NetworkMode"]
    answer, _ = wait_for_job(
        lambda: sm.describe_processing_job(ProcessingJobName=name), "ProcessingJobStatus"
    )
    assert answer["ProcessingJobStatus"] == "Completed", answer.get("FailureReason")
    (stream,) = logs.describe_log_streams(
        logGroupName="/aws/sagemaker/ProcessingJobs", logStreamNamePrefix=f"{name}/"
    )["logStreams"]
    events = logs.get_log_events(
        logGroupName="/aws/sagemaker/ProcessingJobs",
        logStreamName=stream["logStreamName"],
        startFromHead=True,
    )["events"]
    return [e["message"] for e in events], mode


def _sandboxes(docker_client, image: str, kind: str, instance: str | None = None) -> list:
    """Sandboxes of that kind made from `image` (by the emulator of that instance id, if given)."""
    labels = [f"{SANDBOX_LABEL}={image}", f"{SANDBOX_KIND_LABEL}={kind}"]
    labels += [f"{containers.INSTANCE_LABEL}={instance}"] if instance else []
    return docker_client.containers.list(all=True, filters={"label": labels})


def _wait_for_a_ready_sandbox(docker_client, image: str, kind: str, local_aws) -> None:
    instance = processes.instance_id(local_aws.process.pid)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if any(c.status == "running" for c in _sandboxes(docker_client, image, kind, instance)):
            time.sleep(0.5)  # running, and then put in the pool a moment later
            return
        time.sleep(0.1)
    raise AssertionError(f"no {kind} sandbox of {image} within 30 s")


def _exists(docker_client, container_id: str) -> bool:
    return bool(docker_client.api.containers(all=True, filters={"id": container_id}))


def test_each_job_runs_in_a_sandbox_of_its_own_named_as_its_host_and_used_ones_go(
    local_aws, aws_client, tiny_image, docker_client
):
    sm, logs = aws_client("sagemaker"), aws_client("logs")
    _probe_job(sm, logs, docker_client, tiny_image)  # the image's first job: the next has one ready
    used = []
    for _ in range(2):
        lines, mode = _probe_job(sm, logs, docker_client, tiny_image)
        assert lines == ["host algo-1", "reached the local AWS"]
        assert mode.startswith("container:")
        used.append(mode.removeprefix("container:"))
    assert used[0] != used[1]  # one sandbox, one job

    deadline = time.monotonic() + 30  # used ones are removed in the background
    while any(_exists(docker_client, sandbox) for sandbox in used) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_exists(docker_client, sandbox) for sandbox in used)
    ready = _sandboxes(docker_client, tiny_image, "job", processes.instance_id(local_aws.process.pid))
    assert len(ready) == 1 and ready[0].status == "running"  # the next job's, and only it


def _serving_container(docker_client, endpoint: str) -> dict:
    (listed,) = [
        c
        for c in docker_client.api.containers(filters={"label": containers.JOB_LABEL})
        if f"endpoint/{endpoint}#".lower() in c["Labels"][containers.JOB_LABEL].lower()  # <arn>#<deployment>
    ]
    return docker_client.api.inspect_container(listed["Id"])


def test_a_serving_container_joins_a_sandbox_that_publishes_its_port(
    local_aws, aws_client, tiny_image, docker_client
):
    sm, s3, runtime = aws_client("sagemaker"), aws_client("s3"), aws_client("sagemaker-runtime")
    bucket = unique("sandboxed-serving")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="train/data.csv", Body=b"x\n" * 3)
    job = unique("train")
    sm.create_training_job(**training_request(job, tiny_image, bucket))
    trained, _ = wait_for_job(lambda: sm.describe_training_job(TrainingJobName=job), "TrainingJobStatus")
    model = unique("model")
    sm.create_model(
        ModelName=model,
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": tiny_image, "ModelDataUrl": trained["ModelArtifacts"]["S3ModelArtifacts"]},
    )
    config = unique("config")
    create_endpoint_config(sm, config, model)

    endpoints = []
    for _ in range(2):  # the image's first serving container: the next has a sandbox ready
        name = unique("ep")
        sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
        deadline = time.monotonic() + 60
        while sm.describe_endpoint(EndpointName=name)["EndpointStatus"] == "Creating":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert runtime.invoke_endpoint(EndpointName=name, ContentType="text/csv", Body=b"7\n")[
            "Body"
        ].read() == (b"3,7\n")
        endpoints.append(name)
        _wait_for_a_ready_sandbox(docker_client, tiny_image, "serving", local_aws)  # made in the background
    mode = _serving_container(docker_client, endpoints[1])["HostConfig"]["NetworkMode"]
    assert mode.startswith("container:")
    sandbox = docker_client.api.inspect_container(mode.removeprefix("container:"))
    assert sandbox["HostConfig"]["PortBindings"]["8080/tcp"][0]["HostIp"] == "127.0.0.1"

    for name in endpoints:
        sm.delete_endpoint(EndpointName=name)
    deadline = time.monotonic() + 30
    while _exists(docker_client, sandbox["Id"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _exists(docker_client, sandbox["Id"])


@pytest.fixture
def no_sleep_image(docker_client, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY marker /marker\n")
    (tmp_path / "marker").write_text("an image with no programs\n")
    image, _ = docker_client.images.build(path=str(tmp_path), tag=f"mlharness/no-sleep:{unique('t')}")
    yield image.tags[0]
    docker_client.images.remove(image.tags[0], force=True)


def test_an_image_without_sleep_gets_no_sandbox_and_close_leaves_none(
    docker_client, tiny_image, no_sleep_image
):
    containers.job_network_gateway()  # the job network exists
    mine = containers.own_labels()[containers.INSTANCE_LABEL]  # this process's, not the local AWS's
    sandboxes = NetworkSandboxes("job", hostname="algo-1")
    try:
        assert sandboxes.take(no_sleep_image) is None
        assert sandboxes.take(tiny_image) is None  # the first of an image makes one for the next
        deadline, taken = time.monotonic() + 30, None
        while taken is None and time.monotonic() < deadline:  # made in the background
            time.sleep(0.1)
            taken = sandboxes.take(tiny_image)
        assert taken is not None
        sandboxes.discard(taken)
        assert sandboxes.take(no_sleep_image) is None  # still none: it cannot hold one
    finally:
        sandboxes.close()
    assert sandboxes.take(tiny_image) is None  # closed: nothing is made any more
    assert (
        docker_client.containers.list(all=True, filters={"label": f"{containers.INSTANCE_LABEL}={mine}"})
        == []
    )
