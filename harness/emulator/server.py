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
import dataclasses
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

from harness.emulator import init_hooks, leases, processes, reaper
from harness.emulator.internal_api import answering
from harness.emulator.options import DEFAULT_PORT, Options

READY_TIMEOUT_S = 30
INFO_PATH = "/_mlharness/info"
IDLE_CHECK_S = 0.5
DEFAULT_LAMBDA_IMAGE = "mlharness/base:bookworm"  # what scripts/setup.sh builds where nothing can be pulled
IDLE_CHECKS_BEFORE_STOP = 3  # a managed local AWS stops after this many idle checks in a row

log = logging.getLogger("harness.emulator")


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
        options: Options | None = None,
        *,
        log_file: str | os.PathLike | None = None,
        cache: bool = False,
        cache_max_bytes: int | None = None,
        **fields,
    ):
        """options: what it runs with (Options; any of its fields may be given as a keyword
        instead); the port defaults to any free one. cache: a step cache in its state dir (or in
        cache_dir). managed: it stops itself when no lease is held and nothing runs; start() takes
        a lease for this process, leave() gives it back."""
        from harness.emulator.sagemaker import step_cache

        options = dataclasses.replace(options or Options(port=0), **fields)
        if cache and options.cache_dir is None:
            options = dataclasses.replace(
                options, cache_dir=step_cache.default_root(options.resolved_state_dir)
            )
        if cache_max_bytes is not None:
            options = dataclasses.replace(options, cache_max_gb=cache_max_bytes / 2**30)
        self.options = options
        self.state_dir = options.resolved_state_dir
        self.log_file = Path(log_file) if log_file else self.state_dir / "emulator.log"
        self.lease: Path | None = None
        self.process: subprocess.Popen | None = None
        self.info: dict = {}

    @property
    def endpoint_url(self) -> str:
        return self.info["endpoint_url"]

    def start(self, timeout: float = READY_TIMEOUT_S) -> LocalAWS:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        ready_file = Path(tempfile.mkdtemp(prefix="mlharness-ready-")) / "ready.json"
        options = dataclasses.replace(self.options, state_dir=self.state_dir, ready_file=ready_file)
        args = [sys.executable, "-m", "harness.emulator", *options.argv()]
        if options.managed:
            self.lease = leases.acquire(self.state_dir)  # before it starts, so it never sees none
        with open(self.log_file, "ab") as log_out:
            self.process = subprocess.Popen(
                args,
                stdout=log_out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        # the init hooks run before it says it is ready, each within its own time limit
        timeout += init_hooks.start_bound(options.init_dir or init_hooks.default_root(), options.hook_timeout)
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
def serve(options: Options) -> None:
    """The emulator process, start to end: boot hooks; the state dir (locked, its stores
    restored); moto patched; the job runner; ECR's registry; the request layers; listening;
    ready; then, on a signal, every job and container stopped and the state dir freed."""
    options = _settled(options)
    hooks = _init_hooks(options)
    hooks.run(init_hooks.Stage.BOOT)
    _configure_mocks(options)
    state_dir = options.resolved_state_dir
    state_dir.mkdir(parents=True, exist_ok=True)
    try:
        state_lock = leases.StateDirLock(state_dir).acquire()
    except leases.StateDirInUse as ex:
        raise SystemExit(f"error: {ex}") from None
    port = _bind_check(options.host, options.port)
    hooks.endpoint_url = hooks.endpoint_url.rsplit(":", 1)[0] + f":{port}"  # port 0 resolved
    # With LocalStack in front, this process serves it alone, on loopback.
    in_front = options.engine == "localstack"
    own_port = _bind_check("127.0.0.1", 0) if in_front else port
    # The engine's own clients (aws-sdk tasks, .sync polling) call MOTO_PORT.
    os.environ["MOTO_PORT"] = str(own_port)
    os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")

    from harness.emulator import patches

    patches.apply_patches()
    _remove_orphans()
    # what it leaves on the engine goes when it ends, however it ends
    reaper_process = None if options.in_container else reaper.start(processes.instance_id())
    hosts, container_url = _listen_addresses(options, port)
    work_dir = _job_scratch(options)
    runner, cached, enforcer = _jobs(options, container_url, work_dir)
    functions = _functions(options, container_url, work_dir)
    registry = _start_registry(state_dir)  # first: restored repositories name it
    _restore_state(state_dir, mirror_logs_to=f"http://127.0.0.1:{port}" if in_front else None)
    hooks.run(init_hooks.Stage.START)

    stopping = threading.Event()
    info = {
        "endpoint_url": f"http://{options.host}:{port}",
        "container_endpoint_url": container_url,
        "listen": [f"{h}:{port}" for h in hosts],
        # in a container, its paths mean nothing to the commands that use it
        "state_dir": None if options.in_container else str(state_dir),
        "pid": os.getpid(),
        "instance": processes.instance_id(),
        "reaper_pid": reaper_process.pid if reaper_process else None,
        "managed": options.managed,
        "registry": registry.address if registry else None,
        "mock_config": _mock_config_path(),
        "cache": str(options.cache_dir) if options.cache_dir is not None else None,
        "iam": options.iam,
        "engine": options.engine,
    }
    app = _application(options, info, state_dir, cached, enforcer, hooks, stopping)
    servers = _listen(app, ["127.0.0.1"] if in_front else hosts, own_port)
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
        functions.shutdown()
        if registry is not None:
            registry.stop()
        shutil.rmtree(work_dir, ignore_errors=True)
        state_lock.release()

    if in_front:
        front = _start_localstack(options, info, own_port, state_dir, close)

    def on_signal(signum, frame):
        stopping.set()
        hooks.interrupt()  # a ready hook that runs now is killed: the stop is not held up

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    hooks.run(init_hooks.Stage.READY)  # before it says it is ready: what they seed is there
    if not stopping.is_set():
        if options.managed:
            threading.Thread(
                target=_stop_when_idle, args=(state_dir, stopping), name="idle", daemon=True
            ).start()
        _say_ready(options.ready_file, info)
        print(f"local AWS ready on {', '.join(info['listen'])} (state: {state_dir})", flush=True)

    stopping.wait()
    hooks.run(init_hooks.Stage.SHUTDOWN)  # each script bounded by its time limit
    print("local AWS stopping: ending running jobs", flush=True)
    hooks.close()
    close()


def _settled(options: Options) -> Options:
    """The options it can run with: LocalStack's engine is installed, runs on the host, and has
    its own IAM (not evaluated here)."""
    if options.engine != "localstack":
        return options
    from harness.emulator import localstack_engine

    try:
        localstack_engine.require()
    except localstack_engine.LocalStackUnavailable as ex:
        raise SystemExit(f"error: {ex}") from None
    if options.in_container:
        raise SystemExit("error: --engine localstack runs on the host, not --in-container")
    if options.iam != "off":
        log.warning("IAM is not evaluated on --engine localstack: its roles live in LocalStack's IAM")
        options = dataclasses.replace(options, iam="off")
    return options


def _init_hooks(options: Options) -> init_hooks.InitHooks:
    host = "127.0.0.1" if options.host in ("0.0.0.0", "::") else options.host
    root = options.init_dir or init_hooks.default_root()
    return init_hooks.InitHooks(
        root, f"http://{host}:{options.port or DEFAULT_PORT}", timeout=options.hook_timeout
    )


def _configure_mocks(options: Options) -> None:
    """A broken mock configuration stops the start, in one line."""
    from harness.emulator import sfn_mocking

    try:
        sfn_mocking.configure(options.mock_config or os.environ.get("SFN_MOCK_CONFIG") or None)
    except sfn_mocking.MockConfigError as ex:
        raise SystemExit(f"error: {ex}") from None


def _mock_config_path() -> str | None:
    from harness.emulator import sfn_mocking

    return str(sfn_mocking.configured.path) if sfn_mocking.configured else None


def _remove_orphans() -> None:
    from harness.emulator import containers

    removed = containers.remove_orphaned_containers() + containers.remove_orphaned_networks()
    if removed:
        log.info("removed %d container(s) left by an earlier emulator", removed)


def _listen_addresses(options: Options, port: int) -> tuple[list[str], str]:
    """Where it listens, and the address job containers call it at: loopback (or --host) and the
    job network's gateway; in a container, its own network."""
    from harness.emulator import containers

    if options.in_container:
        try:
            return [options.host], containers.join_own_network(port)
        except containers.DockerUnavailable as ex:
            raise SystemExit(f"error: {ex}") from None
    gateway = containers.job_network_gateway() if options.docker_gateway else None
    hosts = [options.host] + ([gateway] if gateway and gateway != options.host else [])
    return hosts, f"http://{gateway}:{port}" if gateway else f"http://{options.host}:{port}"


def _job_scratch(options: Options) -> Path:
    """Staged inputs, the /opt/ml folders containers mount."""
    if options.scratch_dir is not None:
        options.scratch_dir.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="mlharness-jobs-", dir=options.scratch_dir))


