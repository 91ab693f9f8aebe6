"""Docker bookkeeping for the emulator: labels, the job network, clean-up.

Every container the emulator starts carries OWNER_LABEL (the emulator's pid),
INSTANCE_LABEL (which emulator: its PID namespace, pid and start time) and JOB_LABEL
(the job's ARN), so a job's containers can be stopped or removed, and containers
orphaned by a killed emulator can be found at the next start. A pid means something
only in its own PID namespace: containers of emulators in other namespaces on the
same Docker engine (CI runners sharing a daemon) are never judged, so never removed.
"""

from __future__ import annotations

import functools
import logging
import os
import re

from harness.emulator import processes

OWNER_LABEL = "org.mlharness.emulator.pid"
INSTANCE_LABEL = "org.mlharness.emulator.instance"
JOB_LABEL = "org.mlharness.job"
# The network job and serving containers join; the local AWS listens on its gateway.
JOB_NETWORK = "mlharness-jobs"

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
            "no Docker engine answers: start one (scripts/setup.sh installs and starts it)"
        ) from ex
    return client


def own_labels() -> dict[str, str]:
    """What marks a container as this emulator's (removed at its shutdown, or as an orphan)."""
    return {OWNER_LABEL: str(os.getpid()), INSTANCE_LABEL: processes.instance_id()}


def free_loopback_port() -> int:
    """A port free on 127.0.0.1 now, for a container's published port."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def labels_for(job_arn: str) -> dict[str, str]:
    return {**own_labels(), JOB_LABEL: job_arn}


def _listed(label_filter: str) -> list[dict]:
    """Containers as the list call answers (id, labels, state), without a second call per
    container that would fail for one removed meanwhile."""
    return docker_client().api.containers(all=True, filters={"label": label_filter})


@functools.lru_cache(maxsize=1)
def gateway_addresses() -> frozenset[str]:
    """The gateways of the engine's networks when first asked: the host's own addresses on them,
    never a container's (a call from one is the host's). Networks made later are not in it:
    their callers are looked up as containers may be."""
    try:
        networks = docker_client().api.networks()
    except DockerUnavailable:
        return frozenset()
    return frozenset(
        config["Gateway"]
        for network in networks
        for config in (network.get("IPAM") or {}).get("Config") or []
        if config.get("Gateway")
    )


def container_addresses() -> set[str]:
    """The IP addresses of every container any local AWS on this engine runs (jobs, serving,
    network sandboxes, whose namespaces job containers join); none without an engine."""
    try:
        listed = _listed(OWNER_LABEL)
    except DockerUnavailable:
        return set()
    return {
        network.get("IPAddress")
        for container in listed
        for network in ((container.get("NetworkSettings") or {}).get("Networks") or {}).values()
        if network.get("IPAddress")
    }


def job_containers(job_arn: str) -> list[dict]:
    return _listed(f"{JOB_LABEL}={job_arn}")


def exit_codes(job_arn: str) -> list[int]:
    """Exit codes of the job's containers that have exited."""
    codes = []
    for container in job_containers(job_arn):
        try:
            state = docker_client().api.inspect_container(container["Id"])["State"]
        except Exception:  # removed meanwhile
            continue
        if not state.get("Running"):
            codes.append(state.get("ExitCode", 0))
    return codes


def kill_job_containers(job_arn: str) -> None:
    for container in job_containers(job_arn):
        try:
            docker_client().api.kill(container["Id"])
        except Exception:  # already exited or gone: nothing to kill
            pass


def remove_job_containers(job_arn: str) -> None:
    for container in job_containers(job_arn):
        _remove(container)


def remove_own_containers() -> None:
    """Remove every container this emulator process started."""
    remove_containers_of(processes.instance_id())


def remove_containers_of(instance: str) -> int:
    """Remove every container one emulator instance started; how many."""
    try:
        listed = _listed(f"{INSTANCE_LABEL}={instance}")
    except DockerUnavailable:
        return 0
    for container in listed:
        _remove(container)
    return len(listed)


def remove_orphaned_containers() -> int:
    """Remove containers left by emulators of this PID namespace that are no longer running."""
    try:
        containers = _listed(OWNER_LABEL)
    except DockerUnavailable:
        return 0
    removed = 0
    for container in containers:
        if _orphaned(container.get("Labels") or {}):
            _remove(container)
            removed += 1
    return removed


def _orphaned(labels: dict) -> bool:
    instance = labels.get(INSTANCE_LABEL)
    if instance is None:  # labelled before instance ids: by pid alone
        owner = labels.get(OWNER_LABEL, "")
        return not (owner.isdigit() and processes.pid_alive(int(owner)))
    # another PID namespace's emulator: its pid means nothing here, so leave its containers be
    return processes.judgeable(instance) and not processes.alive(instance)


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
        network = client.networks.create(JOB_NETWORK, driver="bridge")
        network.reload()
    configs = network.attrs.get("IPAM", {}).get("Config") or []
    for config in configs:
        if config.get("Gateway"):
            return config["Gateway"]
    return None


