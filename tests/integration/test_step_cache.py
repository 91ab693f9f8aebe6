"""The local AWS's step cache, through the API and the SageMaker SDK: a job that matches an
earlier completed one is served from its outputs and says so; a miss says what changed;
failed jobs are never recorded; a run can ask for no cache; the cache outlives the process."""

from __future__ import annotations

import io
import json
import re
import tarfile

import boto3
import pytest

from harness.emulator import LocalAWS, cache_api
from tests.integration.helpers import (
    ROLE,
    harness_cli,
    stack_settings,
    training_request,
    unique,
    wait_for_job,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow]

METRICS = [{"Name": "loss", "Regex": r"loss=([0-9.]+)"}]


@pytest.fixture(scope="module")
def cached_aws(tmp_path_factory, docker_client):
    state = tmp_path_factory.mktemp("cached-aws")
    with LocalAWS(state_dir=state, cache=True) as aws:
        yield aws


@pytest.fixture(scope="module")
def client(cached_aws):
    def make(service: str):
        return boto3.client(service, endpoint_url=cached_aws.endpoint_url, region_name="us-east-1")

    return make


@pytest.fixture(scope="module")
def bucket(client):
    name = unique("cache")
    client("s3").create_bucket(Bucket=name)
    client("s3").put_object(Bucket=name, Key="train/part.csv", Body=b"x\n" * 10)
    return name


def train(client, image: str, bucket: str, **hyperparameters) -> dict:
    sm = client("sagemaker")
    name = unique("cached")
    request = training_request(name, image, bucket, HyperParameters={"epochs": "3", **hyperparameters})
    request["AlgorithmSpecification"]["MetricDefinitions"] = METRICS
    sm.create_training_job(**request)
    answer, _ = wait_for_job(lambda: sm.describe_training_job(TrainingJobName=name), "TrainingJobStatus")
    return answer


def job_log(client, group: str, job: str) -> list[str]:
    logs = client("logs")
    streams = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=f"{job}/")["logStreams"]
    return [
        event["message"]
        for stream in streams
        for event in logs.get_log_events(
            logGroupName=group, logStreamName=stream["logStreamName"], startFromHead=True
        )["events"]
    ]


