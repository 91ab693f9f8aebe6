"""The pipeline contract: what a pipeline declares so that the harness can build, deploy,
run, record and show it without knowing its name.

A pipeline is one module that defines `PIPELINE = Pipeline(...)`; the project's
`mlharness.yaml` lists the modules (or files). Everything a pipeline creates in
SageMaker is named `<prefix>-...`, which is what its IAM statements allow.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mlharness import kinds

NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")
# No '-' in a prefix: an IAM pattern `score-*` would also match every name of a pipeline
# prefixed `score-x`, so prefixes with hyphens could not be kept apart.
PREFIX = re.compile(r"^[a-z][a-z0-9]{1,19}$")

# The SageMaker resource types a pipeline may create, as IAM's ARNs name them (mlharness.kinds).
KINDS = tuple(kinds.KINDS)
# Kinds whose jobs run on instances the stack's parameters size (<Kind>InstanceType): a job's
# from the service model's enum of its instance types; an endpoint's its variants'.
INSTANCE_KINDS = {
    **{kind.resource: kind.instance_type_enum.removesuffix("InstanceType") for kind in kinds.JOBS},
    kinds.ENDPOINT.resource: "Endpoint",
}


class ContractError(ValueError):
    """A pipeline that breaks the contract; the message is one line naming the pipeline."""


@dataclasses.dataclass(frozen=True)
class Artifact:
    """What one pipeline hands to another, as one JSON record with PascalCase keys.

    The same record is the producing run's output, the object it publishes, and the
    value under `kind.title()` in the consuming run's execution input.
    """

    kind: str  # e.g. "model"
    fields: tuple[str, ...]  # keys every record has

    def missing(self, record: Mapping) -> list[str]:
        return [f for f in self.fields if f not in record]

    def sample(self, bucket: str) -> dict:
        """A record of the right shape, for build-time checks."""
        return {f: f"s3://{bucket}/sample/{f}" for f in self.fields}


MODEL = Artifact("model", ("RunId", "ModelArtifactUri", "TransformerUri", "SampleUri", "Metrics"))

INPUT_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")


@dataclasses.dataclass(frozen=True)
class Input:
    """A named input a pipeline runs on: one file or one folder on the user's machine.

    The project's configuration (`inputs.<name>`) or `--input NAME=PATH` gives it. Before
    anything is deployed the harness checks that it exists and is readable, runs `check`,
    uploads it under a key named by its content's sha256 (`inputs/<sha256>/...`, so an
    unchanged input is not uploaded again), and hands the run its S3 prefix
    (`RunContext.inputs[name]`, ending in `/`: what an `S3Prefix` channel reads). The run
    record keeps its path, URI and sha256.
    """

    name: str  # lower case, digits, '-' or '_'; what the configuration and --input call it
    kind: str = "file"  # "file" or "folder"
    description: str = ""
    check: Callable[[Path], None] | None = None  # raises ValueError (one line) on an unusable input
    # Writes an example input at the given path when none is given (`generate` in the configuration
    # passes its options as keyword arguments, checked against `generate_options`' defaults).
    generate: Callable[..., None] | None = None
    generate_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    file_name: str = "input"  # the generated file's name (a file input)


@dataclasses.dataclass(frozen=True)
class BuildContext:
    """What a definition may depend on: the sources and this pipeline's settings (no account,
    no bucket: those are deploy-time placeholders, see pipelines/tasks.py)."""

    settings: Mapping[str, Any]
    prefix: str


@dataclasses.dataclass(frozen=True)
class RunContext:
    """What an execution input is built from."""

    run_id: str  # <prefix>-<execution name>
    execution_name: str
    artifact_bucket: str
    prefix_uri: str  # s3://<bucket>/runs/<run id>: everything the run writes goes under it
    inputs: Mapping[str, str]  # input name -> its S3 prefix (s3://<bucket>/inputs/<sha256>/)
    code_uri: str
    stack_name: str
    settings: Mapping[str, Any]
    consumed: Mapping[str, Mapping]  # artifact kind -> the record this run uses

    @property
    def prefix_key(self) -> str:
        """The run's folder as a key in the artifact bucket (runs/<run id>)."""
        return self.prefix_uri.split("/", 3)[3]


