"""The project's pipelines on both engines of the local AWS, from one suite.

Each row of tests.integration.engines.ENGINES is a context the same tests run in: the default
engine (moto, every service in the project's process) and LocalStack 4.14 with the project's
SageMaker plugged in (`emulator.engine: localstack`). A context that cannot run here is skipped
with one line saying what to install.
"""

from __future__ import annotations

import json
import re
import time
import uuid

import boto3
import pytest

from harness.emulator import LocalAWS
from tests.integration.engines import ENGINE_IDS, ENGINES, EngineContext
from tests.integration.helpers import census_csv, free_port, harness_cli

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module", params=ENGINES, ids=ENGINE_IDS)
def engine(request, tmp_path_factory, docker_client, job_image):
    """(context, harness CLI) on a local AWS of that engine, both pipelines already run once."""
    context: EngineContext = request.param
    why = context.missing()
    if why:
        pytest.skip(f"{context.name} engine: {why}")
    aws = LocalAWS(
        port=free_port(), state_dir=tmp_path_factory.mktemp(f"aws-{context.name}"), engine=context.name
    )
    aws.start()
    name = f"{context.name}-{uuid.uuid4().hex[:6]}"
    harness = harness_cli(
        tmp_path_factory.mktemp(f"home-{context.name}"),
        [f"emulator.port={aws.endpoint_url.rsplit(':', 1)[1]}", f"emulator.engine={context.name}",
         f"stack_name={name}", f"artifact_bucket={name}", "inputs.data.generate.rows=1000"],
    )  # fmt: skip
    harness.aws, harness.bucket, harness.stack = aws, name, name
    harness.client = lambda service: boto3.client(
        service, endpoint_url=aws.endpoint_url, region_name="us-east-1"
    )
    harness.first = harness("run", "--target", "local")
    yield context, harness
    aws.stop()
    assert aws.process.returncode == 0, f"the {context.name} local AWS exited with {aws.process.returncode}"


def test_both_pipelines_run_end_to_end(engine):
    context, harness = engine
    result = harness.first

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    out = result.stdout
    assert ("(engine: LocalStack)" in out) == (context.name == "localstack")
    summary = out.split("== summary", 1)[1]
    assert re.search(r"training run \S+: SUCCEEDED\n  metrics: accuracy=0\.\d+", summary)
    assert re.search(r"inference run \S+: SUCCEEDED", summary)
    # the engine's own account: its Step Functions ran the state machines, its S3 holds the outputs
    assert re.search(
        rf"execution: arn:aws:states:us-east-1:{context.account}:execution:{harness.stack}-training:", summary
    )
    training = json.loads(next((harness.home / "runs" / "local").glob("training-*.json")).read_text())
    # SageMaker answers through the engine's port, in the engine's account
    sagemaker = harness.client("sagemaker")
    train = sagemaker.describe_training_job(TrainingJobName=f"{training['run_id']}-train")
    assert train["TrainingJobStatus"] == "Completed"
    assert train["TrainingJobArn"].split(":")[4] == context.account
    predictions = re.search(r"  predictions: s3://[^/]+/(\S+)", summary).group(1)
    s3 = harness.client("s3")
    objects = s3.list_objects_v2(Bucket=harness.bucket, Prefix=predictions)["Contents"]
    body = s3.get_object(Bucket=harness.bucket, Key=objects[0]["Key"])["Body"].read().decode()
    assert len(body.splitlines()) == 1000


def test_job_logs_are_where_the_engine_keeps_logs(engine):
    _, harness = engine
    training = json.loads(next((harness.home / "runs" / "local").glob("training-*.json")).read_text())
    result = harness("logs", "--target", "local", "--run", training["run_id"])
    assert result.returncode == 0, result.stderr
    assert "== /aws/sagemaker/ProcessingJobs/training-" in result.stdout
    assert "preprocess: fitted on 1000 rows" in result.stdout
    assert "train: fitted logistic regression" in result.stdout


