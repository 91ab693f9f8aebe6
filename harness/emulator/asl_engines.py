"""The ASL interpreter in either engine, and the fixes both get.

moto vendors LocalStack's Step Functions interpreter under other module paths; the default
engine runs moto's copy, `--engine localstack` runs LocalStack's own. Where the two share a
defect against AWS, the fix is written once here and applied to the engine named
("moto" or "localstack"): by harness.emulator.patches for the default engine, by
harness.emulator.localstack_plugin inside LocalStack.

Imports only jsonata and the engine's modules: it also loads inside LocalStack's Python.
"""

from __future__ import annotations

import importlib
import types
from typing import Final

# engine: (package of the interpreter, its state-task folder, its API types)
_ENGINE_MODULES: Final[dict[str, tuple[str, str, str]]] = {
    "moto": ("moto.stepfunctions.parser", "state.exec.state_task", "moto.stepfunctions.parser.api"),
    "localstack": (
        "localstack.services.stepfunctions",
        "state.state_execution.state_task",
        "localstack.aws.api.stepfunctions",
    ),
}
# AWS's names for services in aws-sdk Task errors, where the engines' table lacks them.
AWS_SDK_ERROR_SERVICE_NAMES: Final = {
    "s3": "S3",
    "sagemaker": "SageMaker",
    "sagemakerruntime": "SageMakerRuntime",
}
# aws-sdk service names that are not boto3's, where the engines' table lacks them.
AWS_SDK_BOTO_SERVICE_NAMES: Final = {"sagemakerruntime": "sagemaker-runtime"}


def engine_modules(engine: str) -> types.SimpleNamespace:
    """The engine's modules, by role. Read functions from them at call time, so that a patch of
    the engine (signing calls as the execution role) applies to every caller."""
    package, task_folder, api = _ENGINE_MODULES[engine]
    component = f"{package}.asl.component"
    service = f"{component}.{task_folder}.service"
    load = importlib.import_module
    return types.SimpleNamespace(
        api=load(api),
        custom_error_name=load(f"{component}.common.error_name.custom_error_name"),
        failure_event=load(f"{component}.common.error_name.failure_event"),
        states_error_name=load(f"{component}.common.error_name.states_error_name"),
        states_error_name_type=load(f"{component}.common.error_name.states_error_name_type"),
        resource=load(f"{service}.resource"),
        state_task_service=load(f"{service}.state_task_service"),
        aws_sdk=load(f"{service}.state_task_service_aws_sdk"),
        callback=load(f"{service}.state_task_service_callback"),
        factory=load(f"{service}.state_task_service_factory"),
        state_task_factory=load(f"{component}.{task_folder}.state_task_factory"),
        event_detail=load(f"{package}.asl.eval.event.event_detail"),
        boto_client=load(f"{package}.asl.utils.boto_client"),
        jsonata=load(f"{package}.asl.jsonata.jsonata"),
    )


def evaluate_jsonata_in_python(engine: str) -> None:
    """moto's JSONata evaluator is a stub, and LocalStack's runs in a JVM it downloads at first
    use (which fails offline); jsonata-python evaluates the same language in-process."""
    import jsonata

    asl_jsonata = engine_modules(engine).jsonata

    def _eval(expression: str):
        try:
            return jsonata.Jsonata(expression).evaluate(None)
        except jsonata.JException as ex:
            raise asl_jsonata.JSONataException(ex.error or "UNKNOWN", str(ex)) from ex

    asl_jsonata._eval_jsonata = _eval


def name_aws_sdk_errors_as_aws(engine: str) -> None:
    """AWS names an aws-sdk Task's errors `<Service>.<Name>Exception` with the service in
    PascalCase (S3.NoSuchKeyException); the engines' table knows DynamoDb and Sfn only, so an
    S3 error came out as `s3.NoSuchKeyException` and a Catch written for AWS missed it."""
    table = engine_modules(engine).aws_sdk._SERVICE_ERROR_NAMES
    for service, name in AWS_SDK_ERROR_SERVICE_NAMES.items():
        table.setdefault(service, name)


def call_aws_sdk_services_by_their_boto_names(engine: str) -> None:
    """`arn:aws:states:::aws-sdk:sagemakerruntime:invokeEndpoint` names the service as AWS's SDK
    integrations do; boto3 calls it sagemaker-runtime, so the engines asked for a client of a
    service that does not exist."""
    table = engine_modules(engine).state_task_service.StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES
    for service, boto_name in AWS_SDK_BOTO_SERVICE_NAMES.items():
        table.setdefault(service, boto_name)


def pass_strings_to_blobs_as_they_are(engine: str) -> None:
    """A string given to a blob parameter (InvokeEndpoint's Body from an aws-sdk Task) reaches
    the service as its bytes, as on AWS; LocalStack's engine JSON-encoded it first, so a CSV body
    arrived quoted. (moto's copy does not normalise aws-sdk parameters at all.)"""
    service = engine_modules(engine).state_task_service.StateTaskService
    upstream = service._to_boto_request_value
    if getattr(upstream, "passes_strings", False):
        return

    def _to_boto_request_value(self, request_value, value_shape):
        if value_shape.type_name == "blob" and isinstance(request_value, str):
            return request_value.encode()
        return upstream(self, request_value, value_shape)

    _to_boto_request_value.passes_strings = True
    service._to_boto_request_value = _to_boto_request_value
