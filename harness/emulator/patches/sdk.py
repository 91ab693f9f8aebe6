"""Patches to the SageMaker SDK's local mode, applied lazily by the job runner
(importing the SDK costs about a second)."""

from __future__ import annotations

import logging
import os
import re
import threading

_log = logging.getLogger(__name__)


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


_sdk_lock = threading.Lock()


def apply_sdk_patches() -> None:
    """Once per process; the server warms this up in the background, jobs may race it."""
    global _sdk_applied
    with _sdk_lock:
        if _sdk_applied:
            return
        silence_sdk_telemetry()
        capture_local_mode_output()
        run_compose_files_directly()
        read_submit_directories_as_the_toolkit_does()
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


def run_compose_files_directly() -> None:
    """Local mode runs each job through the compose CLI, which costs most of a second
    before the container starts; run the same compose file through the Docker API
    (sagemaker/direct_docker.py). MLHARNESS_COMPOSE=cli keeps the CLI."""
    if os.environ.get("MLHARNESS_COMPOSE") == "cli":
        return
    import subprocess
    import types

    import sagemaker.local.image as image

    from harness.emulator.sagemaker.direct_docker import COMMAND, ComposeRun

    def _compose(container, detached=False):
        compose_file = os.path.join(container.container_root, image.DOCKER_COMPOSE_FILENAME)
        return [COMMAND, "-f", compose_file, "up", "--detach" if detached else "--abort-on-container-exit"]

    def popen(command, *args, **kwargs):
        if isinstance(command, list) and command and command[0] == COMMAND:
            return ComposeRun(command[2], detached="--detach" in command)
        return subprocess.Popen(command, *args, **kwargs)

    original_down = image._HostingContainer.down

    def down(hosting):
        if isinstance(hosting.process, ComposeRun):
            hosting.process.terminate()
        else:
            original_down(hosting)

    # Only Popen is intercepted; everything else in the module's `subprocess` is the real one.
    image.subprocess = types.SimpleNamespace(**{**vars(subprocess), "Popen": popen})
    image._SageMakerContainer._get_compose_cmd_prefix = staticmethod(lambda: [COMMAND])
    image._SageMakerContainer._compose = _compose
    image._HostingContainer.down = down


def read_submit_directories_as_the_toolkit_does() -> None:
    """Local mode json-decoded the `sagemaker_submit_directory` hyperparameter to decide whether
    to mount a local folder, and crashed ("Expecting value") on a raw S3 URI, which AWS and the
    training toolkit take (the toolkit decodes what decodes and keeps the rest as it is; the
    Step Functions SDK's custom steps pass it raw). Those two decisions now read it so; the
    job's hyperparameters.json is what the request said."""
    import json

    import sagemaker.estimator
    import sagemaker.local.image as image

    submit_directory = sagemaker.estimator.DIR_PARAM_NAME

    def as_json(hyperparameters: dict) -> dict:
        value = hyperparameters.get(submit_directory)
        try:
            json.loads(value)
            return hyperparameters
        except (TypeError, ValueError):
            if value is None:
                return hyperparameters
            return {**hyperparameters, submit_directory: json.dumps(value)}

    original_prepare = image._SageMakerContainer._prepare_training_volumes
    original_update = image._SageMakerContainer._update_local_src_path

    def _prepare_training_volumes(
        container, data_dir, input_data_config, output_data_config, hyperparameters
    ):
        return original_prepare(
            container, data_dir, input_data_config, output_data_config, as_json(hyperparameters)
        )

    def _update_local_src_path(container, params, key):
        if key == submit_directory and as_json(params) is not params:
            return params  # a raw URI is no local folder
        return original_update(container, params, key)

    _prepare_training_volumes.__wrapped__ = original_prepare
    _update_local_src_path.__wrapped__ = original_update
    image._SageMakerContainer._prepare_training_volumes = _prepare_training_volumes
    image._SageMakerContainer._update_local_src_path = _update_local_src_path
