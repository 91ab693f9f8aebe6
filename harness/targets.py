"""Targets: where a pipeline runs. They differ only in the endpoint and the image registry.

local: the local AWS (started here unless one already answers), fake credentials,
the job image as a local tag. aws: the standard credential chain, the job image
pushed to ECR and named by digest. MLHARNESS_AWS_ENDPOINT_URL points the AWS
target at another endpoint (the local AWS stands in for AWS in the tests).
"""

from __future__ import annotations

import abc
import dataclasses
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable

from harness import images
from harness.clients import ClientFactory
from harness.config import ACCOUNT_TOKEN, Config
from harness.errors import HarnessError

ENDPOINT_OVERRIDE = "MLHARNESS_AWS_ENDPOINT_URL"


class Target(abc.ABC):
    """What both targets share: a prepared client factory and the account.

    `with target:` prepares it and closes it (stopping a local AWS it started) on the way out.
    """

    _factory: ClientFactory | None = None

    def __enter__(self) -> Target:
        self.prepare()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @abc.abstractmethod
    def prepare(self) -> None: ...

    @abc.abstractmethod
    def job_image(self) -> dict: ...

    @abc.abstractmethod
    def confirm(self, changes: list[str]) -> bool: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    def clients(self) -> ClientFactory:
        if self._factory is None:
            raise HarnessError("the target is not prepared")
        return self._factory

    def resolve(self, config: Config) -> Config:
        """The configuration with the account filled in where it asks for it."""
        if ACCOUNT_TOKEN not in config.artifact_bucket:
            return config
        account = self.clients().client("sts").get_caller_identity()["Account"]
        return dataclasses.replace(
            config, artifact_bucket=config.artifact_bucket.replace(ACCOUNT_TOKEN, account)
        )


class LocalTarget(Target):
    name = "local"
    poll_s = 0.1  # the local AWS answers in a millisecond and has no throttling

    def __init__(self, config: Config, log: Callable[[str], None] = print):
        self.config = config
        self.log = log
        self.endpoint_url: str | None = None
        self._emulator = None
        self._factory = None

    def running(self) -> bool:
        """Whether a local AWS already answers on the configured port."""
        return _answers(self._endpoint())

    def _endpoint(self) -> str:
        return f"http://127.0.0.1:{self.config.emulator.port}"

    def prepare(self) -> None:
        _require_docker()
        endpoint = self._endpoint()
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
                f"started the local AWS at {endpoint} for this command (its state persists in "
                f"{self._emulator.state_dir}; `python -m harness emulator` keeps one running)"
            )
        self.endpoint_url = endpoint
        self._factory = ClientFactory(self.config.region, local_endpoint=endpoint)

    def confirm(self, changes: list[str]) -> bool:
        return True

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


class AwsTarget(Target):
    name = "aws"

    def __init__(self, config: Config, log: Callable[[str], None] = print, assume_yes: bool = False):
        self.config = config
        self.log = log
        self.assume_yes = assume_yes
        self.endpoint_override = os.environ.get(ENDPOINT_OVERRIDE) or None
        # AWS throttles GetExecutionHistory; a stand-in endpoint does not.
        self.poll_s = 0.2 if self.endpoint_override else 2.0
        self._factory = None
        self.account: str | None = None

    def prepare(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        factory = ClientFactory(
            self.config.region, profile=self.config.aws.profile, endpoint_override=self.endpoint_override
        )
        try:
            self.account = factory.client("sts").get_caller_identity()["Account"]
        except (BotoCoreError, ClientError) as ex:
            raise HarnessError(
                f"no usable AWS credentials for environment {self.config.env}: {' '.join(str(ex).split())}"
            ) from None
        self._factory = factory
        where = f" through {self.endpoint_override}" if self.endpoint_override else ""
        self.log(f"AWS account {self.account}, region {self.config.region}{where}")

    def job_image(self) -> dict:
        from harness import ecr

        try:
            tag = images.ensure_job_image(log=self.log)
        except images.ImageBuildError as ex:
            raise HarnessError(str(ex)) from None
        reference = ecr.push(self.clients().client("ecr"), tag, self.config.aws.image_repository, self.log)
        return {"reference": reference, "id": images.image_id(tag), "tag": tag}

    def confirm(self, changes: list[str]) -> bool:
        """Environments with aws.confirm (prod) ask before a change set is executed."""
        if not self.config.aws.confirm or self.assume_yes:
            return True
        summary = "\n".join(f"  {change}" for change in changes) or "  (no resource changes)"
        prompt = (
            f"about to change environment {self.config.env}: account {self.account}, region "
            f"{self.config.region}, stack {self.config.stack_name}\n{summary}\nproceed? [y/N] "
        )
        if not sys.stdin.isatty():
            raise HarnessError(
                f"environment {self.config.env} asks for confirmation: run with --yes to proceed"
            )
        return input(prompt).strip().lower() in ("y", "yes")

    def close(self) -> None:
        pass


def make_target(config: Config, log: Callable[[str], None] = print, assume_yes: bool = False) -> Target:
    if config.target == "local":
        return LocalTarget(config, log)
    return AwsTarget(config, log, assume_yes)


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
