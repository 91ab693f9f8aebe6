"""A job runner for tests: no container runs; each job does what its script says, in-process.

The backend's job lifecycle (statuses, times, Describe, Stop, MaxRuntime and MaxWait), the
Step Functions `.sync` mapping, the step cache's decisions and tuning's strategies are the
same code whichever runner makes a job happen; with this one they are tested in
milliseconds, without Docker. It is never the runner of a local AWS that serves requests:
a job it "runs" ran nothing, so it would be a success the local AWS did not earn.

    runner = ScriptedRunner(lambda spec: Script(lines=("train: loss=0.31",)))
    backend = LocalSageMakerBackend("us-east-1", "123456789012", runner=runner)
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import tarfile
import threading
from collections.abc import Callable

from harness.emulator.sagemaker import channels
from harness.emulator.sagemaker.runner import JobOutcome, JobRunner, JobSpec, LogFactory, StopSignal
from mlharness.kinds import PROCESSING, TRAINING, at


@dataclasses.dataclass(frozen=True)
class Script:
    """What one job does."""

    status: str = "Completed"  # how it ends by itself: Completed or Failed
    seconds: float = 0.0  # how long it runs before it ends
    until_stopped: bool = False  # it runs until it is stopped (MaxRuntime, StopXJob)
    lines: tuple[str, ...] = ()  # its log lines (a training job's metric lines among them)
    failure_reason: str | None = None  # a failed job's FailureReason
    output: bytes = b"output"  # what it writes to each of its outputs (a training job: its model)


class ScriptedRunner(JobRunner):
    def __init__(
        self, script: Callable[[JobSpec], Script] = lambda spec: Script(), region: str = "us-east-1"
    ):
        """script(spec): what each job does. Its S3 is the in-process one (moto's mock_aws)."""
        self.script = script
        self.region = region
        self.ran: list[JobSpec] = []  # every job it ran, in order
        self._stops: dict[str, threading.Event] = {}

    def run(self, spec: JobSpec, logs: LogFactory, stop: StopSignal) -> JobOutcome:
        self.ran.append(spec)
        script = self.script(spec)
        sink = logs(spec.kind.first_host)
        for line in script.lines:
            sink(line)
        if script.until_stopped:
            stop.wait()
        elif script.seconds:
            stop.wait(script.seconds)
        if stop.is_set():
            return JobOutcome("Stopped")
        if script.status != "Completed":
            return JobOutcome("Failed", script.failure_reason or "AlgorithmError: the script failed")
        return self._completed(spec, script)

    def _completed(self, spec: JobSpec, script: Script) -> JobOutcome:
        data = self.s3(spec)
        model = None
        if spec.kind is TRAINING:
            base = at(spec.request, ("OutputDataConfig", "S3OutputPath")).rstrip("/")
            model = f"{base}/{spec.name}/output/model.tar.gz"
            data.put(_archive(script.output), model)
        elif spec.kind is PROCESSING:
            for output in at(spec.request, ("ProcessingOutputConfig", "Outputs")) or []:
                data.put(script.output, f"{output['S3Output']['S3Uri'].rstrip('/')}/output.txt")
        return JobOutcome("Completed", model_artifacts=model, outputs=list(data.written))

    def stop(self, spec: JobSpec) -> None:
        """The backend's stop signal ends a scripted job; nothing else to interrupt."""

    def shutdown(self) -> None:
        pass

    def s3(self, spec: JobSpec) -> channels.S3Data:
        import boto3

        return channels.S3Data(boto3.client("s3", region_name=spec.region), spec.region)

    def image_id(self, image: str) -> str | None:
        """A scripted image's ID: the same name, the same ID."""
        return "sha256:" + hashlib.sha256(image.encode()).hexdigest()


def _archive(content: bytes) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        info = tarfile.TarInfo("model.bin")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    return raw.getvalue()
