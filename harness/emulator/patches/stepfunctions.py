"""Patches to moto's Step Functions (its ASL engine is LocalStack's, vendored)."""

from __future__ import annotations

import time

import jsonata
from moto.core.config import default_user_config
from moto.core.responses import ActionResult
from moto.core.utils import utcnow

STOP_EXECUTION_WAIT_S = 10


def enable_state_machine_execution() -> None:
    """moto stores state machines but runs nothing unless this switch is on."""
    default_user_config["stepfunctions"]["execute_state_machine"] = True


def route_cloudformation_state_machines_to_executing_backend() -> None:
    """CloudFormation creates state machines in moto's non-executing backend.

    With execution on, the API reads the parser backend, so a stack's state
    machine "does not exist". Point the CloudFormation models' reference at the
    parser backend so both paths share one store. (moto.stepfunctions's own
    attribute stays: the server routes requests by that backend's module.)
    """
    import moto.stepfunctions.models
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    moto.stepfunctions.models.stepfunctions_backends = stepfunctions_parser_backends


def evaluate_jsonata_in_python() -> None:
    """moto's JSONata evaluator is a stub (upstream needs a JVM); use jsonata-python."""
    from moto.stepfunctions.parser.asl.jsonata import jsonata as asl_jsonata

    def _eval(expression: str):
        try:
            return jsonata.Jsonata(expression).evaluate(None)
        except jsonata.JException as ex:
            raise asl_jsonata.JSONataException(ex.error or "UNKNOWN", str(ex)) from ex

    asl_jsonata._eval_jsonata = _eval


def allow_states_errors_in_fail_states() -> None:
    """A Fail state may re-raise a caught `States.*` error (ErrorPath: $.error.Error);
    moto's engine wraps the name in CustomErrorName, which refuses that prefix."""
    from moto.stepfunctions.parser.asl.component.common.error_name.error_name import ErrorName
    from moto.stepfunctions.parser.asl.component.state.fail import state_fail

    class FailStateErrorName(state_fail.CustomErrorName):
        def __init__(self, error_name: str | None):
            ErrorName.__init__(self, error_name=error_name)

    state_fail.CustomErrorName = FailStateErrorName


def make_stop_execution_synchronous() -> None:
    """On AWS, once StopExecution returns the execution is ABORTED, with the error and
    cause given. moto drops both and stops in the background, so an immediate
    DescribeExecution still says RUNNING."""
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend
    from moto.stepfunctions.responses import StepFunctionResponse

    def stop_execution(backend, execution_arn: str, error: str | None = None, cause: str | None = None):
        backend._validate_execution_arn(execution_arn)
        state_machine = backend._get_state_machine_for_execution(execution_arn)
        execution = next((x for x in state_machine.executions if x.execution_arn == execution_arn), None)
        if execution is None:
            return state_machine.stop_execution(execution_arn)  # raises ExecutionDoesNotExist
        execution.stop(stop_date=utcnow(), error=error, cause=cause)
        deadline = time.monotonic() + STOP_EXECUTION_WAIT_S
        while execution.status == "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.01)
        return execution

    def stop_execution_response(response):
        execution = response.stepfunction_backend.stop_execution(
            response._get_param("executionArn"),
            error=response._get_param("error"),
            cause=response._get_param("cause"),
        )
        return ActionResult({"stopDate": execution.stop_date})

    StepFunctionsParserBackend.stop_execution = stop_execution
    StepFunctionResponse.stop_execution = stop_execution_response
