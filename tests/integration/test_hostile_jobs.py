"""A hostile job, in a real container, cannot reach the host through the local AWS: not by a
key that climbs out of its folder, not by a link in its output, not by the local AWS's own
endpoints that change it. The local AWS answers throughout."""

from __future__ import annotations

import json
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.integration.helpers import processing_request, unique, wait_for_job

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ROLE = "arn:aws:iam::123456789012:role/hostile"
HOSTILE = b"""
import json, os, pathlib, sys, urllib.request
out = pathlib.Path('/opt/ml/processing/output')
secret = sys.argv[1]
os.symlink(secret, out / 'leak.txt')           # a host path: only the host can resolve it
os.symlink('/etc', out / 'etc')                # a folder outside
(out / 'mine.txt').write_text('the job wrote this')
os.symlink('mine.txt', out / 'alias.txt')  # a link inside the output folder is followed
answers = {}
for method, path, body in (
    ('POST', '/_localstack/health', {'action': 'kill'}),
    ('PUT', '/_localstack/health', {'features': {'x': 'y'}}),
    ('DELETE', '/_mlharness/cache', None),
    ('GET', '/_localstack/health', None),
):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(os.environ['AWS_ENDPOINT_URL'] + path, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            answers[f'{method} {path}'] = answer.status
    except urllib.error.HTTPError as ex:
        answers[f'{method} {path}'] = ex.code
(out / 'answers.json').write_text(json.dumps(answers))
"""


def _processing(name: str, image: str, bucket: str, inputs: list[tuple], arguments: list[str]) -> dict:
    entrypoint = ["python3", "/opt/ml/processing/input/code/hostile.py"]
    return processing_request(
        name, image, entrypoint, inputs, f"s3://{bucket}/out/{name}", role=ROLE, arguments=arguments
    )


def _describe(sm, name: str):
    return lambda: sm.describe_processing_job(ProcessingJobName=name)


@pytest.fixture(scope="module")
def world(aws_client):
    sm, s3 = aws_client("sagemaker"), aws_client("s3")
    bucket = unique("hostile")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="code/hostile.py", Body=HOSTILE)
    return sm, s3, bucket


def test_a_job_cannot_leak_host_files_through_links_nor_stop_or_change_the_local_aws(
    world, tiny_image, local_aws, tmp_path
):
    sm, s3, bucket = world
    secret = tmp_path / "host-secret.txt"
    secret.write_text("a host file no job may read")
    name = unique("links")
    code = (f"s3://{bucket}/code/", "/opt/ml/processing/input/code", "S3Prefix")
    sm.create_processing_job(**_processing(name, tiny_image, bucket, [code], [str(secret)]))
    answer, _ = wait_for_job(_describe(sm, name), "ProcessingJobStatus")
    assert answer["ProcessingJobStatus"] == "Completed", answer.get("FailureReason")

    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"out/{name}/")["Contents"]
    keys = sorted(o["Key"].rsplit("/", 1)[-1] for o in listed)
    assert keys == ["alias.txt", "answers.json", "mine.txt"]  # no leak.txt, nothing of /etc
    answers = json.loads(s3.get_object(Bucket=bucket, Key=f"out/{name}/answers.json")["Body"].read())
    assert answers == {
        "POST /_localstack/health": 403,
        "PUT /_localstack/health": 403,
        "DELETE /_mlharness/cache": 403,
        "GET /_localstack/health": 200,
    }
    with urllib.request.urlopen(f"{local_aws.endpoint_url}/_localstack/health", timeout=10) as health:
        assert health.status == 200  # and it still answers the host


@pytest.mark.parametrize(
    ("key", "data_type"),
    [("trav/" + "../" * 12 + "tmp/{marker}", "S3Prefix"), ("manifest.json", "ManifestFile")],
    ids=["a climbing key", "a climbing manifest entry"],
)
def test_a_key_that_would_climb_out_fails_the_job_naming_it_and_writes_nothing(
    world, tiny_image, key, data_type
):
    sm, s3, bucket = world
    marker = f"mlharness-escaped-{uuid.uuid4().hex[:8]}"
    key = key.format(marker=marker)
    if data_type == "ManifestFile":
        entries = [{"prefix": f"s3://{bucket}/trav/"}, "../" * 12 + f"tmp/{marker}"]
        s3.put_object(Bucket=bucket, Key="trav/" + "../" * 12 + f"tmp/{marker}", Body=b"x")
        s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(entries).encode())
        uri = f"s3://{bucket}/{key}"
    else:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
        uri = f"s3://{bucket}/trav/"
    name = unique("climb")
    inputs = [(uri, "/opt/ml/processing/input/data", data_type)]
    sm.create_processing_job(**_processing(name, tiny_image, bucket, inputs, []))
    answer, _ = wait_for_job(_describe(sm, name), "ProcessingJobStatus")
    assert answer["ProcessingJobStatus"] == "Failed"
    assert answer["FailureReason"].startswith("ClientError: the S3 key") and marker in answer["FailureReason"]
    assert not Path("/tmp", marker).exists()
