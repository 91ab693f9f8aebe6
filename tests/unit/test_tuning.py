"""The tuning search (which points a tuning job tries) and its record, without Docker."""

from __future__ import annotations

import math
import random

import pytest

from harness.emulator.sagemaker import tuning


def config(strategy="Random", limit=6, **ranges):
    return {
        "Strategy": strategy,
        "ResourceLimits": {"MaxNumberOfTrainingJobs": limit, "MaxParallelTrainingJobs": 2},
        "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "loss"},
        "ParameterRanges": ranges,
    }


def request(cfg, metrics=("loss",)):
    return {
        "HyperParameterTuningJobConfig": cfg,
        "TrainingJobDefinition": {
            "AlgorithmSpecification": {
                "TrainingImage": "i",
                "TrainingInputMode": "File",
                "MetricDefinitions": [{"Name": m, "Regex": "x"} for m in metrics],
            },
            "StaticHyperParameters": {"fixed": "1"},
        },
    }


LR = {"Name": "lr", "MinValue": "0.0001", "MaxValue": "0.1", "ScalingType": "Logarithmic"}
DEPTH = {"Name": "depth", "MinValue": "1", "MaxValue": "8", "ScalingType": "Linear"}
KIND = {"Name": "kind", "Values": ["a", "b", "c"]}


def test_grid_tries_every_combination_in_order_up_to_the_limit():
    cfg = config("Grid", limit=5, CategoricalParameterRanges=[KIND, {"Name": "n", "Values": ["1", "2"]}])
    search = tuning.Search(cfg, seed=None)
    points = []
    while (point := search.next([], maximize=False)) is not None:
        points.append(point)
    assert points == [
        {"kind": "a", "n": "1"}, {"kind": "a", "n": "2"}, {"kind": "b", "n": "1"},
        {"kind": "b", "n": "2"}, {"kind": "c", "n": "1"},
    ]  # fmt: skip


def test_random_samples_each_range_on_its_scale_and_repeats_with_a_seed():
    cfg = config(
        IntegerParameterRanges=[DEPTH], ContinuousParameterRanges=[LR], CategoricalParameterRanges=[KIND]
    )
    assert tuning.Search(cfg, seed=7).next([], False) == tuning.Search(cfg, seed=7).next([], False)
    search = tuning.Search(cfg, seed=3)
    points = [search.next([], False) for _ in range(6)]
    assert search.next([], False) is None  # MaxNumberOfTrainingJobs
    for point in points:
        assert 1 <= int(point["depth"]) <= 8 and point["kind"] in ("a", "b", "c")
        assert 0.0001 <= float(point["lr"]) <= 0.1
    rng = random.Random(1)
    logs = [
        math.log10(float(tuning.draw(config(ContinuousParameterRanges=[LR]), rng)["lr"])) for _ in range(400)
    ]
    assert 150 < sum(v < -2.5 for v in logs) < 250  # log scale: about half below the geometric middle


def test_bayesian_follows_the_model_once_jobs_have_finished():
    cfg = config(
        "Bayesian", limit=10, ContinuousParameterRanges=[{"Name": "x", "MinValue": "0", "MaxValue": "1"}]
    )
    search = tuning.Search(cfg, seed=0)
    finished = []
    for _ in range(8):
        point = search.next(finished, maximize=False)
        x = float(point["x"])
        finished.append((point, (x - 0.3) ** 2))  # the loss is least at 0.3
    best = min(finished, key=lambda item: item[1])
    assert abs(float(best[0]["x"]) - 0.3) < 0.1


