"""The local AWS: one process, one port, every service the pipelines use.

`serve()` runs in the emulator process: it patches moto, wires the SageMaker
runner, and listens on loopback and on the gateway of the Docker network the job
containers use (so they can call it), never on all interfaces unless asked.
`LocalAWS` starts that process as a child in a session of its own (a Ctrl-C at the
terminal reaches the command, which decides, not the local AWS), waits until it is
ready and stops it. A *managed* one (what `run` starts) stops itself once no command
holds a lease on it and nothing runs (harness.emulator.leases).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from harness.emulator import leases, processes
from harness.emulator.internal_api import answering

DEFAULT_PORT = 4566
READY_TIMEOUT_S = 30
INFO_PATH = "/_mlharness/info"
IDLE_CHECK_S = 0.5
IDLE_CHECKS_BEFORE_STOP = 3  # a managed local AWS stops after this many idle checks in a row

log = logging.getLogger("harness.emulator")


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "mlharness" / "emulator"


class EmulatorError(RuntimeError):
    pass


# -- the parent's side ---------------------------------------------------------
class LocalAWS:
    """Start, health-check and stop the emulator as a child process.

    with LocalAWS(state_dir=tmp) as aws:
        boto3.client("s3", endpoint_url=aws.endpoint_url, ...)
    """

    def __init__(
        self,
        port: int = 0,
        state_dir: str | os.PathLike | None = None,
        host: str = "127.0.0.1",
        docker_gateway: bool = True,
        keep_containers: bool = False,
        log_file: str | os.PathLike | None = None,
        mock_config: str | os.PathLike | None = None,
        managed: bool = False,
        cache: bool = False,
        cache_dir: str | os.PathLike | None = None,
        cache_expire_after: float | None = None,
        cache_max_bytes: int | None = None,
        init_dir: str | os.PathLike | None = None,
        iam: str = "off",
        engine: str = "moto",
    ):
        """mock_config: a Step Functions Local mock configuration for `<arn>#<test case>` runs.
        managed: it stops itself when no lease is held and nothing runs; start() takes a lease
        for this process, leave() gives it back."""
        self.port = port
        self.state_dir = Path(state_dir) if state_dir else default_state_dir()
        self.host = host
        self.docker_gateway = docker_gateway
        self.keep_containers = keep_containers
        self.log_file = Path(log_file) if log_file else self.state_dir / "emulator.log"
        self.mock_config = Path(mock_config) if mock_config else None
        self.managed = managed
        self.cache = cache  # the step cache: in cache_dir, default <state dir>/cache
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.cache_expire_after = cache_expire_after
        self.cache_max_bytes = cache_max_bytes
        self.init_dir = Path(init_dir) if init_dir else None
        self.iam = iam  # off | soft | strict
        self.engine = engine  # moto (the default) | localstack (harness.emulator.localstack_engine)
        self.lease: Path | None = None
        self.process: subprocess.Popen | None = None
        self.info: dict = {}

    @property
    def endpoint_url(self) -> str:
        return self.info["endpoint_url"]

    def start(self, timeout: float = READY_TIMEOUT_S) -> LocalAWS:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        ready_file = Path(tempfile.mkdtemp(prefix="mlharness-ready-")) / "ready.json"
        args = [
            sys.executable, "-m", "harness.emulator",
            "--port", str(self.port), "--host", self.host,
            "--state-dir", str(self.state_dir), "--ready-file", str(ready_file),
        ]  # fmt: skip
        if not self.docker_gateway:
            args.append("--no-docker-gateway")
        if self.keep_containers:
            args.append("--keep-containers")
        if self.mock_config:
            args += ["--mock-config", str(self.mock_config)]
        if self.cache:
            from harness.emulator.sagemaker import step_cache

            args += ["--cache", str(self.cache_dir or step_cache.default_root(self.state_dir))]
            if self.cache_expire_after is not None:
                args += ["--cache-expire-after", str(self.cache_expire_after)]
            if self.cache_max_bytes is not None:
                args += ["--cache-max-gb", str(self.cache_max_bytes / 2**30)]
        if self.init_dir:
            args += ["--init-dir", str(self.init_dir)]
        if self.iam != "off":
            args += ["--iam", self.iam]
        if self.engine != "moto":
            args += ["--engine", self.engine]
        if self.managed:
            args.append("--managed")
            self.lease = leases.acquire(self.state_dir)  # before it starts, so it never sees none
        with open(self.log_file, "ab") as log_out:
            self.process = subprocess.Popen(
                args,
                stdout=log_out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            failure = processes.wait_until_ready(self.process, ready_file.exists, timeout)
            if failure == "exited":
                raise EmulatorError(
                    f"the local AWS exited at start (code {self.process.returncode}): "
                    f"{_last_line(self.log_file)}; full log: {self.log_file}"
                )
            if failure == "timeout":
                self.stop()
                raise EmulatorError(
                    f"the local AWS was not ready within {timeout:.0f} s; log: {self.log_file}"
                )
            self.info = json.loads(ready_file.read_text())
        except BaseException:
            leases.release(self.lease)  # it did not start: hold nothing on its state dir
            self.lease = None
            raise
        finally:
            ready_file.unlink(missing_ok=True)
            ready_file.parent.rmdir()
        return self

    def leave(self, timeout: float = 60) -> bool:
        """Give back this process's lease on a managed local AWS; when nothing else holds one and
        nothing runs, wait for it to stop. True when it has stopped."""
        leases.release(self.lease)
        self.lease = None
        if self.process is None:
            return True
        still = info_of(self.endpoint_url) if self.process.poll() is None else None
        if still and (still.get("leases") or still.get("running")):
            return False  # another command uses it, or an execution goes on: it stops when they end
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def stop(self, timeout: float = 60) -> None:
        """Stop the emulator; it stops the jobs and containers it started first."""
        leases.release(self.lease)
        self.lease = None
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """kill -9: for tests of what survives a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> LocalAWS:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def info_of(endpoint_url: str, timeout: float = 2) -> dict | None:
    """What a running local AWS says of itself (None when it does not answer, or is not ours)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{endpoint_url}{INFO_PATH}", timeout=timeout) as answer:  # noqa: S310
            return json.loads(answer.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    return lines[-1] if lines else "no output"


# -- the emulator process --------------------------------------------------------
def serve(
    port: int = DEFAULT_PORT,
    host: str = "127.0.0.1",
    state_dir: Path | None = None,
    docker_gateway: bool = True,
    keep_containers: bool = False,
    ready_file: Path | None = None,
    mock_config: Path | None = None,
    managed: bool = False,
    cache_dir: Path | None = None,
    cache_max_bytes: int | None = None,
    cache_expire_after: float | None = None,
    init_dir: Path | None = None,
    in_container: bool = False,
    scratch_dir: Path | None = None,
    iam: str = "off",
    engine: str = "moto",
) -> None:
    """cache_dir: run jobs through the step cache kept there (None: no cache).
    init_dir: LocalStack-style init hooks (default: LocalStack's /etc/localstack/init if present).
    in_container: this process runs in a container (docker compose) on the host's engine: job
    containers reach it on its own network, by its alias there, and it calls serving containers
    there too. scratch_dir: where job folders are made (default: the temp dir); in a container,
    it must be bind-mounted at the same path, since the engine resolves job mounts on the host.
    iam: off, soft (would-be denials noted in the fidelity report) or strict (AccessDenied).
    engine: moto (the default), or localstack: LocalStack serves the port and forwards SageMaker
    and ECR to this process, which then listens on a loopback port of its own."""
    from werkzeug.serving import make_server

    from harness.emulator import init_hooks, localstack_engine, sfn_mocking

    localstack_python = None
    if engine == "localstack":
        try:
            localstack_python = localstack_engine.require()
        except localstack_engine.LocalStackUnavailable as ex:
            raise SystemExit(f"error: {ex}") from None
        if in_container:
            raise SystemExit("error: --engine localstack runs on the host, not --in-container")
        if iam != "off":
            log.warning("IAM is not evaluated on --engine localstack: its roles live in LocalStack's IAM")
            iam = "off"
    hooks = init_hooks.InitHooks(
        Path(init_dir) if init_dir else init_hooks.default_root(),
        f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port or DEFAULT_PORT}",
    )
    hooks.run(init_hooks.Stage.BOOT)
    try:  # a broken mock configuration stops the start, in one line
        sfn_mocking.configure(mock_config or os.environ.get("SFN_MOCK_CONFIG") or None)
    except sfn_mocking.MockConfigError as ex:
        raise SystemExit(f"error: {ex}") from None
    state_dir = Path(state_dir or default_state_dir())
    state_dir.mkdir(parents=True, exist_ok=True)
    try:
        state_lock = leases.StateDirLock(state_dir).acquire()
    except leases.StateDirInUse as ex:
        raise SystemExit(f"error: {ex}") from None
    port = _bind_check(host, port)
    hooks.endpoint_url = hooks.endpoint_url.rsplit(":", 1)[0] + f":{port}"  # port 0 resolved
    # With LocalStack in front, this process serves it alone, on loopback.
    own_port = _bind_check("127.0.0.1", 0) if localstack_python else port
    # The engine's own clients (aws-sdk tasks, .sync polling) call MOTO_PORT.
    os.environ["MOTO_PORT"] = str(own_port)
    os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from moto.server import MotoRequestHandler

    from harness.emulator import (
        cache_api,
        containers,
        coverage,
        fidelity,
        localstack_api,
        patches,
        request_guard,
    )
    from harness.emulator.iam import enforcement
    from harness.emulator.log_store import LogStore
    from harness.emulator.machine_store import StateMachineStore
    from harness.emulator.s3_store import S3Store
    from harness.emulator.sagemaker import logs as job_logs
    from harness.emulator.sagemaker import timeline
    from harness.emulator.sagemaker.cached_runner import CachedRunner
    from harness.emulator.sagemaker.docker_runner import DockerRunner
    from harness.emulator.sagemaker.models import LocalSageMakerBackend
    from harness.emulator.sagemaker.step_cache import DEFAULT_MAX_BYTES, StepCache
    from harness.emulator.stack_store import StackStore

    patches.apply_patches()
    removed = containers.remove_orphaned_containers() + containers.remove_orphaned_networks()
    if removed:
        log.info("removed %d container(s) left by an earlier emulator", removed)

    if in_container:
        try:
            container_url = containers.join_own_network(port)
        except containers.DockerUnavailable as ex:
            raise SystemExit(f"error: {ex}") from None
        hosts = [host]
    else:
        gateway = containers.job_network_gateway() if docker_gateway else None
        hosts = [host] + ([gateway] if gateway and gateway != host else [])
        container_url = f"http://{gateway}:{port}" if gateway else f"http://{host}:{port}"

    # Job scratch (staged inputs, the /opt/ml folders containers mount).
    if scratch_dir is not None:
        Path(scratch_dir).mkdir(parents=True, exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix="mlharness-jobs-", dir=scratch_dir))
    enforcer = enforcement.Enforcer(iam)
    runner = DockerRunner(
        container_url,
        str(work_dir),
        keep_containers=keep_containers,
        serving_by_network=in_container,
        authorize=enforcer.job_may,
    )
    cached = None
    if cache_dir is not None:
        cache = StepCache(cache_dir, cache_max_bytes or DEFAULT_MAX_BYTES, cache_expire_after)
        cached = CachedRunner(runner, cache)
    LocalSageMakerBackend.configure(cached or runner, model_host=runner)
    stores = (
        S3Store(state_dir / "s3"),
        StackStore(state_dir / "stacks"),
        StateMachineStore(state_dir / "state-machines"),
    )
    for store in stores:
        store.restore()
    patches.keep_state_in(*stores)
    log_store = LogStore(state_dir / "logs")
    log_store.restore()
    job_logs.persist_to(log_store)
    if localstack_python:  # users read job logs from LocalStack's Logs
        job_logs.mirror_to(f"http://127.0.0.1:{port}")
    registry = _start_registry(state_dir)
    hooks.run(init_hooks.Stage.START)

    stopping = threading.Event()
    info = {
        "endpoint_url": f"http://{host}:{port}",
        "container_endpoint_url": container_url,
        "listen": [f"{h}:{port}" for h in hosts],
        # in a container, its paths mean nothing to the commands that use it
        "state_dir": None if in_container else str(state_dir),
        "pid": os.getpid(),
        "instance": processes.instance_id(),
        "managed": managed,
        "registry": registry.address if registry else None,
        "mock_config": str(sfn_mocking.configured.path) if sfn_mocking.configured else None,
    }
    info["cache"] = str(cache_dir) if cache_dir is not None else None
    info["iam"] = iam
    info["engine"] = engine
    app = enforcer.wsgi(request_guard.guarded(DomainDispatcherApplication(create_backend_app)))
    app = _with_info(fidelity.serving(timeline.serving(cache_api.serving(app, cached))), info, state_dir)
    localstack = localstack_api.LocalStackEndpoints(list(coverage.SERVICES), hooks, stopping)
    app = localstack_api.serving(app, localstack)
    own_hosts = ["127.0.0.1"] if localstack_python else hosts
    servers = [
        make_server(h, own_port, app, threaded=True, request_handler=MotoRequestHandler) for h in own_hosts
    ]
    for server in servers:
        threading.Thread(target=server.serve_forever, name=f"http-{server.host}", daemon=True).start()
    front = None

    def close() -> None:
        """Stop what it serves and runs, in order: the front (LocalStack), this process's servers,
        the jobs, the registry; then free the job scratch and the state dir."""
        if front is not None:
            front.stop()
        for server in servers:
            server.shutdown()
        _stop_all_jobs()
        runner.shutdown()
        if registry is not None:
            registry.stop()
        shutil.rmtree(work_dir, ignore_errors=True)
        state_lock.release()

    if localstack_python:
        front = localstack_engine.LocalStackProcess(
            localstack_python,
            listen=info["listen"],
            backend_url=f"http://127.0.0.1:{own_port}",
            root=state_dir / "localstack",
            log_file=state_dir / "localstack.log",
        )
        try:
            front.start()
        except localstack_engine.LocalStackUnavailable as ex:
            close()
            raise SystemExit(f"error: {ex}") from None

    def on_signal(signum, frame):
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    hooks.run(init_hooks.Stage.READY)  # before it says it is ready: what they seed is there
    if managed:
        threading.Thread(target=_stop_when_idle, args=(state_dir, stopping), name="idle", daemon=True).start()
    if ready_file:
        tmp = Path(str(ready_file) + ".tmp")
        tmp.write_text(json.dumps(info))
        tmp.replace(ready_file)
    print(f"local AWS ready on {', '.join(info['listen'])} (state: {state_dir})", flush=True)

    stopping.wait()
    hooks.run(init_hooks.Stage.SHUTDOWN)
    print("local AWS stopping: ending running jobs", flush=True)
    close()


def _with_info(app, info: dict, state_dir: Path):
    """The WSGI app, answering INFO_PATH itself: who this local AWS is, who holds leases on it,
    how much runs."""

    def describe(environ, query: dict) -> tuple[str, dict]:
        return "200 OK", {**info, "leases": len(leases.live(state_dir)), "running": _running()}

    return answering(app, INFO_PATH, describe)


def _stop_when_idle(state_dir: Path, stopping: threading.Event) -> None:
    """A managed local AWS: stop once no lease is held and nothing runs, several checks in a row."""
    idle = 0
    while not stopping.wait(IDLE_CHECK_S):
        idle = idle + 1 if not leases.live(state_dir) and not _running() else 0
        if idle >= IDLE_CHECKS_BEFORE_STOP:
            log.info("no command holds a lease and nothing runs: stopping")
            stopping.set()


def _running() -> int:
    """Executions and SageMaker jobs in progress (endpoints in service do not count: they would
    keep a managed local AWS up for ever)."""
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    from harness.emulator.sagemaker.backends import local_sagemaker_backends

    count = 0
    for backends in (stepfunctions_parser_backends, local_sagemaker_backends):
        for account in list(backends.values()):
            for backend in list(account.values()):
                count += (
                    backend.running_count() if hasattr(backend, "running_count") else _executions(backend)
                )
    return count


def _executions(backend) -> int:
    return sum(
        1
        for machine in list(getattr(backend, "state_machines", []))
        for execution in list(machine.executions)
        if execution.status == "RUNNING"
    )


def _start_registry(state_dir: Path):
    """Back ECR with a real registry on loopback when one is installed (Debian: docker-registry)."""
    from harness.emulator import containers, patches
    from harness.emulator.registry import USERNAME, LocalRegistry

    if not LocalRegistry.available():
        log.warning("no docker-registry installed: ECR repositories have AWS URIs and cannot take a push")
        return None
    registry = LocalRegistry(state_dir / "registry")
    registry.start()
    patches.back_ecr_with(registry)
    containers.pull_from(registry.address, USERNAME, registry.password)
    return registry


def _stop_all_jobs() -> None:
    from harness.emulator.sagemaker.backends import local_sagemaker_backends

    for account in list(local_sagemaker_backends.values()):
        for backend in list(account.values()):
            backend.stop_all_jobs()
            backend.stop_all_endpoints()


def _bind_check(host: str, port: int) -> int:
    """Fail early with a clear message when the port is taken; resolve port 0."""
    with socket.socket() as s:
        # As the server will: a restart must not wait for old connections in TIME_WAIT.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as ex:
            raise SystemExit(
                f"cannot listen on {host}:{port}: {ex.strerror}; choose another --port"
            ) from None
        return s.getsockname()[1]


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="python -m harness emulator")
    parser.add_argument(
        "action",
        nargs="?",
        choices=["env", "coverage"],
        help="env: print the export lines that point stock tools at the local AWS running on --port; "
        "coverage: print (or --output) the page of what it serves, operation by operation",
    )
    parser.add_argument("--output", type=Path, default=None, help="coverage: write the page to this file")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (0: any free port)")
    parser.add_argument("--region", default="us-east-1", help="env: the region to export (default us-east-1)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback)")
    parser.add_argument(
        "--state-dir", type=Path, default=None, help=f"where state lives (default {default_state_dir()})"
    )
    parser.add_argument("--no-docker-gateway", dest="docker_gateway", action="store_false",
                        help="do not also listen on the job network's gateway")  # fmt: skip
    parser.add_argument("--keep-containers", action="store_true", help="keep job containers (debugging)")
    parser.add_argument(
        "--mock-config",
        type=Path,
        default=None,
        help="a Step Functions Local mock configuration: StartExecution on ARN#TESTCASE runs that test case "
        "(default: $SFN_MOCK_CONFIG)",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        metavar="DIR",
        help="serve jobs that match an earlier completed one from the step cache kept in DIR",
    )
    parser.add_argument(
        "--cache-max-gb", type=float, default=None, help="the cache's size limit (default 10)"
    )
    parser.add_argument(
        "--cache-expire-after", type=float, default=None, metavar="SECONDS", help="entries older are not used"
    )
    parser.add_argument(
        "--init-dir",
        type=Path,
        default=None,
        help="LocalStack-style init hooks: DIR/{boot,start,ready,shutdown}.d/*.sh|*.py "
        "(default /etc/localstack/init when it exists)",
    )
    parser.add_argument(
        "--in-container",
        action="store_true",
        help="it runs in a container on the host's Docker engine (docker compose): job containers "
        "reach it on its own network",
    )
    parser.add_argument(
        "--scratch-dir",
        type=Path,
        default=None,
        help="where job folders are made (default: the temp dir); with --in-container, a host path "
        "bind-mounted at the same path",
    )
    parser.add_argument(
        "--iam",
        choices=["off", "soft", "strict"],
        default="off",
        help="evaluate the policies of the roles jobs and state machines act as: soft notes each call AWS "
        "would deny (the fidelity report), strict answers AccessDenied as AWS (default off)",
    )
    parser.add_argument(
        "--engine",
        choices=["moto", "localstack"],
        default="moto",
        help="moto: the default engine, every service in this process; localstack: LocalStack 4.14 serves "
        "the port (its S3, IAM, CloudFormation, Step Functions, EventBridge, Logs) with this project's "
        "SageMaker and ECR plugged in (needs scripts/setup.sh --localstack)",
    )
    parser.add_argument("--ready-file", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--managed", action="store_true", help=argparse.SUPPRESS)
    return parser


def print_coverage(output: Path | None) -> int:
    from harness.emulator import coverage

    page = coverage.render(coverage.operations())
    if output is None:
        print(page, end="")
    else:
        output.write_text(page)
        print(f"wrote {output}")
    return 0


def print_env(port: int, region: str) -> int:
    from harness.emulator import user_env

    try:
        variables = user_env.prepare(f"http://127.0.0.1:{port}", region, user_env.default_config_file(port))
    except user_env.EnvError as ex:
        print(f"error: {ex}", file=sys.stderr)
        return 1
    print("\n".join(user_env.shell_lines(variables)))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    if args.action == "env":
        return print_env(args.port, args.region)
    if args.action == "coverage":
        return print_coverage(args.output)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    serve(
        port=args.port,
        host=args.host,
        state_dir=args.state_dir,
        docker_gateway=args.docker_gateway,
        keep_containers=args.keep_containers,
        ready_file=args.ready_file,
        mock_config=args.mock_config,
        managed=args.managed,
        cache_dir=args.cache,
        cache_max_bytes=int(args.cache_max_gb * 2**30) if args.cache_max_gb else None,
        cache_expire_after=args.cache_expire_after,
        init_dir=args.init_dir,
        in_container=args.in_container,
        scratch_dir=args.scratch_dir,
        iam=args.iam,
        engine=args.engine,
    )
    return 0
