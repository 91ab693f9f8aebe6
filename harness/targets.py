"""Targets: where a pipeline runs. They differ only in the endpoint and the image registry.

local: the local AWS (started here unless one already answers), fake credentials,
the job image as a local tag. aws: the standard credential chain, the job image
pushed to ECR and named by digest. MLHARNESS_AWS_ENDPOINT_URL points the AWS
target at another endpoint (the local AWS stands in for AWS in the tests).
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import botocore.exceptions

from harness.clients import ClientFactory, is_aws_endpoint
from harness.config import ACCOUNT_TOKEN, Config
from harness.errors import HarnessError

ENDPOINT_OVERRIDE = "MLHARNESS_AWS_ENDPOINT_URL"


class Target(abc.ABC):
    """What both targets share: a prepared client factory and the account.

    `with target:` prepares it and closes it (stopping a local AWS it started) on the way out.
    """

    _factory: ClientFactory | None = None

    def __enter__(self) -> Target:
        self.prepare()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @abc.abstractmethod
    def prepare(self) -> None: ...

    @abc.abstractmethod
    def publish_image(self, tag: str, repository: str) -> str:
        """Where the target's jobs find the local image `tag`: its reference in the target's
        ECR (`repository`, by digest), pushed unless it is there already."""

    @abc.abstractmethod
    def confirm(self, changes: list[str]) -> bool: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    def fires_schedules(self) -> bool:
        """Whether a deployed schedule starts runs by itself here (AWS: yes)."""
        return True

    def kept_executions(self):
        """Where the target keeps ended executions it no longer serves (the local AWS's state
        dir: harness.emulator.execution_store.StoredExecutions); None on AWS, which serves them."""
        return None

    def before_execution(self, run_id: str) -> None:  # noqa: B027 (most targets have nothing to do)
        """Called just before a run's execution starts, with its run id (every job name's prefix)."""

    def cache_report(self, run_id: str, since: float | None = None) -> list[dict]:
        """What a step cache did with the run's jobs (since a time: of a redriven attempt);
        none on a target without one."""
        return []

    def fidelity_report(
        self,
        run_id: str,
        schedule: str | None,
        since: float | None = None,
        state_machine_arn: str | None = None,
    ) -> list[dict]:
        """What the target did not reproduce of the run (schedule: the pipeline's deployed schedule
        expression, if any; the state machine: whose role's findings are the run's); none on AWS,
        which is what it stands for."""
        return []

    def deploy_lock(self, stack_name: str) -> contextlib.AbstractContextManager:
        """Held while the stack is deployed: two deploys of one stack from this machine wait in turn."""
        return contextlib.nullcontext()

    def clients(self) -> ClientFactory:
        if self._factory is None:
            raise HarnessError("the target is not prepared")
        return self._factory

    def resolve(self, config: Config) -> Config:
        """The configuration with the account filled in where it asks for it."""
        if ACCOUNT_TOKEN not in config.artifact_bucket:
            return config
        account = self.clients().client("sts").get_caller_identity()["Account"]
        return dataclasses.replace(
            config, artifact_bucket=config.artifact_bucket.replace(ACCOUNT_TOKEN, account)
        )


class LocalTarget(Target):
    name = "local"
    poll_s = 0.1  # the local AWS answers in a millisecond and has no throttling

    def __init__(self, config: Config, log: Callable[[str], None] = print):
        self.config = config
        self.log = log
        self.endpoint_url: str | None = None
        self._emulator = None  # the local AWS this command started (a managed one)
        self._lease = None  # this command's lease on a managed local AWS it joined
        self._factory = None
        self._has_cache = False  # whether the local AWS in use runs a step cache
        self._engine = "moto"  # the engine of the local AWS in use
        self._registry = None  # the address of the registry behind its ECR, if it has one

    def running(self) -> bool:
        """Whether a local AWS already answers on the configured port."""
        return _answers(self._endpoint())

    def _endpoint(self) -> str:
        """LOCALSTACK_HOST (host:port, as LocalStack's tools read it) when set, else emulator.port
        on loopback."""
        host, port = self._host_and_port()
        return f"http://{host}:{port}"

    def _host_and_port(self) -> tuple[str, int]:
        given = os.environ.get("LOCALSTACK_HOST", "").strip()
        if not given:
            return "127.0.0.1", self.config.emulator.port
        from localstack_client.config import parse_localstack_host

        try:
            return parse_localstack_host(given)
        except RuntimeError:
            raise HarnessError(f"LOCALSTACK_HOST={given!r} is not HOST or HOST:PORT") from None

    def prepare(self) -> None:
        from harness.emulator import EmulatorError, LocalAWS

        _require_docker()
        endpoint = self._endpoint()
        if _answers(endpoint):
            return self._join(endpoint)
        host, port = self._host_and_port()
        if host not in ("127.0.0.1", "localhost"):  # only a local AWS on this machine can be started
            raise HarnessError(f"no local AWS answers at {endpoint} (LOCALSTACK_HOST): start it there first")
        if self.config.emulator.engine == "localstack":  # refused now, not after its start fails
            from harness.emulator import localstack_engine

            try:
                localstack_engine.require()
            except localstack_engine.LocalStackUnavailable as ex:
                raise HarnessError(f"emulator.engine is localstack, but {ex}") from None
        try:
            self._emulator = LocalAWS(emulator_options(self.config, port)).start()
        except EmulatorError as ex:
            if not _answers_within(endpoint, JOIN_WAIT_S):  # not another command starting it
                raise HarnessError(str(ex)) from None
            return self._join(endpoint)
        endpoint = self._emulator.endpoint_url
        self._engine = self._emulator.info.get("engine", "moto")
        self._registry = self._emulator.info.get("registry")
        if self._engine == "localstack":
            self.log(
                f"started the local AWS (engine: LocalStack) at {endpoint} for this command; it stops when "
                "the last command using it ends and nothing runs, and LocalStack keeps nothing across a "
                "restart: the stack, bucket and run outputs go with it (`python -m harness emulator "
                "--engine localstack` keeps one running between commands)"
            )
        else:
            self.log(
                f"started the local AWS at {endpoint} for this command (its state persists in "
                f"{self._emulator.state_dir}; it stops when the last command using it ends and nothing "
                "runs; `python -m harness emulator` keeps one running)"
            )
        self._note_iam(self._emulator.info)
        self.endpoint_url = endpoint
        self._factory = ClientFactory(self.config.region, local_endpoint=endpoint)
        self._has_cache = self.config.cache.enabled

    def _note_iam(self, info: dict) -> None:
        """Say so when IAM is configured to be evaluated and the local AWS in use does not."""
        if self.config.emulator.iam == "off" or info.get("iam", "off") != "off":
            return
        if info.get("engine") == "localstack":
            self.log("it does not evaluate IAM (on LocalStack's engine the roles live in LocalStack's IAM): "
                     "the fidelity report cannot name calls AWS would deny")  # fmt: skip
        else:
            self.log("it does not evaluate IAM: the fidelity report cannot name calls AWS would deny "
                     "(`harness emulator --iam soft` does)")  # fmt: skip

    def fires_schedules(self) -> bool:
        """Only LocalStack's EventBridge fires schedules; the engine is the running local AWS's,
        else the configured one (`status` starts none)."""
        if self.endpoint_url is None:
            from harness.emulator import server

            info = server.info_of(self._endpoint()) or {}
            return info.get("engine", self.config.emulator.engine) == "localstack"
        return self._engine == "localstack"

    def kept_executions(self):
        from harness.emulator import server
        from harness.emulator.execution_store import EXECUTIONS_FOLDER, StoredExecutions

        running = server.info_of(self.endpoint_url or self._endpoint()) or {}
        state_dir = (
            running.get("state_dir") or emulator_options(self.config, self.config.emulator.port).state_dir
        )
        return StoredExecutions(Path(state_dir) / EXECUTIONS_FOLDER)

    def deploy_lock(self, stack_name: str) -> contextlib.AbstractContextManager:
        from harness.emulator import leases, server

        state_dir = (server.info_of(self.endpoint_url) or {}).get("state_dir")
        if not state_dir:  # a local AWS that is not ours says nothing of its state dir
            return contextlib.nullcontext()
        return leases.exclusive(Path(state_dir) / "locks" / f"deploy-{stack_name}")

    def _join(self, endpoint: str) -> None:
        """Use the local AWS answering there; one another command started is shared by lease."""
        from harness.emulator import leases, server

        info = server.info_of(endpoint) or {}
        if info.get("managed"):
            self._lease = leases.acquire(Path(info["state_dir"]))
        self._engine = info.get("engine", "moto")
        self._registry = info.get("registry")
        self.log(f"using the local AWS at {endpoint}{_engine_note(self._engine)}")
        if info and self._engine != self.config.emulator.engine:
            self.log(f"its engine is {self._engine}, not emulator.engine {self.config.emulator.engine}: "
                     "stop it to have the configured one started")  # fmt: skip
        self._has_cache = bool(info.get("cache"))
        if self.config.cache.enabled and not self._has_cache:
            self.log("it runs without a step cache: every job runs (`harness emulator --cache DIR` has one)")
        self._note_iam(info)
        self.endpoint_url = endpoint
        self._factory = ClientFactory(self.config.region, local_endpoint=endpoint)

    def before_execution(self, run_id: str) -> None:
        """With the cache off for this run, the local AWS runs its jobs without it."""
        from harness.emulator import cache_api

        if self._has_cache and not self.config.cache.enabled:
            cache_api.call(self.endpoint_url, "POST", {"bypass": run_id})

    def cache_report(self, run_id: str, since: float | None = None) -> list[dict]:
        from harness.emulator import cache_api

        if not self._has_cache:
            return []
        try:
            events = cache_api.call(self.endpoint_url, "GET", query={"jobs": f"{run_id}-"}).get("events", [])
        except (OSError, ValueError, cache_api.NoCache):  # the local AWS went away: the record says none
            return []
        return [
            {k: e[k] for k in ("job", "kind", "outcome", "detail")}
            for e in events
            if since is None or e["time"] >= since
        ]

    def fidelity_report(
        self,
        run_id: str,
        schedule: str | None,
        since: float | None = None,
        state_machine_arn: str | None = None,
    ) -> list[dict]:
        from harness.emulator import fidelity

        findings = []
        if schedule and not self.fires_schedules():
            findings.append(
                {
                    "subject": "schedule",
                    "kind": "schedule",
                    "message": f"the schedule {schedule} is deployed, but the local AWS never fires it "
                    "(`run --as-scheduled` starts the pipeline as it would)",
                }
            )
        try:
            role = None
            if state_machine_arn:
                sfn = self.clients().client("stepfunctions")
                role = sfn.describe_state_machine(stateMachineArn=state_machine_arn)["roleArn"]
            return fidelity.fetch(self.endpoint_url, f"{run_id}-", since, role) + findings
        except (
            OSError,
            ValueError,
            KeyError,
            botocore.exceptions.BotoCoreError,
            botocore.exceptions.ClientError,
        ):
            unknown = (
                "the local AWS did not answer what it did not reproduce: the rest of this report is unknown"
            )
            return [{"subject": "", "kind": "unknown", "message": unknown}, *findings]

    def confirm(self, changes: list[str]) -> bool:
        return True

    def publish_image(self, tag: str, repository: str) -> str:
        """The local AWS's ECR (a registry on this machine), as SageMaker pulls from ECR; a local
        AWS without one (no docker-registry installed) runs the local tag, which the fidelity
        report then names."""
        from harness import ecr

        if not self._registry:
            return tag
        return ecr.push(self.clients().client("ecr"), tag, repository, self.log)

    def close(self) -> None:
        """Give back this command's lease; a local AWS it started stops once nothing else uses it."""
        from harness.emulator import leases

        leases.release(self._lease)
        self._lease = None
        if self._emulator is not None:
            self._emulator.leave()
            self._emulator = None


class AwsTarget(Target):
    name = "aws"

    def __init__(
        self,
        config: Config,
        log: Callable[[str], None] = print,
        assume_yes: bool = False,
        ask: Callable[[str], bool | None] | None = None,
    ):
        """ask: puts a yes/no question to the user; None (or answering None) when there is no one to ask."""
        self.config = config
        self.log = log
        self.assume_yes = assume_yes
        self.ask = ask
        self.endpoint_override = os.environ.get(ENDPOINT_OVERRIDE) or None
        # AWS throttles GetExecutionHistory; a stand-in endpoint does not.
        self.poll_s = 0.2 if self.endpoint_override else 2.0
        self._factory = None
        self.account: str | None = None

    def prepare(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        factory = ClientFactory(
            self.config.region, profile=self.config.aws.profile, endpoint_override=self.endpoint_override
        )
        try:
            self.account = factory.client("sts").get_caller_identity()["Account"]
        except (BotoCoreError, ClientError) as ex:
            raise HarnessError(
                f"no usable AWS credentials for environment {self.config.env}: {' '.join(str(ex).split())}"
            ) from None
        if self.config.account and self.account != self.config.account:
            raise HarnessError(
                f"environment {self.config.env} is account {self.config.account}, but the credentials "
                f"are of account {self.account}: use the environment's own (aws.profile, AWS_PROFILE)"
            )
        self._factory = factory
        endpoint = factory.endpoint_of("sts")  # the override, AWS_ENDPOINT_URL(_STS), or AWS's own
        where = "" if is_aws_endpoint(endpoint) else f" through {endpoint}"
        if where:
            self.poll_s = 0.2  # a stand-in endpoint does not throttle
        self.log(f"AWS account {self.account}, region {self.config.region}{where}")

    def publish_image(self, tag: str, repository: str) -> str:
        from harness import ecr

        return ecr.push(self.clients().client("ecr"), tag, repository, self.log)

    def confirm(self, changes: list[str]) -> bool:
        """Environments with aws.confirm (prod) ask before a change set is executed."""
        if not self.config.aws.confirm or self.assume_yes:
            return True
        summary = "\n".join(f"  {change}" for change in changes) or "  (no resource changes)"
        prompt = (
            f"about to change environment {self.config.env}: account {self.account}, region "
            f"{self.config.region}, stack {self.config.stack_name}\n{summary}\nproceed? [y/N] "
        )
        answer = self.ask(prompt) if self.ask else None
        if answer is None:
            raise HarnessError(
                f"environment {self.config.env} asks for confirmation: run with --yes to proceed"
            )
        return answer

    def close(self) -> None:
        pass


def emulator_options(config: Config, port: int):
    """The options of the local AWS a local run starts for this configuration."""
    from harness.emulator import Options, default_state_dir
    from harness.emulator.sagemaker import step_cache

    emulator, cache = config.emulator, config.cache
    state_dir = Path(os.path.expanduser(emulator.state_dir)) if emulator.state_dir else default_state_dir()
    return Options(
        port=port,
        state_dir=state_dir,
        managed=True,
        cache_dir=step_cache.default_root(state_dir) if cache.enabled else None,
        cache_expire_after=cache.expire_after_seconds,
        cache_max_gb=cache.max_gb,
        init_dir=Path(os.path.expanduser(emulator.init_dir)) if emulator.init_dir else None,
        hook_timeout=emulator.hook_timeout,
        iam=emulator.iam,
        engine=emulator.engine,
    )


def make_target(
    config: Config,
    log: Callable[[str], None] = print,
    assume_yes: bool = False,
    ask: Callable[[str], bool | None] | None = None,
) -> Target:
    if config.target == "local":
        return LocalTarget(config, log)
    return AwsTarget(config, log, assume_yes, ask)


def _engine_note(engine: str) -> str:
    return " (engine: LocalStack)" if engine == "localstack" else ""


JOIN_WAIT_S = 30  # a local AWS another command is starting on the same port and state dir


def _answers_within(endpoint: str, seconds: float) -> bool:
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _answers(endpoint):
            return True
        time.sleep(0.2)
    return False


def _answers(endpoint: str) -> bool:
    try:
        urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)  # noqa: S310  (loopback only)
        return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


def _require_docker() -> None:
    try:
        result = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired):
        result = None
    if result is None or result.returncode != 0:
        raise HarnessError("no Docker engine answers: start one (scripts/setup.sh installs and starts it)")
