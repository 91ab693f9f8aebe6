"""The ASL interpreter in either engine, by the roles of its modules.

moto vendors LocalStack's Step Functions interpreter under other module paths; the default
engine runs moto's copy, `--engine localstack` runs LocalStack's own. Code written for both
(the SageMaker Task integration; the fixes in harness.emulator.patches.interpreter) finds
the engine's modules here.

Imports only the engine's modules: it also loads inside LocalStack's Python.
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
        timeout=load(f"{component}.common.timeouts.timeout"),
        heartbeat=load(f"{component}.common.timeouts.heartbeat"),
        resource=load(f"{service}.resource"),
        state_task_service=load(f"{service}.state_task_service"),
        aws_sdk=load(f"{service}.state_task_service_aws_sdk"),
        callback=load(f"{service}.state_task_service_callback"),
        factory=load(f"{service}.state_task_service_factory"),
        state_task_factory=load(f"{component}.{task_folder}.state_task_factory"),
        event_detail=load(f"{package}.asl.eval.event.event_detail"),
        boto_client=load(f"{package}.asl.utils.boto_client"),
        jsonata=load(f"{package}.asl.jsonata.jsonata"),
        preprocessor=load(f"{package}.asl.parse.preprocessor"),
        asl_parser=load(f"{package}.asl.parse.asl_parser"),
    )
