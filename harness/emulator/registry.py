"""A real image registry behind the local AWS's ECR, so `docker push` never leaves the machine.

Runs Debian's `docker-registry` (the reference registry, 2.8) on loopback with its
storage in the state folder; ECR hands out repository URIs and authorization
tokens that point there. As on ECR, the registry takes only the credentials a
GetAuthorizationToken answer carries (basic auth; a new password each start, so a
stale login is refused). Docker trusts registries on 127.0.0.0/8 without TLS. It listens
on the same port after a restart while that port is free, so repository URIs and the
images named by them stay valid.
`RegistryClient` reads and changes what was pushed (tags, manifests), for ECR's
image operations.
"""

from __future__ import annotations

import base64
import ctypes
import datetime
import json
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

EXECUTABLE = "docker-registry"
USERNAME = "AWS"  # ECR's tokens are AWS:<password>
MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
)
PR_SET_PDEATHSIG = 1
READY_TIMEOUT_S = 15


class LocalRegistry:
    def __init__(self, storage: Path):
        self.storage = Path(storage)
        self.process: subprocess.Popen | None = None
        self.address: str | None = None  # host:port
        self.password = secrets.token_urlsafe(24)

    @staticmethod
    def available() -> bool:
        return shutil.which(EXECUTABLE) is not None

    def start(self) -> str:
        self.storage.mkdir(parents=True, exist_ok=True)
        port = _kept_port(self.storage.parent / "registry.port")
        import bcrypt

        config = self.storage.parent / "registry.yml"
        htpasswd = self.storage.parent / "registry.htpasswd"
        hashed = bcrypt.hashpw(self.password.encode(), bcrypt.gensalt(rounds=10)).decode()
        htpasswd.write_text(f"{USERNAME}:{hashed}\n")
        config.write_text(
            "version: 0.1\n"
            "log: {level: warn}\n"
            f"storage: {{filesystem: {{rootdirectory: {self.storage}}}, delete: {{enabled: true}}}}\n"
            f"http: {{addr: 127.0.0.1:{port}, secret: {secrets.token_hex(16)}}}\n"
            f"auth: {{htpasswd: {{realm: ecr, path: {htpasswd}}}}}\n"
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

    def client(self) -> RegistryClient:
        return RegistryClient(self.address, (USERNAME, self.password), self.storage)


class RegistryClient:
    """The registry's HTTP API (v2) for what ECR's image operations need."""

    def __init__(self, address: str, credentials: tuple[str, str], storage: Path):
        self.address = address
        self._auth = "Basic " + base64.b64encode(":".join(credentials).encode()).decode()
        self._storage = Path(storage)

    def _call(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        request = urllib.request.Request(
            f"http://{self.address}/v2/{path}", data=body, method=method,
            headers={"Authorization": self._auth, **(headers or {})},
        )  # fmt: skip
        return urllib.request.urlopen(request, timeout=30)  # noqa: S310 (loopback)

    def tags(self, repository: str) -> list[str]:
        try:
            with self._call("GET", f"{repository}/tags/list") as answer:
                return sorted(json.load(answer).get("tags") or [])
        except urllib.error.HTTPError as ex:
            if ex.code == 404:
                return []
            raise

    def manifest(self, repository: str, reference: str) -> tuple[str, str, str]:
        """(the manifest's exact text, its media type, its digest)."""
        with self._call(
            "GET", f"{repository}/manifests/{reference}", headers={"Accept": ", ".join(MANIFEST_TYPES)}
        ) as answer:
            return (
                answer.read().decode(),
                answer.headers.get("Content-Type", MANIFEST_TYPES[0]),
                answer.headers["Docker-Content-Digest"],
            )

    def put_manifest(self, repository: str, reference: str, manifest: str, media_type: str) -> None:
        self._call(
            "PUT", f"{repository}/manifests/{reference}", manifest.encode(), {"Content-Type": media_type}
        ).close()

    def delete_manifest(self, repository: str, digest: str) -> None:
        self._call("DELETE", f"{repository}/manifests/{digest}").close()

    def untag(self, repository: str, tag: str) -> None:
        """The v2 API deletes manifests only (every tag with them); ECR can drop one tag of an
        image that keeps others, so this removes the tag's link in the registry's storage."""
        shutil.rmtree(self._manifests(repository) / "tags" / tag, ignore_errors=True)

    def pushed_at(self, repository: str, digest: str) -> datetime.datetime | None:
        algorithm, _, hexdigest = digest.partition(":")
        link = self._manifests(repository) / "revisions" / algorithm / hexdigest / "link"
        try:
            return datetime.datetime.fromtimestamp(link.stat().st_mtime, datetime.UTC)
        except OSError:
            return None

    def _manifests(self, repository: str) -> Path:
        return self._storage / "docker" / "registry" / "v2" / "repositories" / repository / "_manifests"


def _die_with_parent() -> None:
    """Linux: the registry gets SIGTERM when the emulator dies, even by kill -9."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # not Linux: stop() still ends it on a normal shutdown
        pass


def _kept_port(record: Path) -> int:
    """The port the registry had last time, while it is free (its repositories' URIs, and every
    image named by them, stay valid across a restart); else a free one, kept for next time."""
    try:
        port = int(record.read_text())
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the registry binds it
            probe.bind(("127.0.0.1", port))
    except (OSError, ValueError):
        port = _free_port()
        record.write_text(str(port))
    return port


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
