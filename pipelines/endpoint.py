"""Endpoint pipeline: serve a trained model on a real-time endpoint, smoke-test it, and
roll back when the test fails.

create model -> create endpoint config -> create the endpoint, or update it when it
exists -> wait until it is in service (Wait / DescribeEndpoint / Choice, as on AWS,
where endpoints have no .sync) -> invoke it on the sample rows the training run kept
-> the answer must have one line per row. When the test fails, the previous endpoint
config is put back (or a new endpoint is deleted) and the run fails with a cause
naming what the model answered.

The endpoint is named `endpoint-<stack>` (or the `endpoint_name` setting) and tagged
with the stack, so `destroy` finds it.
"""

from __future__ import annotations

from collections.abc import Mapping

from mlharness import tasks
from mlharness.contract import MODEL, BuildContext, Outputs, Pipeline, RunContext
from mlharness.tasks import ENDPOINT_INSTANCE, SAGEMAKER, STACK_NAME, STACK_TAG
from pipelines import data

PREFIX = "endpoint"
SETTINGS = {
    "endpoint_name": "",  # empty: endpoint-<stack name>
    "instance_count": 1,
    "poll_seconds": 15,  # between DescribeEndpoint calls while it comes into service
}
DESCRIBE_ENDPOINT = "arn:aws:states:::aws-sdk:sagemaker:describeEndpoint"
DELETE_ENDPOINT = "arn:aws:states:::aws-sdk:sagemaker:deleteEndpoint"
INVOKE_ENDPOINT = "arn:aws:states:::aws-sdk:sagemakerruntime:invokeEndpoint"
MISSING_ENDPOINT = "SageMaker.SageMakerException"  # DescribeEndpoint's ValidationException
PENDING = ("Creating", "Updating", "SystemUpdating")
INPUT = "$$.Execution.Input"


