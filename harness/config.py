"""config/<env>.yaml: loaded, validated, with overrides. One schema for local and AWS.

Errors are one line naming the file, the field and what is expected.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = ROOT / "config"
ENV_NAME = re.compile(r"^[a-z][a-z0-9-]{0,20}$")
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
INSTANCE_TYPE = re.compile(r"^(ml\.[a-z0-9-]+\.[a-z0-9]+|local)$")
METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
ACCOUNT_TOKEN = "{account_id}"  # in artifact_bucket: replaced by the target's account
KMS_KEY = re.compile(
    r"^(arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)/[\w/-]+|alias/[\w/-]+|[0-9a-f-]{36})$"
)
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
SCHEDULE = re.compile(r"^(cron|rate)\(.+\)$")
S3_PREFIX = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\s]*)?$")
REPOSITORY = re.compile(r"^[a-z0-9]+(?:[._/-][a-z0-9]+)*$")


class ConfigError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class Emulator:
    port: int = 4566
    state_dir: str | None = None


@dataclasses.dataclass(frozen=True)
class Data:
    source: str = "generated"  # "generated", or the path of a CSV file
    rows: int = 10000
    seed: int = 7


@dataclasses.dataclass(frozen=True)
class Pipeline:
    quality_metric: str = "roc_auc"
    threshold: float = 0.7
    test_size: float = 0.2
    seed: int = 7
    hyperparameters: dict = dataclasses.field(default_factory=lambda: {"C": 1.0, "max_iter": 200})


@dataclasses.dataclass(frozen=True)
class Instances:
    processing: str = "ml.m5.large"
    training: str = "ml.m5.large"
    transform: str = "ml.m5.large"


@dataclasses.dataclass(frozen=True)
class Aws:
    profile: str | None = None  # None: the standard credential chain
    image_repository: str = "mlharness-jobs"
    kms_key_id: str | None = None
    sagemaker_role_arn: str | None = None  # None: the stack creates the role
    confirm: bool = False  # ask before changing this environment (prod)


@dataclasses.dataclass(frozen=True)
class Schedule:
    inference: str | None = None  # cron(...) or rate(...): EventBridge starts the inference pipeline
    data_uri: str | None = None  # what a scheduled run scores; None: s3://<artifact bucket>/incoming/

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
    data: Data = Data()
    pipeline: Pipeline = Pipeline()
    instances: Instances = Instances()
    aws: Aws = Aws()
    schedule: Schedule = Schedule()
    source: str = ""  # the file it was read from

    def parameters(self) -> dict:
        """Run-time parameters of the training pipeline."""
        return {
            "test_size": self.pipeline.test_size,
            "seed": self.pipeline.seed,
            "hyperparameters": dict(self.pipeline.hyperparameters),
            "threshold": self.pipeline.threshold,
        }


def load(env: str, overrides: list[str] | None = None, config_dir: Path = CONFIG_DIR) -> Config:
    """Read config/<env>.yaml, apply `key.sub=value` overrides, validate."""
    if not ENV_NAME.match(env or ""):
        raise ConfigError(f"environment name {env!r} is invalid: use lower-case letters, digits and '-'")
    path = Path(config_dir) / f"{env}.yaml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in Path(config_dir).glob("*.yaml"))) or "none"
        raise ConfigError(f"no configuration for environment {env!r}: {path} does not exist (known: {known})")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
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
    sections = {}
    sections_of = {
        "emulator": Emulator,
        "data": Data,
        "pipeline": Pipeline,
        "instances": Instances,
        "aws": Aws,
        "schedule": Schedule,
    }
    for name, cls in sections_of.items():
        value = top.pop(name, None) or {}
        if not isinstance(value, dict):
            raise fail(name, "a mapping")
        sections[name] = _section(cls, value, name, fail)
    known = {"target", "region", "stack_name", "artifact_bucket"}
    unknown = sorted(set(top) - known)
    if unknown:
        raise ConfigError(f"{source}: unknown setting(s) {', '.join(unknown)}")
    for field in sorted(known):
        if not isinstance(top.get(field), str) or not top[field]:
            raise fail(field, "a non-empty string")
    if top["target"] not in ("local", "aws"):
        raise fail("target", "'local' or 'aws'")
    if not BUCKET_NAME.match(top["artifact_bucket"].replace(ACCOUNT_TOKEN, "123456789012")):
        raise fail(
            "artifact_bucket",
            f"an S3 bucket name (3-63 lower-case letters, digits, '.', '-'; {ACCOUNT_TOKEN} allowed)",
        )
    config = Config(env=env, source=source, **{f: top[f] for f in known}, **sections)
    _check_values(config, fail)
    return config


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
        kind = str if default is None else type(default)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise fail(f"{name}.{key}", f"a {kind.__name__}, got {value!r}")
        checked[key] = value
    return cls(**checked)


def _check_values(config: Config, fail) -> None:
    if config.pipeline.quality_metric not in METRICS:
        raise fail("pipeline.quality_metric", f"one of {', '.join(METRICS)}")
    if not 0 < config.pipeline.test_size < 1:
        raise fail("pipeline.test_size", "a number between 0 and 1")
    if not 0 <= config.pipeline.threshold <= 1:
        raise fail("pipeline.threshold", "a number between 0 and 1")
    if config.data.rows < 100:
        raise fail("data.rows", "at least 100")
    if not 0 < config.emulator.port < 65536:
        raise fail("emulator.port", "a port number")
    for kind in ("processing", "training", "transform"):
        if not INSTANCE_TYPE.match(getattr(config.instances, kind)):
            raise fail(f"instances.{kind}", "an instance type such as ml.m5.large")
    aws = config.aws
    if aws.kms_key_id is not None and not KMS_KEY.match(aws.kms_key_id):
        raise fail("aws.kms_key_id", "a KMS key id, key ARN or alias")
    if aws.sagemaker_role_arn is not None and not ROLE_ARN.match(aws.sagemaker_role_arn):
        raise fail("aws.sagemaker_role_arn", "an IAM role ARN, or null for a role the stack creates")
    if not REPOSITORY.match(aws.image_repository):
        raise fail("aws.image_repository", "an ECR repository name (lower-case, digits, '.', '_', '-', '/')")
    schedule = config.schedule
    if schedule.inference is not None and not SCHEDULE.match(schedule.inference):
        raise fail("schedule.inference", "cron(...) or rate(...), or null for no schedule")
    if schedule.data_uri is not None and not S3_PREFIX.match(schedule.data_uri):
        raise fail("schedule.data_uri", "an s3://bucket/prefix/ URI, or null for <artifact bucket>/incoming/")
    if config.data.source != "generated" and not config.data.source.endswith(".csv"):
        raise fail("data.source", "'generated' or the path of a .csv file")
