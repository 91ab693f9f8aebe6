"""LocalStack's init hooks, run by the local AWS at the same moments as LocalStack runs them.

A hooks root (LocalStack's is /etc/localstack/init) holds one folder per stage:
- boot.d: before anything starts (LocalStack: the container boots);
- start.d: the state is loaded, the port not yet answering;
- ready.d: the local AWS answers requests (a bucket-seeding script goes here); the local
  AWS says it is ready only after these ran;
- shutdown.d: on stop, while it still answers.

As LocalStack does, each folder is walked in sorted order; `*.sh` files are executed
directly (so they must be executable), `*.py` files are executed with the local AWS's
Python, `exec`'d in an empty namespace as LocalStack does (unlike LocalStack, in a child
process: a script cannot change the local AWS's own state but through its API); other
files are ignored. A script that fails is logged and marked ERROR, and the next one runs.
Unlike LocalStack, each script has a time limit: one that overruns is killed with its whole
process group (what it started too), logged in one line and marked ERROR; a stop of the
local AWS while a script runs kills it the same way, and the stage's other scripts are skipped.
Scripts run with the local AWS's endpoint in AWS_ENDPOINT_URL and LOCALSTACK_HOST (what
`awslocal` and localstack-client read) and test credentials, whatever the environment held:
an init script never reaches real AWS; the tools installed beside the local AWS's Python
(awslocal, aws) come first on its PATH.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

DEFAULT_ROOT = Path("/etc/localstack/init")  # LocalStack's
DEFAULT_TIMEOUT_S = 30.0  # each script's time limit

log = logging.getLogger(__name__)


class Stage(enum.Enum):
    BOOT = "boot.d"
    START = "start.d"
    READY = "ready.d"
    SHUTDOWN = "shutdown.d"


class State(enum.Enum):
    UNKNOWN = "UNKNOWN"
    RUNNING = "RUNNING"
    SUCCESSFUL = "SUCCESSFUL"
    ERROR = "ERROR"


RUNNERS = (".sh", ".py")
_CREDENTIALS = (
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
)
_RUN_PYTHON = "import sys; path = sys.argv[1]; exec(compile(open(path, 'rb').read(), path, 'exec'), {})"


@dataclasses.dataclass
class Script:
    path: Path
    stage: Stage
    state: State = State.UNKNOWN


class ScriptFailed(RuntimeError):
    """An init script exited non-zero, overran its time limit, or was stopped."""


def scripts_in(root: Path | None, stage: Stage) -> list[Path]:
    """The stage's scripts under `root`, in the order they run."""
    if root is None or not (root / stage.value).is_dir():
        return []
    found = []
    for folder, dirs, files in os.walk(root / stage.value, topdown=True):
        dirs.sort()
        for name in sorted(files):
            path = Path(folder, name).absolute()
            if path.is_file() and path.suffix in RUNNERS:
                found.append(path)
    return found


class InitHooks:
    """The scripts found under `root` (None: no hooks), and what became of them."""

    def __init__(
        self,
        root: Path | None,
        endpoint_url: str,
        region: str = "us-east-1",
        timeout: float = DEFAULT_TIMEOUT_S,
    ):
        self.root = root
        self.endpoint_url = endpoint_url
        self.region = region
        self.timeout = timeout
        self.completed = dict.fromkeys(Stage, False)
        self.scripts = {stage: [Script(path, stage) for path in scripts_in(root, stage)] for stage in Stage}
        self._lock = threading.Lock()
        self._running: subprocess.Popen | None = None
        self._started: list[subprocess.Popen] = []  # scripts' process groups, killed at close()
        self._interrupted = threading.Event()

    def interrupt(self) -> None:
        """Kill the script running now, with its process group; the stage's others are skipped
        (the local AWS is stopping). Safe to call from a signal handler."""
        self._interrupted.set()
        running = self._running
        if running is not None:
            _kill_group(running, wait=False)  # the thread that runs it reaps it

    def run(self, stage: Stage) -> list[Script]:
        """Run the stage's scripts once, in order; a failing one is logged and the next runs."""
        with self._lock:
            if self.completed[stage]:
                return self.scripts[stage]
            try:
                for script in self.scripts[stage]:
                    if self._interrupted.is_set() and stage is not Stage.SHUTDOWN:
                        log.error("init script %s (%s) skipped: stopping", script.path, stage.name)
                        continue
                    script.state = State.RUNNING
                    try:
                        self._execute(script.path)
                    except (OSError, ScriptFailed) as ex:
                        script.state = State.ERROR
                        log.error("init script %s (%s) failed: %s", script.path, stage.name, ex)
                    else:
                        script.state = State.SUCCESSFUL
                        log.info("init script %s (%s) ran", script.path, stage.name)
            finally:
                self.completed[stage] = True
            return self.scripts[stage]

    def _execute(self, path: Path) -> None:
        command = [str(path)] if path.suffix == ".sh" else [sys.executable, "-c", _RUN_PYTHON, str(path)]
        # its own process group: what it starts is killed with it
        process = subprocess.Popen(
            command, env=self._environment(), stdin=subprocess.DEVNULL, start_new_session=True
        )
        self._running = process
        self._started.append(process)
        try:
            code = process.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            raise ScriptFailed(f"did not finish within {self.timeout:g} s: killed") from None
        finally:
            self._running = None
        if self._interrupted.is_set() and code < 0:
            raise ScriptFailed("killed: the local AWS is stopping")
        if code != 0:
            raise ScriptFailed(f"exited with code {code}")

    def close(self) -> None:
        """What the scripts left running in the background stops with the local AWS."""
        for process in self._started:
            _kill_group(process)
        self._started.clear()

    def _environment(self) -> dict[str, str]:
        """The caller's environment pointed at this local AWS, whatever credentials it held."""
        environment = {k: v for k, v in os.environ.items() if k not in _CREDENTIALS}
        environment.setdefault("AWS_DEFAULT_REGION", self.region)
        # the tools installed beside the local AWS (awslocal, aws), as LocalStack's image has them
        tools = os.path.dirname(sys.executable)
        environment["PATH"] = os.pathsep.join([tools, environment.get("PATH", os.defpath)])
        environment.update(
            AWS_ENDPOINT_URL=self.endpoint_url,
            LOCALSTACK_HOST=self.endpoint_url.split("://", 1)[-1],
            AWS_ACCESS_KEY_ID="test",
            AWS_SECRET_ACCESS_KEY="test",
        )
        return environment

    def report(self, stage: Stage | None = None) -> dict:
        """LocalStack's /_localstack/init (every stage) or /_localstack/init/<stage> document."""
        stages = [stage] if stage else list(Stage)
        scripts = [
            {"stage": s.stage.name, "name": s.path.name, "state": s.state.name}
            for one in stages
            for s in self.scripts[one]
        ]
        if stage:
            return {"completed": self.completed[stage], "scripts": scripts}
        return {"completed": {s.name: done for s, done in self.completed.items()}, "scripts": scripts}


def _kill_group(process: subprocess.Popen, wait: bool = True) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone
    if wait:
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def start_bound(root: Path | None, timeout: float) -> float:
    """How long the scripts that run before the local AWS says it is ready may take at most."""
    return timeout * sum(len(scripts_in(root, stage)) for stage in (Stage.BOOT, Stage.START, Stage.READY))


def default_root() -> Path | None:
    """LocalStack's hooks root when this machine (or container) has one."""
    return DEFAULT_ROOT if DEFAULT_ROOT.is_dir() else None
