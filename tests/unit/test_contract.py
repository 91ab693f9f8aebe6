"""The pipeline contract: the registry, the build-time refusals, and what the harness
generates from a declaration (a pipeline it has never heard of included)."""

from __future__ import annotations

import dataclasses
import json
import sys
import textwrap

import pytest
import yaml

from harness import build, config, pipeline_modules
from harness.errors import HarnessError
from mlharness.checks import check_definition, used_kinds
from mlharness.contract import BuildContext, ContractError, check_registry, sample_context
from pipelines import endpoint, inference, training
from tests import ROOT
from tests.projects import write_project

SCORING = '''
"""A user's pipeline: inference, renamed, with a processing step of its own."""
import dataclasses

from mlharness import BuildContext
from pipelines import inference


def definition(build: BuildContext) -> dict:
    asl = inference.definition(build)
    text = __import__("json").dumps(asl).replace("inference-{}", "scoring-{}")
    return __import__("json").loads(text)


PIPELINE = dataclasses.replace(
    inference.PIPELINE, name="scoring", prefix="scoring", definition=definition, schedule=None
)
'''


@pytest.fixture
def scoring_project(tmp_path):
    """A project whose own pipeline file sits beside the repository's example pipelines."""
    (tmp_path / "team_scoring.py").write_text(textwrap.dedent(SCORING))
    yield write_project(
        tmp_path,
        pipelines=["pipelines.training", "pipelines.inference", "pipelines.endpoint", "team_scoring.py"],
    )
    sys.modules.pop("team_scoring", None)


def _checked(pipeline, mutate=None, settings=None):
    merged = pipeline.with_defaults(settings)
    definition = pipeline.definition(BuildContext(merged, pipeline.prefix))
    if mutate:
        mutate(definition)
    check_definition(pipeline, definition, sample_context(pipeline, merged))
    return definition


def test_the_registry_orders_consumers_after_producers():
    reversed_modules = ("pipelines.endpoint", "pipelines.inference", "pipelines.training")
    ordered = pipeline_modules.load(ROOT, reversed_modules)
    assert [p.name for p in ordered][0] == "training"


@pytest.mark.parametrize(
    "pipelines, message",
    [
        ([training.PIPELINE, training.PIPELINE], "two pipelines are named 'training'"),
        (
            [training.PIPELINE, dataclasses.replace(inference.PIPELINE, prefix="training")],
            "pipelines 'training' and 'inference' share the prefix 'training'",
        ),
        ([dataclasses.replace(training.PIPELINE, prefix="train-x")], "prefix 'train-x' must be"),
        ([dataclasses.replace(training.PIPELINE, name="Training")], "the name must be"),
        ([dataclasses.replace(training.PIPELINE, kinds=frozenset({"notebook"}))], "unknown SageMaker kind"),
        ([inference.PIPELINE], "consumes a model that no registered pipeline produces"),
    ],
)
def test_registry_refusals_are_one_line(pipelines, message):
    with pytest.raises(ContractError) as raised:
        check_registry(pipelines)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_a_module_without_a_pipeline_is_named(tmp_path):
    (tmp_path / "empty_module.py").write_text("X = 1\n")
    with pytest.raises(ContractError, match="'empty_module' defines no PIPELINE"):
        pipeline_modules.load(tmp_path, ("empty_module",))


@pytest.mark.parametrize(
    "source, message",
    [
        ("def broken(:\n", r"SyntaxError: invalid syntax \(bad_module.py, line 1\)"),
        (
            "raise RuntimeError('no database here')\n",
            r"RuntimeError: no database here \(bad_module.py, line 1\)",
        ),
        (
            "import no_such_package_anywhere\n",
            "ModuleNotFoundError: No module named 'no_such_package_anywhere'",
        ),
    ],
)
def test_a_module_that_fails_to_import_is_one_line_naming_where(tmp_path, source, message):
    (tmp_path / "bad_module.py").write_text(source)
    with pytest.raises(ContractError, match=message) as raised:
        pipeline_modules.load(tmp_path, ("bad_module",))
    assert "\n" not in str(raised.value)
    sys.modules.pop("bad_module", None)


@pytest.mark.parametrize("pipeline", [training.PIPELINE, inference.PIPELINE, endpoint.PIPELINE])
def test_the_projects_pipelines_keep_their_contract(pipeline):
    definition = _checked(pipeline)
    assert used_kinds(definition) <= set(pipeline.kinds)


def test_a_literal_name_without_the_prefix_is_refused():
    def rename(definition):
        parameters = definition["States"]["Train"]["Parameters"]
        del parameters["TrainingJobName.$"]
        parameters["TrainingJobName"] = "nightly-train"

    with pytest.raises(
        ContractError, match="TrainingJobName 'nightly-train' does not start with 'training-'"
    ):
        _checked(training.PIPELINE, rename)


def test_a_name_from_the_execution_input_is_checked_on_the_input_the_pipeline_builds():
    def execution_input(run):
        return {**training.execution_input(run), "TrainingJobName": f"job-{run.execution_name}"}

    renamed = dataclasses.replace(training.PIPELINE, execution_input=execution_input)
    with pytest.raises(ContractError, match="TrainingJobName 'job-20000101-000000-000000' does not start"):
        _checked(renamed)


