"""Docker bookkeeping for the emulator: labels, the job network, clean-up.

Every container the emulator starts carries OWNER_LABEL (the emulator's pid) and
JOB_LABEL (the job's ARN), so a job's containers can be stopped or removed, and
containers orphaned by a killed emulator can be found at the next start.
"""

from __future__ import annotations

import functools
import logging
import os

OWNER_LABEL = "org.mlharness.emulator.pid"
JOB_LABEL = "org.mlharness.job"
# The network SageMaker local mode attaches job containers to.
JOB_NETWORK = "sagemaker-local"

log = logging.getLogger(__name__)


class DockerUnavailable(RuntimeError):
    pass


@functools.lru_cache(maxsize=1)
def docker_client():
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except Exception as ex:  # docker raises several unrelated types here
        raise DockerUnavailable(
            "no Docker engine answers: start dockerd (see README, 'Requirements')"
        ) from ex
    return client


def labels_for(job_arn: str) -> dict[str, str]:
    return {OWNER_LABEL: str(os.getpid()), JOB_LABEL: job_arn}


def job_containers(job_arn: str) -> list:
    return docker_client().containers.list(all=True, filters={"label": f"{JOB_LABEL}={job_arn}"})


def kill_job_containers(job_arn: str) -> None:
    for container in job_containers(job_arn):
        try:
            container.kill()
        except Exception:  # already exited: nothing to kill
            pass


def remove_job_containers(job_arn: str) -> None:
    for container in job_containers(job_arn):
        _remove(container)


def remove_own_containers() -> None:
    """Remove every container this emulator process started."""
    try:
        containers = docker_client().containers.list(
            all=True, filters={"label": f"{OWNER_LABEL}={os.getpid()}"}
        )
    except DockerUnavailable:
        return
    for container in containers:
        _remove(container)


def remove_orphaned_containers() -> int:
    """Remove containers left by emulators that are no longer running."""
    try:
        containers = docker_client().containers.list(all=True, filters={"label": OWNER_LABEL})
    except DockerUnavailable:
        return 0
    removed = 0
    for container in containers:
        owner = container.labels.get(OWNER_LABEL, "")
        if not (owner.isdigit() and _process_alive(int(owner))):
            _remove(container)
            removed += 1
    return removed


def job_network_gateway() -> str | None:
    """Create the job network if missing and return its gateway address.

    The emulator listens there too, so containers can call it. None when no
    Docker engine answers.
    """
    try:
        client = docker_client()
    except DockerUnavailable:
        return None
    import docker.errors

    try:
        network = client.networks.get(JOB_NETWORK)
    except docker.errors.NotFound:
        # Labels as docker-compose would set them, so compose adopts it silently.
        network = client.networks.create(
            JOB_NETWORK,
            driver="bridge",
            labels={
                "com.docker.compose.network": JOB_NETWORK,
                "com.docker.compose.project": "sagemaker-local",
            },
        )
        network.reload()
    configs = network.attrs.get("IPAM", {}).get("Config") or []
    for config in configs:
        if config.get("Gateway"):
            return config["Gateway"]
    return None


def image_exists(image: str) -> bool:
    import docker.errors

    try:
        docker_client().images.get(image)
        return True
    except docker.errors.ImageNotFound:
        return False


def _remove(container) -> None:
    try:
        container.remove(force=True)
    except Exception as ex:  # gone already, or being removed by compose
        log.debug("could not remove container %s: %s", container.name, ex)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
