"""Run SageMaker jobs in Docker through SageMaker local mode.

Local mode provides the container contract (/opt/ml layout, config JSON, S3
transfers, model.tar.gz); this module adds what it lacks: labels on every
container, output captured line by line, stop and time limits, failure reasons,
and clean-up. The SDK is imported lazily: it costs about a second.
"""

from __future__ import annotations

import collections
import logging
import shutil
import tempfile
from typing import Any

import boto3

from harness.emulator import containers
from harness.emulator.sagemaker.runner import (
    HostedModel,
    HostingFailed,
    JobOutcome,
    JobRunner,
    JobSpec,
    LogFactory,
    LogSink,
    ModelHost,
    StopSignal,
)
from harness.emulator.sagemaker.serving import ServedModel, serve_model
from harness.emulator.sagemaker.transform import run_batch_transform

log = logging.getLogger(__name__)

FAILURE_TAIL_LINES = 10
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}


class LocalModeRunner(JobRunner, ModelHost):
    def __init__(self, endpoint_url: str, work_dir: str, keep_containers: bool = False):
        """endpoint_url: the emulator as seen from the host *and* from containers."""
        self.endpoint_url = endpoint_url
        self.work_dir = work_dir
        self.keep_containers = keep_containers

    # -- JobRunner -------------------------------------------------------
    def run(self, spec: JobSpec, logs: LogFactory, stop: StopSignal) -> JobOutcome:
        log_line = logs("i-local" if spec.kind == "transform" else "algo-1")
        tail: collections.deque[str] = collections.deque(maxlen=FAILURE_TAIL_LINES)
        compose_tail: collections.deque[str] = collections.deque(maxlen=3)

        def sink(line: str) -> None:
            tail.append(line)
            log_line(line)

        job_dir = tempfile.mkdtemp(prefix=f"{spec.name}-", dir=self.work_dir)
        try:
            image = _image_of(spec)
            if not containers.image_exists(image):
                return JobOutcome("Failed", f"ClientError: Requested image {image} not found.")
            session = self._session(spec, job_dir)
            missing = _first_missing_input(spec, session)
            if missing:
                return JobOutcome("Failed", _no_objects_message(missing, spec.region))
            result = _run_in_local_mode(spec, session, self._environment(spec), sink, compose_tail.append)
            if stop.is_set():
                return JobOutcome("Stopped")
            exit_code = _exit_code(spec.arn)
            if exit_code not in (None, 0):
                return JobOutcome("Failed", _algorithm_error(tail, exit_code))
            return JobOutcome("Completed", model_artifacts=result)
        except Exception as ex:  # the job fails; the emulator carries on
            if stop.is_set():
                return JobOutcome("Stopped")
            log.debug("job %s failed", spec.name, exc_info=True)
            exit_code = _exit_code(spec.arn)
            if exit_code not in (None, 0):
                return JobOutcome("Failed", _algorithm_error(tail, exit_code))
            detail = "; ".join(line.strip() for line in compose_tail if line.strip())
            return JobOutcome("Failed", f"ClientError: {_one_line(ex)}" + (f": {detail}" if detail else ""))
        finally:
            if not self.keep_containers:
                containers.remove_job_containers(spec.arn)
            shutil.rmtree(job_dir, ignore_errors=True)

    def stop(self, spec: JobSpec) -> None:
        containers.kill_job_containers(spec.arn)

    def shutdown(self) -> None:
        containers.remove_own_containers()

    # -- ModelHost ---------------------------------------------------------
    def host(self, spec: JobSpec, log_line: LogSink) -> HostedModel:
        from harness.emulator.patches import local_mode_output

        image = spec.model_container["Image"]
        if not containers.image_exists(image):
            raise HostingFailed(f"ClientError: Requested image {image} not found.")
        job_dir = tempfile.mkdtemp(prefix=f"{spec.name}-", dir=self.work_dir)
        session = self._session(spec, job_dir)
        local_mode_output.register(job_dir, log_line)
        environment = {**self._environment(spec), **(spec.model_container.get("Environment") or {})}
        try:
            served = serve_model(session, spec.model_container, environment)
        except Exception as ex:
            self._release(spec, job_dir)
            raise HostingFailed(f"ClientError: {_one_line(ex)}") from ex
        return _LocalHostedModel(spec, served, job_dir)

    def unhost(self, hosted: HostedModel) -> None:
        assert isinstance(hosted, _LocalHostedModel)
        try:
            hosted.served.stop()
        finally:
            self._release(hosted.spec, hosted.job_dir)

    def _release(self, spec: JobSpec, job_dir: str) -> None:
        from harness.emulator.patches import local_mode_output

        local_mode_output.unregister(job_dir)
        if not self.keep_containers:
            containers.remove_job_containers(spec.arn)
        shutil.rmtree(job_dir, ignore_errors=True)

    # -- helpers -----------------------------------------------------------
    def _session(self, spec: JobSpec, job_dir: str):
        from harness.emulator.patches import apply_sdk_patches

        apply_sdk_patches()
        from sagemaker.local import LocalSession

        boto_session = boto3.Session(
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=spec.region,
        )
        session = LocalSession(
            boto_session=boto_session, s3_endpoint_url=self.endpoint_url, disable_local_code=True
        )
        session.config = {
            "local": {
                "local_code": True,
                "container_root": job_dir,
                "container_config": {"labels": containers.labels_for(spec.arn)},
            }
        }
        return session

    def _environment(self, spec: JobSpec) -> dict[str, str]:
        """What every job container gets so its own AWS calls reach the emulator.

        Local mode adds the session's (fake) credentials itself.
        """
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_REGION": spec.region,
            "AWS_DEFAULT_REGION": spec.region,
        }


