"""Small helpers shared by the integration tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

ROLE = "arn:aws:iam::123456789012:role/sagemaker"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_for_job(describe, status_key: str, timeout: float = 120) -> tuple[dict, list[str]]:
    """Poll a Describe* call until the job ends; return the last answer and every status seen."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = describe()
        status = answer[status_key]
        if not seen or seen[-1] != status:
            seen.append(status)
        if status in ("Completed", "Failed", "Stopped"):
            return answer, seen
        time.sleep(0.2)
    raise AssertionError(f"job still {seen[-1]} after {timeout} s")


def training_request(name: str, image: str, bucket: str, **overrides) -> dict:
    request = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/train/"}},
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/models"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 300},
        "HyperParameters": {},
    }
    request.update(overrides)
    return request


def processing_request(
    name: str,
    image: str,
    entrypoint: list[str],
    inputs: list[tuple[str, str, str]],
    output_uri: str,
    role: str = ROLE,
    arguments: list[str] | None = None,
) -> dict:
    """A CreateProcessingJob request: `inputs` are (S3 URI, local path, S3DataType); one output,
    /opt/ml/processing/output uploaded to `output_uri` at the job's end."""
    return {
        "ProcessingJobName": name,
        "RoleArn": role,
        "AppSpecification": {
            "ImageUri": image,
            "ContainerEntrypoint": entrypoint,
            **({"ContainerArguments": arguments} if arguments else {}),
        },
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.t3.medium", "VolumeSizeInGB": 1}
        },
        "ProcessingInputs": [
            {
                "InputName": f"in{number}",
                "S3Input": {
                    "S3Uri": uri,
                    "LocalPath": local_path,
                    "S3DataType": data_type,
                    "S3InputMode": "File",
                },
            }
            for number, (uri, local_path, data_type) in enumerate(inputs)
        ],
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "out",
                    "S3Output": {
                        "S3Uri": output_uri,
                        "LocalPath": "/opt/ml/processing/output",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
    }


def wait_for_running_container(docker_client, arn: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if docker_client.api.containers(filters={"label": f"org.mlharness.job={arn}", "status": "running"}):
            return
        time.sleep(0.2)
    raise AssertionError(f"no running container for {arn} within {timeout} s")


def fire_inference_schedule(endpoint_url: str, stack: str, timeout: float = 300) -> dict:
    """Do what EventBridge does when the stack's inference schedule fires (the local AWS never
    does): start the rule's target with the rule's input, unnamed. Returns how it ended."""
    import boto3

    def client(service: str):
        return boto3.client(service, endpoint_url=endpoint_url, region_name="us-east-1")

    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]
    }
    (target,) = client("events").list_targets_by_rule(Rule=outputs["InferenceScheduleName"])["Targets"]
    assert target["Arn"] == outputs["InferenceStateMachineArn"]
    sfn = client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=target["Arn"], input=target["Input"])["executionArn"]
    return wait_for_execution(sfn, arn, timeout)


def wait_for_execution(sfn, arn: str, timeout: float = 180) -> dict:
    """DescribeExecution once the execution has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = sfn.describe_execution(executionArn=arn)
        if answer["status"] != "RUNNING":
            return answer
        time.sleep(0.2)
    raise AssertionError(f"execution {arn} still RUNNING after {timeout} s")


def census_csv(rows: int, seed: int = 11) -> bytes:
    """Census-like rows in the pipelines' input format."""
    from preprocessing import census

    return census.generate(rows, seed).to_csv(index=False).encode()


def harness_cli(home, settings: list[str], env: dict | None = None, project=None):
    """A runner of `python -m harness ARGS --set SETTING ...` from a project's folder (this
    repository's unless given), with run records under `home`; `run(..., extra=(...))` adds
    settings, `run(..., env_extra={...})` variables, `run(..., project=DIR)` another project."""
    import os
    import subprocess
    import sys

    from tests import ROOT

    def run(
        *args: str, extra: tuple[str, ...] = (), env_extra: dict | None = None, project=project
    ) -> subprocess.CompletedProcess:
        overrides = [item for setting in (*settings, *extra) for item in ("--set", setting)]
        return subprocess.run(
            [sys.executable, "-m", "harness", *args, *overrides],
            cwd=project or ROOT, capture_output=True, text=True, timeout=600,
            env={**os.environ, "MLHARNESS_HOME": str(home), **(env or {}), **(env_extra or {})},
        )  # fmt: skip

    run.home, run.settings = home, settings
    return run


def stack_settings(local_aws, name: str, *more: str) -> list[str]:
    """Settings for a stack and bucket of its own on the session's local AWS."""
    port = local_aws.endpoint_url.rsplit(":", 1)[1]
    return [f"emulator.port={port}", f"stack_name={name}", f"artifact_bucket={name}", *more]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def emulators_on(state) -> list[int]:
    """Pids of local AWS processes serving this state dir."""
    from pathlib import Path

    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"harness.emulator" in args and str(state).encode() in args:
            found.append(int(cmdline.parent.name))
    return found


def awslocal(host: str, *args: str):
    """`awslocal ARGS` (LocalStack's aws CLI wrapper, as users run it) pointed at HOST:PORT by
    LOCALSTACK_HOST, the aws CLI beside it on PATH."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    tool = Path(sys.executable).with_name("awslocal")
    return subprocess.run(
        [str(tool), *args], capture_output=True, text=True, timeout=60,
        env={**os.environ, "LOCALSTACK_HOST": host, "PATH": f"{tool.parent}:{os.environ['PATH']}"},
    )  # fmt: skip


def create_endpoint_config(sm, config: str, model: str) -> None:
    """An endpoint configuration of one variant, one instance, serving `model`."""
    variant = {
        "VariantName": "AllTraffic",
        "ModelName": model,
        "InitialInstanceCount": 1,
        "InstanceType": "ml.t2.medium",
    }
    sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[variant])


def exported(lines: str) -> dict[str, str]:
    """The variables `emulator env`'s export lines set."""
    import shlex

    found = {}
    for line in lines.splitlines():
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            found[name] = shlex.split(value)[0]
    return found


def emulator_env(aws, config_home) -> subprocess.CompletedProcess:
    """`python -m harness emulator env` for a running local AWS, its files under config_home."""
    from tests import ROOT

    port = aws.endpoint_url.rsplit(":", 1)[1]
    return subprocess.run(
        [sys.executable, "-m", "harness", "emulator", "env", "--port", port],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "XDG_CONFIG_HOME": str(config_home)},
    )  # fmt: skip
