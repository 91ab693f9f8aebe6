"""Requests checked against botocore's models, worded as AWS words its refusals."""

from __future__ import annotations

import io
import json

from harness.emulator import protocol_errors, request_guard


def layered(moto):
    """moto behind the guard, behind the last resort, as the server composes them."""
    return protocol_errors.serving(request_guard.guarded(moto))


def call(target: str, body: bytes):
    seen = {}

    def moto(environ, start_response):  # stands in for moto: answers 200, or an HTML 500 when asked
        seen["body"] = environ["wsgi.input"].read()
        if b"boom" in seen["body"]:
            start_response("500 INTERNAL SERVER ERROR", [("Content-Type", "text/html")])
            return [b"<html>500</html>"]
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b"{}"]

    answer = {}

    def start_response(status, headers):
        answer["status"], answer["headers"] = status, dict(headers)

    environ = {"HTTP_X_AMZ_TARGET": target, "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))}
    chunks = layered(moto)(environ, start_response)
    return answer["status"], b"".join(chunks), seen.get("body")


def test_a_well_formed_request_reaches_moto_whole():
    body = json.dumps({"stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:m"}).encode()
    status, _, seen = call("AWSStepFunctions.StartExecution", body)
    assert status.startswith("200") and seen == body


def test_missing_members_are_named_by_their_wire_path():
    status, answer, seen = call("SageMaker.CreateEndpoint", b'{"EndpointName": "e"}')
    assert status.startswith("400") and seen is None
    assert json.loads(answer) == {
        "__type": "ValidationException",
        "message": "1 validation error detected: Value null at 'endpointConfigName' failed to satisfy "
        "constraint: Member must not be null",
    }


def test_nested_list_members_are_written_as_aws_writes_them():
    assert request_guard._member_path(".InputDataConfig[0].DataSource", "S3DataSource") == (
        "inputDataConfig.1.member.dataSource.s3DataSource"
    )


def test_an_html_500_from_inside_becomes_a_json_internal_failure():
    status, answer, _ = call("AWSStepFunctions.ListStateMachines", b'{"nextToken": "boom"}')
    assert status.startswith("500")
    assert (
        json.loads(answer)["__type"] == "InternalFailure"
        and "stepfunctions.ListStateMachines" in answer.decode()
    )


def test_other_requests_pass_untouched():
    seen = {}

    def app(environ, start_response):
        seen["called"] = True
        start_response("200 OK", [])
        return [b""]

    request_guard.guarded(app)({"PATH_INFO": "/bucket/key"}, lambda status, headers: None)
    assert seen == {"called": True}


def query_call(service: str, form: str):
    """A query-protocol request (CloudFormation, IAM, STS) as botocore signs it."""
    seen = {}

    def moto(environ, start_response):
        seen["body"] = environ["wsgi.input"].read()
        start_response("500 INTERNAL SERVER ERROR", [("Content-Type", "text/html")])
        return [b"<html>500</html>"]

    answer = {}

    def start_response(status, headers):
        answer["status"] = status

    body = form.encode()
    environ = {
        "REQUEST_METHOD": "POST",
        "HTTP_AUTHORIZATION": f"AWS4-HMAC-SHA256 Credential=test/20261204/us-east-1/{service}/aws4_request, "
        "SignedHeaders=host, Signature=x",
        "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)),
    }
    chunks = layered(moto)(environ, start_response)
    return answer["status"], b"".join(chunks).decode(), seen.get("body")


def test_a_query_operation_moto_lacks_is_refused_in_the_services_xml_shape():
    status, answer, seen = query_call("cloudformation", "Action=ListStackRefactors&Version=2010-05-15")
    assert status.startswith("501") and seen is None
    assert "<Code>UnsupportedOperation</Code>" in answer
    assert "the local AWS does not support cloudformation:ListStackRefactors" in answer


def test_a_query_operation_the_service_does_not_have_is_invalid_action():
    status, answer, _ = query_call("iam", "Action=MakeMeAdmin&Version=2010-05-08")
    assert status.startswith("400") and "<Code>InvalidAction</Code>" in answer


def test_a_served_query_operation_reaches_moto_and_an_html_500_becomes_xml():
    status, answer, seen = query_call("cloudformation", "Action=DescribeStacks&Version=2010-05-15")
    assert seen == b"Action=DescribeStacks&Version=2010-05-15"
    assert status.startswith("500") and "<Code>InternalFailure</Code>" in answer
    assert "cloudformation.DescribeStacks" in answer


def test_a_query_request_without_a_required_member_is_a_validation_error():
    status, answer, seen = query_call("sts", "Action=AssumeRole&Version=2011-06-15&RoleSessionName=x")
    assert status.startswith("400") and seen is None and "<Code>ValidationError</Code>" in answer
    assert "Value null at 'roleArn' failed to satisfy constraint: Member must not be null" in answer
    _, _, seen = query_call("cloudformation", "Action=CreateStack&Version=2010-05-15&StackName=s&Tags=")
    assert seen is not None  # an empty list is given, not missing


def test_values_above_the_models_maximum_are_refused_as_aws_refuses_them():
    status, answer, seen = call("AWSStepFunctions.CreateActivity", json.dumps({"name": "a" * 81}).encode())
    assert status.startswith("400") and seen is None
    assert json.loads(answer)["message"] == (
        "1 validation error detected: Value at 'name' failed to satisfy constraint: "
        "Member must have length less than or equal to 80"
    )
    body = {"maxResults": 1001}
    status, answer, _ = call("AWSStepFunctions.ListStateMachines", json.dumps(body).encode())
    assert (
        "Value '1001' at 'maxResults' failed to satisfy constraint: Member must have value less than or "
        in (json.loads(answer)["message"])
    )
    status, _, seen = call("AWSStepFunctions.CreateActivity", json.dumps({"name": "a" * 80}).encode())
    assert status.startswith("200") and seen


def test_a_body_nested_too_deeply_is_a_serialization_error():
    deep = b'{"name": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    status, answer, seen = call("AWSStepFunctions.CreateActivity", deep)
    assert status.startswith("400") and seen is None
    assert json.loads(answer)["__type"] == "SerializationException"


def test_a_stack_name_aws_would_refuse_never_reaches_moto():
    for name in ("../../../../tmp/evil", "1stack", "my_stack", "a" * 129):
        status, answer, seen = query_call(
            "cloudformation", f"Action=CreateStack&Version=2010-05-15&StackName={name}"
        )
        assert status.startswith("400") and seen is None, name
        assert "<Code>ValidationError</Code>" in answer and "at 'stackName' failed to satisfy" in answer
    _, _, seen = query_call("cloudformation", "Action=CreateStack&Version=2010-05-15&StackName=my-stack-1")
    assert seen is not None


def test_names_outside_the_models_pattern_are_refused_as_aws_refuses_them():
    body = {
        "TrainingJobName": "../../../tmp/evil",
        "AlgorithmSpecification": {"TrainingImage": "i", "TrainingInputMode": "File"},
        "RoleArn": "arn:aws:iam::123456789012:role/r",
        "OutputDataConfig": {"S3OutputPath": "s3://b/o"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
    }
    status, answer, seen = call("SageMaker.CreateTrainingJob", json.dumps(body).encode())
    assert status.startswith("400") and seen is None
    assert json.loads(answer)["message"] == (
        "1 validation error detected: Value '../../../tmp/evil' at 'trainingJobName' failed to satisfy "
        "constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
    )
    body["TrainingJobName"] = "train-1"
    status, _, seen = call("SageMaker.CreateTrainingJob", json.dumps(body).encode())
    assert status.startswith("200") and seen


def test_a_multi_line_value_under_a_pattern_of_any_characters_is_taken():
    body = {
        "ProcessingJobName": "probe",
        "RoleArn": "arn:aws:iam::123456789012:role/r",
        "AppSpecification": {
            "ImageUri": "i",
            "ContainerEntrypoint": ["python3", "-c", "import os\nprint(1)\n"],
        },
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}
        },
    }
    status, _, seen = call("SageMaker.CreateProcessingJob", json.dumps(body).encode())
    assert status.startswith("200") and seen