def _jobs(options: Options, container_url: str, work_dir: Path):
    """The job runner (containers on Docker, through the step cache when it has one), handed to
    the SageMaker backend; and the IAM enforcer that judges what jobs do."""
    from moto.core import DEFAULT_ACCOUNT_ID

    from harness.emulator.iam import enforcement, principals
    from harness.emulator.sagemaker.cached_runner import CachedRunner
    from harness.emulator.sagemaker.docker_runner import DockerRunner
    from harness.emulator.sagemaker.models import LocalSageMakerBackend
    from harness.emulator.sagemaker.step_cache import DEFAULT_MAX_BYTES, StepCache

    enforcer = enforcement.Enforcer(options.iam)
    principals.shell_credentials(DEFAULT_ACCOUNT_ID)  # the user's shell's session, known from the start
    runner = DockerRunner(
        container_url,
        str(work_dir),
        keep_containers=options.keep_containers,
        serving_by_network=options.in_container,
        authorize=enforcer.job_may,
    )
    cached = None
    if options.cache_dir is not None:
        max_bytes = int(options.cache_max_gb * 2**30) if options.cache_max_gb else DEFAULT_MAX_BYTES
        cached = CachedRunner(runner, StepCache(options.cache_dir, max_bytes, options.cache_expire_after))
    LocalSageMakerBackend.configure(cached or runner, model_host=runner)
    return runner, cached, enforcer