def join_own_network(port: int) -> str:
    """For a local AWS that itself runs in a container (docker compose): make the network that
    container is on the job network, and return the URL job containers reach it at there (its
    first alias on that network, the compose service name, else its address). Job containers
    then find it by name, not through a bridge gateway that is not its own."""
    global JOB_NETWORK
    import socket

    try:
        own = docker_client().containers.get(socket.gethostname())
    except Exception as ex:  # no engine, or not a container of this engine
        raise DockerUnavailable(
            f"running in a container, this local AWS must find itself on the Docker engine: {ex}"
        ) from ex
    networks = own.attrs["NetworkSettings"]["Networks"]
    if not networks:
        raise DockerUnavailable("this local AWS's container is on no network job containers could join")
    name = sorted(networks)[0]
    attached = networks[name]
    aliases = [a for a in attached.get("Aliases") or [] if a not in (own.id, own.id[:12])]
    JOB_NETWORK = name
    return f"http://{aliases[0] if aliases else attached['IPAddress']}:{port}"


def output_lines(container_id: str):
    """The container's output (stdout and stderr), line by line as it is written, until the
    container ends or is removed."""
    pending = b""
    try:
        for chunk in docker_client().api.logs(container_id, stream=True, follow=True):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                yield line.decode("utf-8", "replace").rstrip("\r")
    except Exception:  # removed under us: its output ends here
        log.debug("output of %s ended", container_id, exc_info=True)
        return
    if pending:
        yield pending.decode("utf-8", "replace").rstrip("\r")


def address_on_job_network(container_id: str) -> str:
    """A container's IP address on the job network."""
    attrs = docker_client().api.inspect_container(container_id)
    return attrs["NetworkSettings"]["Networks"][JOB_NETWORK]["IPAddress"]


def create_job_network(job_arn: str) -> str:
    """A bridge network of one job's own (its hosts find each other by name there), labelled
    like its containers so that an orphan is found and removed."""
    import hashlib

    name = f"mlharness-{hashlib.sha256(job_arn.encode()).hexdigest()[:16]}"
    docker_client().networks.create(name, driver="bridge", labels=labels_for(job_arn))
    return name


def remove_network(name: str) -> None:
    try:
        docker_client().networks.get(name).remove()
    except Exception as ex:  # gone already, or a container still attached: the next start removes it
        log.debug("could not remove network %s: %s", name, ex)


def remove_own_networks() -> None:
    """Remove every job network this emulator process made."""
    remove_networks_of(processes.instance_id())


def remove_networks_of(instance: str) -> int:
    """Remove every job network one emulator instance made; how many."""
    try:
        networks = docker_client().networks.list(filters={"label": f"{INSTANCE_LABEL}={instance}"})
    except DockerUnavailable:
        return 0
    for network in networks:
        remove_network(network.name)
    return len(networks)


def remove_orphaned_networks() -> int:
    """Remove job networks left by emulators of this PID namespace that are no longer running."""
    try:
        networks = docker_client().networks.list(filters={"label": OWNER_LABEL})
    except DockerUnavailable:
        return 0
    removed = 0
    for network in networks:
        if _orphaned(network.attrs.get("Labels") or {}):
            remove_network(network.name)
            removed += 1
    return removed


_PULLABLE: dict[str, dict] = {}  # registry address -> the credentials it takes


def pull_from(address: str, username: str, password: str) -> None:
    """Images of this registry (the one behind the local AWS's ECR) that the engine does not hold
    are pulled when a job or endpoint needs them, as SageMaker pulls from ECR."""
    _PULLABLE[address] = {"username": username, "password": password}


def local_registries() -> set[str]:
    """The addresses of the registries behind the local AWS's ECR."""
    return set(_PULLABLE)


def image_exists(image: str) -> bool:
    """Whether the engine holds the image, pulling it first when it is in the local ECR."""
    return image_id(image) is not None


def image_id(image: str) -> str | None:
    """The engine's id of the image, pulling it first when it is in the local ECR; None when
    the engine neither holds nor can pull it."""
    import docker.errors

    try:
        return docker_client().images.get(image).id
    except docker.errors.ImageNotFound:
        pass
    local = in_the_local_ecr(image)
    if local is None:
        return None
    address = local.split("/", 1)[0]
    try:
        pulled = docker_client().images.pull(local, auth_config=_PULLABLE[address])
    except docker.errors.APIError as ex:
        log.info("could not pull %s from the local ECR: %s", image, ex)
        return None
    if local != image:  # named as on AWS: the engine holds it by that name too
        repository, _, tag = image.rpartition(":")
        if not repository or "/" in tag:  # no tag: Docker's "latest"
            repository, tag = image, "latest"
        pulled.tag(repository, tag=tag)
    return pulled.id


# an image in an AWS account's ECR, as notebooks and the SDKs name it
_AWS_ECR_HOST = re.compile(r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?$")


def in_the_local_ecr(image: str) -> str | None:
    """Where the local ECR keeps `image`: the image itself when it names the registry behind the
    local ECR, the same repository and tag there when it is named as on AWS
    (`<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>`); None otherwise (nothing is
    ever pulled from anywhere else; an AWS-named image by digest is not found)."""
    host, _, rest = image.partition("/")
    if host in _PULLABLE:
        return image
    # by tag only: the engine can hold an image under another name's tag, not its digest
    if _AWS_ECR_HOST.match(host) and rest and "@" not in rest and len(_PULLABLE) == 1:
        return f"{next(iter(_PULLABLE))}/{rest}"
    return None


def _remove(container: dict) -> None:
    try:
        docker_client().api.remove_container(container["Id"], force=True)
    except Exception as ex:  # gone already, or being removed by its job
        log.debug("could not remove container %s: %s", container["Id"][:12], ex)
