"""The authoring API beyond the contract: the one walk over a definition's states, the KMS pass
at every depth, images named by placeholder, and SageMaker requests checked against botocore's
service model at build."""

from __future__ import annotations

import dataclasses
import json

import pytest
from stepfunctions import steps

from mlharness import tasks
from mlharness.checks import check_images
from mlharness.contract import ContractError
from mlharness.definitions import states
from mlharness.requests import check_requests
from pipelines import training

KMS = "${KmsKeyArn}"


def _job(name: str) -> dict:
    return tasks.training(name, f"training-{name.lower()}", {}, "s3://b/train", "s3://b/model").to_dict()


def _nested_definition() -> dict:
    """A training job at the top, in both branches of a Parallel, and in a Map's iterator."""
    return {
        "StartAt": "Top",
        "States": {
            "Top": {**_job("Top"), "Next": "Both"},
            "Both": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "Left", "States": {"Left": {**_job("Left"), "End": True}}},
                    {"StartAt": "Right", "States": {"Right": {**_job("Right"), "End": True}}},
                ],
                "Next": "Each",
            },
            "Each": {
                "Type": "Map",
                "ItemProcessor": {"StartAt": "Item", "States": {"Item": {**_job("Item"), "End": True}}},
                "End": True,
            },
        },
    }


def test_the_walk_reaches_states_in_branches_and_map_iterators():
    names = [name for name, _ in states(_nested_definition())]
    assert names == ["Top", "Both", "Left", "Right", "Each", "Item"]


def test_a_kms_key_encrypts_jobs_in_parallel_branches_and_map_iterators_too():
    encrypted = tasks.with_kms_key(_nested_definition())
    jobs = [state for _, state in states(encrypted) if state.get("Type") == "Task"]
    assert len(jobs) == 4
    for state in jobs:
        assert state["Parameters"]["ResourceConfig"]["VolumeKmsKeyId"] == KMS
        assert state["Parameters"]["OutputDataConfig"]["KmsKeyId"] == KMS


def test_a_jsonata_job_task_is_encrypted_in_its_arguments():
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "Process",
        "States": {
            "Process": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sagemaker:createProcessingJob.sync",
                "Arguments": {
                    "ProcessingJobName": "{% 'p-' & $states.context.Execution.Name %}",
                    "ProcessingResources": {
                        "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large"}
                    },
                    "ProcessingOutputConfig": {"Outputs": []},
                },
                "End": True,
            }
        },
    }
    arguments = tasks.with_kms_key(definition)["States"]["Process"]["Arguments"]
    assert arguments["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == KMS
    assert arguments["ProcessingOutputConfig"]["KmsKeyId"] == KMS
    assert "Parameters" not in tasks.with_kms_key(definition)["States"]["Process"]


def test_a_block_known_only_at_run_time_cannot_be_encrypted_and_is_refused_naming_the_state():
    definition = _nested_definition()
    left = definition["States"]["Both"]["Branches"][0]["States"]["Left"]["Parameters"]
    left["OutputDataConfig.$"] = "$.output"
    del left["OutputDataConfig"]
    with pytest.raises(
        ContractError, match="state 'Left': cannot encrypt .* OutputDataConfig is known only at run"
    ):
        tasks.with_kms_key(definition)
    whole = {
        "QueryLanguage": "JSONata",
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",
                "Arguments": "{% $states.input.request %}",
                "End": True,
            }
        },
    }
    with pytest.raises(ContractError, match="state 'T': cannot encrypt"):
        tasks.with_kms_key(whole)