@dataclasses.dataclass(frozen=True)
class Outputs:
    """What a finished execution produced, as the run record and the CLI show it."""

    values: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # recorded outputs
    metrics: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    produced: Mapping[str, Mapping] = dataclasses.field(default_factory=dict)  # kind -> record
    consumed: Mapping[str, str] = dataclasses.field(default_factory=dict)  # kind -> run id it used
    summary: Sequence[tuple[str, str]] = ()  # (label, value) lines for the run's summary
    headline: str = ""  # one short value for `status`
    resources: Mapping[str, str] = dataclasses.field(default_factory=dict)  # kind -> name, shown live


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A pipeline that a schedule may start: the fixed input the rule gives it, with
    ${...} deploy-time placeholders (CodeUri, <Logical>ScheduleDataUri)."""

    input: Mapping[str, str]
    description: str  # what each scheduled run does; {Key} stands for the input's value of Key


@dataclasses.dataclass(frozen=True)
class Pipeline:
    name: str  # lower case, digits, '-': the state machine is <stack>-<name>
    prefix: str  # every job, model, endpoint config and endpoint it creates is named <prefix>-...
    description: str
    definition: Callable[[BuildContext], dict]  # the ASL, deterministic, with ${...} placeholders
    execution_input: Callable[[RunContext], dict]
    outputs: Callable[[dict, dict], Outputs]  # (execution input, execution output) -> outputs
    kinds: frozenset[str]  # the SageMaker resource types it creates (see KINDS)
    settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # defaults, typed by value
    check_settings: Callable[[Mapping[str, Any]], None] | None = None  # raises ValueError("key: ...")
    consumes: tuple[Artifact, ...] = ()
    produces: tuple[Artifact, ...] = ()
    publishes: Mapping[str, str] = dataclasses.field(default_factory=dict)  # kind -> key in the bucket
    writes: tuple[str, ...] = ()  # keys (IAM patterns) its state machine itself may write
    # packages or modules (import names, found in the project first) its jobs run: the code bundle
    code: tuple[str, ...] = ()
    inputs: tuple[Input, ...] = ()  # what it runs on, checked and uploaded before it starts
    schedule: Schedule | None = None
    runs_by_default: bool = True  # in a plain `run`; `--pipeline all` runs every pipeline

    @property
    def logical_id(self) -> str:
        """The CloudFormation name part: training -> Training, my-scoring -> MyScoring."""
        return "".join(part.title() for part in self.name.split("-"))

    def with_defaults(self, settings: Mapping[str, Any] | None) -> dict:
        return {**self.settings, **(settings or {})}

    def execution_name(self, run_id: str) -> str:
        return run_id.removeprefix(f"{self.prefix}-")


def check_declaration(pipeline: Pipeline) -> None:
    """The declaration alone: names, prefix, kinds, what it publishes."""
    where = f"pipeline {pipeline.name!r}"
    if not NAME.match(pipeline.name):
        raise ContractError(f"{where}: the name must be 2-32 lower-case letters, digits or '-'")
    if not PREFIX.match(pipeline.prefix):
        raise ContractError(
            f"{where}: prefix {pipeline.prefix!r} must be 2-20 lower-case letters and digits, "
            "starting with a letter (no '-', so that no pipeline's IAM pattern covers another's names)"
        )
    unknown = sorted(set(pipeline.kinds) - set(KINDS))
    if unknown:
        raise ContractError(
            f"{where}: unknown SageMaker kind(s) {', '.join(unknown)}: use {', '.join(KINDS)}"
        )
    input_names = [i.name for i in pipeline.inputs]
    for item in pipeline.inputs:
        if not INPUT_NAME.match(item.name):
            raise ContractError(
                f"{where}: input name {item.name!r} must be 1-40 lower-case letters, digits, '-' or '_'"
            )
        if item.kind not in ("file", "folder"):
            raise ContractError(f"{where}: input {item.name!r}: kind must be 'file' or 'folder'")
        if input_names.count(item.name) > 1:
            raise ContractError(f"{where}: declares input {item.name!r} twice")
    produced = {a.kind for a in pipeline.produces}
    for kind in pipeline.publishes:
        if kind not in produced:
            raise ContractError(f"{where}: publishes {kind!r} but does not produce it")
    if pipeline.schedule is not None and "CodeUri" not in pipeline.schedule.input:
        raise ContractError(f"{where}: a schedule's input must give CodeUri")


def check_registry(pipelines: Sequence[Pipeline]) -> None:
    """Every declaration, and no two pipelines with one name or one prefix."""
    names: dict[str, Pipeline] = {}
    prefixes: dict[str, Pipeline] = {}
    for pipeline in pipelines:
        check_declaration(pipeline)
        if pipeline.name in names:
            raise ContractError(f"two pipelines are named {pipeline.name!r}: names must be unique")
        if pipeline.prefix in prefixes:
            raise ContractError(
                f"pipelines {prefixes[pipeline.prefix].name!r} and {pipeline.name!r} share the prefix "
                f"{pipeline.prefix!r}: each pipeline needs its own"
            )
        if pipeline.logical_id in {p.logical_id for p in names.values()}:
            raise ContractError(f"pipeline {pipeline.name!r}: its CloudFormation name clashes with another's")
        names[pipeline.name] = prefixes[pipeline.prefix] = pipeline
    kinds_of_input: dict[str, tuple[str, str]] = {}
    for pipeline in pipelines:
        for item in pipeline.inputs:
            other, kind = kinds_of_input.setdefault(item.name, (pipeline.name, item.kind))
            if kind != item.kind:
                raise ContractError(
                    f"pipelines {other!r} and {pipeline.name!r} both take an input {item.name!r}, "
                    f"one as a {kind}, the other as a {item.kind}: a shared input has one kind"
                )
    produced = {a.kind for p in pipelines for a in p.produces}
    for pipeline in pipelines:
        for artifact in pipeline.consumes:
            if artifact.kind not in produced:
                raise ContractError(
                    f"pipeline {pipeline.name!r} consumes a {artifact.kind} that no registered "
                    "pipeline produces"
                )


def sample_context(pipeline: Pipeline, settings: Mapping[str, Any]) -> RunContext:
    """A run context with placeholder values, to check what a pipeline builds from it."""
    run_id = f"{pipeline.prefix}-20000101-000000-000000"
    bucket = "sample-bucket"
    return RunContext(
        run_id=run_id,
        execution_name=pipeline.execution_name(run_id),
        artifact_bucket=bucket,
        prefix_uri=f"s3://{bucket}/runs/{run_id}",
        inputs={i.name: f"s3://{bucket}/inputs/sample-{i.name}/" for i in pipeline.inputs},
        code_uri=f"s3://{bucket}/code/sample.tar.gz",
        stack_name="sample-stack",
        settings=settings,
        consumed={a.kind: a.sample(bucket) for a in pipeline.consumes},
    )
