"""config/<env>.yaml: loaded, validated, with overrides. One schema for local and AWS.

Each pipeline's own settings live under `pipelines.<name>` and are checked against
its declaration (the types of its defaults, its own check); `schedules.<name>`
deploys a schedule for a pipeline that declares one; `pipeline_modules` registers
pipelines kept outside this repository. Errors are one line naming the file, the
field and what is expected.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from harness import aws_names
from pipelines import registry
from pipelines.contract import ContractError, Pipeline

ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = ROOT / "config"
ENV_NAME = re.compile(r"^[a-z][a-z0-9-]{0,20}$")
ACCOUNT_TOKEN = "{account_id}"  # in artifact_bucket: replaced by the target's account
KMS_KEY = re.compile(
    r"^(arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)/[\w/-]+|alias/[\w/-]+|[0-9a-f-]{36})$"
)
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
S3_PREFIX = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\s]*)?$")


class ConfigError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class Emulator:
    port: int = 4566
    state_dir: str | None = None
    init_dir: str | None = None  # LocalStack-style init hooks ({boot,start,ready,shutdown}.d)
    iam: str = "soft"  # IAM evaluation: off | soft (findings in the fidelity report) | strict (AccessDenied)
    engine: str = "moto"  # moto (the default) | localstack (LocalStack 4.14 with the project's SageMaker)


@dataclasses.dataclass(frozen=True)
class Cache:
    """The local AWS's step cache (the local target only: AWS has none)."""

    enabled: bool = True
    expire_after: str | None = None  # "90m", "12h", "7d": older entries are not used; None: never
    max_gb: float = 10.0  # least recently used entries go beyond it

    @property
    def expire_after_seconds(self) -> float | None:
        return None if self.expire_after is None else _duration_seconds(self.expire_after)


DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration_seconds(text: str) -> float | None:
    """Seconds in "90m", "12h", "7d", "30s"; None when it is not such a duration."""
    match = DURATION.match(text.strip())
    return float(match[1]) * _DURATION_UNITS[match[2]] if match else None


@dataclasses.dataclass(frozen=True)
class Data:
    source: str = "generated"  # "generated", or the path of a CSV file
    rows: int = 10000
    seed: int = 7


@dataclasses.dataclass(frozen=True)
class Instances:
    """Instance types by SageMaker kind (ignored by the local AWS, kept so definitions match AWS)."""

    processing: str = "ml.m5.large"
    training: str = "ml.m5.large"
    transform: str = "ml.m5.large"
    endpoint: str = "ml.m5.large"


@dataclasses.dataclass(frozen=True)
class Aws:
    profile: str | None = None  # None: the standard credential chain
    image_repository: str = "mlharness-jobs"
    kms_key_id: str | None = None
    sagemaker_role_arn: str | None = None  # None: the stack creates the role
    confirm: bool = False  # ask before changing this environment (prod)


@dataclasses.dataclass(frozen=True)
class Schedule:
    expression: str | None = None  # cron(...) or rate(...): EventBridge starts the pipeline
    data_uri: str | None = None  # the data a scheduled run takes; None: s3://<artifact bucket>/incoming/

    def data_uri_in(self, bucket: str) -> str:
        return self.data_uri or f"s3://{bucket}/incoming/"


@dataclasses.dataclass(frozen=True)
class Config:
    env: str
    target: str  # "local" | "aws"
    region: str
    stack_name: str
    artifact_bucket: str
    emulator: Emulator = Emulator()
    cache: Cache = Cache()
    data: Data = Data()
    instances: Instances = Instances()
    aws: Aws = Aws()
    pipeline_modules: tuple[str, ...] = ()
    pipelines: tuple[Pipeline, ...] = ()  # every registered pipeline, in run order
    settings: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)  # by pipeline
    schedules: Mapping[str, Schedule] = dataclasses.field(default_factory=dict)  # by pipeline
    source: str = ""  # the file it was read from

    def pipeline(self, name: str) -> Pipeline:
        for pipeline in self.pipelines:
            if pipeline.name == name:
                return pipeline
        raise ConfigError(f"unknown pipeline {name!r}: registered are {', '.join(self.pipeline_names())}")

    def pipeline_names(self) -> list[str]:
        return [p.name for p in self.pipelines]

    def schedule(self, name: str) -> Schedule:
        return self.schedules.get(name) or Schedule()


