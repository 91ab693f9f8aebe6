"""The job runner interface: what makes a SageMaker job happen, and says how it ended.

The backend owns the job's lifecycle (statuses, times, Describe answers); a runner
only runs the job (`run`), interrupts it (`stop`), and gives what the step cache keys
a job by: the S3 its data is staged through, as the job's role (`s3`), and the ID of
the image it runs (`image_id`). The backend is given its runner: `DockerRunner`
(docker_runner.py) runs each job in containers, as SageMaker's container contract
says; `CachedRunner` puts the step cache in front of another; `ScriptedRunner`
(scripted_runner.py) runs nothing, for tests of the lifecycle without Docker.
"""

from __future__ import annotations

import abc
import dataclasses
import threading
from collections.abc import Callable
from typing import Any

from mlharness.kinds import Kind

LogSink = Callable[[str], None]
# host name ("algo-1") -> the sink of that host's log stream
LogFactory = Callable[[str], LogSink]


@dataclasses.dataclass(frozen=True)
class JobSpec:
    """What a runner needs to know about one job."""

    kind: Kind  # mlharness.kinds: PROCESSING, TRAINING, TRANSFORM, or ENDPOINT (a model served)
    name: str
    arn: str
    region: str
    request: dict[str, Any]  # the Create* request, in the API's PascalCase
    # transform jobs: the model's PrimaryContainer, resolved at create time
    model_container: dict[str, Any] | None = None
    # the role the job acts as (its RoleArn; a transform's or endpoint's model's execution role)
    role_arn: str | None = None


@dataclasses.dataclass
class JobOutcome:
    status: str  # "Completed" | "Failed" | "Stopped"
    failure_reason: str | None = None
    model_artifacts: str | None = None
    outputs: list[str] = dataclasses.field(default_factory=list)  # the s3:// URIs it wrote
    metrics: list[tuple[str, float]] = dataclasses.field(default_factory=list)  # recorded, not logged
    served_from: str | None = None  # the job whose recorded outputs it got (the step cache)


class StopSignal:
    """Set by the backend to ask a running job to stop; carries why."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason: str | None = None

    def set(self, reason: str) -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout)


class JobRunner(abc.ABC):
    @abc.abstractmethod
    def run(self, spec: JobSpec, logs: LogFactory, stop: StopSignal) -> JobOutcome:
        """Run the job until it ends; return how it ended. Must not raise. `logs(host)` gives
        the sink of each host's log stream."""

    @abc.abstractmethod
    def stop(self, spec: JobSpec) -> None:
        """Interrupt a job that `run` is running (called from another thread)."""

    @abc.abstractmethod
    def shutdown(self) -> None:
        """Stop everything this runner started."""

    @abc.abstractmethod
    def s3(self, spec: JobSpec) -> Any:
        """S3 as the job's role (a channels.S3Data): where its data is staged from and to."""

    @abc.abstractmethod
    def image_id(self, image: str) -> str | None:
        """The ID of the image a job names (None when there is no such image)."""


class HostingFailed(RuntimeError):
    """A model could not be brought into service; the message is the FailureReason."""


class HostedModel(abc.ABC):
    @abc.abstractmethod
    def invoke(self, body: bytes, content_type: str | None, accept: str | None) -> tuple[int, bytes, str]:
        """POST /invocations; return (HTTP status, body, content type)."""


class ModelHost(abc.ABC):
    """Serves models for endpoints: one container per endpoint and config."""

    @abc.abstractmethod
    def host(self, spec: JobSpec, log: LogSink) -> HostedModel:
        """Start serving `spec.model_container`; return once it answers. Raises HostingFailed."""

    @abc.abstractmethod
    def unhost(self, hosted: HostedModel) -> None:
        """Stop serving and remove the container."""
