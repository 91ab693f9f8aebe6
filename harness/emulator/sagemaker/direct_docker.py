"""Run a local-mode compose file through the Docker Engine API instead of the compose CLI.

Local mode writes a docker-compose file per job and runs `docker-compose up` on it;
that CLI (a Python program in v1) costs most of a second per job before the
container starts. `ComposeRun` runs the same file's services directly: same images,
volumes, environment, entrypoint or command, network aliases, labels and ports;
`up --abort-on-container-exit` semantics (the first container to exit stops the
rest); output as compose prints it ("name | text"), so the code reading it does not
change. It looks like the subprocess.Popen that local mode expects.

MLHARNESS_COMPOSE=cli switches back to the compose CLI (see patches/sdk.py).
"""

from __future__ import annotations

import os
import threading

import yaml

from harness.emulator.containers import docker_client

COMMAND = "mlharness-direct-compose"
STOP_TIMEOUT_S = 3


class ComposeRun:
    """One `up` of a compose file, as a Popen look-alike (args, stdout, poll, wait, terminate)."""

    def __init__(self, compose_file: str, detached: bool = False):
        self.args = [COMMAND, "-f", compose_file, "up"]
        self.pid = -1  # no process: nothing for local mode's kill_child_processes to find
        self.returncode: int | None = None
        self._api = docker_client().api
        with open(compose_file) as f:
            services = yaml.safe_load(f)["services"]
        read, write = os.pipe()
        self.stdout = os.fdopen(read, "rb")
        self._out = os.fdopen(write, "wb", buffering=0)
        self._out_lock = threading.Lock()
        self._containers: list[tuple[str, str]] = []
        try:
            for host, service in services.items():
                self._containers.append((self._create(host, service), service.get("container_name", host)))
            for container_id, _ in self._containers:
                self._api.start(container_id)
        except Exception:
            self._remove_all()
            self._out.close()
            raise
        self._done = threading.Thread(target=self._supervise, args=(detached,), daemon=True)
        self._done.start()

    # -- Popen look-alike -----------------------------------------------------
    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        self._done.join(timeout)
        return self.returncode

    def terminate(self) -> None:
        for container_id, _ in self._containers:
            try:
                self._api.stop(container_id, timeout=STOP_TIMEOUT_S)
            except Exception:  # already gone
                pass

    kill = terminate

    # -- internals --------------------------------------------------------------
    def _create(self, host: str, service: dict) -> str:
        api = self._api
        port_bindings = {}
        for mapping in service.get("ports") or []:
            host_port, container_port = str(mapping).rsplit(":", 1)
            # Loopback only: the emulator talks to serving containers from this machine.
            port_bindings[int(container_port)] = ("127.0.0.1", int(host_port))
        networks = service.get("networks") or {}
        networking = None
        if networks:
            networking = api.create_networking_config(
                {
                    name: api.create_endpoint_config(aliases=(cfg or {}).get("aliases"))
                    for name, cfg in networks.items()
                }
            )
        created = api.create_container(
            image=service["image"],
            command=service.get("command"),
            entrypoint=service.get("entrypoint"),
            environment=service.get("environment"),
            labels=service.get("labels"),
            name=service.get("container_name"),
            tty=bool(service.get("tty")),
            stdin_open=bool(service.get("stdin_open")),
            ports=list(port_bindings) or None,
            host_config=api.create_host_config(
                binds=service.get("volumes") or [],
                port_bindings=port_bindings or None,
                network_mode=service.get("network_mode"),
            ),
            networking_config=networking,
        )
        return created["Id"]

    def _supervise(self, detached: bool) -> None:
        followers = [
            threading.Thread(target=self._follow, args=(cid, name), daemon=True)
            for cid, name in self._containers
        ]
        for follower in followers:
            follower.start()
        codes: list[int] = []
        exited = threading.Event()

        def wait_for(container_id: str) -> None:
            codes.append(self._api.wait(container_id).get("StatusCode", 1))
            exited.set()

        waiters = [threading.Thread(target=wait_for, args=(cid,), daemon=True) for cid, _ in self._containers]
        for waiter in waiters:
            waiter.start()
        exited.wait()
        if not detached:
            self.terminate()  # --abort-on-container-exit
        for waiter in waiters:
            waiter.join()
        for follower in followers:
            follower.join()
        self._out.close()
        self.returncode = next((code for code in codes if code), 0)

    def _follow(self, container_id: str, name: str) -> None:
        """Copy the container's output, line by line, as compose would print it."""
        pending = b""
        prefix = f"{name}  | ".encode()
        for chunk in self._api.logs(container_id, stream=True, follow=True):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            self._emit(prefix, lines)
        if pending:
            self._emit(prefix, [pending])

    def _emit(self, prefix: bytes, lines: list[bytes]) -> None:
        if lines:
            with self._out_lock:
                self._out.write(b"".join(prefix + line.rstrip(b"\r") + b"\n" for line in lines))

    def _remove_all(self) -> None:
        for container_id, _ in self._containers:
            try:
                self._api.remove_container(container_id, force=True)
            except Exception:
                pass