def test_images_are_placeholders_the_project_names():
    assert tasks.JOB_IMAGE == "${JobImageUri}"
    assert tasks.image_uri("churn-trainer") == "${ChurnTrainerImageUri}"
    assert tasks.image_placeholders(json.dumps(_nested_definition())) == {"Job"}
    with pytest.raises(ContractError, match="image name 'Trainer'"):
        tasks.image_uri("Trainer")
    definition = training.definition(training.BuildContext(training.PIPELINE.with_defaults(None), "training"))
    check_images(training.PIPELINE, definition, {"job"})
    definition["States"]["Train"]["Parameters"]["AlgorithmSpecification"]["TrainingImage"] = tasks.image_uri(
        "gpu"
    )
    with pytest.raises(
        ContractError, match=r"state 'Train' runs the image \$\{GpuImageUri\}, which the project"
    ):
        check_images(training.PIPELINE, definition, {"job"})


def test_an_empty_argument_list_is_left_out_of_a_processing_request():
    task = tasks.processing("P", "p-1", "jobs/x.py", [], inputs={}, outputs={}, code_uri="s3://b/c.tar.gz")
    assert "ContainerArguments" not in task.to_dict()["Parameters"]["AppSpecification"]


def _training_definition(mutate) -> dict:
    definition = training.definition(training.BuildContext(training.PIPELINE.with_defaults(None), "training"))
    mutate(definition["States"]["Preprocess"]["Parameters"])
    return definition


@pytest.mark.parametrize(
    "mutate, message",
    [
        (
            lambda p: p["AppSpecification"].update({"ContainerArguments": []}),
            "AppSpecification.ContainerArguments has 0 member",
        ),
        (lambda p: p.update({"Colour": "blue"}), "Colour is not a member of CreateProcessingJobRequest"),
        (lambda p: p.pop("ProcessingResources"), "ProcessingResources is required"),
        (
            lambda p: p["ProcessingResources"]["ClusterConfig"].update({"InstanceCount": 0}),
            "ProcessingResources.ClusterConfig.InstanceCount is 0, at least 1 is required",
        ),
        (
            lambda p: p["ProcessingResources"]["ClusterConfig"].update({"InstanceCount": "one"}),
            "InstanceCount must be a whole number",
        ),
        (
            lambda p: p["ProcessingInputs"][0]["S3Input"].update({"S3InputMode": "Stream"}),
            "ProcessingInputs[0].S3Input.S3InputMode 'Stream' is not one of Pipe, File",
        ),
        (lambda p: p.update({"Environment": {"K": "x" * 300}}), "Environment.K is 300 characters long"),
    ],
)
def test_a_request_sagemaker_would_refuse_is_refused_at_build_naming_the_state(mutate, message):
    with pytest.raises(ContractError) as raised:
        check_requests(training.PIPELINE, _training_definition(mutate))
    assert "state 'Preprocess': SageMaker would refuse its CreateProcessingJob request" in str(raised.value)
    assert message in str(raised.value)


def test_values_known_later_are_not_judged_and_the_examples_pass():
    check_requests(training.PIPELINE, _training_definition(lambda p: None))
    later = _training_definition(
        lambda p: p["AppSpecification"].update({"ContainerArguments.$": "$.arguments", "ImageUri": "${X}"})
    )
    check_requests(training.PIPELINE, later)


def test_a_job_task_of_an_sdk_step_is_a_task_the_walk_finds():
    task = steps.Task("S", resource="arn:aws:states:::sagemaker:createModel", parameters={"ModelName": "m"})
    definition = steps.Graph(steps.Chain([task])).to_dict()
    assert [name for name, _ in states(definition)] == ["S"]
    assert dataclasses.is_dataclass(training.PIPELINE)


def test_tuning_ranges_must_be_numbers_before_anything_runs():
    from mlharness import tasks

    tuning = {"objective": {"metric": "m", "type": "Minimize"}, "ranges": {"C": {"min": "a", "max": 1}}}
    with pytest.raises(ValueError, match=r"tuning.ranges.C.min: expected a number, got 'a'"):
        tasks.tuning_config(tuning)
    tuning["ranges"]["C"] = {"min": 0.1, "max": True}
    with pytest.raises(ValueError, match=r"tuning.ranges.C.max: expected a number, got True"):
        tasks.tuning_config(tuning)
