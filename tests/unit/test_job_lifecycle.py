"""The SageMaker job lifecycle the local AWS owns, without Docker: a scripted runner makes each
job happen in-process, and the backend's statuses, times, Describe answers, Stop, MaxRuntime
and MaxWait, the Step Functions `.sync` mapping, the step cache's decisions and tuning are
what the tests see, as a client sees them."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from moto import mock_aws

from harness.emulator import patches
from harness.emulator.sagemaker.backends import local_sagemaker_backends
from harness.emulator.sagemaker.cached_runner import CachedRunner
from harness.emulator.sagemaker.models import LocalSageMakerBackend
from harness.emulator.sagemaker.scripted_runner import Script, ScriptedRunner
from harness.emulator.sagemaker.step_cache import StepCache

ACCOUNT, REGION = "123456789012", "us-east-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/jobs"
METRICS = [{"Name": "train:loss", "Regex": r"loss=([0-9.]+)"}]


@pytest.fixture(scope="module", autouse=True)
def patched():
    patches.apply_patches()


@pytest.fixture
def aws():
    """The in-process AWS (moto's mock) with the local AWS's patches: its SageMaker is ours."""
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="data")
        s3.put_object(Bucket="data", Key="train/rows.csv", Body=b"1,2\n3,4\n")
        yield


def backend_with(runner) -> LocalSageMakerBackend:
    backend = local_sagemaker_backends[ACCOUNT][REGION]
    backend.use_runner(runner)
    return backend


def training(name: str, **overrides) -> dict:
    request = {
        "TrainingJobName": name,
        "RoleArn": ROLE,
        "AlgorithmSpecification": {
            "TrainingImage": "images/trainer:1",
            "TrainingInputMode": "File",
            "MetricDefinitions": METRICS,
        },
        "HyperParameters": {"C": "1.0"},
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://data/train/"}},
            }
        ],
        "OutputDataConfig": {"S3OutputPath": "s3://data/models"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }
    return request | overrides


def ended(describe, status_key: str, timeout: float = 10) -> tuple[dict, list[str]]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = describe()
        if not seen or seen[-1] != answer[status_key]:
            seen.append(answer[status_key])
        if answer[status_key] in ("Completed", "Failed", "Stopped"):
            return answer, seen
        time.sleep(0.01)
    raise AssertionError(f"still {seen[-1]} after {timeout} s")


def test_a_training_job_is_in_progress_then_completed_with_its_metrics_and_model(aws):
    backend_with(ScriptedRunner(lambda spec: Script(seconds=0.2, lines=("epoch 1 loss=0.52", "loss=0.31"))))
    sm = boto3.client("sagemaker", region_name=REGION)
    arn = sm.create_training_job(**training("t-ok"))["TrainingJobArn"]
    answer, seen = ended(lambda: sm.describe_training_job(TrainingJobName="t-ok"), "TrainingJobStatus")
    assert arn.endswith(":training-job/t-ok") and answer["TrainingJobArn"] == arn
    assert seen == ["InProgress", "Completed"]
    assert [t["Status"] for t in answer["SecondaryStatusTransitions"]] == [
        "Starting",
        "Downloading",
        "Training",
        "Uploading",
        "Completed",
    ]
    assert answer["TrainingStartTime"] <= answer["TrainingEndTime"]
    assert answer["ModelArtifacts"]["S3ModelArtifacts"] == "s3://data/models/t-ok/output/model.tar.gz"
    assert [(m["MetricName"], m["Value"]) for m in answer["FinalMetricDataList"]] == [("train:loss", 0.31)]
    assert answer["HyperParameters"] == {"C": "1.0"} and answer["RoleArn"] == ROLE


def test_a_failed_job_says_why_and_a_name_is_never_reused(aws):
    backend_with(ScriptedRunner(lambda spec: Script(status="Failed", failure_reason="AlgorithmError: boom")))
    sm = boto3.client("sagemaker", region_name=REGION)
    sm.create_training_job(**training("t-fails"))
    answer, _ = ended(lambda: sm.describe_training_job(TrainingJobName="t-fails"), "TrainingJobStatus")
    assert answer["FailureReason"] == "AlgorithmError: boom"
    assert answer["SecondaryStatus"] == "Failed"
    with pytest.raises(sm.exceptions.ResourceInUse):
        sm.create_training_job(**training("t-fails"))


def test_stop_ends_a_running_job_and_a_job_that_ended_cannot_be_stopped(aws):
    backend_with(ScriptedRunner(lambda spec: Script(until_stopped=True)))
    sm = boto3.client("sagemaker", region_name=REGION)
    sm.create_training_job(**training("t-stop"))
    sm.stop_training_job(TrainingJobName="t-stop")
    answer, seen = ended(lambda: sm.describe_training_job(TrainingJobName="t-stop"), "TrainingJobStatus")
    assert seen[-1] == "Stopped" and answer["SecondaryStatus"] == "Stopped"
    assert answer["SecondaryStatusTransitions"][-1]["StatusMessage"] == "Training job stopped by user"
    with pytest.raises(sm.exceptions.ClientError, match="the training job is in status Stopped"):
        sm.stop_training_job(TrainingJobName="t-stop")


def test_max_runtime_stops_the_job_as_aws_does_and_a_spot_wait_shorter_than_it_is_refused(aws):
    backend_with(ScriptedRunner(lambda spec: Script(until_stopped=True)))
    sm = boto3.client("sagemaker", region_name=REGION)
    sm.create_training_job(**training("t-slow", StoppingCondition={"MaxRuntimeInSeconds": 1}))
    slow, _ = ended(lambda: sm.describe_training_job(TrainingJobName="t-slow"), "TrainingJobStatus")
    assert (slow["TrainingJobStatus"], slow["SecondaryStatus"]) == ("Stopped", "MaxRuntimeExceeded")
    message = slow["SecondaryStatusTransitions"][-1]["StatusMessage"]
    assert message == "Training job runtime exceeded MaxRuntimeInSeconds provided"
    spot = {"MaxRuntimeInSeconds": 60, "MaxWaitTimeInSeconds": 1}
    with pytest.raises(sm.exceptions.ClientError, match="MaxWaitTimeInSeconds"):
        sm.create_training_job(**training("t-spot", EnableManagedSpotTraining=True, StoppingCondition=spot))


def _sync_machine(sfn, name: str, request: dict) -> str:
    definition = {
        "StartAt": "Train",
        "States": {
            "Train": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",
                "Parameters": request,
                "End": True,
            }
        },
    }
    return sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE)[
        "stateMachineArn"
    ]


def _execution(sfn, machine: str, timeout: float = 20) -> dict:
    arn = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    deadline = time.monotonic() + timeout
    while (answer := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, f"{arn} still RUNNING after {timeout} s"
        time.sleep(0.01)
    return answer


def test_sync_returns_the_description_of_a_completed_job_and_fails_the_task_for_a_failed_one(aws):
    sfn = boto3.client("stepfunctions", region_name=REGION)
    backend_with(ScriptedRunner(lambda spec: Script(status="Completed" if "ok" in spec.name else "Failed")))
    succeeded = _execution(sfn, _sync_machine(sfn, "ok", training("s-ok")))
    assert succeeded["status"] == "SUCCEEDED"
    assert json.loads(succeeded["output"])["TrainingJobStatus"] == "Completed"
    failed = _execution(sfn, _sync_machine(sfn, "bad", training("s-bad")))
    assert (failed["status"], failed["error"]) == ("FAILED", "States.TaskFailed")
    assert json.loads(failed["cause"])["TrainingJobStatus"] == "Failed"
    refused = _execution(sfn, _sync_machine(sfn, "twice", training("s-ok")))  # the name is taken
    assert (refused["status"], refused["error"]) == ("FAILED", "SageMaker.ResourceInUseException")


def test_stopping_an_execution_stops_its_sync_job_and_records_no_task_outcome(aws):
    sfn = boto3.client("stepfunctions", region_name=REGION)
    sm = boto3.client("sagemaker", region_name=REGION)
    backend_with(ScriptedRunner(lambda spec: Script(until_stopped=True)))
    machine = _sync_machine(sfn, "stopped", training("s-stopped"))
    arn = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    deadline = time.monotonic() + 10
    while not sm.list_training_jobs(NameContains="s-stopped")["TrainingJobSummaries"]:
        assert time.monotonic() < deadline, "the Task never created its job"
        time.sleep(0.01)
    sfn.stop_execution(executionArn=arn, error="Halted", cause="by the test")
    assert sfn.describe_execution(executionArn=arn)["status"] == "ABORTED"
    answer, _ = ended(lambda: sm.describe_training_job(TrainingJobName="s-stopped"), "TrainingJobStatus")
    assert answer["TrainingJobStatus"] == "Stopped"
    kinds = [e["type"] for e in sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]]
    assert kinds[-1] == "ExecutionAborted" and "TaskSucceeded" not in kinds


def test_the_step_cache_serves_a_job_it_has_seen_and_says_why_it_runs_one_it_has_not(aws, tmp_path):
    scripted = ScriptedRunner(lambda spec: Script(lines=("loss=0.2",)))
    cached = CachedRunner(scripted, StepCache(tmp_path / "cache", 10**9, None))
    backend_with(cached)
    sm = boto3.client("sagemaker", region_name=REGION)
    for name, request in (
        ("c-first", training("c-first")),
        ("c-again", training("c-again")),
        ("c-other", training("c-other", HyperParameters={"C": "0.5"})),
    ):
        sm.create_training_job(**request)
        ended(lambda name=name: sm.describe_training_job(TrainingJobName=name), "TrainingJobStatus")
    assert [spec.name for spec in scripted.ran] == ["c-first", "c-other"]  # c-again was served
    events = {e["job"]: e for e in cached.events("c-")}
    assert events["c-again"]["outcome"] == "hit" and events["c-again"]["detail"] == "c-first"
    assert events["c-other"]["outcome"] == "miss"
    assert "hyperparameters.C: 1.0 -> 0.5" in events["c-other"]["detail"]
    served = sm.describe_training_job(TrainingJobName="c-again")
    assert served["FinalMetricDataList"][0]["Value"] == 0.2  # its recorded metrics come back
    assert "step cache" in served["SecondaryStatusTransitions"][-1]["StatusMessage"]


def test_a_tuning_job_runs_its_training_jobs_and_names_the_best(aws):
    def script(spec) -> Script:
        c = float(spec.request["HyperParameters"]["C"])
        return Script(lines=(f"loss={abs(c - 0.3):.4f}",))

    backend_with(ScriptedRunner(script))
    sm = boto3.client("sagemaker", region_name=REGION)
    definition = training("unused")
    del definition["TrainingJobName"]
    definition["StaticHyperParameters"] = definition.pop("HyperParameters")
    definition["StaticHyperParameters"].pop("C")
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName="tune",
        HyperParameterTuningJobConfig={
            "Strategy": "Grid",
            "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "train:loss"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 10, "MaxParallelTrainingJobs": 2},
            "ParameterRanges": {
                "CategoricalParameterRanges": [{"Name": "C", "Values": ["0.1", "0.3", "0.9"]}]
            },
        },
        TrainingJobDefinition=definition,
    )
    answer, _ = ended(
        lambda: sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="tune"),
        "HyperParameterTuningJobStatus",
    )
    assert answer["HyperParameterTuningJobStatus"] == "Completed"
    assert answer["TrainingJobStatusCounters"]["Completed"] == 3
    assert answer["BestTrainingJob"]["TunedHyperParameters"] == {"C": "0.3"}
    jobs = sm.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName="tune")
    assert len(jobs["TrainingJobSummaries"]) == 3


def test_jobs_are_found_by_search_and_tagged_by_arn_as_moto_did_for_its_own(aws):
    backend_with(ScriptedRunner(lambda spec: Script()))
    sm = boto3.client("sagemaker", region_name=REGION)
    first = sm.create_training_job(**training("s-first", Tags=[{"Key": "team", "Value": "churn"}]))
    sm.create_training_job(**training("s-second", HyperParameters={"C": "0.5"}))
    for name in ("s-first", "s-second"):
        ended(lambda name=name: sm.describe_training_job(TrainingJobName=name), "TrainingJobStatus")
    sm.add_tags(ResourceArn=first["TrainingJobArn"], Tags=[{"Key": "stage", "Value": "dev"}])
    tags = sm.list_tags(ResourceArn=first["TrainingJobArn"])["Tags"]
    assert {t["Key"]: t["Value"] for t in tags} == {"team": "churn", "stage": "dev"}

    def names(expression) -> list[str]:
        found = sm.search(Resource="TrainingJob", SearchExpression=expression)["Results"]
        return sorted(r["TrainingJob"]["TrainingJobName"] for r in found)

    assert names({"Filters": [{"Name": "Tags.team", "Operator": "Equals", "Value": "churn"}]}) == ["s-first"]
    assert names({"Filters": [{"Name": "HyperParameters.C", "Operator": "Equals", "Value": "0.5"}]}) == [
        "s-second"
    ]
    assert names(
        {"Filters": [{"Name": "TrainingJobStatus", "Operator": "Equals", "Value": "Completed"}]}
    ) == [
        "s-first",
        "s-second",
    ]
    either = {
        "SubExpressions": [
            {"Filters": [{"Name": "TrainingJobName", "Operator": "Equals", "Value": "s-first"}]},
            {"Filters": [{"Name": "TrainingJobName", "Operator": "Contains", "Value": "second"}]},
        ],
        "Operator": "Or",
    }
    assert names(either) == ["s-first", "s-second"]
