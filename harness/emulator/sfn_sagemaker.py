"""The `arn:aws:states:::sagemaker:*` Task integration, for moto's ASL engine (the default local
AWS) and for LocalStack's (`--engine localstack`): the two are one interpreter, vendored by moto
under other module paths, so one class body serves both, built on each engine's base classes.

Modelled on the engines' Batch integration: the create call goes through a boto client
to the local AWS's own SageMaker API; `.sync` polls Describe* (at the engine's cadence)
until the job ends. Completed returns the Describe output;
Failed or Stopped fails the state with States.TaskFailed and the Describe output
as the cause, as AWS does. An API error on the call fails the state with
`SageMaker.<Exception>`. When the execution stops while a job runs, the job is
stopped too.

Imports only botocore, the engine and mlharness.kinds: it also loads inside LocalStack's own
Python.
"""

from __future__ import annotations

import datetime
import functools
import json
from collections.abc import Callable
from typing import Any, Final

import botocore
import botocore.session
from botocore.exceptions import ClientError

from harness.emulator import asl_engines
from mlharness.kinds import JOBS, Kind

# API action (lower case) -> the job kind it creates (mlharness.kinds).
_JOB_ACTIONS: Final[dict[str, Kind]] = {kind.integration.lower(): kind for kind in JOBS}
_PLAIN_ACTIONS: Final = {"createmodel", "createendpointconfig", "createendpoint", "updateendpoint"}
# Step Functions has it, the local AWS's SageMaker does not run it (Ground Truth needs its workers):
# the state machine is accepted as on AWS, and the call is refused as unsupported, naming it.
_REFUSED_ACTIONS: Final = {"createlabelingjob"}
_FINAL_FAILURES: Final = {"Failed", "Stopped"}
# Error codes the SageMaker Java SDK models as exception classes; others surface as
# AmazonSageMakerException, which is what Step Functions reports for them.
_MODELLED_ERRORS: Final = {"ResourceInUse", "ResourceLimitExceeded", "ResourceNotFound", "Conflict"}


def _sagemaker_operations() -> dict[str, Any]:
    model = botocore.session.get_session().get_service_model("sagemaker")
    return {name.lower(): model.operation_model(name) for name in model.operation_names}


_OPERATIONS: Final = _sagemaker_operations()


