"""Execution environments: a function's container, its Runtime API, its output.

As on AWS, an environment is made for a function version on its first invocation (a cold
start: the container starts and the runtime imports the handler), serves one invocation
at a time, and is kept warm for the next; an invocation that times out, or whose runtime
exits, ends its environment. The container's file system is read-only but for /tmp (its
size the function's ephemeral storage), it runs as an unprivileged user, with the
function's memory as its limit, on the job network (where it reaches the local AWS as the
function's role, and its own Runtime API).
"""

from __future__ import annotations

import datetime
import importlib
import logging
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.emulator import containers
from harness.emulator.functions.runtime_api import Event, RuntimeApi

log = logging.getLogger(__name__)

RUNTIME_FOLDER = Path(__file__).resolve().parents[2] / "resources" / "lambda_runtime"  # bootstrap.py
FUNCTION_USER = "993:990"  # Lambda's sandbox user: not root, owns nothing in the image
INIT_LIMIT_S = 10.0  # AWS gives a function's initialisation 10 s before its first invocation
OUTPUT_QUIET_S = 0.02  # an invocation's log is taken once the output has been quiet this long
OUTPUT_WAIT_S = 0.25  # or after this long, if the function keeps printing (a background thread)


@dataclass(frozen=True)
class FunctionConfig:
    """What an environment is made from: one version of a function as it is configured."""

    arn: str  # unqualified
    name: str
    version: str
    region: str
    account: str
    role: str
    runtime: str | None
    handler: str | None
    memory_mb: int
    timeout_s: float
    ephemeral_mb: int
    variables: tuple[tuple[str, str], ...]
    code_sha256: str
    image: str  # the image the container runs
    code_folder: Path | None = None  # a .zip package, unpacked
    layers_folder: Path | None = None
    entry_point: tuple[str, ...] | None = None
    command: tuple[str, ...] | None = None
    working_directory: str | None = None

    @property
    def log_group(self) -> str:
        return f"/aws/lambda/{self.name}"


class RuntimeFolder:
    """What /var/runtime holds for a .zip package: the local runtime client, and the AWS SDK for
    Python that AWS's Python runtimes include (boto3 and what it needs: the local AWS's own,
    linked or copied into `path` on the first cold start, so its containers can mount it)."""

    SDK = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six.py", "urllib3")

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()

    def ready(self) -> Path:
        with self._lock:
            if not self.path.is_dir():
                staging = self.path.with_name(self.path.name + ".making")
                shutil.rmtree(staging, ignore_errors=True)
                shutil.copytree(RUNTIME_FOLDER, staging, ignore=shutil.ignore_patterns("__pycache__"))
                for name in self.SDK:
                    _link_tree(_installed(name), staging / name)
                staging.rename(self.path)
        return self.path


def _installed(name: str) -> Path:
    module = importlib.import_module(name.removesuffix(".py"))
    file = Path(module.__file__)
    return file.parent if file.name == "__init__.py" else file


def _link_tree(source: Path, target: Path) -> None:
    """Hard links where the file system allows (no bytes copied), copies elsewhere."""

    def link(src, dst):
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    if source.is_dir():
        shutil.copytree(source, target, copy_function=link, ignore=shutil.ignore_patterns("__pycache__"))
    else:
        link(source, target)


@dataclass
class Settings:
    """What every environment shares: the local AWS as containers see it, and who owns them."""

    endpoint_url: str  # the local AWS, from a container
    api_host: str  # where Runtime APIs listen (an address containers reach)
    runtime: RuntimeFolder  # mounted at /var/runtime for .zip packages
    credentials: Callable[[FunctionConfig], dict[str, str]]


@dataclass
class Outcome:
    payload: bytes
    error_type: str | None  # "Unhandled" when the function failed
    log_lines: list[str] = field(default_factory=list)
    init_ms: float | None = None  # a cold start's initialisation
    duration_ms: float = 0.0


