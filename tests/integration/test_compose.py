"""docker-compose.yml's local-aws service as a new user meets it: brought up (its image built
from docker/ on the local base), a LocalStack-style ready hook seeding a bucket, the health
check LocalStack's users wait on, the training and endpoint pipelines run by
`python -m harness run --target local` against it from this machine (its jobs are sibling
containers on this engine, the model served from one), then brought down with nothing left."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
import uuid

import pytest

from harness import images
from harness.emulator import containers
from tests import ROOT
from tests.integration.helpers import awslocal, free_port, harness_cli

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SEED = "#!/bin/bash\nset -e\nawslocal s3 mb s3://seeded-in-compose\n"


def _compose_command() -> list[str]:
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail("neither `docker compose` nor docker-compose is installed (scripts/setup.sh installs it)")


@pytest.fixture(scope="module")
def compose(docker_client, job_image, tmp_path_factory):
    """The service up under a project, port and scratch folder of this test's own."""
    base = tmp_path_factory.mktemp("compose")
    (base / "init" / "ready.d").mkdir(parents=True)
    (base / "init" / "ready.d" / "10-seed.sh").write_text(SEED)
    (base / "init" / "ready.d" / "10-seed.sh").chmod(0o755)
    port = free_port()
    project = f"mlharness-test-{uuid.uuid4().hex[:6]}"
    env = {
        **os.environ,
        "MLHARNESS_LOCAL_AWS_PORT": str(port),
        "MLHARNESS_SCRATCH_DIR": str(base / "scratch"),
        "MLHARNESS_INIT_DIR": str(base / "init"),
        "MLHARNESS_BASE_IMAGE": images.default_base_image(),
        "DOCKER_BUILDKIT": "0",  # no buildx on these machines
        "COMPOSE_DOCKER_CLI_BUILD": "0",
    }
    command = [*_compose_command(), "-p", project, "-f", str(ROOT / "docker-compose.yml")]

    def compose_run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run([*command, *args], env=env, capture_output=True, text=True, timeout=timeout)

    images.ensure_wheelhouse(images.LOCAL_AWS_IMAGE_CONTEXT)
    built = compose_run("build", "local-aws")
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    up = compose_run("up", "-d", "local-aws")
    assert up.returncode == 0, up.stderr
    compose_run.endpoint = f"http://127.0.0.1:{port}"
    compose_run.port = port
    compose_run.env = env
    compose_run.namespace = _pid_namespace(docker_client, project)
    try:
        _wait_healthy(compose_run.endpoint)
        yield compose_run
    finally:
        compose_run("down", "-v", timeout=120)


def _pid_namespace(docker_client, project: str) -> str:
    """The PID namespace of the service's container: its job containers' owner labels name it."""
    (container,) = docker_client.containers.list(filters={"label": f"com.docker.compose.project={project}"})
    return os.readlink(f"/proc/{container.attrs['State']['Pid']}/ns/pid")


def _wait_healthy(endpoint: str, timeout: float = 60) -> dict:
    """As LocalStack's users wait: until /_localstack/health answers."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{endpoint}/_localstack/health", timeout=2) as answer:  # noqa: S310
                return json.loads(answer.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _own_job_containers(docker_client, namespace: str) -> list:
    return [
        c
        for c in docker_client.containers.list(all=True, filters={"label": containers.JOB_LABEL})
        if c.labels.get(containers.INSTANCE_LABEL, "").startswith(namespace)
    ]


def test_the_ready_hook_seeded_a_bucket_that_awslocal_lists(compose):
    health = _wait_healthy(compose.endpoint)
    assert health["services"]["s3"] == "running" and health["services"]["sagemaker"] == "running"
    listed = awslocal(f"127.0.0.1:{compose.port}", "s3", "ls")
    assert listed.returncode == 0, listed.stderr
    assert "seeded-in-compose" in listed.stdout


def test_the_pipelines_run_against_the_service_and_down_leaves_no_container(compose, docker_client, tmp_path):
    name = f"compose-{uuid.uuid4().hex[:6]}"
    harness = harness_cli(
        tmp_path,
        [
            f"emulator.port={compose.port}",
            f"stack_name={name}",
            f"artifact_bucket={name}",
            "inputs.data.generate.rows=2000",
        ],
    )
    trained = harness("run", "--target", "local", "--pipeline", "training")
    assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-2000:]
    assert f"using the local AWS at {compose.endpoint}" in trained.stdout
    assert "training run training-" in trained.stdout and "SUCCEEDED" in trained.stdout

    served = harness("run", "--target", "local", "--pipeline", "endpoint")
    assert served.returncode == 0, served.stdout[-3000:] + served.stderr[-2000:]
    assert "smoke test: 5 answer(s) for 5 sample row(s)" in served.stdout
    assert _own_job_containers(docker_client, compose.namespace), "the endpoint's serving container runs"

    down = compose("down", "-v", timeout=120)
    assert down.returncode == 0, down.stderr
    assert _own_job_containers(docker_client, compose.namespace) == []
