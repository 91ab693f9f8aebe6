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
