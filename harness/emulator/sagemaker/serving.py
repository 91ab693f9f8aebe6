"""A model served in a container through local mode: start, wait for /ping, invoke, stop.

Used by batch transform and by endpoints. Each serving container gets a port of
its own (local mode puts every one on 8080), and readiness is polled every 0.2 s
(local mode sleeps 5 s between polls).
"""

from __future__ import annotations

import socket
import time
from typing import Any

import urllib3

PING_INTERVAL_S = 0.2
PING_TIMEOUT_S = 120


class ServingError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServedModel:
    """A running serving container and the way to call it."""

    def __init__(self, container, port: int):
        self._container = container
        self.base_url = f"http://127.0.0.1:{port}"
        self._http = urllib3.PoolManager(maxsize=4, retries=False)

    def invoke(self, body: bytes, content_type: str | None, accept: str | None) -> tuple[int, bytes, str]:
        headers = {}
        if content_type:
            headers["Content-Type"] = content_type
        if accept:
            headers["Accept"] = accept
        response = self._http.request("POST", f"{self.base_url}/invocations", body=body, headers=headers)
        return (
            response.status,
            response.data,
            response.headers.get("Content-Type", "application/octet-stream"),
        )

    def wait_until_ready(self) -> None:
        deadline = time.monotonic() + PING_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                if self._http.request("GET", f"{self.base_url}/ping", timeout=2.0).status == 200:
                    return
            except urllib3.exceptions.HTTPError:
                pass
            hosting = self._container.container
            if hosting is not None and hosting.process is not None and hosting.process.poll() is not None:
                raise ServingError("the serving container exited before answering /ping")
            time.sleep(PING_INTERVAL_S)
        raise ServingError(f"the serving container did not answer /ping within {PING_TIMEOUT_S} s")

    def stop(self) -> None:
        self._container.stop_serving()


def serve_model(session, model_container: dict[str, Any], environment: dict[str, str]) -> ServedModel:
    """Start the model's serving container and return once it answers /ping."""
    from sagemaker.local.image import _SageMakerContainer

    port = free_port()
    session.config["local"]["serving_port"] = port
    container = _SageMakerContainer("local", 1, model_container["Image"], sagemaker_session=session)
    container.serve(model_container.get("ModelDataUrl") or "", environment)
    served = ServedModel(container, port)
    try:
        served.wait_until_ready()
    except BaseException:
        served.stop()
        raise
    return served
