"""Invoking Lambda functions: warm environments, the invocation's answer and its log.

`Functions.invoke` takes a function version's configuration and an event and answers as
Lambda's Invoke does: the handler's result, or its error document with FunctionError
`Unhandled` (the handler raised, the runtime could not load it, the invocation timed out,
the runtime exited); the invocation's log, START to REPORT, goes to the function's log
group, one stream per environment, and its last 4 KB are the LogResult `Tail` asks for.
Environments are kept warm for WARM_S after their last invocation, at most MAX_IDLE of
them; an invocation finding none idle starts one (a cold start).
"""

from __future__ import annotations

import base64
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from harness.emulator.functions.environments import ExecutionEnvironment, FunctionConfig, Outcome, Settings
from harness.emulator.functions.runtime_api import Event

log = logging.getLogger(__name__)

WARM_S = 300.0  # an idle environment is kept this long for the next invocation
MAX_IDLE = 8  # idle environments kept at most, the least recently used closed first
# Environments one function version runs at once: more invocations at a time wait for one
# (AWS would scale further; this machine would not).
MAX_CONCURRENT = 8
LOG_TAIL_BYTES = 4096
MAX_SYNC_PAYLOAD = 6 * 1024 * 1024

LogWriter = Callable[[FunctionConfig, str, list[str]], None]  # (function, stream, lines)


class FunctionUnavailable(RuntimeError):
    """The local AWS cannot run the function (its image is missing, Docker failed): the message
    says which and how to fix it."""


@dataclass(frozen=True)
class Answer:
    payload: bytes
    function_error: str | None
    log_tail: str  # base64, the invocation's log's last 4 KB
    request_id: str