@functools.cache
def integration_class(engine: str) -> type:
    """The SageMaker Task integration built on that engine ("moto" or "localstack")."""
    m = asl_engines.engine_modules(engine)
    condition = m.resource.ResourceCondition
    patterns = {condition.WaitForTaskToken, condition.Sync}

    class StateTaskServiceSageMaker(m.callback.StateTaskServiceCallback):
        def __init__(self):
            super().__init__(supported_integration_patterns=patterns)

        def _get_supported_parameters(self) -> set[str] | None:
            action = self.resource.api_action.lower()
            if action not in _JOB_ACTIONS and action not in _PLAIN_ACTIONS | _REFUSED_ACTIONS:
                return None
            return set(_OPERATIONS[action].input_shape.members)

        def _normalise_parameters(
            self, parameters: dict, boto_service_name=None, service_action_name=None
        ) -> None:
            # Step Functions accepts numbers where the API wants strings (hyperparameters).
            self._to_boto_request(parameters, _OPERATIONS[self.resource.api_action.lower()].input_shape)

        def _normalise_response(
            self, response: Any, boto_service_name=None, service_action_name=None
        ) -> None:
            if isinstance(response, dict):
                response.update(_json_safe(response))

        def _from_error(self, env, ex: Exception):
            if isinstance(ex, ClientError):
                code = ex.response["Error"]["Code"]
                base = code.removesuffix("Exception")
                exception = f"{base}Exception" if base in _MODELLED_ERRORS else "AmazonSageMakerException"
                error_name = f"SageMaker.{exception}"
                status = ex.response["ResponseMetadata"].get("HTTPStatusCode")
                request_id = ex.response["ResponseMetadata"].get("RequestId")
                cause = (
                    f"{ex.response['Error'].get('Message')} (Service: AmazonSageMaker; "
                    f"Status Code: {status}; Error Code: {code}; Request ID: {request_id}; Proxy: null)"
                )
                return _task_failed(
                    m, env, self, error_name, cause, m.custom_error_name.CustomErrorName(error_name)
                )
            return super()._from_error(env=env, ex=ex)

        def _eval_service_task(self, env, resource_runtime_part, normalised_parameters, state_credentials):
            client = m.boto_client.boto_client_for(
                region=resource_runtime_part.region, service="sagemaker", state_credentials=state_credentials
            )
            response = getattr(client, self._get_boto_service_action())(**normalised_parameters)
            response.update(sdk_metadata(response.pop("ResponseMetadata", {})))
            env.stack.append(response)

        def _build_sync_resolver(
            self, env, resource_runtime_part, normalised_parameters, state_credentials
        ) -> Callable[[], Any] | None:
            action = self.resource.api_action.lower()
            if action not in _JOB_ACTIONS:
                raise RuntimeError(
                    f"Unsupported .sync callback procedure in resource {self.resource.resource_arn}"
                )
            kind = _JOB_ACTIONS[action]
            describe = botocore.xform_name(kind.operation("Describe"))
            stop = botocore.xform_name(kind.operation("Stop"))
            client = m.boto_client.boto_client_for(
                region=resource_runtime_part.region, service="sagemaker", state_credentials=state_credentials
            )
            env.stack.pop()  # the Create* response; .sync answers with Describe*
            name_key = kind.name_member
            name = normalised_parameters[name_key]

            def _sync_resolver() -> dict | None:
                if not env.is_running():
                    return None
                description = getattr(client, describe)(**{name_key: name})
                description.pop("ResponseMetadata", None)
                status = description[kind.status_member]
                if status == "Completed":
                    return _json_safe(description)
                if status in _FINAL_FAILURES:
                    cause = json.dumps(_json_safe(description), separators=(",", ":"))
                    error = m.states_error_name_type.StatesErrorNameType.StatesTaskFailed
                    raise m.failure_event.FailureEventException(
                        _task_failed(
                            m,
                            env,
                            self,
                            error.to_name(),
                            cause,
                            m.states_error_name.StatesErrorName(typ=error),
                        )
                    )
                return None

            def _stop_job() -> None:
                try:
                    getattr(client, stop)(**{name_key: name})
                except ClientError:
                    pass  # it ended meanwhile

            _sync_resolver.stop_job = _stop_job
            return _sync_resolver

        def _eval_sync(self, env, sync_resolver, timeout_seconds, callback_endpoint, heartbeat_endpoint):
            try:
                return super()._eval_sync(
                    env=env,
                    sync_resolver=sync_resolver,
                    timeout_seconds=timeout_seconds,
                    callback_endpoint=callback_endpoint,
                    heartbeat_endpoint=heartbeat_endpoint,
                )
            finally:
                if not env.is_running():  # StopExecution or a timeout: stop the job too
                    sync_resolver.stop_job()

    return StateTaskServiceSageMaker


# The headers SageMaker answers with, as the Java SDK behind Step Functions names them.
_HEADER_NAMES: Final = {
    "content-length": "Content-Length",
    "content-type": "Content-Type",
    "date": "Date",
    "x-amzn-requestid": "x-amzn-RequestId",
}


def sdk_metadata(response_metadata: dict) -> dict:
    """What Step Functions adds to a request-response SageMaker Task's result: the HTTP answer as
    the Java SDK saw it (SdkHttpMetadata) and its request id (SdkResponseMetadata)."""
    received = {k.lower(): v for k, v in (response_metadata.get("HTTPHeaders") or {}).items()}
    headers = {name: received[lower] for lower, name in _HEADER_NAMES.items() if lower in received}
    request_id = response_metadata.get("RequestId") or received.get("x-amzn-requestid", "")
    headers.setdefault("x-amzn-RequestId", request_id)
    return {
        "SdkHttpMetadata": {
            "AllHttpHeaders": {name: [value] for name, value in headers.items()},
            "HttpHeaders": headers,
            "HttpStatusCode": response_metadata.get("HTTPStatusCode", 200),
        },
        "SdkResponseMetadata": {"RequestId": request_id},
    }


def _task_failed(m, env, service, error: str, cause: str, error_name):
    return m.failure_event.FailureEvent(
        env=env,
        error_name=error_name,
        event_type=m.api.HistoryEventType.TaskFailed,
        event_details=m.event_detail.EventDetails(
            taskFailedEventDetails=m.api.TaskFailedEventDetails(
                error=error,
                cause=cause,
                resource=service._get_sfn_resource(),
                resourceType=service._get_sfn_resource_type(),
            )
        ),
    )


def _json_safe(value: Any) -> Any:
    """Timestamps as epoch milliseconds, as Step Functions reports them."""
    if isinstance(value, datetime.datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value
