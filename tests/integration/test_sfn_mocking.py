"""Mocked service integrations in the format AWS documents for Step Functions Local: the
documentation's own example, run by StartExecution on `<arn>#<test case>`."""

from __future__ import annotations

import json
import time

import boto3
import pytest

from harness.emulator import LocalAWS

pytestmark = [pytest.mark.docker]

# The state machine and mock configuration of AWS's "mocked service integrations" guide
# (its retrier waits 1 s here rather than 2 s with backoff, to keep the test short).
DEFINITION = {
    "StartAt": "LambdaState",
    "States": {
        "LambdaState": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"Payload.$": "$", "FunctionName": "HelloWorldFunction"},
            "Retry": [
                {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 1}
            ],
            "Next": "SQSState",
        },
        "SQSState": {
            "Type": "Task",
            "Resource": "arn:aws:states:::sqs:sendMessage",
            "Parameters": {
                "QueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/myQueue",
                "MessageBody.$": "$",
            },
            "End": True,
        },
    },
}
LAMBDA_OK = {"StatusCode": 200, "Payload": {"StatusCode": 200, "body": "Hello from Lambda!"}}
MOCKS = {
    "StateMachines": {
        "LambdaSQSIntegration": {
            "TestCases": {
                "HappyPath": {"LambdaState": "MockedLambdaSuccess", "SQSState": "MockedSQSSuccess"},
                "RetryPath": {"LambdaState": "MockedLambdaRetry", "SQSState": "MockedSQSSuccess"},
                "HybridPath": {"LambdaState": "MockedLambdaSuccess"},
                "Typo": {"LambdaStat": "MockedLambdaSuccess"},
            }
        }
    },
    "MockedResponses": {
        "MockedLambdaSuccess": {"0": {"Return": LAMBDA_OK}},
        "MockedSQSSuccess": {"0": {"Return": {"MD5OfMessageBody": "3bcb6e8e", "MessageId": "3bcb6e8e-8b51"}}},
        "MockedLambdaRetry": {
            "0": {
                "Throw": {
                    "Error": "Lambda.ResourceNotReadyException",
                    "Cause": "Lambda resource is not ready.",
                }
            },
            "1-2": {"Throw": {"Error": "Lambda.TimeoutException", "Cause": "Lambda timed out."}},
            "3": {"Return": LAMBDA_OK},
        },
    },
}


@pytest.fixture(scope="module")
def mocked(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mocked")
    (folder / "mocks.json").write_text(json.dumps(MOCKS))
    with LocalAWS(state_dir=folder / "state", mock_config=folder / "mocks.json", docker_gateway=False) as aws:

        def client(service: str):
            return boto3.client(service, endpoint_url=aws.endpoint_url, region_name="us-east-1")

        sfn = client("stepfunctions")
        arn = sfn.create_state_machine(
            name="LambdaSQSIntegration",
            definition=json.dumps(DEFINITION),
            roleArn="arn:aws:iam::123456789012:role/sfn",
        )["stateMachineArn"]
        client("sqs").create_queue(QueueName="myQueue")
        yield sfn, arn, client


def run(sfn, arn: str) -> tuple[dict, list[dict]]:
    execution = sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]
    while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
        time.sleep(0.05)
    return described, sfn.get_execution_history(executionArn=execution)["events"]


def test_a_fully_mocked_test_case_answers_from_the_configuration(mocked):
    sfn, arn, _ = mocked
    described, history = run(sfn, f"{arn}#HappyPath")
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == MOCKS["MockedResponses"]["MockedSQSSuccess"]["0"]["Return"]
    assert described["stateMachineArn"] == arn  # the execution belongs to the machine itself
    assert [e["type"] for e in history].count("TaskSucceeded") == 2


def test_attempts_are_answered_in_order_through_the_retrier(mocked):
    sfn, arn, _ = mocked
    described, history = run(sfn, f"{arn}#RetryPath")
    assert described["status"] == "SUCCEEDED"
    failures = [e["taskFailedEventDetails"]["error"] for e in history if e["type"] == "TaskFailed"]
    assert failures == [
        "Lambda.ResourceNotReadyException",
        "Lambda.TimeoutException",
        "Lambda.TimeoutException",
    ]


def test_a_state_not_mocked_runs_for_real(mocked):
    sfn, arn, client = mocked
    described, _ = run(sfn, f"{arn}#HybridPath")
    assert described["status"] == "SUCCEEDED"
    queue = client("sqs").get_queue_url(QueueName="myQueue")["QueueUrl"]
    messages = client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    assert json.loads(messages[0]["Body"]) == LAMBDA_OK  # the real SQS got the mocked Lambda's answer


def test_the_machine_without_a_test_case_runs_for_real(mocked):
    sfn, arn, _ = mocked
    described, _ = run(sfn, arn)
    assert described["status"] == "FAILED"  # no Lambda function HelloWorldFunction exists


@pytest.mark.parametrize(
    "case, message",
    [
        ("Nope", "state machine 'LambdaSQSIntegration' has no test case 'Nope'"),
        ("Typo", "mocks 'LambdaStat', which its definition does not have"),
    ],
)
def test_an_unusable_test_case_is_refused_at_start(mocked, case, message):
    sfn, arn, _ = mocked
    with pytest.raises(sfn.exceptions.InvalidName) as refused:
        sfn.start_execution(stateMachineArn=f"{arn}#{case}", input="{}")
    assert message in str(refused.value)


def test_a_broken_mock_configuration_stops_the_local_aws_at_start(tmp_path):
    (tmp_path / "mocks.json").write_text(
        json.dumps({"StateMachines": {}, "MockedResponses": {"X": {"zero": {}}}})
    )
    from harness.emulator import EmulatorError

    with pytest.raises(EmulatorError) as refused:
        LocalAWS(
            state_dir=tmp_path / "state", mock_config=tmp_path / "mocks.json", docker_gateway=False
        ).start()
    assert "MockedResponses.X.zero: attempts must be a number" in str(refused.value)


def test_a_machine_the_mock_configuration_does_not_name_is_refused(local_aws):
    sfn = boto3.client("stepfunctions", endpoint_url=local_aws.endpoint_url, region_name="us-east-1")
    arn = sfn.create_state_machine(
        name=f"plain-{time.time_ns()}",
        definition=json.dumps(DEFINITION),
        roleArn="arn:aws:iam::123456789012:role/x",
    )["stateMachineArn"]
    with pytest.raises(sfn.exceptions.InvalidName, match="has no state machine 'plain-"):
        sfn.start_execution(stateMachineArn=f"{arn}#HappyPath", input="{}")
