"""The test kit (harness.testing, a pytest plugin): the project's pipelines through it, the
shipped mock configuration's test cases, and the documentation's test file run from a folder
of its own against this repository's project."""

from __future__ import annotations

import pytest

from tests import ROOT, docs_examples

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_a_mocked_quality_gate_fails_without_a_container(pipelines):
    result = pipelines.run("training", test_case="GateFails")

    assert (result.status, result.error) == ("FAILED", "QualityGateFailed")
    assert result.cause == "roc_auc 0.55 is below the threshold 0.7"
    assert result.jobs == {}
    assert result.states_entered()[-2:] == ["BelowThreshold", "QualityGateFailed"]


def test_a_throttled_training_job_is_retried_and_the_run_succeeds(pipelines):
    result = pipelines.run("training", test_case="TrainThrottledThenRetried")

    assert result.status == "SUCCEEDED", result.cause
    failures = [e["taskFailedEventDetails"]["error"] for e in result.events("TaskFailed", "Train")]
    assert failures == ["SageMaker.AmazonSageMakerException"]
    assert len(result.events("TaskSucceeded", "Train")) == 1
    assert result.output["published"]["Metrics"]["roc_auc"] == 0.88


def test_a_failed_training_job_ends_the_run_with_its_reason(pipelines):
    result = pipelines.run("training", test_case="TrainFails")

    assert (result.status, result.error) == ("FAILED", "States.TaskFailed")
    assert "AlgorithmError: the mocked training script raised" in result.cause
    assert "PipelineFailed" in result.states_entered()


def test_inference_with_nothing_published_says_so(pipelines):
    code = pipelines.deployment.code.uri
    result = pipelines.run(
        "inference", input={"DataUri": "s3://anywhere/", "CodeUri": code}, test_case="NothingPublished"
    )

    assert (result.status, result.error) == ("FAILED", "NoPublishedModel")


def test_an_endpoint_whose_model_fails_the_smoke_test_is_rolled_back(pipelines):
    given = {
        "RunId": "endpoint-mocked",
        "Model": {"RunId": "training-mocked", "ModelArtifactUri": "s3://anywhere/model.tar.gz"},
        "CodeUri": pipelines.deployment.code.uri,
        "ModelName": "endpoint-mocked-model",
        "EndpointConfigName": "endpoint-mocked-config",
        "EndpointName": "endpoint-mocked",
        "InstanceCount": 1,
        "SampleBucket": "anywhere",
        "SampleKey": "sample.csv",
        "PollSeconds": 1,
    }
    result = pipelines.run("endpoint", input=given, test_case="SmokeTestFailsAndRollsBack")

    assert (result.status, result.error) == ("FAILED", "SmokeTestFailed")
    assert "bad input: X has 3 features" in result.cause
    entered = result.states_entered()
    assert entered[entered.index("RestorePreviousConfig") :] == [
        "RestorePreviousConfig",
        "WaitForRollback",
        "DescribeRollback",
        "RolledBack",
        "EndpointFailed",
    ]


def test_the_documented_test_file_passes_from_a_folder_of_its_own(pytester):
    files = docs_examples.files("testing.md", "test_my_pipelines.py")
    pytester.makepyfile(test_my_pipelines=files["test_my_pipelines.py"])

    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-o", f"mlharness_project={ROOT}", timeout=900
    )

    result.assert_outcomes(passed=2)