def model_of(client, bucket: str, job: str) -> dict:
    body = client("s3").get_object(Bucket=bucket, Key=f"models/{job}/output/model.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        return json.load(tar.extractfile("model.json"))


def test_the_same_training_job_again_is_served_from_the_cache_with_its_outputs_and_metrics(
    client, bucket, tiny_image
):
    first = train(client, tiny_image, bucket, s3_probe=f"s3://{bucket}/probes/{unique('p')}/lines")
    assert first["TrainingJobStatus"] == "Completed", first.get("FailureReason")
    probe = f"probes/{unique('p')}/lines"  # a location only this job names: the cache writes it there
    second = train(client, tiny_image, bucket, s3_probe=f"s3://{bucket}/{probe}")

    assert second["TrainingJobStatus"] == "Completed", second.get("FailureReason")
    first_name, second_name = first["TrainingJobName"], second["TrainingJobName"]
    served = f"served from the local AWS's step cache (the outputs of job {first_name})"
    assert second["SecondaryStatusTransitions"][-1]["StatusMessage"] == f"Training job completed: {served}"
    assert second["ModelArtifacts"]["S3ModelArtifacts"].endswith(f"/models/{second_name}/output/model.tar.gz")
    assert (
        model_of(client, bucket, second_name)
        == model_of(client, bucket, first_name)
        == {
            "lines": 10,
            "host": "algo-1",
        }
    )
    assert client("s3").get_object(Bucket=bucket, Key=probe)["Body"].read() == b"lines=10"
    metrics = lambda job: [(m["MetricName"], m["Value"]) for m in job["FinalMetricDataList"]]  # noqa: E731
    assert metrics(second) == metrics(first) == [("loss", pytest.approx(1 / 3, abs=1e-4))]
    second_log = job_log(client, "/aws/sagemaker/TrainingJobs", second_name)
    assert second_log == [f"local AWS: served from the step cache: the outputs of job {first_name}"]
    events = cache_api.call(client("s3").meta.endpoint_url, "GET", query={"jobs": second_name})["events"]
    assert [(e["outcome"], e["detail"]) for e in events] == [("hit", first_name)]


def test_a_changed_hyperparameter_or_input_is_a_miss_that_names_it(client, bucket, tiny_image):
    base = train(client, tiny_image, bucket, epochs="2")
    changed = train(client, tiny_image, bucket, epochs="4")
    assert changed["TrainingJobStatus"] == "Completed"
    first_line = job_log(client, "/aws/sagemaker/TrainingJobs", changed["TrainingJobName"])[0]
    assert first_line.startswith("local AWS: step cache miss (differs from job ")
    assert "hyperparameters.epochs: 2 -> 4" in first_line, first_line
    assert model_of(client, bucket, changed["TrainingJobName"]) == {"lines": 10, "host": "algo-1"}

    client("s3").put_object(Bucket=bucket, Key="train/extra.csv", Body=b"y\n")
    try:
        more_data = train(client, tiny_image, bucket, epochs="2")
    finally:
        client("s3").delete_object(Bucket=bucket, Key="train/extra.csv")
    line = job_log(client, "/aws/sagemaker/TrainingJobs", more_data["TrainingJobName"])[0]
    assert f"differs from job {base['TrainingJobName']}: input train: 1 object added (extra.csv)" in line, (
        line
    )
    assert model_of(client, bucket, more_data["TrainingJobName"])["lines"] == 11  # really ran


def test_a_failed_job_is_never_served_and_the_next_miss_names_it(client, bucket, tiny_image):
    first = train(client, tiny_image, bucket, fail="1")
    second = train(client, tiny_image, bucket, fail="1")
    assert first["TrainingJobStatus"] == second["TrainingJobStatus"] == "Failed"
    log = job_log(client, "/aws/sagemaker/TrainingJobs", second["TrainingJobName"])
    assert "about to fail on purpose" in log  # it ran again: never served from the failed one
    assert (
        f"local AWS: step cache miss (the same as job {first['TrainingJobName']}, which failed "
        "(such jobs are not cached)): running the job"
    ) in log


def test_a_processing_job_is_served_its_outputs_where_the_new_request_says(client, bucket, tiny_image):
    sm, s3 = client("sagemaker"), client("s3")
    script = (
        "import pathlib; rows = pathlib.Path('/opt/ml/processing/input/rows/part.csv'); "
        "n = len(rows.read_text().splitlines()); "
        "pathlib.Path('/opt/ml/processing/output/count.txt').write_text(str(n)); print('counted', n)"
    )

    def process() -> dict:
        name = unique("cached-proc")
        sm.create_processing_job(
            ProcessingJobName=name,
            RoleArn=ROLE,
            AppSpecification={"ImageUri": tiny_image, "ContainerEntrypoint": ["python3", "-c", script]},
            ProcessingResources={
                "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}
            },
            ProcessingInputs=[
                {
                    "InputName": "rows",
                    "S3Input": {
                        "S3Uri": f"s3://{bucket}/train/",
                        "LocalPath": "/opt/ml/processing/input/rows",
                        "S3DataType": "S3Prefix",
                        "S3InputMode": "File",
                    },
                }
            ],
            ProcessingOutputConfig={
                "Outputs": [
                    {
                        "OutputName": "count",
                        "S3Output": {
                            "S3Uri": f"s3://{bucket}/counts/{name}",
                            "LocalPath": "/opt/ml/processing/output",
                            "S3UploadMode": "EndOfJob",
                        },
                    }
                ]
            },
        )
        answer, statuses = wait_for_job(
            lambda: sm.describe_processing_job(ProcessingJobName=name), "ProcessingJobStatus"
        )
        assert answer["ProcessingJobStatus"] == "Completed", answer.get("FailureReason")
        assert "InProgress" in statuses  # as any job: InProgress, then Completed
        return answer

    first, second = process(), process()
    assert second["ExitMessage"] == (
        f"served from the local AWS's step cache (the outputs of job {first['ProcessingJobName']})"
    )
    count = s3.get_object(Bucket=bucket, Key=f"counts/{second['ProcessingJobName']}/count.txt")["Body"].read()
    assert count == b"10"


def test_a_run_that_asks_for_no_cache_runs_its_jobs(client, bucket, tiny_image, cached_aws):
    train(client, tiny_image, bucket, epochs="5")
    prefix = unique("nocache")
    cache_api.call(cached_aws.endpoint_url, "POST", {"bypass": prefix})
    sm = client("sagemaker")
    name = f"{prefix}-train"
    request = training_request(name, tiny_image, bucket, HyperParameters={"epochs": "5"})
    request["AlgorithmSpecification"]["MetricDefinitions"] = METRICS
    sm.create_training_job(**request)
    answer, _ = wait_for_job(lambda: sm.describe_training_job(TrainingJobName=name), "TrainingJobStatus")
    assert answer["TrainingJobStatus"] == "Completed"
    assert "epoch=4 loss=0.2000" in job_log(client, "/aws/sagemaker/TrainingJobs", name)
    events = cache_api.call(cached_aws.endpoint_url, "GET", query={"jobs": prefix})["events"]
    assert [(e["outcome"], e["detail"]) for e in events] == [("not cached", "the run asked for no cache")]


def test_the_cache_outlives_the_local_aws_and_is_listed_and_cleared(
    client, bucket, tiny_image, cached_aws, tmp_path
):
    first = train(client, tiny_image, bucket, epochs="6")
    listed = cache_api.call(cached_aws.endpoint_url, "GET")
    assert first["TrainingJobName"] in [entry["job"] for entry in listed["entries"]]
    assert listed["bytes"] > 0
    # Another local AWS (another process, its own state) over the same cache directory.
    with LocalAWS(
        state_dir=tmp_path / "other", cache=True, cache_dir=cached_aws.state_dir / "cache"
    ) as other:
        s3 = boto3.client("s3", endpoint_url=other.endpoint_url, region_name="us-east-1")
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="train/part.csv", Body=b"x\n" * 10)

        def again(service: str):
            return boto3.client(service, endpoint_url=other.endpoint_url, region_name="us-east-1")

        second = train(again, tiny_image, bucket, epochs="6")
        assert second["TrainingJobStatus"] == "Completed"
        assert first["TrainingJobName"] in second["SecondaryStatusTransitions"][-1]["StatusMessage"]
        assert cache_api.call(other.endpoint_url, "DELETE")["removed"] >= 1
    assert cache_api.call(cached_aws.endpoint_url, "GET")["entries"] == []


