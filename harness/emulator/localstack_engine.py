"""LocalStack as the local AWS's engine (`python -m harness emulator --engine localstack`).

LocalStack 4.14 (the last release that runs without an account) serves S3, STS, IAM,
CloudFormation, Step Functions, EventBridge and Logs on the local AWS's port, in host mode, from
its own Python 3.13 environment (`scripts/setup.sh --localstack` makes it). The project's
SageMaker (the default engine's code: jobs really run in Docker) runs beside it as a backend on a
loopback port, and LocalStack reaches it through its own plugin mechanism
(harness.emulator.localstack_plugin): sagemaker, sagemaker-runtime, ecr and lambda (functions
really run, as on the default engine) are forwarded there,
and its Step Functions gets the `sagemaker:*` Task integration.

Imports only the standard library and harness.emulator.processes: the plugin, in LocalStack's
Python, reads its names here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from harness.emulator import processes

LOCALSTACK_VERSION = "4.14.0"
BACKEND_URL_VARIABLE = "MLHARNESS_BACKEND_URL"
PYTHON_VARIABLE = "MLHARNESS_LOCALSTACK_PYTHON"
PROVIDER_NAME = "mlharness"
FORWARDED_SERVICES = ("sagemaker", "sagemaker-runtime", "ecr", "lambda")
OWN_PATH_PREFIX = "/_mlharness"
PLUGIN_MODULE = "harness.emulator.localstack_plugin"
# What LocalStack loads from this project, as a distribution's entry_points.txt lists it.
ENTRY_POINTS = {
    "localstack.aws.provider": {
        f"{service}:{PROVIDER_NAME}": f"{PLUGIN_MODULE}:{service.replace('-', '_')}_service"
        for service in FORWARDED_SERVICES
    },
    "localstack.hooks.on_infra_start": {
        hook: f"{PLUGIN_MODULE}:{hook}" for hook in ("apply_patches", "route_own_endpoints_to_the_backend")
    },
}
READY_TIMEOUT_S = 60
# Variables of the user's environment LocalStack must not see: it would read them as its own
# configuration, or reach real AWS with them.
_NOT_PASSED_PREFIXES = ("AWS_", "LOCALSTACK_", "PROVIDER_OVERRIDE_", "GATEWAY_", "PERSISTENCE", "SERVICES")


class LocalStackUnavailable(RuntimeError):
    """LocalStack's environment is not installed, or LocalStack did not start."""


def default_python() -> Path:
    """$MLHARNESS_LOCALSTACK_PYTHON, else the environment scripts/setup.sh --localstack makes."""
    given = os.environ.get(PYTHON_VARIABLE)
    if given:
        return Path(given)
    return Path(__file__).resolve().parents[2] / ".localstack-venv" / "bin" / "python"


def installed_version(python: Path) -> str | None:
    """The localstack-core version that Python has, or None."""
    if not python.exists():
        return None
    probe = "import importlib.metadata as m; print(m.version('localstack-core'))"
    try:
        answer = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return answer.stdout.strip() if answer.returncode == 0 else None


def require(python: Path | None = None) -> Path:
    """The LocalStack Python to use; LocalStackUnavailable (what to do, in one line) when absent."""
    python = python or default_python()
    version = installed_version(python)
    if version is None:
        raise LocalStackUnavailable(
            f"LocalStack's environment is not installed ({python} has no localstack-core): "
            f"run scripts/setup.sh --localstack, or set {PYTHON_VARIABLE}"
        )
    if version != LOCALSTACK_VERSION:
        raise LocalStackUnavailable(
            f"{python} has localstack-core {version}; the engine is built for {LOCALSTACK_VERSION} "
            "(later releases need an account): run scripts/setup.sh --localstack"
        )
    return python


class LocalStackProcess:
    """LocalStack in host mode as a child process, with this project's plugins on its path."""

    def __init__(
        self,
        python: Path,
        listen: list[str],
        backend_url: str,
        root: Path,
        log_file: Path,
    ):
        """listen: host:port addresses (the first is where it is asked whether it is ready).
        root: LocalStack's own folders and the plugin path (made anew at each start)."""
        self.python = python
        self.listen = listen
        self.backend_url = backend_url
        self.root = root
        self.log_file = log_file
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.listen[0]}"

    def start(self, timeout: float = READY_TIMEOUT_S) -> None:
        with open(self.log_file, "ab") as log_out:
            self.process = subprocess.Popen(
                [str(self.python), "-m", "localstack.runtime.main"],
                env=self._environment(),
                stdout=log_out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        failure = processes.wait_until_ready(self.process, self._ready, timeout, poll_s=0.1)
        if failure == "exited":
            raise LocalStackUnavailable(
                f"LocalStack exited at start (code {self.process.returncode}); log: {self.log_file}"
            )
        if failure == "timeout":
            self.stop()
            raise LocalStackUnavailable(
                f"LocalStack was not ready within {timeout:.0f} s; log: {self.log_file}"
            )

    def stop(self, timeout: float = 30) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/_localstack/health", timeout=1) as answer:  # noqa: S310
                return bool(json.loads(answer.read()).get("services"))
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_NOT_PASSED_PREFIXES)}
        path = self._plugin_path()
        env.update(
            {
                "PYTHONPATH": str(path),
                "GATEWAY_LISTEN": ",".join(self.listen),
                "DNS_ADDRESS": "0",  # no DNS server of its own: it would take port 53
                "SKIP_SSL_CERT_DOWNLOAD": "1",  # offline
                "DISABLE_EVENTS": "1",  # no analytics
                "OVERRIDE_IN_DOCKER": "0",
                "FILESYSTEM_ROOT": str(self.root / "filesystem"),
                "XDG_CACHE_HOME": str(self.root / "cache"),
                "AWS_ACCESS_KEY_ID": "test",  # its own clients' keys, never the user's
                "AWS_SECRET_ACCESS_KEY": "test",
                BACKEND_URL_VARIABLE: self.backend_url,
            }
        )
        for service in FORWARDED_SERVICES:
            env[f"PROVIDER_OVERRIDE_{service.upper().replace('-', '_')}"] = PROVIDER_NAME
        return env

    def _plugin_path(self) -> Path:
        """A folder for LocalStack's sys.path: the harness package and its table of SageMaker's
        kinds (links: only the modules the plugin imports load there), and a distribution record
        naming the plugin's entry points, which is how LocalStack finds plugins."""
        import harness
        import mlharness

        path = self.root / "plugin-path"
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        for package in (harness, mlharness):
            folder = Path(package.__file__).resolve().parent
            (path / package.__name__).symlink_to(folder, target_is_directory=True)
        record = path / f"mlharness_localstack_plugin-{harness.__version__}.dist-info"
        record.mkdir()
        (record / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: mlharness-localstack-plugin\nVersion: {harness.__version__}\n"
        )
        (record / "entry_points.txt").write_text(
            "".join(
                f"[{group}]\n"
                + "".join(f"{name} = {target}\n" for name, target in sorted(points.items()))
                + "\n"
                for group, points in sorted(ENTRY_POINTS.items())
            )
        )
        return path
