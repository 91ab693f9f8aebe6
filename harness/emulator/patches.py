"""Every change the emulator makes to moto, applied by one function.

Each patch names the upstream defect it works around; tests/unit/test_patches.py
pins each one so that a moto upgrade that moves a hook fails loudly.
"""

from __future__ import annotations

import logging
import os
import re
import threading

import jsonata
from moto.core.config import default_user_config

_applied = False
_log = logging.getLogger(__name__)


def apply_patches() -> None:
    """Apply all patches once per process (idempotent)."""
    global _applied
    if _applied:
        return
    enable_state_machine_execution()
    route_cloudformation_state_machines_to_executing_backend()
    evaluate_jsonata_in_python()
    register_sagemaker_service_integration()
    install_local_sagemaker_backend()
    _applied = True


def enable_state_machine_execution() -> None:
    """moto stores state machines but runs nothing unless this switch is on."""
    default_user_config["stepfunctions"]["execute_state_machine"] = True


def route_cloudformation_state_machines_to_executing_backend() -> None:
    """CloudFormation creates state machines in moto's non-executing backend.

    With execution on, the API reads the parser backend, so a stack's state
    machine "does not exist". Point every reader of the old name at the parser
    backend so both paths share one store.
    """
    import moto.stepfunctions
    import moto.stepfunctions.models
    import moto.stepfunctions.responses
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    moto.stepfunctions.models.stepfunctions_backends = stepfunctions_parser_backends
    moto.stepfunctions.responses.stepfunctions_backends = stepfunctions_parser_backends
    moto.stepfunctions.stepfunctions_backends = stepfunctions_parser_backends


def evaluate_jsonata_in_python() -> None:
    """moto's JSONata evaluator is a stub (upstream needs a JVM); use jsonata-python."""
    from moto.stepfunctions.parser.asl.jsonata import jsonata as asl_jsonata

    def _eval(expression: str):
        try:
            return jsonata.Jsonata(expression).evaluate(None)
        except jsonata.JException as ex:
            raise asl_jsonata.JSONataException(ex.error or "UNKNOWN", str(ex)) from ex

    asl_jsonata._eval_jsonata = _eval


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
        compose_file = next((b for a, b in zip(command, command[1:]) if a == "-f"), "")
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
