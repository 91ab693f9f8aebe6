"""The test kit: pytest fixtures for testing a project's pipelines against the local AWS, in the
project's own tests and CI.

Installed with the package (entry point `pytest11`), so `pip install` is enough. The project
is the one holding mlharness.yaml at or above pytest's root folder (the ini option
`mlharness_project` names another, relative to that folder):

    def test_the_gate_fails_below_its_threshold(pipelines):
        result = pipelines.run("training", test_case="GateFails")
        assert result.status == "FAILED" and result.error == "QualityGateFailed"

Fixtures (session-scoped):
- `local_aws`: the local AWS on a free port with a temporary state dir, stopped at the end
  (its jobs' and endpoints' containers go with it);
- `aws_client`: `aws_client("s3")` is a boto3 client bound to it;
- `mlharness_mock_config`: the Step Functions Local mock configuration the local AWS reads
  (`--mlharness-mock-config`, the ini option `mlharness_mock_config`, or `SFN_MOCK_CONFIG`;
  override the fixture to write one);
- `mlharness_overrides`: KEY=VALUE overrides of the configuration deployed (the ini option
  `mlharness_set`; override the fixture to give them in a test file);
- `pipelines`: the project's pipelines deployed once (their images built and pushed, their
  configured inputs checked and uploaded); `pipelines.run(name, input=None, test_case=None,
  inputs=None)` runs one and returns a `RunResult` (status, output, error, cause, history, and
  the Describe answers of its jobs). `inputs={"customers": path}` gives named inputs for that
  run (checked and uploaded as `run --input` would).

ini options: `mlharness_project`, `mlharness_env` (the environment deployed; default local)
and `mlharness_set` (KEY=VALUE overrides, one per line, as `--set` takes them).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mlharness import kinds

REGION = "us-east-1"
POLL_S = 0.1
# The SageMaker job each `.sync` task runs, by its resource action.
_JOBS = {kind.integration: kind for kind in kinds.JOBS}


def pytest_configure(config) -> None:
    """The SDKs the harness uses warn on import (pkg_resources, SDK v2's end of support); a
    project's test report is not the place for that."""
    os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    config.addinivalue_line("filterwarnings", "ignore:pkg_resources is deprecated:UserWarning")


def pytest_addoption(parser) -> None:
    group = parser.getgroup("mlharness", "testing pipelines against the local AWS")
    group.addoption(
        "--mlharness-mock-config",
        default=None,
        help="a Step Functions Local mock configuration for `pipelines.run(..., test_case=...)`",
    )
    group.addoption(
        "--mlharness-iam",
        default=None,
        choices=["off", "soft", "strict"],
        help="IAM evaluation in the local AWS (default strict: a call AWS would deny fails the test)",
    )
    parser.addini("mlharness_mock_config", "a Step Functions Local mock configuration (a path)", default="")
    parser.addini("mlharness_iam", "IAM evaluation in the local AWS: off, soft or strict", default="strict")
    parser.addini("mlharness_project", "the project folder, relative to pytest's root", default="")
    parser.addini("mlharness_env", "the environment the `pipelines` fixture deploys", default="local")
    parser.addini("mlharness_set", "KEY=VALUE overrides of that configuration, one per line", type="linelist")


@dataclasses.dataclass
class RunResult:
    """How one execution ended, as the Step Functions and SageMaker APIs tell it."""

    pipeline: str
    execution_arn: str
    status: str  # SUCCEEDED | FAILED | TIMED_OUT | ABORTED
    input: dict
    output: dict | None
    error: str | None
    cause: str | None
    history: list[dict]
    jobs: dict[str, dict]  # Task state name -> DescribeXJob of the job it ran (real jobs only)

    def states_entered(self) -> list[str]:
        return [
            e["stateEnteredEventDetails"]["name"] for e in self.history if e["type"].endswith("StateEntered")
        ]

    def events(self, kind: str, state: str | None = None) -> list[dict]:
        """The history's events of `kind` (e.g. "TaskFailed"), optionally within the state named."""
        found, current = [], None
        for event in self.history:
            if event["type"].endswith("StateEntered"):
                current = event["stateEnteredEventDetails"]["name"]
            if event["type"] == kind and (state is None or state == current):
                found.append(event)
        return found


class Pipelines:
    """The registered pipelines, deployed on the local AWS; runs them by name."""

    def __init__(self, deployment, log: list[str]):
        self.deployment = deployment
        self.config = deployment.config
        self.log = log
        self._produced: dict = {}  # artifact kind -> Source, from runs of this session

    @property
    def names(self) -> list[str]:
        return self.config.pipeline_names()

    def state_machine_arn(self, name: str) -> str:
        return self.deployment.state_machines[self.config.pipeline(name).name]

    def client(self, service: str):
        return self.deployment.target.clients().client(service)

    def input_for(self, name: str) -> dict:
        """The execution input `python -m harness run` would start the pipeline with: what it
        consumes from this session's runs, else the published artifact."""
        return self._new_input(self.config.pipeline(name))[1]

    def run(
        self,
        name: str,
        input: dict | None = None,
        test_case: str | None = None,
        timeout: float = 600,
        inputs: dict | None = None,
    ) -> RunResult:
        """Start the pipeline with `input` (default: input_for(name), with `inputs`: named inputs
        for this run, {name: path}), or one of the mock configuration's test cases of it, and
        wait until it ends."""
        from harness import records

        pipeline = self.config.pipeline(name)
        if input is None:
            run_id, input = self._new_input(pipeline, inputs)
        else:
            run_id = records.new_run_id(pipeline.prefix)
        sfn = self.client("stepfunctions")
        arn = self.state_machine_arn(name) + (f"#{test_case}" if test_case else "")
        execution = sfn.start_execution(
            stateMachineArn=arn, name=pipeline.execution_name(run_id), input=json.dumps(input)
        )["executionArn"]
        described = _wait(sfn, execution, timeout)
        history = _history(sfn, execution)
        output = json.loads(described["output"]) if described.get("output") else None
        result = RunResult(
            pipeline=name,
            execution_arn=execution,
            status=described["status"],
            input=input,
            output=output,
            error=described.get("error"),
            cause=described.get("cause"),
            history=history,
            jobs=self._jobs_of(history),
        )
        if result.status == "SUCCEEDED" and test_case is None:
            self._keep_produced(pipeline, run_id, input, output)
        return result

    def _new_input(self, pipeline, given: dict | None = None) -> tuple[str, dict]:
        from harness import inputs, runs
        from harness.handover import Handover

        consumed = {}
        for artifact in pipeline.consumes:
            source = self._produced.get(artifact.kind)
            if source is None:
                handover = Handover(self.config, [pipeline])
                handover.resolve_published(self.client("s3"), self.config.artifact_bucket)
                source = handover.consumed_by(pipeline)[artifact.kind]
            consumed[artifact.kind] = source
        s3 = self.client("s3")
        uploaded = {
            name: inputs.upload(s3, self.config.artifact_bucket, item)
            for name, item in inputs.given(pipeline, given or {}).items()
        }
        return runs.new_execution_input(self.deployment, pipeline, consumed, uploaded)

    def _keep_produced(self, pipeline, run_id: str, execution_input: dict, output: dict) -> None:
        from harness.handover import Source

        produced = pipeline.outputs(execution_input, output).produced
        for kind, record in produced.items():
            self._produced[kind] = Source(dict(record), run_id, "this test session")

    def _jobs_of(self, history: list[dict]) -> dict[str, dict]:
        sagemaker = self.client("sagemaker")
        jobs, state = {}, None
        for event in history:
            if event["type"].endswith("StateEntered"):
                state = event["stateEnteredEventDetails"]["name"]
            if event["type"] != "TaskSubmitted":
                continue
            details = event["taskSubmittedEventDetails"]
            action = details.get("resource", "").removesuffix(".sync")
            if details.get("resourceType") != "sagemaker" or action not in _JOBS:
                continue
            kind = _JOBS[action]
            submitted = json.loads(details.get("output") or "{}")
            arn = next((v for k, v in submitted.items() if k.endswith("Arn")), "")
            if not arn:
                continue  # a mocked state: no job was created
            try:
                describe = getattr(sagemaker, _snake(kind.operation("Describe")))
                answer = describe(**{kind.name_member: arn.rsplit("/", 1)[-1]})
            except sagemaker.exceptions.ClientError:
                continue  # a mocked state's job never existed
            answer.pop("ResponseMetadata", None)
            jobs[state] = answer
        return jobs


def _snake(operation: str) -> str:
    """boto3's method name of an operation: DescribeTrainingJob -> describe_training_job."""
    import botocore

    return botocore.xform_name(operation)


def _wait(sfn, execution_arn: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        described = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            return described
        if time.monotonic() > deadline:
            sfn.stop_execution(
                executionArn=execution_arn, error="TimedOut", cause=f"not done after {timeout} s"
            )
            raise TimeoutError(f"execution {execution_arn} still running after {timeout} s (stopped)")
        time.sleep(POLL_S)


def _history(sfn, execution_arn: str) -> list[dict]:
    events = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        events.extend(page["events"])
    return events


# -- fixtures ------------------------------------------------------------------------
@pytest.fixture(scope="session")
def mlharness_mock_config(request) -> Path | None:
    configured = (
        request.config.getoption("--mlharness-mock-config")
        or request.config.getini("mlharness_mock_config")
        or os.environ.get("SFN_MOCK_CONFIG")
    )
    return Path(configured) if configured else None


@pytest.fixture(scope="session")
def local_aws(request, tmp_path_factory, mlharness_mock_config):
    """The local AWS the tests run against; IAM is evaluated strictly unless configured otherwise,
    so a pipeline whose roles AWS would deny fails here first."""
    from harness.emulator import EmulatorError, LocalAWS

    iam = request.config.getoption("--mlharness-iam") or request.config.getini("mlharness_iam")
    aws = LocalAWS(state_dir=tmp_path_factory.mktemp("local-aws"), mock_config=mlharness_mock_config, iam=iam)
    try:
        aws.start()
    except EmulatorError as ex:
        pytest.fail(f"the local AWS did not start: {ex}", pytrace=False)
    yield aws
    aws.stop()


@pytest.fixture(scope="session")
def aws_client(local_aws) -> Callable:
    import boto3

    def make(service: str):
        return boto3.client(
            service,
            endpoint_url=local_aws.endpoint_url,
            region_name=REGION,
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    return make


@pytest.fixture(scope="session")
def mlharness_overrides(request) -> list[str]:
    return list(request.config.getini("mlharness_set"))


@pytest.fixture(scope="session")
def pipelines(request, local_aws, mlharness_overrides, tmp_path_factory):
    from harness import config as harness_config
    from harness import inputs, project, runs, targets
    from harness.errors import HarnessError

    port = local_aws.endpoint_url.rsplit(":", 1)[1]
    overrides = [*mlharness_overrides, f"emulator.port={port}"]
    root = request.config.rootpath
    named = request.config.getini("mlharness_project")
    try:
        folder = (root / named) if named else project.find(root)
        settings = harness_config.load(request.config.getini("mlharness_env"), overrides, folder)
    except ValueError as ex:
        pytest.fail(f"mlharness: {ex}", pytrace=False)
    if settings.target != "local":
        pytest.fail(f"mlharness_env {settings.env!r} is not a local environment", pytrace=False)
    # Runs recorded on this machine must not feed the tests: records go to a scratch home.
    previous_home = os.environ.get("MLHARNESS_HOME")
    os.environ["MLHARNESS_HOME"] = str(tmp_path_factory.mktemp("mlharness-home"))
    log: list[str] = []
    try:
        target = targets.LocalTarget(settings, log=log.append)
        try:
            target.prepare()
            given = inputs.checked(settings, list(settings.pipelines), required=False)
            deployment = runs.prepare(target.resolve(settings), target, given, log.append)
        except (HarnessError, ValueError) as ex:
            pytest.fail(f"mlharness: {' '.join(str(ex).split())}", pytrace=False)
        yield Pipelines(deployment, log)
    finally:
        if previous_home is None:
            os.environ.pop("MLHARNESS_HOME", None)
        else:
            os.environ["MLHARNESS_HOME"] = previous_home
