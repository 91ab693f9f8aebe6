"""Every change the emulator makes to moto, applied by one function.

Each patch names the upstream defect it works around; tests/unit/test_patches.py
pins each one so that a moto upgrade that moves a hook fails loudly.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time

import jsonata
from moto.core.config import default_user_config
from moto.core.responses import ActionResult
from moto.core.utils import utcnow

_applied = False
STOP_EXECUTION_WAIT_S = 10
_log = logging.getLogger(__name__)


def apply_patches() -> None:
    """Apply all patches once per process (idempotent)."""
    global _applied
    if _applied:
        return
    enable_state_machine_execution()
    route_cloudformation_state_machines_to_executing_backend()
    evaluate_jsonata_in_python()
    allow_states_errors_in_fail_states()
    make_stop_execution_synchronous()
    register_sagemaker_service_integration()
    install_local_sagemaker_backend()
    _applied = True


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


def register_sagemaker_service_integration() -> None:
    """moto lists "sagemaker" as an unsupported Task integration; supply one."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import (
        state_task_factory,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_factory as factory,
    )

    from harness.emulator.sfn_sagemaker import StateTaskServiceSageMaker

    factory._UNSUPPORTED_SERVICE_NAMES.discard("sagemaker")
    upstream = factory.state_task_service_for

    def state_task_service_for(service_name: str):
        if service_name == "sagemaker":
            return StateTaskServiceSageMaker()
        return upstream(service_name)

    factory.state_task_service_for = state_task_service_for
    # state_task_factory imported the function by value.
    state_task_factory.state_task_service_for = state_task_service_for


def install_local_sagemaker_backend() -> None:
    """moto's SageMaker marks every job Completed at once; ours runs them in Docker."""
    import moto.sagemaker
    import moto.sagemaker.models
    import moto.sagemaker.responses

    from harness.emulator.sagemaker.backends import local_sagemaker_backends as backends

    moto.sagemaker.models.sagemaker_backends = backends
    moto.sagemaker.responses.sagemaker_backends = backends
    moto.sagemaker.sagemaker_backends = backends


# -- SageMaker SDK (local mode) ----------------------------------------------
# Applied lazily, by the job runner, because importing the SDK costs a second.


class OutputRoutes:
    """Routes compose output to the log of the job whose folder holds the compose file.

    Routing by folder (not by thread) also covers serving containers, whose
    output local mode reads in a thread of its own.
    """

    def __init__(self) -> None:
        self._routes: dict[str, object] = {}
        self._lock = threading.Lock()

    def register(self, folder: str, sink, compose_sink=None) -> None:
        """sink gets container output lines; compose_sink the compose CLI's own lines."""
        with self._lock:
            self._routes[os.path.join(os.path.abspath(folder), "")] = (sink, compose_sink)

    def unregister(self, folder: str) -> None:
        with self._lock:
            self._routes.pop(os.path.join(os.path.abspath(folder), ""), None)

    def sink_for(self, command: list[str]):
        compose_file = next((b for a, b in zip(command, command[1:], strict=False) if a == "-f"), "")
        with self._lock:
            for folder, sink in self._routes.items():
                if compose_file.startswith(folder):
                    return sink
        return (None, None)


local_mode_output = OutputRoutes()

# "<container>  | \x1b[0m <text>": compose v1 resets colours before each line.
_COMPOSE_LINE = re.compile(r"^(?P<container>\S+)\s+\| ?(?:\x1b\[0m ?)?(?P<text>.*)$")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_sdk_applied = False


def apply_sdk_patches() -> None:
    global _sdk_applied
    if _sdk_applied:
        return
    silence_sdk_telemetry()
    capture_local_mode_output()
    _sdk_applied = True


def silence_sdk_telemetry() -> None:
    """Each create call posts telemetry to an AWS host; offline it logs a traceback."""
    from sagemaker.telemetry import telemetry_logging

    telemetry_logging._send_telemetry_request = lambda *args, **kwargs: None


def capture_local_mode_output() -> None:
    """Local mode copies container output to sys.stdout; send it to the job's log."""
    import sagemaker.local.image as image

    def _stream_output(process):
        sink, compose_sink = local_mode_output.sink_for(list(process.args))
        for raw in iter(process.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            match = _COMPOSE_LINE.match(line)
            if match and sink is not None:
                sink(_ANSI.sub("", match["text"]).rstrip("\r"))
            else:
                _log.info("compose: %s", line)
                if compose_sink is not None:
                    compose_sink(line)
        exit_code = process.wait()
        if exit_code not in (0, 130):
            raise RuntimeError(f"docker compose exited with code {exit_code}")
        return exit_code

    image._stream_output = _stream_output