def test_the_endpoint_pipeline_deploys_smoke_tests_and_answers(engine):
    """JSONata states (the endpoint pipeline's failure paths and answer count) included."""
    _, harness = engine
    result = harness("run", "--target", "local", "--pipeline", "endpoint")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert re.search(r"endpoint run \S+: SUCCEEDED", result.stdout)
    assert re.search(r"smoke test: 5 answer\(s\) for 5 sample row\(s\)", result.stdout)  # a JSONata state
    sagemaker = harness.client("sagemaker")
    assert (
        sagemaker.describe_endpoint(EndpointName=f"endpoint-{harness.stack}")["EndpointStatus"] == "InService"
    )
    s3 = harness.client("s3")
    published = json.loads(s3.get_object(Bucket=harness.bucket, Key="models/latest.json")["Body"].read())
    bucket, key = published["SampleUri"].removeprefix("s3://").split("/", 1)
    answer = (
        harness.client("sagemaker-runtime")
        .invoke_endpoint(
            EndpointName=f"endpoint-{harness.stack}",
            ContentType="text/csv",
            Body=s3.get_object(Bucket=bucket, Key=key)["Body"].read(),
        )["Body"]
        .read()
    )
    assert answer and all(re.fullmatch(r"[01],0\.\d{6}", line) for line in answer.decode().splitlines())


def test_a_deployed_schedule_fires_only_where_the_engine_fires_schedules(engine):
    context, harness = engine
    status = harness("status", "--target", "local", "--pipeline", "inference")
    assert status.returncode == 0, status.stderr
    assert ("the local AWS does not fire schedules" in status.stdout) != context.fires_schedules
    if not context.fires_schedules:
        return
    # LocalStack's EventBridge starts the inference pipeline itself, with the rule's input
    s3 = harness.client("s3")
    s3.put_object(Bucket=harness.bucket, Key="incoming/today.csv", Body=census_csv(200))
    deployed = harness(
        "deploy", "--target", "local", extra=("schedules.inference.expression=rate(1 minute)",)
    )
    assert deployed.returncode == 0, deployed.stdout[-2000:] + deployed.stderr[-2000:]
    sfn = harness.client("stepfunctions")
    machine = next(
        m for m in sfn.list_state_machines()["stateMachines"] if m["name"] == f"{harness.stack}-inference"
    )
    deadline = time.monotonic() + 150
    fired = None
    while time.monotonic() < deadline and fired is None:
        executions = sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]
        scheduled = [e for e in executions if not re.fullmatch(r"\d{8}-\d{6}-\w+", e["name"])]
        ended = [e for e in scheduled if e["status"] != "RUNNING"]
        fired = ended[0] if ended else None
        time.sleep(2)
    assert fired is not None, "no scheduled run ended within 150 s"
    assert fired["status"] == "SUCCEEDED", sfn.describe_execution(executionArn=fired["executionArn"])
    output = json.loads(sfn.describe_execution(executionArn=fired["executionArn"])["output"])
    key = output["run"]["PredictionsUri"].split("/", 3)[3]
    objects = s3.list_objects_v2(Bucket=harness.bucket, Prefix=key)["Contents"]
    assert len(s3.get_object(Bucket=harness.bucket, Key=objects[0]["Key"])["Body"].read().splitlines()) == 200


def test_a_state_machine_invokes_a_python_function_and_its_log_is_where_the_engine_keeps_logs(engine):
    """Lambda is the project's on both engines (forwarded by LocalStack): the function runs."""
    import io
    import zipfile

    _, harness = engine
    iam, lam, sfn = harness.client("iam"), harness.client("lambda"), harness.client("stepfunctions")
    name = f"double-{uuid.uuid4().hex[:6]}"
    trust = {"Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole"}]}  # fmt: skip
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr(
            "app.py", "def handler(event, context):\n    print('doubling')\n    return event['x'] * 2\n"
        )
    arn = lam.create_function(
        FunctionName=name, Runtime="python3.12", Role=role, Handler="app.handler",
        Code={"ZipFile": package.getvalue()},
    )["FunctionArn"]  # fmt: skip
    definition = {
        "StartAt": "Double",
        "States": {"Double": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                              "Parameters": {"FunctionName": arn, "Payload.$": "$"},
                              "OutputPath": "$.Payload", "End": True}},
    }  # fmt: skip
    machine = sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=role)
    execution = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], input='{"x": 21}')
    deadline = time.monotonic() + 60
    while (ended := sfn.describe_execution(executionArn=execution["executionArn"]))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution never ended"
        time.sleep(0.3)
    assert ended["status"] == "SUCCEEDED", ended
    assert json.loads(ended["output"]) == 42
    logs = harness.client("logs")
    deadline = time.monotonic() + 20
    while not any(
        e["message"] == "doubling"
        for e in logs.filter_log_events(logGroupName=f"/aws/lambda/{name}").get("events", [])
    ):
        assert time.monotonic() < deadline, "the function's log never reached the engine's Logs"
        time.sleep(0.5)
