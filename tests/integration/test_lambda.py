"""Python Lambda functions really run: in containers of the local AWS, from a .zip package (and
layers) or an image in the local ECR, answering as Lambda's Invoke does, and from state machines
(`arn:aws:states:::lambda:invoke` and a function ARN as a Task's resource). Other runtimes, and
packages that could not be unpacked safely, are refused when the function is made."""

from __future__ import annotations

import base64
import io
import json
import time
import zipfile
from pathlib import Path

import docker
import pytest
from botocore.exceptions import ClientError

from tests.integration.helpers import unique, wait_for_execution

pytestmark = [pytest.mark.docker]

RUNTIME_CLIENT = Path(__file__).resolve().parents[2] / "harness/resources/lambda_runtime/bootstrap.py"

APP = """
import os, sys, time
import boto3

invocations = 0

def handler(event, context):
    global invocations
    invocations += 1
    print("handling", event.get("do", "echo"))
    do = event.get("do")
    if do == "raise":
        raise ValueError("no good")
    if do == "set":
        return {1, 2}
    if do == "exit":
        sys.exit(3)
    if do == "sleep":
        time.sleep(event["seconds"])
    if do == "put":
        boto3.client("s3").put_object(Bucket=event["bucket"], Key=event["key"], Body=b"from the function")
    try:
        open("/var/task/written", "w").close()
        task_writable = True
    except OSError:
        task_writable = False
    with open("/tmp/scratch", "w") as scratch:
        scratch.write("fine")
    return {
        "event": event,
        "invocations": invocations,
        "name": context.function_name,
        "arn": context.invoked_function_arn,
        "request": context.aws_request_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "memory": context.memory_limit_in_mb,
        "greeting": os.environ.get("GREETING"),
        "caller": boto3.client("sts").get_caller_identity()["Arn"],
        "root": os.getuid() == 0,
        "task_writable": task_writable,
    }
"""


def package(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def role(aws_client) -> str:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    name = unique("function-role")
    made = aws_client("iam").create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    return made["Role"]["Arn"]


@pytest.fixture(scope="module")
def app_function(aws_client, role) -> str:
    name = unique("app")
    aws_client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": package({"app.py": APP})},
        Timeout=2,
        Environment={"Variables": {"GREETING": "hello"}},
    )
    return name


def invoke(lam, name: str, event: dict, **more) -> tuple[dict, object]:
    answer = lam.invoke(FunctionName=name, Payload=json.dumps(event), **more)
    body = answer["Payload"].read()
    return answer, json.loads(body) if body else None


def test_a_function_runs_its_handler_on_the_event_as_its_role_and_stays_warm(aws_client, app_function, role):
    lam = aws_client("lambda")
    answer, result = invoke(lam, app_function, {"do": "echo", "n": 1}, LogType="Tail")

    assert answer["StatusCode"] == 200 and "FunctionError" not in answer
    assert answer["ExecutedVersion"] == "$LATEST"
    assert result["event"] == {"do": "echo", "n": 1}
    assert result["name"] == app_function and result["arn"].endswith(f":function:{app_function}")
    assert 0 < result["remaining_ms"] <= 2000 and result["memory"] == "128"
    assert result["greeting"] == "hello"
    role_name = role.rsplit("/", 1)[1]
    assert result["caller"].endswith(f":assumed-role/{role_name}/{app_function}")  # its own AWS calls
    assert result["root"] is False and result["task_writable"] is False  # read-only but /tmp, not root
    tail = base64.b64decode(answer["LogResult"]).decode()
    assert f"START RequestId: {result['request']} Version: $LATEST" in tail
    assert "handling echo" in tail and f"REPORT RequestId: {result['request']}" in tail

    _, again = invoke(lam, app_function, {"n": 2})
    assert again["invocations"] == 2  # the same environment, kept warm
    assert again["request"] != result["request"]

    logs = aws_client("logs")
    events = logs.filter_log_events(logGroupName=f"/aws/lambda/{app_function}")["events"]
    messages = [event["message"] for event in events]
    assert f"END RequestId: {result['request']}" in messages and "handling echo" in messages


