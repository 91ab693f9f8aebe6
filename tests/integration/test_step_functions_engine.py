"""The emulator's Step Functions engine where it differs from moto's: each test pins
one fix in harness/emulator/patches/stepfunctions.py against AWS's behaviour."""

from __future__ import annotations

import json
import re
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from harness.emulator import LocalAWS

ROLE = "arn:aws:iam::123456789012:role/sfn"


@pytest.fixture(scope="module")
def sfn(tmp_path_factory):
    with LocalAWS(state_dir=tmp_path_factory.mktemp("sfn"), docker_gateway=False) as aws:
        # StartSyncExecution's host prefix ("sync-") cannot resolve against an IP endpoint.
        config = Config(inject_host_prefix=False)
        yield boto3.client(
            "stepfunctions", endpoint_url=aws.endpoint_url, region_name="us-east-1", config=config
        )


_count = 0


def machine(sfn, definition: dict, kind: str = "STANDARD") -> str:
    global _count
    _count += 1
    return sfn.create_state_machine(
        name=f"engine-{_count}", definition=json.dumps(definition), roleArn=ROLE, type=kind
    )["stateMachineArn"]


def run(sfn, definition: dict, execution_input=None) -> dict:
    arn = sfn.start_execution(
        stateMachineArn=machine(sfn, definition), input=json.dumps(execution_input or {})
    )["executionArn"]
    for _ in range(200):
        answer = sfn.describe_execution(executionArn=arn)
        if answer["status"] != "RUNNING":
            return answer
        time.sleep(0.05)
    raise AssertionError("still RUNNING")


def pass_state(**fields) -> dict:
    return {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True, **fields}}}


def test_unnamed_executions_get_distinct_uuid_names(sfn):
    arn = machine(sfn, pass_state())
    first = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    second = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    uuid = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    assert re.fullmatch(rf".*:execution:engine-\d+:{uuid}", first)
    assert first != second


@pytest.mark.parametrize("result, text", [("abc", '"abc"'), (None, "null"), (3, "3")])
def test_non_object_outputs_are_json_text(sfn, result, text):
    answer = run(sfn, {"QueryLanguage": "JSONata", **pass_state(Output=result)})
    assert answer["status"] == "SUCCEEDED"
    assert answer["output"] == text


def test_the_context_object_is_complete_and_serialisable(sfn):
    answer = run(sfn, pass_state(Parameters={"execution.$": "$$.Execution"}))
    assert answer["status"] == "SUCCEEDED"  # moto answered HTTP 500 on the timestamp
    execution = json.loads(answer["output"])["execution"]
    assert execution["RedriveCount"] == 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", execution["StartTime"])


def test_start_sync_execution_runs_express_machines_and_refuses_standard_ones(sfn):
    express = machine(sfn, pass_state(Result={"done": True}), kind="EXPRESS")
    answer = sfn.start_sync_execution(stateMachineArn=express, input="{}")
    assert answer["status"] == "SUCCEEDED"
    assert json.loads(answer["output"]) == {"done": True}
    assert ":express:" in answer["executionArn"]
    with pytest.raises(ClientError) as raised:
        sfn.start_sync_execution(stateMachineArn=machine(sfn, pass_state()), input="{}")
    assert raised.value.response["Error"]["Code"] == "StateMachineTypeNotSupported"


def test_a_bad_jsonata_timestamp_is_a_query_evaluation_error(sfn):
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "W",
        "States": {"W": {"Type": "Wait", "Timestamp": "{% $states.input.t %}", "End": True}},
    }
    answer = run(sfn, definition, {"t": "2016-13-05T21:29:29Z"})
    assert answer["status"] == "FAILED"
    assert answer["error"] == "States.QueryEvaluationError"
    assert answer["cause"].endswith(
        "The Timestamp field cannot be parsed as an ISO-8601 extended offset date-time format string: "
        "2016-13-05T21:29:29Z"
    )


def test_map_over_a_non_array_names_the_value(sfn):
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
                "End": True,
            }
        },
    }
    answer = run(sfn, definition, {"foo": "bar"})
    assert answer["status"] == "FAILED"
    assert answer["error"] == "States.QueryEvaluationError"
    assert answer["cause"].endswith('Map state input must be an array but was: {"foo":"bar"}')


