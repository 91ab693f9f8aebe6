"""TestState on the local AWS: one state, one input, answered as AWS answers it."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.config import Config

pytestmark = [pytest.mark.docker]

ROLE = "arn:aws:iam::123456789012:role/sfn"
READ = {
    "Type": "Task",
    "Resource": "arn:aws:states:::aws-sdk:s3:getObject",
    "InputPath": "$.location",
    "Parameters": {"Bucket.$": "$.bucket", "Key.$": "$.key"},
    "ResultSelector": {"metrics.$": "States.StringToJson($.Body)"},
    "ResultPath": "$.read",
    "Next": "Gate",
}
GATE = {
    "Type": "Choice",
    "Choices": [{"Variable": "$.read.metrics.roc_auc", "NumericGreaterThanEquals": 0.7, "Next": "Publish"}],
    "Default": "BelowThreshold",
}


@pytest.fixture(scope="module")
def sfn(local_aws):
    s3 = boto3.client("s3", endpoint_url=local_aws.endpoint_url, region_name="us-east-1")
    s3.create_bucket(Bucket="test-state-metrics")
    s3.put_object(Bucket="test-state-metrics", Key="metrics.json", Body=b'{"roc_auc": 0.91}')
    # TestState's host is prefixed "sync-", which cannot resolve on an IP endpoint.
    return boto3.client(
        "stepfunctions",
        endpoint_url=local_aws.endpoint_url,
        region_name="us-east-1",
        config=Config(inject_host_prefix=False),
    )


def where(key: str = "metrics.json") -> str:
    return json.dumps({"location": {"bucket": "test-state-metrics", "key": key}, "run": "r1"})


def test_a_task_at_debug_shows_each_step_of_the_data_flow(sfn):
    answer = sfn.test_state(definition=json.dumps(READ), roleArn=ROLE, input=where(), inspectionLevel="DEBUG")

    assert answer["status"] == "SUCCEEDED" and answer["nextState"] == "Gate"
    assert json.loads(answer["output"])["read"] == {"metrics": {"roc_auc": 0.91}}
    data = answer["inspectionData"]
    assert json.loads(data["input"])["run"] == "r1"
    assert json.loads(data["afterInputPath"]) == {"bucket": "test-state-metrics", "key": "metrics.json"}
    assert json.loads(data["afterParameters"]) == {"Bucket": "test-state-metrics", "Key": "metrics.json"}
    assert json.loads(data["result"])["Body"] == '{"roc_auc": 0.91}'
    assert json.loads(data["afterResultSelector"]) == {"metrics": {"roc_auc": 0.91}}
    assert json.loads(data["afterResultPath"]) == json.loads(answer["output"])


def test_info_gives_no_inspection_data(sfn):
    answer = sfn.test_state(definition=json.dumps(READ), roleArn=ROLE, input=where())
    assert answer["status"] == "SUCCEEDED" and "inspectionData" not in answer


def test_a_choice_names_the_state_it_chose(sfn):
    low = sfn.test_state(
        definition=json.dumps(GATE), input=json.dumps({"read": {"metrics": {"roc_auc": 0.5}}})
    )
    high = sfn.test_state(
        definition=json.dumps(GATE), input=json.dumps({"read": {"metrics": {"roc_auc": 0.8}}})
    )
    assert (low["status"], low["nextState"]) == ("SUCCEEDED", "BelowThreshold")
    assert high["nextState"] == "Publish"


def test_an_error_is_failed_caught_or_retriable_as_the_state_says(sfn):
    missing = where("nothing-here.json")
    failed = sfn.test_state(definition=json.dumps(READ), roleArn=ROLE, input=missing)
    assert (failed["status"], failed["error"]) == ("FAILED", "S3.NoSuchKeyException")

    caught_state = {
        **READ,
        "Catch": [{"ErrorEquals": ["S3.NoSuchKeyException"], "Next": "NoMetrics", "ResultPath": "$.error"}],
    }
    caught = sfn.test_state(
        definition=json.dumps(caught_state), roleArn=ROLE, input=missing, inspectionLevel="DEBUG"
    )
    assert (caught["status"], caught["nextState"]) == ("CAUGHT_ERROR", "NoMetrics")
    assert json.loads(caught["output"])["error"]["Error"] == "S3.NoSuchKeyException"
    assert caught["inspectionData"]["errorDetails"] == {"catchIndex": 0}

    retried_state = {
        **caught_state,
        "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2, "IntervalSeconds": 3}],
    }
    first = sfn.test_state(
        definition=json.dumps(retried_state), roleArn=ROLE, input=missing, inspectionLevel="DEBUG"
    )
    assert first["status"] == "RETRIABLE"
    assert first["inspectionData"]["errorDetails"] == {"retryIndex": 0, "retryBackoffIntervalSeconds": 3}
    spent = sfn.test_state(
        definition=json.dumps(retried_state), roleArn=ROLE, input=missing,
        stateConfiguration={"retrierRetryCount": 2},
    )  # fmt: skip
    assert spent["status"] == "CAUGHT_ERROR"  # the retrier is spent; the catcher takes it


def test_a_mocked_task_answers_without_calling_its_service(sfn):
    job = {
        "Type": "Task",
        "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",
        "Parameters": {"TrainingJobName.$": "$.name"},
        "ResultSelector": {"artifact.$": "$.ModelArtifacts.S3ModelArtifacts"},
        "End": True,
    }
    result = json.dumps(
        {"TrainingJobStatus": "Completed", "ModelArtifacts": {"S3ModelArtifacts": "s3://b/m.tar.gz"}}
    )
    answered = sfn.test_state(
        definition=json.dumps(job), input='{"name": "never-created"}', mock={"result": result}
    )
    assert answered["status"] == "SUCCEEDED" and json.loads(answered["output"]) == {
        "artifact": "s3://b/m.tar.gz"
    }
    thrown = sfn.test_state(
        definition=json.dumps(job),
        input='{"name": "never-created"}',
        mock={"errorOutput": {"error": "States.TaskFailed", "cause": "job failed"}},
    )
    assert (thrown["status"], thrown["error"], thrown["cause"]) == (
        "FAILED",
        "States.TaskFailed",
        "job failed",
    )


def test_a_state_of_a_whole_machine_is_tested_by_name(sfn):
    machine = {"StartAt": "Read", "States": {"Read": READ, "Gate": GATE, "Publish": {"Type": "Succeed"},
                                             "BelowThreshold": {"Type": "Fail"}}}  # fmt: skip
    answer = sfn.test_state(
        definition=json.dumps(machine),
        stateName="Gate",
        input=json.dumps({"read": {"metrics": {"roc_auc": 0.9}}}),
    )
    assert answer["nextState"] == "Publish"
    with pytest.raises(sfn.exceptions.ValidationException, match="State 'Nope' does not exist"):
        sfn.test_state(definition=json.dumps(machine), stateName="Nope")


def test_a_definition_that_is_not_a_state_is_refused(sfn):
    with pytest.raises(sfn.exceptions.InvalidDefinition):
        sfn.test_state(definition="{not json")
    with pytest.raises(sfn.exceptions.InvalidDefinition):
        sfn.test_state(definition=json.dumps({"Type": "Parallel", "Branches": [], "End": True}))
