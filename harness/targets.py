"""Targets: where a pipeline runs. They differ only in the endpoint and the image registry.

local: the local AWS (started here unless one already answers), fake credentials,
the job image as a local tag. aws: not yet (see the AWS target issue).
"""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable

from harness import images
from harness.clients import ClientFactory
from harness.config import Config
from harness.errors import HarnessError


class LocalTarget:
    name = "local"
    poll_s = 0.1  # the local AWS answers in a millisecond and has no throttling

    def __init__(self, config: Config, log: Callable[[str], None] = print):
        self.config = config
        self.log = log
        self.endpoint_url: str | None = None
        self._emulator = None
        self._factory: ClientFactory | None = None

    def prepare(self) -> None:
        _require_docker()
        endpoint = f"http://127.0.0.1:{self.config.emulator.port}"
        if _answers(endpoint):
            self.log(f"using the local AWS at {endpoint}")
        else:
            from harness.emulator import EmulatorError, LocalAWS

            try:
                self._emulator = LocalAWS(
                    port=self.config.emulator.port, state_dir=self.config.emulator.state_dir
                ).start()
            except EmulatorError as ex:
                raise HarnessError(str(ex)) from None
            endpoint = self._emulator.endpoint_url
            self.log(
                f"started the local AWS at {endpoint} for this command (S3 data persists in "
                f"{self._emulator.state_dir}; stacks live until it stops: keep one running with "
                "`python -m harness emulator`)"
            )
        self.endpoint_url = endpoint
        self._factory = ClientFactory(self.config.region, local_endpoint=endpoint)

    def clients(self) -> ClientFactory:
        if self._factory is None:
            raise HarnessError("the target is not prepared")
        return self._factory

    def job_image(self) -> dict:
        """Build or reuse the job image; locally its tag is the reference."""
        try:
            tag = images.ensure_job_image(log=self.log)
        except images.ImageBuildError as ex:
            raise HarnessError(str(ex)) from None
        return {"reference": tag, "id": images.image_id(tag)}

    def close(self) -> None:
        if self._emulator is not None:
            self._emulator.stop()
            self._emulator = None


def make_target(config: Config, log: Callable[[str], None] = print) -> LocalTarget:
    if config.target == "local":
        return LocalTarget(config, log)
    raise HarnessError(f"target {config.target!r} is not available yet; use --target local")


def _answers(endpoint: str) -> bool:
    try:
        urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)  # noqa: S310  (loopback only)
        return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


def _require_docker() -> None:
    try:
        result = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired):
        result = None
    if result is None or result.returncode != 0:
        raise HarnessError("no Docker engine answers: start one (scripts/setup.sh installs and starts it)")
