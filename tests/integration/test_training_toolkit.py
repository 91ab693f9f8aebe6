"""The job image's training toolkit fetches an s3:// source bundle from the local AWS."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from tests.integration.helpers import training_request, unique, wait_for_job

pytestmark = [pytest.mark.docker, pytest.mark.slow]

TRAIN_SCRIPT = b"""
import argparse, os, pathlib
parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int)
args = parser.parse_args()
rows = sum(len(p.read_text().splitlines()) for p in pathlib.Path(os.environ["SM_CHANNEL_TRAIN"]).iterdir())
model = pathlib.Path(os.environ["SM_MODEL_DIR"], "model.json")
model.write_text(f'{{"rows": {rows}, "epochs": {args.epochs}}}')
print("toolkit ran the bundle:", rows, "rows")
"""


def source_bundle(script: bytes = TRAIN_SCRIPT) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("train.py")
        info.size = len(script)
        tar.addfile(info, io.BytesIO(script))
    return buffer.getvalue()


def _toolkit_job(aws_client, job_image, script: bytes = TRAIN_SCRIPT) -> tuple[str, str, dict]:
    """(bucket, job name, its last description) of a toolkit job running `script` from a bundle."""
    sm, s3 = aws_client("sagemaker"), aws_client("s3")
    bucket = unique("toolkit")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="train/data.csv", Body=b"1\n2\n3\n")
    s3.put_object(Bucket=bucket, Key="code/sourcedir.tar.gz", Body=source_bundle(script))
    name = unique("toolkit")
    hyperparameters = {
        "epochs": "3",
        "sagemaker_program": json.dumps("train.py"),
        "sagemaker_submit_directory": json.dumps(f"s3://{bucket}/code/sourcedir.tar.gz"),
        "sagemaker_region": json.dumps("us-east-1"),
    }
    sm.create_training_job(**training_request(name, job_image, bucket, HyperParameters=hyperparameters))
    answer, _ = wait_for_job(lambda: sm.describe_training_job(TrainingJobName=name), "TrainingJobStatus")
    return bucket, name, answer


def test_the_toolkit_downloads_and_runs_an_s3_source_bundle(aws_client, job_image):
    bucket, name, answer = _toolkit_job(aws_client, job_image)
    s3 = aws_client("s3")
    assert answer["TrainingJobStatus"] == "Completed", answer.get("FailureReason")
    artifact = s3.get_object(Bucket=bucket, Key=f"models/{name}/output/model.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(artifact)) as tar:
        assert json.load(tar.extractfile("model.json")) == {"rows": 3, "epochs": 3}


def test_a_toolkit_jobs_root_error_is_found_though_the_toolkit_wraps_it(aws_client, job_image):
    from harness import execute

    failing = b"import sys\nprint('starting')\nraise RuntimeError('the data has no rows')\n"
    _, name, answer = _toolkit_job(aws_client, job_image, failing)
    assert answer["TrainingJobStatus"] == "Failed"
    cause = json.dumps({"TrainingJobName": name, "FailureReason": answer["FailureReason"]})
    logged = execute.job_log_lines(aws_client("logs"), name)
    assert execute.root_error(cause, logged) == (name, "RuntimeError: the data has no rows")
