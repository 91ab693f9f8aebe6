"""Network namespaces made before the jobs that use them.

Starting a container on the job network costs ~0.25 s here, most of it making the container's
network namespace, and its exit ~0.05 s more to tear it down; a container that joins a
namespace which already exists (Docker's `container:<id>` network mode) starts in ~0.07 s.
So the local AWS keeps a sandbox ready: a container doing nothing (`sleep infinity`) that holds
a fresh namespace on the job network, with the hostname and alias a single-host job has
(algo-1). A job takes it and runs its own fresh container in it; the sandbox is removed with
the job and never serves another, so no job sees what an earlier one did to its network. The
next sandbox is made in the background while the job runs. Serving containers (batch transform,
endpoints) get sandboxes too, with no name but the serving port published on a loopback port
of their own when the local AWS calls them that way (a published port costs more again: ~0.27 s
to start, ~0.14 s to remove).

Sandboxes are made from the image of the jobs that asked for one (it is on the engine, and
such images have `sleep`); an image without it is simply not given sandboxes. They carry the
local AWS's ownership labels, so its shutdown, or its next start after a crash, removes them.
"""

from __future__ import annotations

import collections
import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass

from harness.emulator import containers

log = logging.getLogger(__name__)

SANDBOX_LABEL = "org.mlharness.network-sandbox"  # the image it was made from
SANDBOX_KIND_LABEL = "org.mlharness.network-sandbox.kind"  # "job" or "serving": which pool
KEPT_IMAGES = 4  # a ready sandbox for each of the last few images jobs ran


@dataclass(frozen=True)
class Sandbox:
    id: str
    port: int | None = None  # the loopback port its published port is reached at


class NetworkSandboxes:
    def __init__(self, kind: str, hostname: str | None = None, published_port: int | None = None):
        """kind: what the sandboxes are for ("job", "serving"). hostname: what the containers that
        join one are called on the network (algo-1), and their alias there. published_port: a
        port of theirs to publish on loopback."""
        self.kind = kind
        self.hostname = hostname
        self.published_port = published_port
        self._ready: collections.OrderedDict[str, Sandbox] = collections.OrderedDict()  # by image
        self._making: set[str] = set()
        self._unsuitable: set[str] = set()
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._lock = threading.Lock()

    def take(self, image: str) -> Sandbox | None:
        """A running sandbox for a container of `image`, now its own (give it back with
        `discard`), or None: the container makes its network itself. Either way one is made for
        the next such container."""
        with self._lock:
            sandbox = self._ready.pop(image, None)
        self._in_background(self._make, image)
        if sandbox is not None and not _running(sandbox.id):  # removed or killed under us
            self._in_background(_remove, sandbox.id)
            return None
        return sandbox

    def discard(self, sandbox: Sandbox) -> None:
        """The container that took it has ended: remove it (in the background, off its path)."""
        self._in_background(_remove, sandbox.id)

    def close(self) -> None:
        """Remove the ready sandboxes; none is made after this."""
        with self._lock:
            self._closed = True
            ready, self._ready = list(self._ready.values()), collections.OrderedDict()
            threads, self._threads = self._threads, []
        for thread in threads:
            thread.join()
        for sandbox in ready:
            _remove(sandbox.id)

    # -- in the background ---------------------------------------------------------------
    def _in_background(self, work: Callable[[str], None], argument: str) -> None:
        with self._lock:
            if not self._closed:  # started under the lock, so close() never joins an unstarted one
                thread = threading.Thread(target=work, args=(argument,), name="network-sandbox", daemon=True)
                thread.start()
                self._threads = [t for t in self._threads if t.is_alive()] + [thread]
                return
        if work is _remove:
            _remove(argument)

    def _make(self, image: str) -> None:
        with self._lock:
            if self._closed or image in self._ready or image in self._making or image in self._unsuitable:
                return
            self._making.add(image)
        sandbox, evicted = None, []
        try:
            sandbox = self._start(image)
        except Exception as ex:  # an image without `sleep`, or the engine refused: no sandboxes for it
            log.debug("no network sandbox from %s: %s", image, ex)
            with self._lock:
                self._unsuitable.add(image)
        with self._lock:
            self._making.discard(image)
            keep = sandbox is not None and not self._closed
            if keep:
                self._ready[image] = sandbox
                while len(self._ready) > KEPT_IMAGES:
                    evicted.append(self._ready.popitem(last=False)[1])
        if sandbox is not None and not keep:
            _remove(sandbox.id)
        for old in evicted:
            _remove(old.id)

    def _start(self, image: str) -> Sandbox:
        client = containers.docker_client()
        network = containers.JOB_NETWORK
        port = containers.free_loopback_port() if self.published_port else None
        created = client.api.create_container(
            image,
            name=f"mlharness-network-sandbox-{secrets.token_hex(4)}",  # what `docker ps` shows
            entrypoint=["sleep"],
            command=["infinity"],
            hostname=self.hostname,
            labels={**containers.own_labels(), SANDBOX_LABEL: image, SANDBOX_KIND_LABEL: self.kind},
            ports=[self.published_port] if port else None,
            host_config=client.api.create_host_config(
                network_mode=network,
                port_bindings={self.published_port: ("127.0.0.1", port)} if port else None,
            ),
            networking_config=client.api.create_networking_config(
                {
                    network: client.api.create_endpoint_config(
                        aliases=[self.hostname] if self.hostname else None
                    )
                }
            ),
        )
        try:
            client.api.start(created["Id"])
        except Exception:
            _remove(created["Id"])
            raise
        return Sandbox(created["Id"], port)


def _running(sandbox: str) -> bool:
    try:
        return bool(containers.docker_client().api.inspect_container(sandbox)["State"].get("Running"))
    except Exception:  # gone
        return False


def _remove(sandbox: str) -> None:
    try:
        containers.docker_client().api.remove_container(sandbox, force=True)
    except Exception as ex:  # gone already
        log.debug("could not remove network sandbox %s: %s", sandbox[:12], ex)
