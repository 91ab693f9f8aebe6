"""`python -m harness run --target local`: both pipelines end to end, real containers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid

import boto3
import pytest

from tests import ROOT
from tests.integration.helpers import census_csv, fire_inference_schedule, harness_cli, stack_settings

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def harness(local_aws, job_image, tmp_path_factory):
    """Runs the CLI against the session's local AWS, with records in a scratch home."""
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    run = harness_cli(
        tmp_path_factory.mktemp("mlharness-home"),
        stack_settings(local_aws, name, "inputs.data.generate.rows=2000"),
    )
    run.bucket = run.stack = name
    run.s3 = boto3.client("s3", endpoint_url=local_aws.endpoint_url, region_name="us-east-1")
    return run


def test_training_then_inference_prints_metrics_and_predictions(harness):
    result = harness("run", "--target", "local")

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    out = result.stdout
    assert re.search(
        r"metrics: accuracy=0\.\d+, f1=0\.\d+, precision=0\.\d+, recall=0\.\d+, roc_auc=0\.\d+", out
    )
    assert "-> Preprocess" in out and "-> QualityGate" in out and "| train: fitted logistic regression" in out
    summary = out.split("== summary", 1)[1]  # the results come last
    assert re.search(r"training run \S+: SUCCEEDED\n  metrics: accuracy=", summary)
    assert re.search(r"  model artifact: s3://\S+/model\.tar\.gz", summary)
    # executions are named by the run id without the pipeline, which the state machine's name gives
    assert re.search(
        r"  execution: arn:aws:states:\S+:execution:e2e-\w+-inference:\d{8}-\d{6}-\w+\n", summary
    )
    predictions_uri = re.search(r"  predictions: (s3://\S+)", summary).group(1)
    key_prefix = predictions_uri.split("/", 3)[3]
    objects = harness.s3.list_objects_v2(Bucket=harness.bucket, Prefix=key_prefix)["Contents"]
    body = harness.s3.get_object(Bucket=harness.bucket, Key=objects[0]["Key"])["Body"].read().decode()
    lines = body.splitlines()
    assert len(lines) == 2000 and all(re.fullmatch(r"[01],0\.\d{6}", line) for line in lines[:50])

    runs = sorted((harness.home / "runs" / "local").glob("*.json"))
    records = [json.loads(p.read_text()) for p in runs]
    training = next(r for r in records if r["pipeline"] == "training")
    inference = next(r for r in records if r["pipeline"] == "inference")
    assert training["status"] == inference["status"] == "SUCCEEDED"
    assert inference["consumed"] == {"model": training["run_id"]}
    assert training["produced"]["model"]["SampleUri"].endswith("/preprocess/sample/sample.csv")
    assert training["inputs"]["data"]["sha256"] and training["code"]["sha256"]
    assert training["images"]["job"]["id"] and "@sha256:" in training["images"]["job"]["reference"]
    assert training["project"]["name"] == "mlharness" and training["project"]["git_revision"]
    assert [s["name"] for s in training["steps"]][:3] == ["Preprocess", "Train", "Evaluate"]
    assert training["metrics"]["roc_auc"] > 0.7
    sagemaker = boto3.client("sagemaker", endpoint_url=harness.s3.meta.endpoint_url, region_name="us-east-1")
    train = sagemaker.describe_training_job(TrainingJobName=f"{training['run_id']}-train")
    final = {m["MetricName"]: m["Value"] for m in train["FinalMetricDataList"]}  # the metric definitions
    assert set(final) == {"train:accuracy", "train:log_loss"} and 0.5 < final["train:accuracy"] <= 1
    recorded = harness.s3.get_object(Bucket=harness.bucket, Key=f"runs/{training['run_id']}/record.json")
    assert json.loads(recorded["Body"].read())["run_id"] == training["run_id"]
    published = json.loads(
        harness.s3.get_object(Bucket=harness.bucket, Key="models/latest.json")["Body"].read()
    )
    assert published["RunId"] == training["run_id"]
    assert published["ModelArtifactUri"] == training["outputs"]["model_artifact_uri"]
    assert published["Metrics"]["roc_auc"] == training["metrics"]["roc_auc"]
    # the fidelity report: ml.m5.large runs as on AWS (unless this machine is smaller); the inference
    # schedule is deployed but never fires here
    assert re.search(r"training run \S+: SUCCEEDED\n(.*\n)*?  fidelity: ", summary)
    assert {f["kind"] for f in training["fidelity"]} <= {"instances"}
    assert [f["subject"] for f in inference["fidelity"] if f["kind"] == "schedule"] == ["schedule"]
    assert (
        "[schedule] schedule: the schedule cron(0 6 * * ? *) is deployed, but the local AWS never fires it"
        in summary
    )


