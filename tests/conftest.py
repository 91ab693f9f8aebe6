"""Shared fixtures: the Docker engine, the tiny test image, a running local AWS."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

ROOT = Path(__file__).resolve().parent.parent
TINY_CONTEXT = ROOT / "tests" / "images" / "tiny"
BASE_IMAGE = os.environ.get("MLHARNESS_BASE_IMAGE", "mlharness/base:bookworm")
REGION = "us-east-1"

# Tests must never reach real AWS, whatever the environment holds.
for _name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
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
    """Build the test job image from the local base; tagged by a hash of its inputs."""
    wheels = TINY_CONTEXT / "wheels"
    if not any(wheels.glob("boto3-*.whl")):
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "-d", str(wheels), f"boto3=={boto3.__version__}"],
            check=True,
        )
    digest = hashlib.sha256(BASE_IMAGE.encode())
    for path in sorted(TINY_CONTEXT.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(TINY_CONTEXT)).encode())
            digest.update(path.read_bytes())
    tag = f"mlharness/tiny-test:{digest.hexdigest()[:12]}"
    try:
        docker_client.images.get(tag)
    except Exception:
        if not _image_present(docker_client, BASE_IMAGE):
            subprocess.run(["bash", str(ROOT / "docker" / "base" / "build-base.sh"), BASE_IMAGE], check=True)
        subprocess.run(
            [
                "docker",
                "build",
                "-q",
                "--build-arg",
                f"BASE_IMAGE={BASE_IMAGE}",
                "-t",
                tag,
                str(TINY_CONTEXT),
            ],
            check=True,
            env={**os.environ, "DOCKER_BUILDKIT": "0"},
            stdout=subprocess.DEVNULL,
        )
    return tag


def _image_present(client, name: str) -> bool:
    try:
        client.images.get(name)
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def local_aws(tmp_path_factory, docker_client):
    from harness.emulator import LocalAWS

    aws = LocalAWS(state_dir=tmp_path_factory.mktemp("local-aws")).start()
    yield aws
    aws.stop()
    assert aws.process.returncode == 0, f"the emulator exited with {aws.process.returncode}"


@pytest.fixture(scope="session")
def aws_client(local_aws):
    def make(service: str):
        return boto3.client(service, endpoint_url=local_aws.endpoint_url, region_name=REGION)

    return make


def own_containers(docker_client) -> list:
    from harness.emulator.containers import OWNER_LABEL

    return docker_client.containers.list(all=True, filters={"label": OWNER_LABEL})