class Functions:
    def __init__(self, settings: Settings, write_log: LogWriter):
        self.settings = settings
        self.write_log = write_log
        self._idle: list[ExecutionEnvironment] = []
        self._busy: set[ExecutionEnvironment] = set()
        self._available = threading.Condition()  # an environment was given back or ended
        self._closed = threading.Event()
        threading.Thread(target=self._retire_idle, name="lambda-warm-pool", daemon=True).start()

    def invoke(self, config: FunctionConfig, payload: bytes, client_context: str | None = None) -> Answer:
        request_id = str(uuid.uuid4())
        environment = self._take(config)
        event = Event(request_id, payload or b"{}", config.arn, config.timeout_s, client_context)
        event.trace_id = f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0"
        try:
            outcome = environment.invoke(event)
        finally:
            self._give_back(environment, ended=not environment.usable or not event.done.is_set())
        lines = _report(request_id, config, outcome)
        self.write_log(config, environment.log_stream, lines)
        tail = "\n".join(lines).encode()[-LOG_TAIL_BYTES:]
        return Answer(outcome.payload, outcome.error_type, base64.b64encode(tail).decode(), request_id)

    def invoke_later(self, config: FunctionConfig, payload: bytes) -> str:
        """An asynchronous invocation (InvocationType Event): queued, run in the background."""
        request_id = str(uuid.uuid4())

        def run() -> None:
            try:
                self.invoke(config, payload)
            except Exception:  # nobody waits for it: its failure is logged
                log.warning("asynchronous invocation of %s failed", config.arn, exc_info=True)

        threading.Thread(target=run, name=f"lambda-event-{request_id[:8]}", daemon=True).start()
        return request_id

    def retire(self, arn: str) -> None:
        """The function's idle environments closed (it was deleted); a busy one ends its invocation
        and is closed then."""
        with self._available:
            retired = [e for e in self._idle if e.config.arn == arn]
            self._idle = [e for e in self._idle if e.config.arn != arn]
            for environment in self._busy:
                if environment.config.arn == arn:
                    environment.retired = True
        for environment in retired:
            environment.close()

    def shutdown(self) -> None:
        """Every environment closed; one whose container is starting is closed when it is given
        back (its invocation ends at once: its container is gone)."""
        self._closed.set()
        with self._available:
            running = [e for e in self._busy if isinstance(e, ExecutionEnvironment)]
            environments, self._idle = [*self._idle, *running], []
        for environment in environments:
            environment.close()

    # -- the warm pool -------------------------------------------------------------------
    def _take(self, config: FunctionConfig) -> ExecutionEnvironment:
        with self._available:
            while True:
                if self._closed.is_set():
                    raise FunctionUnavailable("the local AWS is stopping: it starts no more environments")
                # environments of an earlier configuration of this version end (it was changed)
                outdated = [
                    e for e in self._idle if (e.config.arn, e.config.version) == (config.arn, config.version)
                    and e.config != config
                ]  # fmt: skip
                self._idle = [e for e in self._idle if e not in outdated]
                for environment in outdated:
                    threading.Thread(target=environment.close, daemon=True).start()
                found = next((e for e in reversed(self._idle) if e.config == config and e.usable), None)
                if found is not None:
                    self._idle.remove(found)
                    self._busy.add(found)
                    return found
                if sum(e.config == config for e in self._busy) < MAX_CONCURRENT:
                    break
                self._available.wait()
            placeholder = _Starting(config)
            self._busy.add(placeholder)  # counted while its container starts
        environment = ExecutionEnvironment(config, self.settings)
        try:
            environment.start()
        except Exception as ex:
            environment.close()
            with self._available:
                self._busy.discard(placeholder)
                self._available.notify_all()
            raise FunctionUnavailable(_unavailable(config, ex)) from ex
        with self._available:
            self._busy.discard(placeholder)
            self._busy.add(environment)
        return environment

    def _give_back(self, environment: ExecutionEnvironment, ended: bool) -> None:
        retired = []
        with self._available:
            self._busy.discard(environment)
            if ended or environment.retired or self._closed.is_set():
                retired.append(environment)
            else:
                environment.last_used = time.monotonic()
                self._idle.append(environment)
                while len(self._idle) > MAX_IDLE:
                    retired.append(self._idle.pop(0))
            self._available.notify_all()
        for old in retired:
            old.close()

    def _retire_idle(self) -> None:
        while not self._closed.wait(10):
            now = time.monotonic()
            with self._available:
                stale = [e for e in self._idle if now - e.last_used > WARM_S or not e.usable]
                self._idle = [e for e in self._idle if e not in stale]
            for environment in stale:
                environment.close()


@dataclass(eq=False)
class _Starting:
    """An environment whose container is starting: it counts toward its function's limit."""

    config: FunctionConfig
    retired: bool = False


def _report(request_id: str, config: FunctionConfig, outcome: Outcome) -> list[str]:
    """The invocation's log lines as Lambda writes them around the function's own."""
    billed = max(1, int(outcome.duration_ms + 0.999))
    report = (
        f"REPORT RequestId: {request_id}\tDuration: {outcome.duration_ms:.2f} ms\t"
        f"Billed Duration: {billed} ms\tMemory Size: {config.memory_mb} MB\t"
    )
    if outcome.init_ms is not None:
        report += f"Init Duration: {outcome.init_ms:.2f} ms\t"
    return [
        f"START RequestId: {request_id} Version: {config.version}",
        *outcome.log_lines,
        f"END RequestId: {request_id}",
        report,
    ]


def _unavailable(config: FunctionConfig, ex: Exception) -> str:
    import docker.errors

    if isinstance(ex, docker.errors.ImageNotFound):
        if config.code_folder is not None:
            return (
                f"the local AWS has no image {config.image} to run {config.runtime} functions in: "
                "build the local base image (scripts/setup.sh) or name one with --lambda-image"
            )
        return f"the function's image {config.image} is neither on the Docker engine nor in the local ECR"
    return f"the local AWS could not start an environment for {config.name}: {' '.join(str(ex).split())}"