def test_the_sdk_estimator_fit_twice_is_served_from_the_cache_and_a_changed_input_named(
    cached_aws, client, tiny_image, monkeypatch, tmp_path, capsys
):
    import sagemaker
    from sagemaker.estimator import Estimator
    from sagemaker.telemetry import telemetry_logging

    monkeypatch.setattr(telemetry_logging, "_send_telemetry_request", lambda *args, **kwargs: None)
    monkeypatch.setenv("AWS_ENDPOINT_URL", cached_aws.endpoint_url)
    bucket = unique("sdk-cache")
    client("s3").create_bucket(Bucket=bucket)
    client("s3").put_object(Bucket=bucket, Key="train/rows.csv", Body=b"1\n2\n")
    (tmp_path / "train.py").write_text("print('the image runs its own train')\n")
    session = sagemaker.Session(boto_session=boto3.Session(region_name="us-east-1"), default_bucket=bucket)

    def fit() -> str:
        estimator = Estimator(
            image_uri=tiny_image,
            role=ROLE,
            instance_count=1,
            instance_type="ml.m5.large",
            output_path=f"s3://{bucket}/models",
            entry_point="train.py",  # the SDK packs it to s3://<bucket>/<job>/source/ for every job
            source_dir=str(tmp_path),
            sagemaker_session=session,
            hyperparameters={"epochs": 2},
        )
        name = unique("sdk-cached")
        estimator.fit({"train": f"s3://{bucket}/train/"}, wait=True, logs="All", job_name=name)
        return name

    first = fit()
    capsys.readouterr()
    second = fit()
    shown = capsys.readouterr().out
    assert f"local AWS: served from the step cache: the outputs of job {first}" in shown
    client("s3").put_object(Bucket=bucket, Key="train/rows.csv", Body=b"1\n2\n3\n")
    fit()
    shown = capsys.readouterr().out
    assert "input train: 1 object changed (rows.csv)" in shown, shown
    assert "trained on 3 lines" in shown
    assert second != first