def _functions(options: Options, container_url: str, work_dir: Path):
    """Lambda: invocations run in execution environments on Docker, as the function's role."""
    import urllib.parse

    from harness.emulator import patches
    from harness.emulator.functions import environments, service
    from harness.emulator.iam import principals
    from harness.emulator.sagemaker.logs import StreamLog

    folder = work_dir / "lambda"
    settings = environments.Settings(
        endpoint_url=container_url,
        api_host=urllib.parse.urlsplit(container_url).hostname,
        runtime=environments.RuntimeFolder(folder / "runtime"),  # in the scratch: with --in-container
        # only the scratch is a path on the host
        credentials=lambda config: principals.credentials_for(config.role, config.name, of_job=True),
    )

    def write_log(config, stream: str, lines: list[str]) -> None:
        StreamLog(config.account, config.region, config.log_group, stream).write(lines)

    functions = service.Functions(settings, write_log)
    image = options.lambda_image or os.environ.get("MLHARNESS_BASE_IMAGE") or DEFAULT_LAMBDA_IMAGE
    patches.run_lambda_functions_in(
        functions, folder, image, behind_localstack=options.engine == "localstack"
    )
    return functions


def _restore_state(state_dir: Path, mirror_logs_to: str | None) -> None:
    """What survives a restart: objects, stacks, state machines, IAM roles and policies, ECR
    repositories (the registry keeps their images), job logs; and what executions ended as
    (read by the harness, not served again)."""
    from harness.emulator import patches
    from harness.emulator.ecr_store import EcrStore
    from harness.emulator.execution_store import EXECUTIONS_FOLDER, ExecutionStore
    from harness.emulator.iam_store import IamStore
    from harness.emulator.log_store import LogStore
    from harness.emulator.machine_store import StateMachineStore
    from harness.emulator.s3_store import S3Store
    from harness.emulator.sagemaker import logs as job_logs
    from harness.emulator.stack_store import StackStore

    stores = (
        S3Store(state_dir / "s3"),
        StackStore(state_dir / "stacks"),
        StateMachineStore(state_dir / "state-machines"),
        IamStore(state_dir / "iam"),  # after the stacks: what they made is theirs
        EcrStore(state_dir / "ecr"),  # likewise
    )
    for store in stores:
        store.restore()
    patches.keep_state_in(*stores, ExecutionStore(state_dir / EXECUTIONS_FOLDER))
    log_store = LogStore(state_dir / "logs")
    log_store.restore()
    job_logs.persist_to(log_store)
    if mirror_logs_to:  # users read job logs from LocalStack's Logs
        job_logs.mirror_to(mirror_logs_to)