def definition(build: BuildContext) -> dict:
    states: dict[str, dict] = {}
    failed = "PipelineFailed"

    def task(name: str, resource: str, parameters: dict, result_path: str, next_state: str, **extra) -> None:
        states[name] = {
            "Type": "Task",
            "Resource": resource,
            "Parameters": parameters,
            "ResultPath": result_path,
            "Next": next_state,
            **extra,
            "Catch": [*extra.get("Catch", []), _catch(["States.ALL"], failed, "$.error")],
        }

    model = tasks.create_model(
        "CreateModel",
        tasks.state_path(f"{INPUT}.ModelName"),
        tasks.state_path("$.Model.ModelArtifactUri"),
        tasks.state_path(f"{INPUT}.CodeUri"),
    )
    task("CreateModel", model.resource, model.parameters, "$.created.model", "CreateEndpointConfig")
    task(
        "CreateEndpointConfig",
        f"{SAGEMAKER}:createEndpointConfig",
        {
            "EndpointConfigName.$": f"{INPUT}.EndpointConfigName",
            "ProductionVariants": [
                {
                    "VariantName": "AllTraffic",
                    "ModelName.$": f"{INPUT}.ModelName",
                    "InitialInstanceCount.$": f"{INPUT}.InstanceCount",
                    "InstanceType": ENDPOINT_INSTANCE,
                    "InitialVariantWeight": 1,
                }
            ],
        },
        "$.created.config",
        "FindEndpoint",
    )
    task(
        "FindEndpoint",
        DESCRIBE_ENDPOINT,
        {"EndpointName.$": f"{INPUT}.EndpointName"},
        "$.previous",
        "UpdateEndpoint",
        ResultSelector={
            "EndpointConfigName.$": "$.EndpointConfigName",
            "EndpointStatus.$": "$.EndpointStatus",
        },
        Catch=[_catch([MISSING_ENDPOINT], "CreateEndpoint", "$.lookup")],
    )
    deploy = {
        "EndpointName.$": f"{INPUT}.EndpointName",
        "EndpointConfigName.$": f"{INPUT}.EndpointConfigName",
    }
    task("UpdateEndpoint", f"{SAGEMAKER}:updateEndpoint", deploy, "$.deploy", "WaitForEndpoint")
    task(
        "CreateEndpoint",
        f"{SAGEMAKER}:createEndpoint",
        {**deploy, "Tags": [{"Key": STACK_TAG, "Value": STACK_NAME}]},
        "$.deploy",
        "WaitForEndpoint",
    )
    # The execution input's keys stay at the top of the state data (every result goes under its own key).
    _wait_loop(
        states,
        task,
        ("WaitForEndpoint", "DescribeEndpoint", "EndpointReady"),
        config_path="$.EndpointConfigName",
        in_service="ReadSample",
        otherwise="DeploymentFailed",
    )
    # In service, but with the old config: the update failed and AWS kept the old model serving.
    states["EndpointReady"]["Choices"].insert(
        1,
        {
            "Variable": "$.endpoint.EndpointStatus",
            "StringEquals": "InService",
            "Next": "UpdateFailed",
        },
    )
    states["UpdateFailed"] = _failure(
        "EndpointUpdateFailed",
        "'endpoint ' & $states.input.endpoint.EndpointName & ' kept config ' "
        "& $states.input.endpoint.EndpointConfigName & ': the update failed: ' & " + _reason("endpoint"),
        "EndpointFailed",
    )
    states["DeploymentFailed"] = _failure(
        "EndpointDeploymentFailed",
        "'endpoint ' & $states.input.endpoint.EndpointName & ' is ' & $states.input.endpoint.EndpointStatus "
        "& ': ' & " + _reason("endpoint"),
        "RollBack",
    )

    smoke_failed = _catch(["States.ALL"], "SmokeTestErrored", "$.smoke_error")
    task(
        "ReadSample",
        tasks.S3_GET_OBJECT,
        {"Bucket.$": f"{INPUT}.SampleBucket", "Key.$": f"{INPUT}.SampleKey"},
        "$.sample",
        "SmokeTest",
        ResultSelector={"Body.$": "$.Body"},
        Catch=[smoke_failed],
    )
    task(
        "SmokeTest",
        INVOKE_ENDPOINT,
        {
            "EndpointName.$": f"{INPUT}.EndpointName",
            "ContentType": "text/csv",
            "Accept": "text/csv",
            "Body.$": "$.sample.Body",
        },
        "$.smoke",
        "CountAnswers",
        ResultSelector={"Body.$": "$.Body"},
        Catch=[smoke_failed],
    )
    states["SmokeTestErrored"] = _failure(
        "SmokeTestFailed",
        "'the smoke test of endpoint ' & $states.context.Execution.Input.EndpointName & ' failed: ' "
        "& $states.input.smoke_error.Cause",
        "RollBack",
    )
    lines = "$count($filter($split({}, '\\n'), function($line) {{ $line != '' }}))"
    states["CountAnswers"] = {
        "Type": "Pass",
        "QueryLanguage": "JSONata",
        "Output": "{% $merge([$states.input, {'answers': {'rows': "
        + lines.format("$states.input.sample.Body")
        + ", 'lines': "
        + lines.format("$states.input.smoke.Body")
        + "}}]) %}",
        "Next": "AnswerComplete",
    }
    states["AnswerComplete"] = {
        "Type": "Choice",
        "Choices": [
            {"Variable": "$.answers.lines", "NumericEqualsPath": "$.answers.rows", "Next": "Deployed"},
        ],
        "Default": "AnswerIncomplete",
    }
    states["AnswerIncomplete"] = _failure(
        "SmokeTestFailed",
        "'the model answered ' & $string($states.input.answers.lines) & ' line(s) for ' "
        "& $string($states.input.answers.rows) & ' row(s): ' & $states.input.smoke.Body",
        "RollBack",
    )
    states["Deployed"] = {"Type": "Succeed"}

    states["RollBack"] = {
        "Type": "Choice",
        "Choices": [{"Variable": "$.previous", "IsPresent": True, "Next": "RestorePreviousConfig"}],
        "Default": "DeleteNewEndpoint",
    }
    task(
        "RestorePreviousConfig",
        f"{SAGEMAKER}:updateEndpoint",
        {"EndpointName.$": f"{INPUT}.EndpointName", "EndpointConfigName.$": "$.previous.EndpointConfigName"},
        "$.restore",
        "WaitForRollback",
    )
    _wait_loop(
        states,
        task,
        ("WaitForRollback", "DescribeRollback", "RolledBack"),
        config_path="$.previous.EndpointConfigName",
        in_service="EndpointFailed",
        otherwise="RollbackFailed",
    )
    states["RollbackFailed"] = _failure(
        "EndpointRollbackFailed",
        "$states.input.failure.cause & '; putting config ' & $states.input.previous.EndpointConfigName "
        "& ' back failed too: ' & " + _reason("endpoint"),
        "EndpointFailed",
    )
    task(
        "DeleteNewEndpoint",
        DELETE_ENDPOINT,
        {"EndpointName.$": f"{INPUT}.EndpointName"},
        "$.deleted",
        "EndpointFailed",
    )
    states["EndpointFailed"] = {
        "Type": "Fail",
        "ErrorPath": "$.failure.error",
        "CausePath": "$.failure.cause",
    }
    states[failed] = {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"}
    return {"StartAt": "CreateModel", "States": states}


def _wait_loop(
    states, task, names: tuple[str, str, str], *, config_path: str, in_service: str, otherwise: str
):
    """Wait, DescribeEndpoint, then: in service with `config_path`'s config -> in_service; still
    changing -> wait again; anything else -> otherwise."""
    wait, describe, choice = names
    states[wait] = {"Type": "Wait", "SecondsPath": f"{INPUT}.PollSeconds", "Next": describe}
    task(describe, DESCRIBE_ENDPOINT, {"EndpointName.$": f"{INPUT}.EndpointName"}, "$.endpoint", choice)
    states[choice] = {
        "Type": "Choice",
        "Choices": [
            {
                "And": [
                    {"Variable": "$.endpoint.EndpointStatus", "StringEquals": "InService"},
                    {"Variable": "$.endpoint.EndpointConfigName", "StringEqualsPath": config_path},
                ],
                "Next": in_service,
            },
            {
                "Or": [{"Variable": "$.endpoint.EndpointStatus", "StringEquals": s} for s in PENDING],
                "Next": wait,
            },
        ],
        "Default": otherwise,
    }


def _failure(error: str, cause: str, next_state: str) -> dict:
    """A JSONata Pass that records why the run fails under $.failure (absent fields tolerated)."""
    return {
        "Type": "Pass",
        "QueryLanguage": "JSONata",
        "Output": f"{{% $merge([$states.input, {{'failure': {{'error': '{error}', 'cause': {cause}}}}}]) %}}",
        "Next": next_state,
    }


def _reason(field: str) -> str:
    reason = f"$states.input.{field}.FailureReason"
    return f"($exists({reason}) ? {reason} : 'no reason given')"


def _catch(errors: list[str], next_state: str, result_path: str) -> dict:
    return {"ErrorEquals": errors, "Next": next_state, "ResultPath": result_path}


def execution_input(run: RunContext) -> dict:
    model = run.consumed[MODEL.kind]
    sample = model["SampleUri"].removeprefix("s3://")
    endpoint = run.settings["endpoint_name"] or f"{PREFIX}-{run.stack_name}"
    if len(endpoint) > 63:
        raise ValueError(
            f"endpoint name {endpoint!r} is longer than SageMaker's 63 characters: set endpoint_name"
        )
    return {
        "RunId": run.run_id,
        "Model": dict(model),
        "CodeUri": run.code_uri,
        "ModelName": f"{run.run_id}-model",
        "EndpointConfigName": f"{run.run_id}-config",
        "EndpointName": endpoint,
        "InstanceCount": run.settings["instance_count"],
        "SampleBucket": sample.split("/", 1)[0],
        "SampleKey": sample.split("/", 1)[1],
        "PollSeconds": run.settings["poll_seconds"],
    }


def outputs(execution_input: dict, output: dict) -> Outputs:
    name, config = execution_input["EndpointName"], execution_input["EndpointConfigName"]
    previous = (output.get("previous") or {}).get("EndpointConfigName")
    answers = output["answers"]
    return Outputs(
        values={
            "endpoint_name": name,
            "endpoint_config_name": config,
            "model_name": execution_input["ModelName"],
            "previous_endpoint_config_name": previous,
        },
        consumed={MODEL.kind: execution_input["Model"]["RunId"]},
        summary=[
            (
                "endpoint",
                f"{name} in service with config {config}" + (f" (was {previous})" if previous else ""),
            ),
            ("smoke test", f"{answers['lines']} answer(s) for {answers['rows']} sample row(s)"),
        ],
        headline=f"endpoint {name} ({config})",
        resources={"endpoint": name},
    )


def check_settings(settings: Mapping) -> None:
    name = settings["endpoint_name"]
    if name and not name.startswith(f"{PREFIX}-"):
        raise ValueError(
            f"endpoint_name: expected a name starting with '{PREFIX}-' (its IAM statements allow)"
        )
    if settings["instance_count"] < 1:
        raise ValueError("instance_count: expected at least 1")
    if not 0 < settings["poll_seconds"] <= 3600:
        raise ValueError("poll_seconds: expected 1 to 3600")


PIPELINE = Pipeline(
    name="endpoint",
    prefix=PREFIX,
    description="serve the model on a real-time endpoint, smoke-test it, roll back on failure",
    definition=definition,
    execution_input=execution_input,
    outputs=outputs,
    kinds=frozenset({"model", "endpoint-config", "endpoint"}),
    settings=SETTINGS,
    check_settings=check_settings,
    consumes=(MODEL,),
    code=data.CODE,  # the model serves jobs/serve.py from the bundle
    # An endpoint bills by the hour on AWS: it runs when asked for (--pipeline endpoint or all).
    runs_by_default=False,
)
