"""Hyperparameter tuning that really runs: real training jobs, a parallelism cap that holds,
the best job by the objective metric; from the API, a state machine and the SageMaker SDK."""

from __future__ import annotations

import json
import time

import pytest

from tests.integration.helpers import ROLE, unique, wait_for_job

pytestmark = [pytest.mark.docker, pytest.mark.slow]

# the tiny image prints "epoch=<e> loss=<1/(e+1)>" for each of `epochs`: more epochs, less loss
LOSS = [{"Name": "loss", "Regex": r"loss=([0-9.]+)"}]


@pytest.fixture(scope="module")
def bucket(aws_client):
    name = unique("tuning")
    aws_client("s3").create_bucket(Bucket=name)
    aws_client("s3").put_object(Bucket=name, Key="train/rows.csv", Body=b"1\n2\n3\n")
    return name


def tuning_request(name: str, image: str, bucket: str, jobs: int, parallel: int) -> dict:
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": "Random",
            "RandomSeed": 5,
            "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "loss"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": jobs, "MaxParallelTrainingJobs": parallel},
            "ParameterRanges": {
                "IntegerParameterRanges": [
                    {"Name": "epochs", "MinValue": "1", "MaxValue": "9", "ScalingType": "Linear"}
                ]
            },
            "TrainingJobEarlyStoppingType": "Off",
        },
        "TrainingJobDefinition": {
            "StaticHyperParameters": {"sleep": "1"},
            "AlgorithmSpecification": {
                "TrainingImage": image,
                "TrainingInputMode": "File",
                "MetricDefinitions": LOSS,
            },
            "RoleArn": ROLE,
            "InputDataConfig": [
                {
                    "ChannelName": "train",
                    "DataSource": {
                        "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/train/"}
                    },
                }
            ],
            "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/models"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
            "StoppingCondition": {"MaxRuntimeInSeconds": 300},
        },
    }