def test_the_local_target_serves_an_unchanged_run_from_the_cache_and_reruns_from_a_change(
    cached_aws, job_image, tmp_path
):
    name = unique("cached-run")
    harness = harness_cli(
        tmp_path / "home", stack_settings(cached_aws, name, "inputs.data.generate.rows=500")
    )
    run = ("run", "--target", "local", "--pipeline", "training")

    cold = harness(*run)
    assert cold.returncode == 0, cold.stdout[-3000:] + cold.stderr[-2000:]
    warm = harness(*run)
    assert warm.returncode == 0, warm.stdout[-3000:] + warm.stderr[-2000:]
    served = re.findall(r"step cache: job (\S+) served from job (\S+)", warm.stdout)
    assert [job.rsplit("-", 1)[1] for job, _ in served] == ["preprocess", "train", "evaluate"]
    assert "  step cache: 3 of 3 jobs served from it" in warm.stdout.split("== summary", 1)[1]
    assert (
        cold.stdout.split("metrics: ", 1)[1].split("\n")[0]
        == warm.stdout.split("metrics: ", 1)[1].split("\n")[0]
    )
    records = [
        json.loads(p.read_text()) for p in sorted((tmp_path / "home" / "runs" / "local").glob("*.json"))
    ]
    assert [e["outcome"] for e in records[-1]["cache"]] == ["hit", "hit", "hit"]

    changed = harness(*run, extra=("settings.training.hyperparameters.C=0.5",))
    assert changed.returncode == 0, changed.stdout[-3000:] + changed.stderr[-2000:]
    lines = [line for line in changed.stdout.splitlines() if line.startswith("step cache: job")]
    assert lines[0].endswith("-preprocess served from job " + served[0][1])
    assert "-train ran (miss: differs from job " in lines[1] and "hyperparameters.C: 1.0 -> 0.5" in lines[1]
    assert (
        "-evaluate ran (miss: differs from job " in lines[2] and "input model: 1 object changed" in lines[2]
    )

    uncached = harness(*run, "--no-cache")
    assert uncached.returncode == 0
    assert "step cache: off for this run (--no-cache)" in uncached.stdout
    assert "| train: fitted logistic regression" in uncached.stdout  # the jobs really ran

    listed = harness("cache", "list")
    assert listed.returncode == 0, listed.stderr
    assert re.search(r"\ntraining-\S+-train +training-job ", listed.stdout), listed.stdout
    assert f"in {cached_aws.state_dir / 'cache'}" in listed.stdout
    cleared = harness("cache", "clear")
    assert cleared.returncode == 0 and re.match(
        r"removed \d+ entries from the step cache in ", cleared.stdout
    )
    assert "is empty" in harness("cache", "list").stdout
