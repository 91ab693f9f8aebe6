"""A real image registry behind the local AWS's ECR, so `docker push` never leaves the machine.

Runs Debian's `docker-registry` (the reference registry, 2.8) on loopback with its
storage in the state folder; ECR hands out repository URIs and authorization
tokens that point there. Docker trusts registries on 127.0.0.0/8 without TLS.
"""

from __future__ import annotations

import ctypes
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

EXECUTABLE = "docker-registry"
PR_SET_PDEATHSIG = 1
READY_TIMEOUT_S = 15


class LocalRegistry:
    def __init__(self, storage: Path):
        self.storage = Path(storage)
        self.process: subprocess.Popen | None = None
        self.address: str | None = None  # host:port

    @staticmethod
    def available() -> bool:
        return shutil.which(EXECUTABLE) is not None

    def start(self) -> str:
        self.storage.mkdir(parents=True, exist_ok=True)
        port = _free_port()
        config = self.storage.parent / "registry.yml"
        config.write_text(
            "version: 0.1\n"
            "log: {level: warn}\n"
            f"storage: {{filesystem: {{rootdirectory: {self.storage}}}, delete: {{enabled: true}}}}\n"
            f"http: {{addr: 127.0.0.1:{port}}}\n"
        )
        log = open(self.storage.parent / "registry.log", "ab")
        self.process = subprocess.Popen(
            [shutil.which(EXECUTABLE), "serve", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        log.close()
        self.address = f"127.0.0.1:{port}"
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://{self.address}/v2/", timeout=1)  # noqa: S310 (loopback)
                return self.address
            except urllib.error.HTTPError:
                return self.address
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the local registry did not start; see {self.storage.parent / 'registry.log'}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _die_with_parent() -> None:
    """Linux: the registry gets SIGTERM when the emulator dies, even by kill -9."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # not Linux: stop() still ends it on a normal shutdown
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
