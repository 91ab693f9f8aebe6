"""ECR's image operations see the registry behind it; CloudWatch Logs filters by stream prefix."""

from __future__ import annotations

import base64
import time

import docker
import pytest
from botocore.exceptions import ClientError

from tests.integration.helpers import unique

pytestmark = [pytest.mark.docker]


def test_the_registry_takes_only_the_token_and_ecr_sees_what_was_pushed(
    aws_client, docker_client, tiny_image
):
    ecr = aws_client("ecr")
    name = unique("images")
    uri = ecr.create_repository(repositoryName=name)["repository"]["repositoryUri"]
    registry = uri.split("/", 1)[0]
    image = docker_client.images.get(tiny_image)
    image.tag(uri, tag="first")
    image.tag(uri, tag="second")
    pushed = []
    try:
        with pytest.raises(docker.errors.APIError, match="no basic auth credentials|unauthorized"):
            _push(docker_client, uri, "first", auth={"username": "AWS", "password": "not-the-token"})

        token = ecr.get_authorization_token()["authorizationData"][0]
        username, password = base64.b64decode(token["authorizationToken"]).decode().split(":", 1)
        assert token["proxyEndpoint"] == f"http://{registry}"
        auth = {"username": username, "password": password}
        digest = _push(docker_client, uri, "first", auth)
        assert _push(docker_client, uri, "second", auth) == digest
        pushed += [f"{uri}:first", f"{uri}:second"]

        (detail,) = ecr.describe_images(repositoryName=name)["imageDetails"]
        assert detail["imageDigest"] == digest
        assert sorted(detail["imageTags"]) == ["first", "second"]
        assert detail["imageSizeInBytes"] > 0 and detail["imagePushedAt"].timestamp() > time.time() - 600
        listed = ecr.list_images(repositoryName=name)["imageIds"]
        assert sorted(i["imageTag"] for i in listed) == ["first", "second"]

        manifest = ecr.batch_get_image(repositoryName=name, imageIds=[{"imageTag": "first"}])["images"][0]
        ecr.put_image(repositoryName=name, imageManifest=manifest["imageManifest"], imageTag="third")
        assert (
            len(ecr.describe_images(repositoryName=name, imageIds=[{"imageTag": "third"}])["imageDetails"])
            == 1
        )

        deleted = ecr.batch_delete_image(repositoryName=name, imageIds=[{"imageTag": "second"}])
        assert deleted["imageIds"] == [{"imageDigest": digest, "imageTag": "second"}]
        assert sorted(ecr.describe_images(repositoryName=name)["imageDetails"][0]["imageTags"]) == [
            "first",
            "third",
        ]
        ecr.batch_delete_image(repositoryName=name, imageIds=[{"imageDigest": digest}])
        assert ecr.list_images(repositoryName=name)["imageIds"] == []
        with pytest.raises(docker.errors.NotFound):  # gone from the registry itself
            docker_client.images.get_registry_data(f"{uri}:first", auth_config=auth)
    finally:
        for tag in (f"{uri}:first", f"{uri}:second"):
            docker_client.images.remove(tag, noprune=True)


def _push(docker_client, uri: str, tag: str, auth: dict) -> str:
    digest = None
    for event in docker_client.images.push(uri, tag=tag, stream=True, decode=True, auth_config=auth):
        if "error" in event:
            raise docker.errors.APIError(event["error"])
        digest = (event.get("aux") or {}).get("Digest", digest)
    return digest


def test_filter_log_events_reads_only_the_streams_with_the_prefix(aws_client):
    logs = aws_client("logs")
    group = f"/test/{unique('prefix')}"
    logs.create_log_group(logGroupName=group)
    now = int(time.time() * 1000)
    for stream in ("job-a/algo-1-1", "job-a/algo-2-1", "job-b/algo-1-1"):
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        logs.put_log_events(
            logGroupName=group, logStreamName=stream, logEvents=[{"timestamp": now, "message": stream}]
        )

    found = logs.filter_log_events(logGroupName=group, logStreamNamePrefix="job-a/")
    assert sorted(e["message"] for e in found["events"]) == ["job-a/algo-1-1", "job-a/algo-2-1"]
    assert logs.filter_log_events(logGroupName=group, logStreamNamePrefix="nothing")["events"] == []
    with pytest.raises(ClientError) as refused:
        logs.filter_log_events(
            logGroupName=group, logStreamNamePrefix="job-a/", logStreamNames=["job-b/algo-1-1"]
        )
    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"


def test_a_job_naming_its_image_as_on_aws_runs_the_image_pushed_to_the_local_ecr(
    aws_client, docker_client, tiny_image
):
    """Notebooks build `<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>`; a job naming
    it runs what was pushed to that repository of the local ECR (nothing is pulled from AWS)."""
    from tests.integration.helpers import training_request, wait_for_job

    ecr, sm, s3 = aws_client("ecr"), aws_client("sagemaker"), aws_client("s3")
    name = unique("aws-named")
    uri = ecr.create_repository(repositoryName=name)["repository"]["repositoryUri"]
    token = ecr.get_authorization_token()["authorizationData"][0]
    username, password = base64.b64decode(token["authorizationToken"]).decode().split(":", 1)
    docker_client.images.get(tiny_image).tag(uri, tag="v1")
    aws_named = f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{name}:v1"
    try:
        _push(docker_client, uri, "v1", {"username": username, "password": password})
        bucket = unique("aws-named")
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="train/rows.csv", Body=b"1\n2\n")
        job = unique("aws-named")
        sm.create_training_job(**training_request(job, aws_named, bucket))
        answer, _ = wait_for_job(lambda: sm.describe_training_job(TrainingJobName=job), "TrainingJobStatus")
        assert answer["TrainingJobStatus"] == "Completed", answer.get("FailureReason")
        missing = unique("aws-named-missing")
        sm.create_training_job(
            **training_request(missing, f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{name}:v9", bucket)
        )
        failed, _ = wait_for_job(
            lambda: sm.describe_training_job(TrainingJobName=missing), "TrainingJobStatus"
        )
        assert failed["FailureReason"].endswith(f"/{name}:v9 not found.")
    finally:
        for tag in (f"{uri}:v1", aws_named):
            try:
                docker_client.images.remove(tag, noprune=True)
            except docker.errors.ImageNotFound:
                pass