def test_errors_answer_as_lambda_does(aws_client, app_function, role):
    lam = aws_client("lambda")

    answer, error = invoke(lam, app_function, {"do": "raise"})
    assert answer["StatusCode"] == 200 and answer["FunctionError"] == "Unhandled"
    assert (error["errorType"], error["errorMessage"]) == ("ValueError", "no good")
    assert 'File "/var/task/app.py"' in error["stackTrace"][0]

    _, error = invoke(lam, app_function, {"do": "set"})
    assert error["errorType"] == "Runtime.MarshalError"
    assert error["errorMessage"] == "Unable to marshal response: Object of type set is not JSON serializable"

    answer, error = invoke(lam, app_function, {"do": "sleep", "seconds": 5})
    assert answer["FunctionError"] == "Unhandled" and error["errorType"] == "Sandbox.Timedout"
    assert error["errorMessage"].endswith("Task timed out after 2.00 seconds")

    _, error = invoke(lam, app_function, {"do": "exit"})
    assert error["errorType"] == "Runtime.ExitError"
    assert error["errorMessage"].endswith("Runtime exited with error: exit status 3")

    _, result = invoke(lam, app_function, {"n": 3})
    assert result["invocations"] == 1  # an environment whose runtime ended is never used again

    broken = unique("broken")
    lam.create_function(
        FunctionName=broken,
        Runtime="python3.12",
        Role=role,
        Handler="missing.handler",
        Code={"ZipFile": package({"app.py": APP})},
    )
    answer, error = invoke(lam, broken, {})
    assert answer["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Runtime.ImportModuleError"
    assert error["errorMessage"] == "Unable to import module 'missing': No module named 'missing'"
    lam.update_function_configuration(FunctionName=broken, Handler="app.absent")
    _, error = invoke(lam, broken, {})
    assert (error["errorType"], error["errorMessage"]) == (
        "Runtime.HandlerNotFound",
        "Handler 'absent' missing on module 'app'",
    )

    with pytest.raises(ClientError, match="InvalidRequestContentException"):
        lam.invoke(FunctionName=app_function, Payload=b"{not json")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.invoke(FunctionName=unique("absent"), Payload=b"{}")


def test_dry_runs_run_nothing_and_events_run_in_the_background(aws_client, role):
    lam, s3 = aws_client("lambda"), aws_client("s3")
    name = unique("events")
    lam.create_function(
        FunctionName=name, Runtime="python3.11", Role=role, Handler="app.handler",
        Code={"ZipFile": package({"app.py": APP})},
    )  # fmt: skip
    bucket = unique("events")
    s3.create_bucket(Bucket=bucket)

    assert lam.invoke(FunctionName=name, InvocationType="DryRun")["StatusCode"] == 204
    _, result = invoke(lam, name, {})
    assert result["invocations"] == 1  # the dry run ran nothing

    event = {"do": "put", "bucket": bucket, "key": "async"}
    queued = lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps(event))
    assert queued["StatusCode"] == 202
    deadline = time.monotonic() + 30
    while "Contents" not in s3.list_objects_v2(Bucket=bucket):
        assert time.monotonic() < deadline, "the asynchronous invocation never ran"
        time.sleep(0.2)
    assert s3.get_object(Bucket=bucket, Key="async")["Body"].read() == b"from the function"


