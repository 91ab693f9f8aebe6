"""A model served in a container, as SageMaker serves it: the image started with `serve`,
the model's artifacts extracted in /opt/ml/model, GET /ping until it answers 200, then
POST /invocations. Used by endpoints and batch transform.

Each serving container gets a port of its own on loopback (several run at once), or, when
the local AWS itself runs in a container, is called at its address on the job network; it
is on the job network (so its code reaches the local AWS; in a network namespace made ahead
when there is one, network_sandboxes.py), and its output goes to the log
it is given; readiness is polled every 0.05 s (a batch transform waits on it: each tenth of a
second between ready and seen is on the job's path).
"""

from __future__ import annotations

import collections
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import urllib3

from harness.emulator import containers
from harness.emulator.sagemaker import contract
from harness.emulator.sagemaker.runner import HostedModel, LogSink

PING_INTERVAL_S = 0.05
PING_TIMEOUT_S = 120
TAIL_LINES = 5


class ServingError(RuntimeError):
    """The model could not be brought into service; the message says why."""


class ServedModel(HostedModel):
    """A running serving container and the way to call it."""

    def __init__(
        self,
        container_id: str,
        base_url: str,
        folder: Path,
        log: LogSink,
        keep: bool = False,
        release: Callable[[], None] | None = None,
    ):
        """release: called once the container is gone (its network sandbox goes then)."""
        self.container_id = container_id
        self.base_url = base_url
        self.folder = folder
        self.keep = keep
        self._release = release
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self._http = urllib3.PoolManager(maxsize=8, retries=False)
        self._log = log
        self._reader = threading.Thread(
            target=self._stream_output, name=f"serve-{container_id[:12]}", daemon=True
        )
        self._reader.start()

    def invoke(self, body: bytes, content_type: str | None, accept: str | None) -> tuple[int, bytes, str]:
        headers = {}
        if content_type:
            headers["Content-Type"] = content_type
        if accept:
            headers["Accept"] = accept
        try:
            response = self._http.request("POST", f"{self.base_url}/invocations", body=body, headers=headers)
        except urllib3.exceptions.HTTPError as ex:  # the container dropped the request: no status at all
            return 0, f"the model container gave no answer: {type(ex).__name__}".encode(), "text/plain"
        return (
            response.status,
            response.data,
            response.headers.get("Content-Type", "application/octet-stream"),
        )

    def wait_until_ready(self) -> None:
        api = containers.docker_client().api
        deadline = time.monotonic() + PING_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                if self._http.request("GET", f"{self.base_url}/ping", timeout=2.0).status == 200:
                    return
            except urllib3.exceptions.HTTPError:
                pass
            state = api.inspect_container(self.container_id)["State"]
            if not state.get("Running"):
                self._reader.join(timeout=5)
                said = "; ".join(line for line in self.tail if line.strip())
                code = state.get("ExitCode")
                said = f": {said}" if said else ""
                raise ServingError(
                    f"ClientError: the serving container exited (code {code}) before answering /ping{said}"
                )
            time.sleep(PING_INTERVAL_S)
        raise ServingError(
            f"ClientError: the serving container did not answer /ping within {PING_TIMEOUT_S} s"
        )

    def stop(self) -> None:
        try:
            if not self.keep:
                containers.docker_client().api.remove_container(self.container_id, force=True)
        except Exception:  # already removed
            pass
        if self._release is not None:
            self._release()
            self._release = None
        shutil.rmtree(self.folder, ignore_errors=True)

    def _stream_output(self) -> None:
        for text in containers.output_lines(self.container_id):
            self.tail.append(text)
            self._log(text)


def serve(
    image: str,
    model_folder: Path,
    environment: dict[str, str],
    labels: dict[str, str],
    log: LogSink,
    limits=None,
    keep: bool = False,
    by_network: bool = False,
    sandboxes=None,
) -> ServedModel:
    """Start serving the model in `model_folder` (which `stop` removes) and return once it answers
    /ping. Raises ServingError (the container removed) when it does not. by_network: call it at
    its address on the job network (the local AWS is on that network), not on a loopback port.
    sandboxes: network_sandboxes.NetworkSandboxes made for serving containers (publishing the
    serving port unless by_network), or None."""
    client = containers.docker_client()
    if not containers.image_exists(image):
        shutil.rmtree(model_folder, ignore_errors=True)
        raise ServingError(f"ClientError: Requested image {image} not found.")
    sandbox = sandboxes.take(image) if sandboxes is not None else None
    port = None if by_network else sandbox.port if sandbox else containers.free_loopback_port()
    release = (lambda: sandboxes.discard(sandbox)) if sandbox else None
    published = port is not None and sandbox is None  # a sandbox publishes it itself
    created = None
    try:
        created = client.api.create_container(
            image,
            command=["serve"],
            environment=environment,
            labels=labels,
            ports=[contract.SERVING_PORT] if published else None,
            host_config=client.api.create_host_config(
                binds={str(model_folder / "model"): {"bind": contract.MODEL, "mode": "rw"}},
                port_bindings={contract.SERVING_PORT: ("127.0.0.1", port)} if published else None,
                network_mode=f"container:{sandbox.id}" if sandbox else containers.JOB_NETWORK,
                mem_limit=getattr(limits, "mem_bytes", None),
                nano_cpus=getattr(limits, "nano_cpus", None),
            ),
        )
        client.api.start(created["Id"])
        on_network = sandbox.id if sandbox else created["Id"]
        address = containers.address_on_job_network(on_network) if by_network else "127.0.0.1"
    except BaseException:  # nothing of it is left: container, sandbox, model folder
        if created is not None:
            client.api.remove_container(created["Id"], force=True)
        if release is not None:
            release()
        shutil.rmtree(model_folder, ignore_errors=True)
        raise
    base_url = f"http://{address}:{port or contract.SERVING_PORT}"
    served = ServedModel(created["Id"], base_url, model_folder, log, keep, release)
    try:
        served.wait_until_ready()
    except BaseException:
        served.stop()
        raise
    return served