def load(env: str, overrides: list[str] | None = None, config_dir: Path = CONFIG_DIR) -> Config:
    """Read config/<env>.yaml, apply `key.sub=value` overrides, validate."""
    if not ENV_NAME.match(env or ""):
        raise ConfigError(f"environment name {env!r} is invalid: use lower-case letters, digits and '-'")
    path = Path(config_dir) / f"{env}.yaml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in Path(config_dir).glob("*.yaml"))) or "none"
        raise ConfigError(f"no configuration for environment {env!r}: {path} does not exist (known: {known})")
    if not path.is_file():
        raise ConfigError(f"{path} is not a file: the configuration of environment {env!r} must be one")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as ex:
        raise ConfigError(f"{path}: cannot be read: {ex.strerror}") from None
    except UnicodeDecodeError as ex:
        raise ConfigError(
            f"{path}: not UTF-8 (byte 0x{ex.object[ex.start]:02x} at offset {ex.start})"
        ) from None
    except yaml.YAMLError as ex:
        mark = getattr(ex, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(ex, 'problem', ex)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    for override in overrides or []:
        _apply_override(raw, override)
    _apply_environment(raw)
    return _validate(raw, env, str(path))


def _apply_override(raw: dict, override: str) -> None:
    key, sep, value = override.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {override!r} is not of the form key.sub=value")
    node = raw
    *parents, leaf = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {override!r}: {part!r} is not a section")
    node[leaf] = yaml.safe_load(value)


def _apply_environment(raw: dict) -> None:
    """MLHARNESS_REGION, MLHARNESS_ARTIFACT_BUCKET and MLHARNESS_STACK_NAME override the file."""
    for field in ("region", "artifact_bucket", "stack_name"):
        value = os.environ.get(f"MLHARNESS_{field.upper()}")
        if value:
            raw[field] = value


def _validate(raw: dict, env: str, source: str) -> Config:
    def fail(field: str, expected: str) -> ConfigError:
        return ConfigError(f"{source}: {field}: expected {expected}")

    top = dict(raw)
    for old, new in MOVED.items():
        if old in top:
            raise ConfigError(f"{source}: {old}: moved to {new} (see config/local.yaml)")
    sections = {}
    sections_of = {"emulator": Emulator, "cache": Cache, "data": Data, "instances": Instances, "aws": Aws}
    for name, cls in sections_of.items():
        value = top.pop(name, None) or {}
        if not isinstance(value, dict):
            raise fail(name, "a mapping")
        sections[name] = _section(cls, value, name, fail)
    modules = top.pop("pipeline_modules", None) or []
    if not isinstance(modules, list) or not all(isinstance(m, str) and m for m in modules):
        raise fail("pipeline_modules", "a list of importable module names")
    try:
        pipelines = tuple(registry.load(modules))
    except ContractError as ex:
        raise ConfigError(f"{source}: {ex}") from None
    settings = _pipeline_settings(top.pop("pipelines", None), pipelines, fail)
    schedules = _schedules(top.pop("schedules", None), pipelines, fail)
    known = {"target", "region", "stack_name", "artifact_bucket"}
    unknown = sorted(set(top) - known)
    if unknown:
        raise ConfigError(f"{source}: unknown setting(s) {', '.join(unknown)}")
    for field in sorted(known):
        if not isinstance(top.get(field), str) or not top[field]:
            raise fail(field, "a non-empty string")
    if top["target"] not in ("local", "aws"):
        raise fail("target", "'local' or 'aws'")
    bucket_problem = aws_names.bucket_problem(top["artifact_bucket"].replace(ACCOUNT_TOKEN, "123456789012"))
    if bucket_problem:
        raise fail("artifact_bucket", f"an S3 bucket name: {bucket_problem} ({ACCOUNT_TOKEN} allowed)")
    stack_problem = aws_names.stack_problem(top["stack_name"])
    if stack_problem:
        raise fail("stack_name", f"a CloudFormation stack name: {stack_problem}")
    for pipeline in pipelines:
        machine = f"{top['stack_name']}-{pipeline.name}"
        problem = aws_names.state_machine_problem(machine)
        if problem:
            raise fail("stack_name", f"a shorter name: state machine {machine!r} must have {problem}")
    config = Config(
        env=env,
        source=source,
        **{f: top[f] for f in known},
        **sections,
        pipeline_modules=tuple(modules),
        pipelines=pipelines,
        settings=settings,
        schedules=schedules,
    )
    _check_values(config, fail)
    return config


# Settings that moved when pipelines became plug-ins.
MOVED = {"pipeline": "pipelines.<pipeline>", "schedule": "schedules.<pipeline>.expression"}


def _pipeline_settings(raw: Any, pipelines: tuple[Pipeline, ...], fail) -> dict[str, dict]:
    """Each pipeline's settings: its declared defaults, overridden by `pipelines.<name>`."""
    raw = raw or {}
    if not isinstance(raw, dict):
        raise fail("pipelines", "a mapping of pipeline name to its settings")
    by_name = {p.name: p for p in pipelines}
    for name in raw:
        if name not in by_name:
            raise fail(f"pipelines.{name}", f"a registered pipeline ({', '.join(by_name)})")
    settings = {}
    for pipeline in pipelines:
        given = raw.get(pipeline.name) or {}
        where = f"pipelines.{pipeline.name}"
        if not isinstance(given, dict):
            raise fail(where, "a mapping of settings")
        merged = dict(pipeline.settings)
        for key, value in given.items():
            if key not in pipeline.settings:
                known = ", ".join(pipeline.settings) or "none"
                raise fail(f"{where}.{key}", f"one of its settings ({known})")
            merged[key] = _typed_like(pipeline.settings[key], value, f"{where}.{key}", fail)
        if pipeline.check_settings is not None:
            try:
                pipeline.check_settings(merged)
            except ValueError as ex:
                key, _, expected = str(ex).partition(": expected ")
                raise fail(f"{where}.{key}", expected or str(ex)) from None
        settings[pipeline.name] = merged
    return settings


def _typed_like(default: Any, value: Any, field: str, fail) -> Any:
    kind = type(default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise fail(field, f"a {kind.__name__}, got {value!r}")
    return value


def _schedules(raw: Any, pipelines: tuple[Pipeline, ...], fail) -> dict[str, Schedule]:
    raw = raw or {}
    if not isinstance(raw, dict):
        raise fail("schedules", "a mapping of pipeline name to {expression, data_uri}")
    by_name = {p.name: p for p in pipelines}
    schedules = {}
    for name, value in raw.items():
        where = f"schedules.{name}"
        if name not in by_name:
            raise fail(where, f"a registered pipeline ({', '.join(by_name)})")
        if by_name[name].schedule is None:
            raise ConfigError(
                f"{where}: pipeline {name!r} declares no schedule input, so it cannot be scheduled"
            )
        if value is not None and not isinstance(value, dict):
            raise fail(where, "a mapping with expression and data_uri")
        schedule = _section(Schedule, value or {}, where, fail)
        problem = aws_names.schedule_problem(schedule.expression) if schedule.expression is not None else None
        if problem:
            raise fail(
                f"{where}.expression", f"an EventBridge schedule expression: {problem} (or null for none)"
            )
        if schedule.data_uri is not None and not S3_PREFIX.match(schedule.data_uri):
            raise fail(
                f"{where}.data_uri", "an s3://bucket/prefix/ URI, or null for <artifact bucket>/incoming/"
            )
        schedules[name] = schedule
    return schedules


def _section(cls, values: dict, name: str, fail) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise fail(f"{name}.{unknown[0]}", f"one of {', '.join(fields)}")
    checked = {}
    for key, value in values.items():
        default = fields[key].default
        if default is dataclasses.MISSING:
            default = fields[key].default_factory()
        if default is None and value is None:
            checked[key] = value
            continue
        checked[key] = _typed_like("" if default is None else default, value, f"{name}.{key}", fail)
    return cls(**checked)


# Instances section field -> the SageMaker API's enum of the instance types that kind takes.
_INSTANCE_ENUMS = {
    "processing": "ProcessingInstanceType",
    "training": "TrainingInstanceType",
    "transform": "TransformInstanceType",
    "endpoint": "ProductionVariantInstanceType",
}


@functools.cache
def _instance_types(kind: str) -> frozenset[str]:
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    return frozenset(model.shape_for(_INSTANCE_ENUMS[kind]).enum)


def _check_values(config: Config, fail) -> None:
    if config.data.rows < 100:
        raise fail("data.rows", "at least 100")
    if not 0 < config.emulator.port < 65536:
        raise fail("emulator.port", "a port number")
    if config.emulator.iam not in ("off", "soft", "strict"):
        raise fail("emulator.iam", f"off, soft or strict, got {config.emulator.iam!r}")
    if config.emulator.engine not in ("moto", "localstack"):
        raise fail("emulator.engine", f"moto or localstack, got {config.emulator.engine!r}")
    init_dir = config.emulator.init_dir
    if init_dir is not None and not os.path.isdir(os.path.expanduser(init_dir)):
        raise fail("emulator.init_dir", f"a folder of init hooks (boot.d, ready.d, ...); {init_dir} is none")
    if config.cache.expire_after is not None and not config.cache.expire_after_seconds:
        given = config.cache.expire_after
        raise fail("cache.expire_after", f"a duration such as 90m, 12h or 7d, or null; got {given!r}")
    if config.cache.max_gb <= 0:
        raise fail("cache.max_gb", "a positive number of gigabytes")
    for kind in (f.name for f in dataclasses.fields(Instances)):
        value = getattr(config.instances, kind)
        known = _instance_types(kind)
        if value != "local" and value not in known:
            near = ", ".join(sorted(t for t in known if t.split(".")[1:2] == value.split(".")[1:2])[:6])
            hint = f" (for example {near})" if near else " such as ml.m5.large"
            raise fail(f"instances.{kind}", f"a SageMaker {kind} instance type{hint}, got {value!r}")
    aws = config.aws
    if aws.kms_key_id is not None and not KMS_KEY.match(aws.kms_key_id):
        raise fail("aws.kms_key_id", "a KMS key id, key ARN or alias")
    if aws.sagemaker_role_arn is not None and not ROLE_ARN.match(aws.sagemaker_role_arn):
        raise fail("aws.sagemaker_role_arn", "an IAM role ARN, or null for a role the stack creates")
    repository_problem = aws_names.repository_problem(aws.image_repository)
    if repository_problem:
        raise fail("aws.image_repository", f"an ECR repository name: {repository_problem}")
    if config.data.source != "generated" and not config.data.source.endswith(".csv"):
        raise fail("data.source", "'generated' or the path of a .csv file")