def test_a_new_version_of_the_code_runs_and_layers_are_on_the_path(aws_client, role):
    lam = aws_client("lambda")
    layer = lam.publish_layer_version(
        LayerName=unique("helpers"),
        Content={"ZipFile": package({"python/helper.py": "def shout(text):\n    return text.upper()\n"})},
    )["LayerVersionArn"]
    name = unique("layered")
    code = "import helper\ndef handler(event, context):\n    return helper.shout(event['text'])\n"
    lam.create_function(
        FunctionName=name, Runtime="python3.12", Role=role, Handler="app.handler",
        Code={"ZipFile": package({"app.py": code})}, Layers=[layer],
    )  # fmt: skip
    assert invoke(lam, name, {"text": "quiet"})[1] == "QUIET"

    lam.update_function_code(
        FunctionName=name,
        ZipFile=package({"app.py": "def handler(event, context):\n    return event['text'] * 2\n"}),
    )
    assert invoke(lam, name, {"text": "ab"})[1] == "abab"


def test_other_runtimes_and_unsafe_packages_are_refused(aws_client, role, tmp_path):
    lam = aws_client("lambda")
    name = unique("node")
    with pytest.raises(ClientError, match="UnsupportedOperation.*runtime nodejs20.x is not supported"):
        lam.create_function(
            FunctionName=name, Runtime="nodejs20.x", Role=role, Handler="index.handler",
            Code={"ZipFile": package({"index.js": "exports.handler = async () => 1;"})},
        )  # fmt: skip
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName=name)

    escaping = unique("escaping")
    with pytest.raises(ClientError, match="InvalidParameterValueException.*outside its folder"):
        lam.create_function(
            FunctionName=escaping, Runtime="python3.12", Role=role, Handler="app.handler",
            Code={"ZipFile": package({"app.py": "x = 1", "../../escaped.py": "y = 2"})},
        )  # fmt: skip
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName=escaping)

    link = zipfile.ZipInfo("python/passwd")
    link.external_attr = 0o120777 << 16  # a symbolic link
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(link, "/etc/passwd")
    with pytest.raises(ClientError, match="not a regular file"):
        lam.publish_layer_version(LayerName=unique("linked"), Content={"ZipFile": buffer.getvalue()})


def test_an_image_function_from_the_local_ecr_runs(aws_client, docker_client, role, tmp_path):
    """Built from the local base image with the runtime client as its entry point, pushed to the
    local ECR, named as AWS names it."""
    from harness.images import default_base_image

    (tmp_path / "bootstrap.py").write_bytes(RUNTIME_CLIENT.read_bytes())
    (tmp_path / "app.py").write_text("def handler(event, context):\n    return {'image': event['x'] + 1}\n")
    (tmp_path / "Dockerfile").write_text(
        f"FROM {default_base_image()}\nCOPY bootstrap.py app.py /function/\nWORKDIR /function\n"
        "ENV LAMBDA_TASK_ROOT=/function\n"
        'ENTRYPOINT ["python3", "/function/bootstrap.py"]\nCMD ["app.handler"]\n'
    )
    ecr, lam = aws_client("ecr"), aws_client("lambda")
    repository = unique("function-image")
    uri = ecr.create_repository(repositoryName=repository)["repository"]["repositoryUri"]
    token = ecr.get_authorization_token()["authorizationData"][0]
    username, password = base64.b64decode(token["authorizationToken"]).decode().split(":", 1)
    image, _ = docker_client.images.build(path=str(tmp_path), rm=True)
    image.tag(uri, tag="v1")
    aws_named = f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{repository}:v1"
    try:
        for event in docker_client.images.push(
            uri, tag="v1", stream=True, decode=True, auth_config={"username": username, "password": password}
        ):
            assert "error" not in event, event
        docker_client.images.remove(f"{uri}:v1", noprune=True)  # only the local ECR holds it
        name = unique("image")
        lam.create_function(FunctionName=name, PackageType="Image", Role=role, Code={"ImageUri": aws_named})
        assert invoke(lam, name, {"x": 41})[1] == {"image": 42}
        lam.delete_function(FunctionName=name)  # its warm environment ends with it
    finally:
        for tag in (f"{uri}:v1", aws_named, image.id):
            try:
                docker_client.images.remove(tag, force=True)
            except docker.errors.ImageNotFound:
                pass