def test_a_fail_state_may_re_raise_a_caught_states_error(sfn):
    definition = {
        "StartAt": "Boom",
        "States": {
            "Boom": {
                "Type": "Pass",
                "Parameters": {"n.$": "States.MathAdd($.missing, 1)"},
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Failed"}],
                "End": True,
            },
            "Failed": {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"},
        },
    }
    answer = run(sfn, definition)
    assert answer["status"] == "FAILED"
    assert answer["error"].startswith("States.")


def test_stop_execution_aborts_at_once_and_keeps_error_and_cause(sfn):
    arn = sfn.start_execution(
        stateMachineArn=machine(
            sfn, {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 60, "End": True}}}
        )
    )["executionArn"]
    sfn.stop_execution(executionArn=arn, error="Cancelled", cause="by the test")
    answer = sfn.describe_execution(executionArn=arn)
    assert answer["status"] == "ABORTED"
    aborted = sfn.get_execution_history(executionArn=arn)["events"][-1]
    assert aborted["type"] == "ExecutionAborted"
    assert aborted["executionAbortedEventDetails"] == {"error": "Cancelled", "cause": "by the test"}


def test_aws_sdk_s3_errors_carry_aws_names_and_bodies_round_trip(sfn):
    s3 = boto3.client("s3", endpoint_url=sfn.meta.endpoint_url, region_name="us-east-1")
    s3.create_bucket(Bucket="engine-sdk")
    sdk = "arn:aws:states:::aws-sdk:s3"
    definition = {
        "StartAt": "Put",
        "States": {
            "Put": {
                "Type": "Task",
                "Resource": f"{sdk}:putObject",
                "Parameters": {"Bucket": "engine-sdk", "Key": "m.json", "Body.$": "States.JsonToString($.m)"},
                "ResultPath": None,
                "Next": "Get",
            },
            "Get": {
                "Type": "Task",
                "Resource": f"{sdk}:getObject",
                "Parameters": {"Bucket": "engine-sdk", "Key.$": "$.key"},
                "ResultSelector": {"m.$": "States.StringToJson($.Body)"},
                "Catch": [{"ErrorEquals": ["S3.NoSuchKeyException"], "Next": "Missing"}],
                "End": True,
            },
            "Missing": {"Type": "Fail", "ErrorPath": "$.Error", "CausePath": "$.Cause"},
        },
    }
    found = run(sfn, definition, {"m": {"a": [1, 2]}, "key": "m.json"})
    assert found["status"] == "SUCCEEDED", found
    assert json.loads(found["output"]) == {"m": {"a": [1, 2]}}

    missing = run(sfn, definition, {"m": {}, "key": "absent.json"})
    assert missing["status"] == "FAILED"
    assert missing["error"] == "S3.NoSuchKeyException"
    assert "Service: S3" in missing["cause"]


def test_execution_history_pages_both_ways_as_aws_does(sfn):
    states = {f"S{i}": {"Type": "Pass", "Next": f"S{i + 1}"} for i in range(59)}
    states["S59"] = {"Type": "Pass", "End": True}
    answer = run(sfn, {"StartAt": "S0", "States": states})
    arn = answer["executionArn"]

    first = sfn.get_execution_history(executionArn=arn)
    assert len(first["events"]) == 100 and first["nextToken"]  # AWS's default page

    def every(**arguments) -> list[int]:
        ids, token = [], None
        while True:
            page = sfn.get_execution_history(executionArn=arn, maxResults=7, **arguments, **(
                {"nextToken": token} if token else {}
            ))  # fmt: skip
            ids += [e["id"] for e in page["events"]]
            token = page.get("nextToken")
            if not token:
                return ids

    forward = every()
    assert forward == list(range(1, len(forward) + 1)) and len(forward) > 120
    assert every(reverseOrder=True) == forward[::-1]
    with pytest.raises(ClientError, match="InvalidToken"):
        sfn.get_execution_history(executionArn=arn, nextToken="not-ours")