@pytest.mark.parametrize(
    "change, message",
    [
        ({"Strategy": "Hyperband"}, "runs the Random, Grid, Bayesian strategies"),
        ({"Strategy": "Grid"}, "categorical parameter ranges only"),
        (
            {"HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "nope"}},
            "not one of the MetricDefinitions",
        ),
        ({"ParameterRanges": {}}, "at least one hyperparameter"),
        (
            {
                "ParameterRanges": {
                    "IntegerParameterRanges": [{"Name": "d", "MinValue": "5", "MaxValue": "1"}]
                }
            },
            "greater than MaxValue",
        ),
        ({"ParameterRanges": {"ContinuousParameterRanges": [LR | {"MinValue": "0"}]}}, "Logarithmic scaling"),
        *(
            ({"ParameterRanges": {kind: [item]}}, message)
            for kind, item, message in (
                ("ContinuousParameterRanges", LR | {"MinValue": "abc"}, "MinValue 'abc' is not a number"),
                ("IntegerParameterRanges", DEPTH | {"MaxValue": "2.5"}, "MaxValue '2.5' is not an integer"),
                ("ContinuousParameterRanges", LR | {"MaxValue": "nan"}, "not a finite number"),
            )
        ),
    ],
)
def test_what_a_tuning_job_cannot_run_is_refused(change, message):
    cfg = config(IntegerParameterRanges=[DEPTH]) | change
    with pytest.raises(tuning.TuningError, match=message):
        tuning.check(request(cfg))


def test_each_job_is_the_definition_with_its_point_and_the_static_hyperparameters():
    made = tuning.training_request(
        request(config(IntegerParameterRanges=[DEPTH])) | {"Tags": [{"Key": "k", "Value": "v"}]},
        "t-001-ab",
        {"depth": "3"},
    )
    assert made["TrainingJobName"] == "t-001-ab"
    assert made["HyperParameters"] == {"fixed": "1", "depth": "3"}
    assert made["Tags"] == [{"Key": "k", "Value": "v"}]
    assert "StaticHyperParameters" not in made


def test_the_record_counts_the_jobs_and_picks_the_best_by_the_objective():
    def describe_job(name: str) -> dict:
        return described[name] | {"TrainingJobArn": f"arn:{name}", "CreationTime": 0}

    given = request(config(IntegerParameterRanges=[DEPTH])) | {"HyperParameterTuningJobName": "t"}
    run = tuning.TuningRun("arn:t", given, 0, describe_job)
    run.jobs = [
        ("j1", {"depth": "1"}),
        ("j2", {"depth": "2"}),
        ("j3", {"depth": "3"}),
        ("j4", {"depth": "4"}),
    ]
    described = {
        "j1": {
            "TrainingJobStatus": "Completed",
            "FinalMetricDataList": [{"MetricName": "loss", "Value": 0.5}],
        },
        "j2": {
            "TrainingJobStatus": "Completed",
            "FinalMetricDataList": [{"MetricName": "loss", "Value": 0.2}],
        },
        "j3": {"TrainingJobStatus": "Failed", "FailureReason": "AlgorithmError: x"},
        "j4": {"TrainingJobStatus": "InProgress"},
    }
    answer = run.describe()
    assert (answer["HyperParameterTuningJobName"], answer["HyperParameterTuningJobStatus"]) == (
        "t",
        "InProgress",
    )
    assert answer["TrainingJobStatusCounters"] == {
        "Completed": 2, "InProgress": 1, "RetryableError": 0, "NonRetryableError": 1, "Stopped": 0,
    }  # fmt: skip
    assert answer["ObjectiveStatusCounters"] == {"Succeeded": 2, "Pending": 1, "Failed": 1}
    assert answer["BestTrainingJob"]["TrainingJobName"] == "j2"
    assert answer["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"] == {
        "Type": "Minimize", "MetricName": "loss", "Value": 0.2,
    }  # fmt: skip


def test_the_sdks_tuning_resource_config_becomes_the_jobs_resource_config():
    definition = {
        "HyperParameterTuningResourceConfig": {
            "InstanceType": "ml.m5.large",
            "InstanceCount": 1,
            "VolumeSizeInGB": 30,
        }
    }
    tuning.settle_resource_config(definition)
    assert definition["ResourceConfig"] == {
        "InstanceType": "ml.m5.large",
        "InstanceCount": 1,
        "VolumeSizeInGB": 30,
    }


XGBOOST = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
LINEAR = "382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1"
PCA = "382416733822.dkr.ecr.us-east-1.amazonaws.com/pca:1"


def _built_in(image: str, metric: str) -> dict:
    cfg = config(IntegerParameterRanges=[DEPTH])
    cfg["HyperParameterTuningJobObjective"] = {"Type": "Maximize", "MetricName": metric}
    built_in = request(cfg, metrics=())
    built_in["TrainingJobDefinition"]["AlgorithmSpecification"] = {
        "TrainingImage": image,
        "TrainingInputMode": "File",
    }
    return built_in


def test_a_built_in_algorithm_is_tuned_on_the_metrics_aws_documents_for_it():
    tuning.check(_built_in(XGBOOST, "validation:auc"))  # no MetricDefinitions: the algorithm has them
    tuning.check(_built_in(LINEAR, "validation:binary_f_beta"))
    tuning.check(_built_in(PCA, "test:anything"))  # metrics not listed here: the jobs fail on the image
    with pytest.raises(tuning.TuningError, match="not one the xgboost algorithm computes"):
        tuning.check(_built_in(XGBOOST, "validation:accuracy_of_nothing"))
    with pytest.raises(tuning.TuningError, match="not one of the MetricDefinitions"):
        tuning.check(_built_in("123456789012.dkr.ecr.us-east-1.amazonaws.com/my-own:1", "validation:auc"))