def test_state_machines_invoke_functions(aws_client, app_function):
    lam, sfn = aws_client("lambda"), aws_client("stepfunctions")
    arn = lam.get_function(FunctionName=app_function)["Configuration"]["FunctionArn"]
    definition = {
        "StartAt": "Integration",
        "States": {
            "Integration": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": arn, "Payload": {"via": "integration", "value.$": "$.value"}},
                "ResultSelector": {"event.$": "$.Payload.event", "status.$": "$.StatusCode"},
                "ResultPath": "$.integration",
                "Next": "Resource",
            },
            "Resource": {
                "Type": "Task",
                "Resource": arn,
                "Parameters": {"via": "resource"},
                "ResultSelector": {"event.$": "$.event"},
                "ResultPath": "$.resource",
                "Next": "Failing",
            },
            "Failing": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": arn, "Payload": {"do": "raise"}},
                "Catch": [{"ErrorEquals": ["ValueError"], "ResultPath": "$.caught", "Next": "Done"}],
                "End": True,
            },
            "Done": {"Type": "Pass", "End": True},
        },
    }
    machine = sfn.create_state_machine(
        name=unique("functions"),
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/sfn",
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"value": 7}))["executionArn"]
    ended = wait_for_execution(sfn, execution, timeout=60)

    assert ended["status"] == "SUCCEEDED", ended
    output = json.loads(ended["output"])
    assert output["integration"] == {"event": {"via": "integration", "value": 7}, "status": 200}
    assert output["resource"] == {"event": {"via": "resource"}}
    assert output["caught"]["Error"] == "ValueError"
    assert json.loads(output["caught"]["Cause"])["errorMessage"] == "no good"


def test_a_stack_deploys_a_function_and_the_state_machine_that_invokes_it(aws_client):
    """The shape a team's template has: a role, an inline Python function, a state machine
    calling it by `Fn::GetAtt Arn`."""
    cfn, sfn = aws_client("cloudformation"), aws_client("stepfunctions")
    assume = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole"}]}
    template = {
        "Resources": {
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": {
                        **assume,
                        "Statement": [
                            {**assume["Statement"][0], "Principal": {"Service": "lambda.amazonaws.com"}}
                        ],
                    }
                },
            },
            "Hello": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Runtime": "python3.12",
                    "Handler": "index.handler",
                    "Role": {"Fn::GetAtt": ["Role", "Arn"]},
                    "Code": {
                        "ZipFile": "def handler(event, context):\n    return {'hello': event['name']}\n"
                    },
                },
            },
            "Machine": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "RoleArn": {"Fn::GetAtt": ["Role", "Arn"]},
                    "DefinitionString": {
                        "Fn::Sub": json.dumps(
                            {
                                "StartAt": "Hello",
                                "States": {
                                    "Hello": {
                                        "Type": "Task",
                                        "Resource": "arn:aws:states:::lambda:invoke",
                                        "Parameters": {"FunctionName": "${Hello.Arn}", "Payload.$": "$"},
                                        "OutputPath": "$.Payload",
                                        "End": True,
                                    }
                                },
                            }
                        )
                    },
                },
            },
        },
        "Outputs": {"Machine": {"Value": {"Ref": "Machine"}}},
    }
    stack = unique("functions")
    cfn.create_stack(StackName=stack, TemplateBody=json.dumps(template), Capabilities=["CAPABILITY_IAM"])
    cfn.get_waiter("stack_create_complete").wait(StackName=stack, WaiterConfig={"Delay": 1})
    (output,) = cfn.describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]
    execution = sfn.start_execution(stateMachineArn=output["OutputValue"], input='{"name": "stack"}')
    ended = wait_for_execution(sfn, execution["executionArn"], timeout=60)
    assert ended["status"] == "SUCCEEDED", ended
    assert json.loads(ended["output"]) == {"hello": "stack"}