def _application(options: Options, info: dict, state_dir: Path, cached, enforcer, hooks, stopping):
    """moto's services behind the request layers, outermost first: a request passes each in turn."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from harness.emulator import (
        cache_api,
        coverage,
        fidelity,
        host_only,
        localstack_api,
        protocol_errors,
        request_guard,
    )
    from harness.emulator.sagemaker import timeline

    localstack = localstack_api.LocalStackEndpoints(list(coverage.SERVICES), hooks, stopping)
    layers = [
        protocol_errors.serving,  # whatever fails below answers in its protocol's shape, never HTML
        host_only.serving,  # writes to its own endpoints: from the host only, never from a job
        lambda app: localstack_api.serving(app, localstack),  # /_localstack/* (health, info, init)
        lambda app: _with_info(app, info, state_dir),  # /_mlharness/info
        fidelity.serving,  # /_mlharness/fidelity
        timeline.serving,  # /_mlharness/timeline
        lambda app: cache_api.serving(app, cached),  # /_mlharness/cache
        enforcer.wsgi,  # IAM: each request judged as the role that makes it
        request_guard.guarded,  # each request checked against botocore's model first
    ]
    app = DomainDispatcherApplication(create_backend_app)
    for layer in reversed(layers):
        app = layer(app)
    return app


def _listen(app, hosts: list[str], port: int) -> list:
    from moto.server import MotoRequestHandler
    from werkzeug.serving import make_server

    servers = [make_server(h, port, app, threaded=True, request_handler=MotoRequestHandler) for h in hosts]
    for server in servers:
        threading.Thread(target=server.serve_forever, name=f"http-{server.host}", daemon=True).start()
    return servers


def _start_localstack(options: Options, info: dict, own_port: int, state_dir: Path, close):
    from harness.emulator import localstack_engine

    front = localstack_engine.LocalStackProcess(
        localstack_engine.require(),
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
    return front


def _say_ready(ready_file: Path | None, info: dict) -> None:
    if ready_file:
        tmp = Path(str(ready_file) + ".tmp")
        tmp.write_text(json.dumps(info))
        tmp.replace(ready_file)


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
    parser = parser or argparse.ArgumentParser(prog="mlharness emulator")
    parser.add_argument(
        "action",
        nargs="?",
        choices=["env", "coverage"],
        help="env: print the export lines that point stock tools at the local AWS running on --port; "
        "coverage: print (or --output) the page of what it serves, operation by operation",
    )
    parser.add_argument("--output", type=Path, default=None, help="coverage: write the page to this file")
    parser.add_argument("--region", default="us-east-1", help="env: the region to export (default us-east-1)")
    Options.add_arguments(parser)
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
    note = user_env.aws_cli_note()
    if note:
        print(note, file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    if args.action == "env":
        return print_env(args.port, args.region)
    if args.action == "coverage":
        return print_coverage(args.output)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    serve(Options.from_arguments(args))
    return 0
