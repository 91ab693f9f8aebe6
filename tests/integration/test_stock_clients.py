"""Stock clients talk to the local AWS unchanged: the aws CLI, boto3, the Step Functions SDK."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from harness.emulator import LocalAWS


@pytest.fixture(scope="module")
def aws(tmp_path_factory):
    with LocalAWS(state_dir=tmp_path_factory.mktemp("clients"), docker_gateway=False) as running:
        yield running


def cli(aws: LocalAWS, *args: str) -> str:
    executable = shutil.which("aws") or str(Path(sys.executable).parent / "aws")
    result = subprocess.run(
        [executable, "--endpoint-url", aws.endpoint_url, "--region", "us-east-1", "--output", "json", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_aws_cli_works_against_every_service_the_pipelines_use(aws, tmp_path):
    data = tmp_path / "rows.csv"
    data.write_text("a,b\n1,2\n")
    cli(aws, "s3", "mb", "s3://cli-bucket")
    cli(aws, "s3", "cp", str(data), "s3://cli-bucket/data/rows.csv")
    assert "data/rows.csv" in cli(aws, "s3", "ls", "--recursive", "s3://cli-bucket")
    assert json.loads(cli(aws, "sts", "get-caller-identity"))["Account"] == "123456789012"
    trust = json.dumps({"Version": "2012-10-17", "Statement": []})
    cli(aws, "iam", "create-role", "--role-name", "pipeline", "--assume-role-policy-document", trust)
    repo = json.loads(cli(aws, "ecr", "create-repository", "--repository-name", "jobs"))
    assert repo["repository"]["repositoryName"] == "jobs"
    cli(aws, "events", "put-rule", "--name", "nightly", "--schedule-expression", "rate(1 day)")
    assert json.loads(cli(aws, "events", "list-rules"))["Rules"][0]["Name"] == "nightly"
    cli(aws, "logs", "create-log-group", "--log-group-name", "/cli/test")
    assert json.loads(cli(aws, "sagemaker", "list-training-jobs"))["TrainingJobSummaries"] == []
    definition = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    machine = json.loads(
        cli(
            aws,
            "stepfunctions",
            "create-state-machine",
            "--name",
            "cli-machine",
            "--definition",
            definition,
            "--role-arn",
            "arn:aws:iam::123456789012:role/pipeline",
        )
    )
    assert machine["stateMachineArn"].endswith(":stateMachine:cli-machine")


def test_the_step_functions_sdk_attaches_and_executes(aws):
    from stepfunctions.workflow import Workflow

    sfn = boto3.client("stepfunctions", endpoint_url=aws.endpoint_url, region_name="us-east-1")
    definition = {
        "StartAt": "Double",
        "States": {
            "Double": {"Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.n, $.n)"}, "End": True}
        },
    }
    arn = sfn.create_state_machine(
        name="sdk-machine", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/sfn"
    )["stateMachineArn"]

    workflow = Workflow.attach(arn, client=sfn)
    execution = workflow.execute(inputs={"n": 21})

    assert execution.get_output(wait=True) == {"n": 42}