class _LocalHostedModel(HostedModel):
    def __init__(self, spec: JobSpec, served: ServedModel, job_dir: str):
        self.spec = spec
        self.served = served
        self.job_dir = job_dir

    def invoke(self, body: bytes, content_type: str | None, accept: str | None) -> tuple[int, bytes, str]:
        return self.served.invoke(body, content_type, accept)


def _run_in_local_mode(
    spec: JobSpec, session, base_env: dict[str, str], sink: LogSink, compose_sink: LogSink
) -> Any:
    from harness.emulator.patches import local_mode_output

    job_dir = session.config["local"]["container_root"]
    local_mode_output.register(job_dir, sink, compose_sink)
    try:
        if spec.kind == "processing":
            return _process(spec, session, base_env)
        if spec.kind == "training":
            return _train(spec, session, base_env)
        if spec.kind == "transform":
            return run_batch_transform(spec, session, base_env, sink)
        raise ValueError(f"unknown job kind {spec.kind}")
    finally:
        local_mode_output.unregister(job_dir)


def _process(spec: JobSpec, session, base_env: dict[str, str]) -> None:
    from sagemaker.local.entities import _LocalProcessingJob

    request = spec.request
    app = request["AppSpecification"]
    count = request["ProcessingResources"]["ClusterConfig"].get("InstanceCount", 1)
    container = _container(session, app["ImageUri"], count, app)
    environment = {**base_env, **(request.get("Environment") or {})}
    _LocalProcessingJob(container).start(
        [dict(item) for item in request.get("ProcessingInputs") or []],
        request.get("ProcessingOutputConfig") or {},
        environment,
        spec.name,
    )


def _train(spec: JobSpec, session, base_env: dict[str, str]) -> str:
    from sagemaker.local.entities import _LocalTrainingJob

    request = spec.request
    algorithm = request["AlgorithmSpecification"]
    count = (request.get("ResourceConfig") or {}).get("InstanceCount", 1)
    container = _container(session, algorithm["TrainingImage"], count, algorithm)
    environment = {**base_env, **(request.get("Environment") or {})}
    job = _LocalTrainingJob(container)
    job.start(
        [dict(channel) for channel in request.get("InputDataConfig") or []],
        request["OutputDataConfig"],
        dict(request.get("HyperParameters") or {}),
        environment,
        spec.name,
    )
    return job.model_artifacts


def _container(session, image: str, count: int, specification: dict):
    """A local-mode container set for a job; `specification` may name an entrypoint and arguments."""
    from sagemaker.local.image import _SageMakerContainer

    return _SageMakerContainer(
        "local",
        count,
        image,
        sagemaker_session=session,
        container_entrypoint=specification.get("ContainerEntrypoint"),
        container_arguments=specification.get("ContainerArguments"),
    )


def _input_uris(spec: JobSpec) -> list[str]:
    request = spec.request
    if spec.kind == "training":
        sources = [c.get("DataSource", {}).get("S3DataSource") for c in request.get("InputDataConfig") or []]
        return [s["S3Uri"] for s in sources if s]
    if spec.kind == "processing":
        inputs = [i.get("S3Input") for i in request.get("ProcessingInputs") or []]
        return [i["S3Uri"] for i in inputs if i]
    return [request["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]]


def _first_missing_input(spec: JobSpec, session) -> str | None:
    """The first s3:// input under which no object exists (AWS fails such a job)."""
    s3 = session.boto_session.client("s3", endpoint_url=session.s3_endpoint_url)
    for uri in _input_uris(spec):
        if not uri.startswith("s3://"):
            continue
        bucket, _, prefix = uri[len("s3://") :].partition("/")
        try:
            if s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1).get("KeyCount", 0) == 0:
                return uri
        except s3.exceptions.NoSuchBucket:
            return uri
    return None


def _no_objects_message(uri: str, region: str) -> str:
    return (
        f'ClientError: No S3 objects found under S3 URL "{uri}" given in input data source. '
        f"Please ensure that the bucket exists in the selected region ({region}), that objects "
        'exist under that S3 prefix, and that the role has "s3:ListBucket" permissions.'
    )


def _image_of(spec: JobSpec) -> str:
    request = spec.request
    if spec.kind == "processing":
        return request["AppSpecification"]["ImageUri"]
    if spec.kind == "training":
        return request["AlgorithmSpecification"]["TrainingImage"]
    return spec.model_container["Image"]


def _exit_code(job_arn: str) -> int | None:
    """The first non-zero exit code among the job's containers, else 0 (None: none found)."""
    codes = containers.exit_codes(job_arn)
    if not codes:
        return None
    return next((code for code in codes if code), 0)


def _algorithm_error(tail: collections.deque[str], exit_code: int) -> str:
    text = "\n".join(line for line in tail if line.strip())
    return f"AlgorithmError: {text}, exit code: {exit_code}"


def _one_line(ex: BaseException) -> str:
    return " ".join(str(ex).split()) or type(ex).__name__