def test_a_name_built_from_the_execution_name_alone_is_refused():
    # A schedule names its executions with a UUID: the name would carry no prefix.
    def use_execution_name(definition):
        definition["States"]["NameRun"]["Parameters"]["ModelName.$"] = "$$.Execution.Name"

    with pytest.raises(
        ContractError, match="ModelName '20000101-000000-000000' does not start with 'inference-'"
    ):
        _checked(inference.PIPELINE, use_execution_name)


def test_a_name_that_cannot_be_traced_is_refused_with_how_to_fix_it():
    def untraceable(definition):
        parameters = definition["States"]["CreateModel"]["Parameters"]
        parameters["ModelName.$"] = "$.somewhere.else"

    with pytest.raises(ContractError, match=r"cannot show that ModelName \(\$.somewhere.else\) starts with"):
        _checked(endpoint.PIPELINE, untraceable)


def test_a_kind_the_pipeline_does_not_declare_is_refused():
    undeclared = dataclasses.replace(inference.PIPELINE, kinds=frozenset({"processing-job", "model"}))
    with pytest.raises(
        ContractError, match="'Predict' uses SageMaker transform-jobs, which the pipeline does not"
    ):
        _checked(undeclared)


def test_a_sagemaker_call_that_cannot_be_scoped_to_the_prefix_is_refused():
    def list_all(definition):
        definition["States"]["FindEndpoint"]["Resource"] = "arn:aws:states:::aws-sdk:sagemaker:listEndpoints"

    with pytest.raises(ContractError, match="calls sagemaker:ListEndpoints, which cannot be limited"):
        _checked(endpoint.PIPELINE, list_all)


def test_a_definition_that_does_not_validate_fails_the_build_offline():
    settings = config.load("local")
    broken = dataclasses.replace(
        training.PIPELINE, definition=lambda b: {**training.definition(b), "StartAt": "Nowhere"}
    )
    with pytest.raises(
        HarnessError,
        match="the training state machine definition does not validate: SCHEMA_VALIDATION_FAILED at /StartAt",
    ):
        build.checked_definition(settings, broken)


def test_a_pipeline_file_of_the_project_is_built_deployed_and_scoped(scoring_project):
    settings = config.load("local", project=scoring_project)
    assert settings.pipeline_names() == ["training", "inference", "endpoint", "scoring"]

    files = build.render(settings)
    assert "scoring-{}" in files["scoring.asl.json"]
    template = yaml.safe_load(files["template.yaml"])
    machine = template["Resources"]["ScoringStateMachine"]["Properties"]
    assert machine["StateMachineName"] == {"Fn::Sub": "${AWS::StackName}-scoring"}
    assert "ScoringStateMachineArn" in template["Outputs"]
    statements = template["Resources"]["ScoringStateMachineRole"]["Properties"]["Policies"][0][
        "PolicyDocument"
    ]["Statement"]
    sagemaker = [s for s in statements if any(a.startswith("sagemaker:") for a in s["Action"])]
    resources = sorted(s["Resource"]["Fn::Sub"].rsplit(":", 1)[1] for s in sagemaker)
    assert resources == ["model/scoring-*", "processing-job/scoring-*", "transform-job/scoring-*"]
    assert not any(s["Action"] == "s3:PutObject" for s in statements)  # it publishes nothing


def test_each_state_machine_role_allows_its_own_prefix_and_the_kinds_it_uses_only():
    files = build.render(config.load("local"))
    template = yaml.safe_load(files["template.yaml"])
    for pipeline in (training.PIPELINE, inference.PIPELINE, endpoint.PIPELINE):
        role = template["Resources"][f"{pipeline.logical_id}StateMachineRole"]["Properties"]
        statements = role["Policies"][0]["PolicyDocument"]["Statement"]
        text = json.dumps(statements)
        for other in {"training", "inference", "endpoint"} - {pipeline.prefix}:
            assert f"/{other}-*" not in text, (pipeline.name, other)
        kinds = {
            s["Resource"]["Fn::Sub"].rsplit(":", 1)[1].split("/")[0]
            for s in statements
            if any(a.startswith("sagemaker:") for a in s["Action"])
        }
        assert kinds == used_kinds(json.loads(files[f"{pipeline.name}.asl.json"]))  # not a kind more
        writes = [s for s in statements if s["Action"] == "s3:PutObject"]
        assert bool(writes) == bool(pipeline.writes)
        assert template["Resources"][f"{pipeline.logical_id}StateMachine"]["Properties"]["RoleArn"] == {
            "Fn::GetAtt": [f"{pipeline.logical_id}StateMachineRole", "Arn"]
        }


def test_only_the_instance_kinds_in_use_become_parameters():
    from harness.template import template

    settings = inference.PIPELINE.with_defaults(None)
    definition = inference.definition(BuildContext(settings, "inference"))
    parameters = template([inference.PIPELINE], {"inference": definition})["Parameters"]
    assert {p for p in parameters if p.endswith("InstanceType")} == {
        "ProcessingInstanceType",
        "TransformInstanceType",
    }
