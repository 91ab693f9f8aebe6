"""Shared fixtures: the Docker engine, the tiny test image, a running local AWS."""

from __future__ import annotations

import os
from pathlib import Path

import boto3
import pytest

ROOT = Path(__file__).resolve().parent.parent
TINY_CONTEXT = ROOT / "tests" / "images" / "tiny"
REGION = "us-east-1"
# The mock configuration shipped for the project's pipelines (`<arn>#<test case>` runs).
PROJECT_MOCKS = ROOT / "tests" / "sfn-mocks.json"
pytest_plugins = ["pytester"]  # the README's test file runs from a temporary project

# Tests must never reach real AWS, whatever the environment holds.
for _name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "LOCALSTACK_HOST"):
    os.environ.pop(_name, None)
os.environ.update(
    AWS_ACCESS_KEY_ID="test",
    AWS_SECRET_ACCESS_KEY="test",
    AWS_DEFAULT_REGION=REGION,
    SAGEMAKER_SUPPRESS_V2_WARNING="1",
)


def _docker_or_skip():
    try:
        import docker

        client = docker.from_env()
        client.ping()
        return client
    except Exception as ex:
        message = f"no Docker engine answers ({type(ex).__name__}); .ci/run starts one"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def docker_client():
    return _docker_or_skip()


@pytest.fixture(scope="session")
def tiny_image(docker_client) -> str:
    """A small test image (train and serve scripts, boto3), built from the base image."""
    from harness.images import ensure_image

    return ensure_image(TINY_CONTEXT, "mlharness/tiny-test", log=lambda line: None)


@pytest.fixture(scope="session")
def job_image(docker_client) -> str:
    """The project's job image (sagemaker-training, scikit-learn, pandas)."""
    from harness.images import ensure_job_image

    return ensure_job_image(log=lambda line: None)


@pytest.fixture(scope="session")
def local_aws(tmp_path_factory, docker_client):
    from harness.emulator import LocalAWS

    # IAM soft: every request of the suite goes through the evaluation (its findings stay notes);
    # tests/integration/test_iam.py runs strict
    aws = LocalAWS(
        state_dir=tmp_path_factory.mktemp("local-aws"), mock_config=PROJECT_MOCKS, iam="soft"
    ).start()
    yield aws
    pushed = _pushed_tags(aws, docker_client)
    aws.stop()
    for tag in pushed:  # the tags pushes made for the registry behind this emulator's ECR
        docker_client.images.remove(tag, noprune=True)
    assert aws.process.returncode == 0, f"the emulator exited with {aws.process.returncode}"


def _pushed_tags(aws, docker_client) -> list[str]:
    ecr = boto3.client("ecr", endpoint_url=aws.endpoint_url, region_name=REGION)
    registries = {r["repositoryUri"] for r in ecr.describe_repositories()["repositories"]}
    return [
        tag
        for image in docker_client.images.list()
        for tag in image.tags
        if tag.rsplit(":", 1)[0] in registries
    ]


@pytest.fixture(scope="session")
def aws_client(local_aws):
    def make(service: str):
        return boto3.client(service, endpoint_url=local_aws.endpoint_url, region_name=REGION)

    return make


def own_containers(docker_client, instance: str | None = None) -> list[dict]:
    """The project's containers as the list call answers: Id, Labels, State (no per-container
    inspection, which fails for a container removed meanwhile); given a local AWS's instance
    (its info's "instance"), that one's only: other local AWSs share the engine."""
    from harness.emulator.containers import INSTANCE_LABEL, OWNER_LABEL

    label = f"{INSTANCE_LABEL}={instance}" if instance else OWNER_LABEL
    return docker_client.api.containers(all=True, filters={"label": label})


def job_label(container: dict) -> str:
    return (container.get("Labels") or {}).get("org.mlharness.job", "")
