"""RedriveExecution on the local AWS: a failed execution continues from the state that failed,
with the input it was entered with, under the same ARN; the history goes on; Describe and
List say how often it was redriven; what AWS refuses is refused with AWS's error."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from botocore.exceptions import ClientError

from harness.emulator import LocalAWS

ROLE = "arn:aws:iam::123456789012:role/sfn"


@pytest.fixture(scope="module")
def aws(tmp_path_factory):
    with LocalAWS(state_dir=tmp_path_factory.mktemp("redrive"), docker_gateway=False) as running:
        yield running


@pytest.fixture(scope="module")
def clients(aws):
    return {
        name: boto3.client(name, endpoint_url=aws.endpoint_url, region_name="us-east-1")
        for name in ("stepfunctions", "s3")
    }


def wait(sfn, arn: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.1)
    raise AssertionError(f"{arn} still running")


def entered(history: list[dict]) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in history if e["type"].endswith("StateEntered")]


def read_object(bucket: str, key: str, **more) -> dict:
    """A Task reading an S3 object: it fails until the object exists."""
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::aws-sdk:s3:getObject",
        "Parameters": {"Bucket": bucket, "Key": key},
        "ResultSelector": {"body.$": "$.Body"},
        **more,
    }


def test_a_failed_execution_continues_from_the_failed_state_with_its_input(clients):
    sfn, s3 = clients["stepfunctions"], clients["s3"]
    s3.create_bucket(Bucket="redrive-one")
    definition = {
        "StartAt": "Prepare",
        "States": {
            "Prepare": {
                "Type": "Pass",
                "Result": {"step": "prepared"},
                "ResultPath": "$.prepared",
                "Next": "Read",
            },
            "Read": read_object("redrive-one", "fixed.txt", ResultPath="$.read", Next="Done"),
            "Done": {"Type": "Pass", "End": True},
        },
    }
    machine = sfn.create_state_machine(name="redrive-one", definition=json.dumps(definition), roleArn=ROLE)
    arn = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], input='{"run": 1}')["executionArn"]
    failed = wait(sfn, arn)
    assert failed["status"] == "FAILED"
    assert (failed["redriveCount"], failed["redriveStatus"]) == (0, "REDRIVABLE")
    events_before = sfn.get_execution_history(executionArn=arn)["events"]

    s3.put_object(Bucket="redrive-one", Key="fixed.txt", Body=b"now here")
    answer = sfn.redrive_execution(executionArn=arn)
    assert "redriveDate" in answer
    done = wait(sfn, arn)

    assert done["status"] == "SUCCEEDED", done
    assert json.loads(done["output"]) == {
        "run": 1,
        "prepared": {"step": "prepared"},
        "read": {"body": "now here"},
    }
    assert done["redriveCount"] == 1 and done["redriveDate"] == answer["redriveDate"]
    assert (done["redriveStatus"], done["redriveStatusReason"]) == (
        "NOT_REDRIVABLE",
        "Execution is SUCCEEDED and cannot be redriven",
    )
    history = sfn.get_execution_history(executionArn=arn)["events"]
    assert history[: len(events_before)] == events_before  # the first attempt's history is kept
    added = history[len(events_before) :]
    assert added[0]["type"] == "ExecutionRedriven"
    assert added[0]["executionRedrivenEventDetails"] == {"redriveCount": 1}
    assert [e["id"] for e in history] == list(range(1, len(history) + 1))
    assert entered(added) == ["Read", "Done"]  # Prepare, which succeeded, is not run again
    assert entered(events_before) == ["Prepare", "Read"]
    assert added[-1]["type"] == "ExecutionSucceeded"

    listed = sfn.list_executions(stateMachineArn=machine["stateMachineArn"], redriveFilter="REDRIVEN")
    assert [(e["executionArn"], e["redriveCount"]) for e in listed["executions"]] == [(arn, 1)]
    assert (
        sfn.list_executions(stateMachineArn=machine["stateMachineArn"], redriveFilter="NOT_REDRIVEN")[
            "executions"
        ]
        == []
    )


def test_a_parallel_state_that_failed_runs_again_and_the_context_counts_redrives(clients):
    sfn, s3 = clients["stepfunctions"], clients["s3"]
    s3.create_bucket(Bucket="redrive-two")
    definition = {
        "StartAt": "Both",
        "States": {
            "Both": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "Left", "States": {"Left": {"Type": "Pass", "Result": "left", "End": True}}},
                    {
                        "StartAt": "Right",
                        "States": {"Right": read_object("redrive-two", "right.txt", End=True)},
                    },
                ],
                "ResultPath": "$.both",
                "Next": "Count",
            },
            "Count": {"Type": "Pass", "Parameters": {"redrives.$": "$$.Execution.RedriveCount"}, "End": True},
        },
    }
    machine = sfn.create_state_machine(name="redrive-two", definition=json.dumps(definition), roleArn=ROLE)
    arn = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], input="{}")["executionArn"]
    assert wait(sfn, arn)["status"] == "FAILED"
    sfn.redrive_execution(executionArn=arn)
    assert wait(sfn, arn)["status"] == "FAILED"  # still missing: it fails again, and may be redriven again
    s3.put_object(Bucket="redrive-two", Key="right.txt", Body=b"right")
    sfn.redrive_execution(executionArn=arn)
    done = wait(sfn, arn)
    assert done["status"] == "SUCCEEDED" and done["redriveCount"] == 2
    assert json.loads(done["output"]) == {"redrives": 2}


def _read_item(bucket: str) -> dict:
    """An iteration reading `<item>.txt`."""
    return {
        "StartAt": "ReadItem",
        "States": {
            "ReadItem": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:s3:getObject",
                "Parameters": {"Bucket": bucket, "Key.$": "States.Format('{}.txt', $)"},
                "ResultSelector": {"body.$": "$.Body"},
                "End": True,
            }
        },
    }


def test_a_redriven_map_runs_only_the_iterations_that_did_not_succeed(clients):
    sfn, s3 = clients["stepfunctions"], clients["s3"]
    s3.create_bucket(Bucket="redrive-map")
    for name in ("a", "c"):
        s3.put_object(Bucket="redrive-map", Key=f"{name}.txt", Body=name.upper().encode())
    definition = {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "MaxConcurrency": 1,  # a, then b fails, and c never starts
                "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, **_read_item("redrive-map")},
                "End": True,
            }
        },
    }
    machine = sfn.create_state_machine(name="redrive-map", definition=json.dumps(definition), roleArn=ROLE)
    arn = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], input='{"items": ["a", "b", "c"]}')[
        "executionArn"
    ]
    assert wait(sfn, arn)["status"] == "FAILED"
    events_before = sfn.get_execution_history(executionArn=arn)["events"]
    # a succeeded: were it run again, it would fail now
    s3.delete_object(Bucket="redrive-map", Key="a.txt")
    s3.put_object(Bucket="redrive-map", Key="b.txt", Body=b"B")

    sfn.redrive_execution(executionArn=arn)
    done = wait(sfn, arn)

    assert done["status"] == "SUCCEEDED", done
    assert json.loads(done["output"]) == [{"body": "A"}, {"body": "B"}, {"body": "C"}]
    added = sfn.get_execution_history(executionArn=arn)["events"][len(events_before) :]
    started = [
        e["mapIterationStartedEventDetails"]["index"] for e in added if e["type"] == "MapIterationStarted"
    ]
    assert started == [1, 2]


def test_a_redriven_parallel_state_runs_only_the_branches_that_did_not_succeed(clients):
    sfn, s3 = clients["stepfunctions"], clients["s3"]
    s3.create_bucket(Bucket="redrive-branches")
    s3.put_object(Bucket="redrive-branches", Key="left.txt", Body=b"left")
    definition = {
        "StartAt": "Both",
        "States": {
            "Both": {
                "Type": "Parallel",
                "Branches": [
                    {
                        "StartAt": "Left",
                        "States": {"Left": read_object("redrive-branches", "left.txt", End=True)},
                    },
                    {
                        "StartAt": "Later",  # Left has succeeded by the time Right fails
                        "States": {
                            "Later": {"Type": "Wait", "Seconds": 1, "Next": "Right"},
                            "Right": read_object("redrive-branches", "right.txt", End=True),
                        },
                    },
                ],
                "End": True,
            }
        },
    }
    machine = sfn.create_state_machine(
        name="redrive-branches", definition=json.dumps(definition), roleArn=ROLE
    )
    arn = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], input="{}")["executionArn"]
    assert wait(sfn, arn)["status"] == "FAILED"
    events_before = sfn.get_execution_history(executionArn=arn)["events"]
    s3.delete_object(Bucket="redrive-branches", Key="left.txt")  # Left would fail if run again
    s3.put_object(Bucket="redrive-branches", Key="right.txt", Body=b"right")

    sfn.redrive_execution(executionArn=arn)
    done = wait(sfn, arn)

    assert done["status"] == "SUCCEEDED", done
    assert json.loads(done["output"]) == [{"body": "left"}, {"body": "right"}]
    added = sfn.get_execution_history(executionArn=arn)["events"][len(events_before) :]
    assert entered(added) == ["Both", "Later", "Right"]


def test_what_aws_refuses_to_redrive_is_refused_with_its_error(clients):
    sfn = clients["stepfunctions"]
    definition = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 5, "End": True}}}
    machine = sfn.create_state_machine(name="redrive-three", definition=json.dumps(definition), roleArn=ROLE)
    arn = sfn.start_execution(stateMachineArn=machine["stateMachineArn"])["executionArn"]
    running = sfn.describe_execution(executionArn=arn)
    assert (running["redriveStatus"], running["redriveStatusReason"]) == (
        "NOT_REDRIVABLE",
        "Execution is RUNNING and cannot be redriven",
    )
    with pytest.raises(ClientError) as refused:
        sfn.redrive_execution(executionArn=arn)
    assert refused.value.response["Error"]["Code"] == "ExecutionNotRedrivable"
    assert refused.value.response["Error"]["Message"] == "Execution is RUNNING and cannot be redriven"
    sfn.stop_execution(executionArn=arn)
    assert sfn.describe_execution(executionArn=arn)["redriveStatus"] == "REDRIVABLE"  # ABORTED
    missing = arn.rsplit(":", 1)[0] + ":no-such-execution"
    with pytest.raises(ClientError) as unknown:
        sfn.redrive_execution(executionArn=missing)
    assert unknown.value.response["Error"]["Code"] == "ExecutionDoesNotExist"
