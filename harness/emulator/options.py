"""What a local AWS is started with, spelled once.

Each option is one field of `Options`, with its default and its help beside it. The
same object is what `LocalAWS` takes, what it passes to the emulator process (as the
flags `argv()` writes), what `python -m harness emulator` parses (`add_arguments`,
`from_arguments`) and what `serve()` runs with; the harness's configuration makes one
with `Options(**...)`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

DEFAULT_PORT = 4566
IAM_MODES = ("off", "soft", "strict")
ENGINES = ("moto", "localstack")


def _option(default, help: str, flag: str | None = None, metavar: str | None = None, hidden: bool = False):
    return dataclasses.field(
        default=default, metadata={"help": help, "flag": flag, "metavar": metavar, "hidden": hidden}
    )


@dataclasses.dataclass(frozen=True)
class Options:
    port: int = _option(DEFAULT_PORT, "port (0: any free port)")
    host: str = _option("127.0.0.1", "address to listen on (default loopback)")
    state_dir: Path | None = _option(
        None, "where state lives (default $XDG_STATE_HOME/mlharness/emulator)", metavar="DIR"
    )
    docker_gateway: bool = _option(
        True, "do not also listen on the job network's gateway", flag="--no-docker-gateway"
    )
    keep_containers: bool = _option(False, "keep job containers (debugging)")
    mock_config: Path | None = _option(
        None,
        "a Step Functions Local mock configuration: StartExecution on ARN#TESTCASE runs that test case "
        "(default: $SFN_MOCK_CONFIG)",
        metavar="FILE",
    )
    cache_dir: Path | None = _option(
        None,
        "serve jobs that match an earlier completed one from the step cache kept in DIR",
        "--cache",
        "DIR",
    )
    cache_max_gb: float | None = _option(None, "the step cache's size limit (default 10)")
    cache_expire_after: float | None = _option(
        None, "step cache entries older are not used", metavar="SECONDS"
    )
    init_dir: Path | None = _option(
        None,
        "LocalStack-style init hooks: DIR/{boot,start,ready,shutdown}.d/*.sh|*.py "
        "(default /etc/localstack/init when it exists)",
        metavar="DIR",
    )
    hook_timeout: float = _option(
        30.0,
        "each init hook's time limit: one that overruns is killed with what it started (default 30)",
        metavar="SECONDS",
    )
    in_container: bool = _option(
        False,
        "it runs in a container on the host's Docker engine (docker compose): job containers reach it on "
        "its own network",
    )
    scratch_dir: Path | None = _option(
        None,
        "where job folders are made (default: the temp dir); with --in-container, a host path "
        "bind-mounted at the same path",
        metavar="DIR",
    )
    iam: str = _option(
        "soft",
        "evaluate the policies of the roles jobs and state machines act as: soft notes each call AWS would "
        "deny (the fidelity report), strict answers AccessDenied as AWS, off evaluates nothing "
        "(default soft)",
    )
    engine: str = _option(
        "moto",
        "moto: the default engine, every service in this process; localstack: LocalStack 4.14 serves the "
        "port (its S3, IAM, CloudFormation, Step Functions, EventBridge, Logs) with this project's "
        "SageMaker and ECR plugged in (needs scripts/setup.sh --localstack)",
    )
    lambda_image: str | None = _option(
        None,
        "the image Python Lambda functions packaged as a .zip run in (default: $MLHARNESS_BASE_IMAGE, "
        "else the local base image mlharness/base:bookworm)",
        metavar="IMAGE",
    )
    managed: bool = _option(False, "stop once no command holds a lease and nothing runs", hidden=True)
    ready_file: Path | None = _option(None, "where to say it is ready", hidden=True)

    CHOICES = {"iam": IAM_MODES, "engine": ENGINES}

    def __post_init__(self) -> None:
        for name, allowed in self.CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}: expected one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        for field in dataclasses.fields(self):  # paths as given (str, PathLike) become Paths
            value = getattr(self, field.name)
            if value is not None and "Path" in str(field.type) and not isinstance(value, Path):
                object.__setattr__(self, field.name, Path(os.fspath(value)))

    @property
    def resolved_state_dir(self) -> Path:
        return self.state_dir or default_state_dir()

    # -- the command line, both ways --------------------------------------------------
    def argv(self) -> list[str]:
        """The flags that start an emulator process with these options (those not at their default)."""
        args: list[str] = []
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value == field.default:
                continue
            flag = _flag(field)
            if isinstance(field.default, bool):
                args.append(flag)
            else:
                args += [flag, str(value)]
        return args

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        for field in dataclasses.fields(cls):
            meta = field.metadata
            help_text = argparse.SUPPRESS if meta["hidden"] else meta["help"]
            if isinstance(field.default, bool):
                action = "store_false" if field.default else "store_true"
                parser.add_argument(_flag(field), dest=field.name, action=action, help=help_text)
                continue
            kind = _value_type(field)
            parser.add_argument(
                _flag(field),
                dest=field.name,
                type=kind,
                default=field.default,
                choices=cls.CHOICES.get(field.name),
                metavar=meta["metavar"],
                help=help_text,
            )

    @classmethod
    def from_arguments(cls, arguments: argparse.Namespace) -> Options:
        return cls(**{field.name: getattr(arguments, field.name) for field in dataclasses.fields(cls)})


def _flag(field: dataclasses.Field) -> str:
    return field.metadata["flag"] or "--" + field.name.replace("_", "-")


def _value_type(field: dataclasses.Field):
    text = str(field.type)
    if "Path" in text:
        return Path
    if "float" in text:
        return float
    if "int" in text:
        return int
    return str


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "mlharness" / "emulator"