def test_six_trainings_never_more_than_two_at_once_and_the_best_by_the_objective(
    aws_client, bucket, tiny_image
):
    sm = aws_client("sagemaker")
    name = unique("tune")[:32]
    arn = sm.create_hyper_parameter_tuning_job(
        **tuning_request(name, tiny_image, bucket, jobs=6, parallel=2)
    )["HyperParameterTuningJobArn"]
    assert arn.endswith(f":hyper-parameter-tuning-job/{name}")
    answer, seen = wait_for_job(
        lambda: sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name),
        "HyperParameterTuningJobStatus",
        timeout=300,
    )
    assert seen[0] == "InProgress" and answer["HyperParameterTuningJobStatus"] == "Completed"
    assert answer["TrainingJobStatusCounters"]["Completed"] == 6
    (listed,) = sm.list_hyper_parameter_tuning_jobs(NameContains=name)["HyperParameterTuningJobSummaries"]
    assert (listed["HyperParameterTuningJobStatus"], listed["Strategy"]) == ("Completed", "Random")
    assert answer["ObjectiveStatusCounters"] == {"Succeeded": 6, "Pending": 0, "Failed": 0}

    trials = sm.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name,
        SortBy="FinalObjectiveMetricValue",
        SortOrder="Ascending",
        MaxResults=100,
    )["TrainingJobSummaries"]
    assert len(trials) == 6
    losses = [t["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for t in trials]
    assert losses == sorted(losses)
    best = answer["BestTrainingJob"]
    assert best["TrainingJobName"] == trials[0]["TrainingJobName"]
    assert best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == pytest.approx(
        1 / int(best["TunedHyperParameters"]["epochs"]), abs=1e-4
    )

    spans = []
    for trial in trials:
        job = sm.describe_training_job(TrainingJobName=trial["TrainingJobName"])
        assert job["TuningJobArn"] == arn
        assert job["HyperParameters"]["sleep"] == "1"  # the static hyperparameters, with the tuned ones
        spans.append((job["TrainingStartTime"], job["TrainingEndTime"]))
    most = max(sum(1 for start, end in spans if start <= moment < end) for moment, _ in spans)
    assert most == 2  # the cap held, and was used


def test_a_built_in_algorithm_is_tuned_on_its_own_metrics_and_its_jobs_fail_on_its_missing_image(
    aws_client, bucket
):
    """XGBoost defines its metrics (no MetricDefinitions); its image is AWS's, which the local
    AWS cannot pull: each training job fails naming it, and so does the tuning job."""
    sm = aws_client("sagemaker")
    name = unique("xgb")[:32]
    image = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
    request = tuning_request(name, image, bucket, jobs=2, parallel=2)
    request["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"] = {
        "Type": "Maximize",
        "MetricName": "validation:auc",
    }
    del request["TrainingJobDefinition"]["AlgorithmSpecification"]["MetricDefinitions"]
    sm.create_hyper_parameter_tuning_job(**request)
    answer, _ = wait_for_job(
        lambda: sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name),
        "HyperParameterTuningJobStatus",
        timeout=120,
    )
    assert answer["HyperParameterTuningJobStatus"] == "Failed"
    assert answer["TrainingJobStatusCounters"]["NonRetryableError"] == 2
    trials = sm.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    for trial in trials["TrainingJobSummaries"]:
        failed = sm.describe_training_job(TrainingJobName=trial["TrainingJobName"])
        assert failed["FailureReason"] == f"ClientError: Requested image {image} not found."
    request["HyperParameterTuningJobName"] = unique("xgb-bad")[:32]
    request["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]["MetricName"] = "loss"
    with pytest.raises(sm.exceptions.ClientError, match="not one the xgboost algorithm computes"):
        sm.create_hyper_parameter_tuning_job(**request)


def test_stopping_a_tuning_job_stops_its_running_trainings(aws_client, bucket, tiny_image):
    sm = aws_client("sagemaker")
    name = unique("tune-stop")[:32]
    request = tuning_request(name, tiny_image, bucket, jobs=4, parallel=2)
    request["TrainingJobDefinition"]["StaticHyperParameters"] = {"sleep": "60"}
    sm.create_hyper_parameter_tuning_job(**request)
    time.sleep(2)
    sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    answer, _ = wait_for_job(
        lambda: sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name),
        "HyperParameterTuningJobStatus",
        timeout=120,
    )
    assert answer["HyperParameterTuningJobStatus"] == "Stopped"
    assert (
        answer["TrainingJobStatusCounters"]["Stopped"] == 2
        and answer["TrainingJobStatusCounters"]["Completed"] == 0
    )


def test_a_state_machine_tunes_with_the_sync_integration(aws_client, bucket, tiny_image):
    sfn = aws_client("stepfunctions")
    name = unique("tune-sfn")[:32]
    parameters = tuning_request(name, tiny_image, bucket, jobs=2, parallel=2)
    definition = {
        "StartAt": "Tune",
        "States": {
            "Tune": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sagemaker:createHyperParameterTuningJob.sync",
                "Parameters": parameters,
                "ResultSelector": {
                    "Best.$": "$.BestTrainingJob.TrainingJobName",
                    "Status.$": "$.HyperParameterTuningJobStatus",
                },
                "End": True,
            }
        },
    }
    machine = sfn.create_state_machine(
        name=unique("tuner"), definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/sfn"
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine)["executionArn"]
    deadline = time.monotonic() + 300
    while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    output = json.loads(described["output"])
    assert output["Status"] == "Completed" and output["Best"].startswith(f"{name}-")


def test_the_sdks_hyperparameter_tuner_fits_attaches_and_analyses(local_aws, bucket, tiny_image, monkeypatch):
    import boto3
    from sagemaker import Session
    from sagemaker.estimator import Estimator
    from sagemaker.telemetry import telemetry_logging
    from sagemaker.tuner import HyperparameterTuner, IntegerParameter

    monkeypatch.setattr(telemetry_logging, "_send_telemetry_request", lambda *args, **kwargs: None)
    monkeypatch.setenv("AWS_ENDPOINT_URL", local_aws.endpoint_url)
    session = Session(boto_session=boto3.Session(region_name="us-east-1"), default_bucket=bucket)
    estimator = Estimator(
        image_uri=tiny_image, role=ROLE, instance_count=1, instance_type="ml.m5.large",
        output_path=f"s3://{bucket}/sdk-models", sagemaker_session=session,
    )  # fmt: skip
    tuner = HyperparameterTuner(
        estimator, "loss", {"epochs": IntegerParameter(1, 9)}, metric_definitions=LOSS,
        objective_type="Minimize", strategy="Bayesian", max_jobs=4, max_parallel_jobs=2,
    )  # fmt: skip
    tuner.fit({"train": f"s3://{bucket}/train/"}, job_name=unique("sdk-tune")[:32], wait=True)

    best = tuner.best_training_job()
    assert best.startswith(tuner.latest_tuning_job.name)
    frame = tuner.analytics().dataframe()
    assert len(frame) == 4 and frame["FinalObjectiveValue"].min() == pytest.approx(
        frame.set_index("TrainingJobName").loc[best, "FinalObjectiveValue"]
    )
    attached = HyperparameterTuner.attach(tuner.latest_tuning_job.name, sagemaker_session=session)
    assert attached.best_training_job() == best