@pytest.mark.parametrize(
    "fields, path",
    [
        ({"Output": "{% $nothing %}"}, "Output"),
        ({"Output": {"result": "{% $nothing %}"}}, "Output/result"),
        ({"Assign": {"result": "{% $nothing %}"}}, "Assign/result"),
    ],
)
def test_an_undefined_jsonata_result_names_its_field(sfn, fields, path):
    """The wording AWS recorded in the conformance cases (test_undefined_reference)."""
    answer = run(sfn, {"QueryLanguage": "JSONata", **pass_state(**fields)})
    assert answer["error"] == "States.QueryEvaluationError"
    assert answer["cause"].endswith(
        f"The JSONata expression '$nothing' specified for the field '{path}' returned nothing (undefined)."
    )


def test_validate_state_machine_definition_answers_as_aws(sfn):
    valid = sfn.validate_state_machine_definition(definition=json.dumps(pass_state()))
    assert valid["result"] == "OK" and valid["diagnostics"] == []
    broken = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Next": "Q"}}}
    answer = sfn.validate_state_machine_definition(definition=json.dumps(broken), type="STANDARD")
    assert answer["result"] == "FAIL"
    assert {"severity": "ERROR", "code": "SCHEMA_VALIDATION_FAILED", "message": "Missing 'Next' target: Q",
            "location": "/States/P/Next"} in answer["diagnostics"]  # fmt: skip


def test_a_state_machine_name_in_use_is_refused_unless_the_request_is_the_same(aws_client):
    import uuid as uuid_module

    sfn = aws_client("stepfunctions")
    name = f"once-{uuid_module.uuid4().hex[:6]}"
    role = "arn:aws:iam::123456789012:role/sfn"
    first = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": 1, "End": True}}})
    arn = sfn.create_state_machine(name=name, definition=first, roleArn=role)["stateMachineArn"]

    assert sfn.create_state_machine(name=name, definition=first, roleArn=role)["stateMachineArn"] == arn
    edited = first.replace('"Result": 1', '"Result": 2')
    with pytest.raises(
        sfn.exceptions.StateMachineAlreadyExists, match=f"State Machine Already Exists: '{arn}'"
    ):
        sfn.create_state_machine(name=name, definition=edited, roleArn=role)
    assert (
        json.loads(sfn.describe_state_machine(stateMachineArn=arn)["definition"])["States"]["P"]["Result"]
        == 1
    )


def test_create_and_update_refuse_what_validation_refuses(aws_client):
    import uuid as uuid_module

    sfn = aws_client("stepfunctions")
    broken = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nowhere"}}})
    role = "arn:aws:iam::123456789012:role/sfn"
    with pytest.raises(sfn.exceptions.InvalidDefinition, match="Missing 'Next' target: Nowhere"):
        sfn.create_state_machine(
            name=f"broken-{uuid_module.uuid4().hex[:6]}", definition=broken, roleArn=role
        )
    good = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}})
    arn = sfn.create_state_machine(name=f"fine-{uuid_module.uuid4().hex[:6]}", definition=good, roleArn=role)[
        "stateMachineArn"
    ]
    with pytest.raises(sfn.exceptions.InvalidDefinition):
        sfn.update_state_machine(stateMachineArn=arn, definition=broken)


def test_a_labeling_job_task_is_accepted_as_on_aws_and_refused_as_unsupported_when_it_runs(sfn):
    """Step Functions has the integration; the local AWS's SageMaker runs no labeling job (it
    needs Ground Truth's workers), so the call fails naming what is unsupported."""
    task = {
        "Type": "Task",
        "Resource": "arn:aws:states:::sagemaker:createLabelingJob.sync",
        "Parameters": {"LabelingJobName": "labels", "LabelAttributeName": "label", "RoleArn": ROLE},
        "End": True,
    }
    ended = run(sfn, {"StartAt": "Label", "States": {"Label": task}})
    assert (ended["status"], ended["error"]) == ("FAILED", "SageMaker.AmazonSageMakerException")
    assert "does not support sagemaker:CreateLabelingJob" in ended["cause"]
    assert "Error Code: UnsupportedOperation" in ended["cause"]