class ExecutionEnvironment:
    def __init__(self, config: FunctionConfig, settings: Settings):
        self.config = config
        self.id = secrets.token_hex(16)
        now = datetime.datetime.now(datetime.UTC)
        self.log_stream = f"{now:%Y/%m/%d}/[{config.version}]{self.id}"
        self.settings = settings
        self.container: str | None = None
        self.exited = threading.Event()
        self.exit_code: int | None = None
        self.last_used = time.monotonic()
        self.retired = False  # its function was deleted: closed once its invocation ends
        self._address: str | None = None
        self._lines: list[str] = []
        self._last_line_at = 0.0
        self._started_at = 0.0
        self._initialised = False
        self._lock = threading.Lock()
        self.api = RuntimeApi(settings.api_host, self._is_mine)

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        client = containers.docker_client()
        config = self.config
        binds = {}
        if config.code_folder is not None:
            binds[str(config.code_folder)] = {"bind": "/var/task", "mode": "ro"}
            binds[str(self.settings.runtime.ready())] = {"bind": "/var/runtime", "mode": "ro"}
        if config.layers_folder is not None:
            binds[str(config.layers_folder)] = {"bind": "/opt", "mode": "ro"}
        created = client.api.create_container(
            config.image,
            entrypoint=list(config.entry_point) if config.entry_point else self._runtime_client(),
            command=list(config.command) if config.command else None,
            working_dir=config.working_directory,
            environment=self._environment(),
            user=FUNCTION_USER,
            labels=containers.labels_for(config.arn),
            host_config=client.api.create_host_config(
                binds=binds,
                network_mode=containers.JOB_NETWORK,
                mem_limit=f"{config.memory_mb}m",
                read_only=True,
                tmpfs={"/tmp": f"size={config.ephemeral_mb}m"},
            ),
        )
        self.container = created["Id"]
        self._started_at = time.monotonic()
        client.api.start(self.container)
        threading.Thread(target=self._read_output, name=f"lambda-log-{self.id[:8]}", daemon=True).start()
        threading.Thread(target=self._wait_for_exit, name=f"lambda-exit-{self.id[:8]}", daemon=True).start()

    def close(self) -> None:
        """The container removed, the Runtime API closed (an environment is never reused after)."""
        self.api.close()
        if self.container is not None:
            try:
                containers.docker_client().api.remove_container(self.container, force=True)
            except Exception:  # already gone
                log.debug("environment %s was already removed", self.id, exc_info=True)
        self.exited.set()

    # -- one invocation ---------------------------------------------------------------
    def invoke(self, event: Event) -> Outcome:
        """Hand the event to the runtime and wait for its answer, its deadline or its end. The
        log lines taken with the answer are those printed since the last answer (a cold start's
        initialisation included)."""
        began = time.monotonic()
        self.api.submit(event)
        init_ms = None
        if not self._initialised:
            if not _first(event.handed, self.api.init_failed, self.exited, timeout=INIT_LIMIT_S):
                return self._timed_out(event, began, init_ms)
            init_ms = (time.monotonic() - self._started_at) * 1000
            if not event.handed.is_set():
                return self._failed_init(event, init_ms)
            self._initialised = True
            began = time.monotonic()
        _first(event.done, self.exited, timeout=event.timeout_s)
        duration = (time.monotonic() - began) * 1000
        if event.done.is_set():
            return Outcome(event.result, event.error_type, self._taken_lines(), init_ms, duration)
        if self.exited.is_set():
            return Outcome(self._exit_error(event), "Unhandled", self._taken_lines(), init_ms, duration)
        return self._timed_out(event, began, init_ms)

    def _timed_out(self, event: Event, began: float, init_ms: float | None) -> Outcome:
        after = f"Task timed out after {event.timeout_s:.2f} seconds"
        lines = [*self._taken_lines(), f"{_now_iso()} {event.request_id} {after}"]
        document = _error("Sandbox.Timedout", f"RequestId: {event.request_id} Error: {after}")
        return Outcome(document, "Unhandled", lines, init_ms, (time.monotonic() - began) * 1000)

    def _failed_init(self, event: Event, init_ms: float) -> Outcome:
        document = self.api.init_error if self.api.init_error is not None else self._exit_error(event)
        return Outcome(document, "Unhandled", self._taken_lines(), init_ms)

    def _exit_error(self, event: Event) -> bytes:
        exited = f"Runtime exited with error: exit status {self.exit_code}"
        return _error("Runtime.ExitError", f"RequestId: {event.request_id} Error: {exited}")

    @property
    def usable(self) -> bool:
        return not self.exited.is_set() and not self.api.init_failed.is_set()

    # -- the container ------------------------------------------------------------------
    def _environment(self) -> dict[str, str]:
        config = self.config
        reserved = {
            "AWS_LAMBDA_RUNTIME_API": self.api.address,
            "AWS_LAMBDA_FUNCTION_NAME": config.name,
            "AWS_LAMBDA_FUNCTION_VERSION": config.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": config.log_group,
            "AWS_LAMBDA_LOG_STREAM_NAME": self.log_stream,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_REGION": config.region,
            "AWS_DEFAULT_REGION": config.region,
            "AWS_ENDPOINT_URL": self.settings.endpoint_url,
            "LAMBDA_TASK_ROOT": "/var/task",
            "LAMBDA_RUNTIME_DIR": "/var/runtime",
            "TZ": ":UTC",
            **self.settings.credentials(config),
        }
        if config.runtime:
            reserved["AWS_EXECUTION_ENV"] = f"AWS_Lambda_{config.runtime}"
        if config.code_folder is not None:  # the local runtime client's
            reserved["_HANDLER"] = config.handler or ""
            reserved["PYTHONUNBUFFERED"] = "1"  # each line in the log as it is printed, as on AWS
        return {**dict(config.variables), **reserved}

    def _runtime_client(self) -> list[str] | None:
        """A .zip package runs the local runtime client; an image, its own entry point."""
        return ["python3", "/var/runtime/bootstrap.py"] if self.config.code_folder is not None else None

    def _is_mine(self, address: str) -> bool:
        if self.container is None:
            return False
        if self._address is None:
            try:
                self._address = containers.address_on_job_network(self.container)
            except Exception:  # not started yet, or gone
                return False
        return address == self._address

    def _read_output(self) -> None:
        for line in containers.output_lines(self.container):
            with self._lock:
                self._lines.append(line)
                self._last_line_at = time.monotonic()

    def _taken_lines(self) -> list[str]:
        """The lines printed since the last answer. What the runtime printed just before it
        answered may still be on its way through Docker's log stream: wait until the output has
        been quiet for OUTPUT_QUIET_S, and at least that long (at most OUTPUT_WAIT_S)."""
        began = time.monotonic()
        while time.monotonic() - began < OUTPUT_WAIT_S:
            time.sleep(OUTPUT_QUIET_S / 4)
            now = time.monotonic()
            if now - began >= OUTPUT_QUIET_S and now - self._last_line_at >= OUTPUT_QUIET_S:
                break
        with self._lock:
            lines, self._lines = self._lines, []
        return lines

    def _wait_for_exit(self) -> None:
        try:
            self.exit_code = int(containers.docker_client().api.wait(self.container)["StatusCode"])
        except Exception:  # removed
            pass
        self.exited.set()


def _first(*events: threading.Event, timeout: float) -> bool:
    """Wait until one of the events is set, or the timeout passes: whether one was."""
    deadline = time.monotonic() + timeout
    while True:
        if any(event.is_set() for event in events):
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        events[0].wait(min(left, 0.01))


def _error(error_type: str, message: str) -> bytes:
    import json

    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


def _now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