def test_strict_fidelity_reports_a_gpu_instance_and_passes_a_run_that_would_pass_on_aws(harness):
    result = harness(
        "run", "--target", "local", "--pipeline", "training", "--strict-fidelity",
        extra=("instances.training=ml.p3.2xlarge",),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    summary = result.stdout.split("== summary", 1)[1]
    assert re.search(
        r"  \[gpu\] training-\S+-train: ml\.p3\.2xlarge has 8 vCPUs and 61 GiB on AWS and 1 GPU", summary
    )


def test_inference_alone_uses_the_latest_successful_training_run_and_status_lists_runs(harness):
    result = harness("run", "--target", "local", "--pipeline", "inference")
    assert result.returncode == 0, result.stdout[-3000:]
    trained = re.search(r"inference uses the model of run (\S+) \(recorded\)", result.stdout).group(1)
    assert trained.startswith("training-")

    status = harness("status", "--target", "local")
    assert status.returncode == 0
    assert re.search(rf"{trained}\s+SUCCEEDED\s+\S+\s+.*roc_auc=0\.\d+", status.stdout)


def test_the_schedule_is_deployed_shown_and_its_input_scores_with_the_published_model(harness, local_aws):
    status = harness("status", "--target", "local", "--pipeline", "inference")
    assert status.returncode == 0, status.stderr
    assert re.search(r"inference schedule: cron\(0 6 \* \* \? \*\) ENABLED \(rule e2e-", status.stdout)
    assert f"each run scores s3://{harness.bucket}/incoming/ with the published model" in status.stdout
    assert "the local AWS does not fire schedules" in status.stdout
    published = json.loads(
        harness.s3.get_object(Bucket=harness.bucket, Key="models/latest.json")["Body"].read()
    )
    harness.s3.put_object(Bucket=harness.bucket, Key="incoming/today.csv", Body=census_csv(300))

    fired = fire_inference_schedule(local_aws.endpoint_url, harness.stack)

    assert fired["status"] == "SUCCEEDED", fired.get("cause")
    output = json.loads(fired["output"])
    assert output["model_source"]["ModelArtifactUri"] == published["ModelArtifactUri"]
    assert output["run"]["RunId"] == f"inference-{fired['name']}"
    predictions = output["run"]["PredictionsUri"].split("/", 3)[3]
    objects = harness.s3.list_objects_v2(Bucket=harness.bucket, Prefix=predictions)["Contents"]
    body = harness.s3.get_object(Bucket=harness.bucket, Key=objects[0]["Key"])["Body"].read().decode()
    assert len(body.splitlines()) == 300
    again = harness("status", "--target", "local", "--pipeline", "inference")
    assert f"scheduled run inference-{fired['name']}: SUCCEEDED" in again.stdout


def test_run_as_scheduled_starts_inference_with_the_rules_input_and_records_whose_model(harness):
    harness.s3.put_object(Bucket=harness.bucket, Key="incoming/today.csv", Body=census_csv(250))
    published = json.loads(
        harness.s3.get_object(Bucket=harness.bucket, Key="models/latest.json")["Body"].read()
    )

    result = harness("run", "--target", "local", "--pipeline", "inference", "--as-scheduled")

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert (
        f"inference as scheduled: scores s3://{harness.bucket}/incoming/ with the published model"
        in result.stdout
    )
    assert "-> ReadPublishedModel" in result.stdout and "-> UsePublishedModel" in result.stdout
    run_id = re.search(r"inference run (inference-\S+) SUCCEEDED", result.stdout).group(1)
    record = json.loads((harness.home / "runs" / "local" / f"{run_id}.json").read_text())
    assert record["consumed"] == {"model": published["RunId"]}
    assert record["inputs"]["schedule"]["uri"] == f"s3://{harness.bucket}/incoming/"
    assert record["outputs"]["model_artifact_uri"] == published["ModelArtifactUri"]


def test_run_as_scheduled_without_a_schedule_is_one_line(harness):
    result = harness(
        "run",
        "--target",
        "local",
        "--pipeline",
        "inference",
        "--as-scheduled",
        extra=("schedules.inference.expression=null",),
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: --as-scheduled needs a schedule: environment local has none for inference "
        "(set schedules.inference.expression)"
    ]


def test_the_quality_gate_fails_a_run_below_the_threshold(harness):
    result = harness(
        "run", "--target", "local", "--pipeline", "training", extra=("settings.training.threshold=0.99",)
    )

    assert result.returncode == 1
    assert re.search(r"FAILED: QualityGateFailed: roc_auc 0\.\d+ is below the threshold 0\.99", result.stdout)
    (line,) = result.stderr.strip().splitlines()  # the failure, once, where scripts look
    assert re.fullmatch(
        r"error: training run training-\S+ FAILED: QualityGateFailed: "
        r"roc_auc 0\.\d+ is below the threshold 0\.99",
        line,
    )


def test_every_run_keeps_its_own_artifacts(harness):
    runs = harness.s3.list_objects_v2(Bucket=harness.bucket, Prefix="runs/", Delimiter="/")["CommonPrefixes"]
    training_runs = [p["Prefix"] for p in runs if p["Prefix"].startswith("runs/training-")]
    assert len(training_runs) >= 2  # the earlier tests' runs, none overwritten
    for prefix in training_runs:
        keys = [
            o["Key"] for o in harness.s3.list_objects_v2(Bucket=harness.bucket, Prefix=prefix)["Contents"]
        ]
        assert f"{prefix}record.json" in keys
        assert any(k.startswith(f"{prefix}preprocess/") for k in keys)


def test_logs_shows_the_job_output_of_the_latest_run(harness):
    result = harness("logs", "--target", "local")
    assert result.returncode == 0, result.stderr
    assert "== /aws/sagemaker/ProcessingJobs/training-" in result.stdout
    assert "preprocess: fitted on 2000 rows" in result.stdout
    assert "train: fitted logistic regression" in result.stdout


def test_ctrl_c_without_a_terminal_leaves_the_execution_running(harness, local_aws):
    import signal

    overrides = [item for s in harness.settings for item in ("--set", s)]
    process = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", "--target", "local", "--pipeline", "training", *overrides],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
        env={**os.environ, "MLHARNESS_HOME": str(harness.home)},
        # as from a terminal: a suite started in the background passes SIGINT on ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    seen = []
    for line in process.stdout:
        seen.append(line)
        if line.startswith("-> Preprocess"):
            process.send_signal(signal.SIGINT)
            break
    rest = process.communicate(timeout=120)[0]
    output = "".join(seen) + rest
    assert process.returncode == 130, output[-2000:]
    arn = re.search(r"left running: (\S+)", output).group(1)
    sfn = boto3.client("stepfunctions", endpoint_url=local_aws.endpoint_url, region_name="us-east-1")
    assert sfn.describe_execution(executionArn=arn)["status"] in ("RUNNING", "SUCCEEDED")


def test_detach_returns_once_the_execution_has_started(harness, local_aws):
    refused = harness("run", "--target", "local", "--detach")
    assert refused.returncode == 1
    assert "--detach starts one pipeline" in refused.stderr

    result = harness("run", "--target", "local", "--pipeline", "training", "--detach")
    assert result.returncode == 0, result.stderr
    arn = re.search(r"started (\S+) \(detached", result.stdout).group(1)
    assert "-> Preprocess" not in result.stdout  # nothing watched
    sfn = boto3.client("stepfunctions", endpoint_url=local_aws.endpoint_url, region_name="us-east-1")
    assert sfn.describe_execution(executionArn=arn)["status"] in ("RUNNING", "SUCCEEDED")


def test_the_tuning_stage_trains_through_a_tuning_job_and_publishes_the_best_model(harness, local_aws):
    tuning = (
        "settings.training.tuning={strategy: Random, max_jobs: 3, max_parallel: 2, "
        "objective: {metric: 'train:log_loss', type: Minimize}, "
        "ranges: {C: {min: 0.01, max: 10, scaling: Logarithmic}}}"
    )
    result = harness("run", "--target", "local", "--pipeline", "training", extra=(tuning,))

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "-> Tune" in result.stdout and "-> BestTrainingJob" in result.stdout
    best = re.search(
        r"tuning: best of 3 training job\(s\): (training-\S+-00\d-\w{8}) \(C=\S+; train:log_loss ",
        result.stdout,
    )
    assert best, result.stdout[-2000:]
    run_id = re.search(r"training run (training-\S+): SUCCEEDED", result.stdout).group(1)
    sm = boto3.client("sagemaker", endpoint_url=local_aws.endpoint_url, region_name="us-east-1")
    tuned = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=run_id)
    assert tuned["HyperParameterTuningJobStatus"] == "Completed"
    assert tuned["BestTrainingJob"]["TrainingJobName"] == best.group(1)
    published = json.loads(
        harness.s3.get_object(Bucket=harness.bucket, Key="models/latest.json")["Body"].read()
    )
    assert published["ModelArtifactUri"].endswith(f"/{best.group(1)}/output/model.tar.gz")
