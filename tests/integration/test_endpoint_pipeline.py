"""`run --pipeline endpoint`: the published model on a real-time endpoint in a container,
smoke-tested, updated in place, rolled back when a model fails the test, removed by destroy."""

from __future__ import annotations

import io
import json
import re
import tarfile
import uuid

import boto3
import pytest

from tests.conftest import own_containers
from tests.integration.helpers import harness_cli, stack_settings

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def harness(local_aws, job_image, tmp_path_factory):
    name = f"ep-{uuid.uuid4().hex[:6]}"
    settings = stack_settings(
        local_aws, name, "inputs.data.generate.rows=1500", "settings.endpoint.poll_seconds=1"
    )
    cli = harness_cli(tmp_path_factory.mktemp("endpoint-home"), settings)

    def run(*args: str, extra: tuple[str, ...] = ()):
        return cli(*args, "--target", "local", extra=extra)

    def client(service: str):
        return boto3.client(service, endpoint_url=local_aws.endpoint_url, region_name="us-east-1")

    run.home, run.bucket, run.endpoint = cli.home, name, f"endpoint-{name}"
    run.sagemaker, run.runtime, run.s3 = client("sagemaker"), client("sagemaker-runtime"), client("s3")
    return run


def _config_of(harness) -> str:
    return harness.sagemaker.describe_endpoint(EndpointName=harness.endpoint)["EndpointConfigName"]


def test_training_then_endpoint_serves_the_model_and_status_shows_it(harness):
    result = harness("run", "--pipeline", "training", "--pipeline", "endpoint")

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert re.search(r"endpoint uses the model of run training-\S+ \(this invocation\)", result.stdout)
    assert "-> CreateEndpoint\n" in result.stdout and "-> SmokeTest\n" in result.stdout
    assert re.search(r"smoke test: 5 answer\(s\) for 5 sample row\(s\)", result.stdout)
    described = harness.sagemaker.describe_endpoint(EndpointName=harness.endpoint)
    assert described["EndpointStatus"] == "InService"
    answer = harness.runtime.invoke_endpoint(
        EndpointName=harness.endpoint, ContentType="text/csv", Body=_sample(harness)
    )["Body"].read()
    assert all(re.fullmatch(r"[01],0\.\d{6}", line) for line in answer.decode().splitlines())

    status = harness("status", "--pipeline", "endpoint")
    assert status.returncode == 0, status.stderr
    assert re.search(
        rf"endpoint {harness.endpoint} \(from endpoint run endpoint-\S+\): InService, config "
        rf"endpoint-\S+-config",
        status.stdout,
    )


def test_a_second_run_updates_the_endpoint_in_place(harness):
    before = _config_of(harness)

    result = harness("run", "--pipeline", "endpoint")

    assert result.returncode == 0, result.stdout[-3000:]
    assert "-> UpdateEndpoint\n" in result.stdout and "-> CreateEndpoint\n" not in result.stdout
    assert re.search(r"endpoint uses the model of run training-\S+ \(recorded\)", result.stdout)
    after = _config_of(harness)
    assert after != before and f"(was {before})" in result.stdout


def test_a_model_that_fails_the_smoke_test_is_rolled_back(harness):
    serving = _config_of(harness)
    broken = _broken_model_run(harness)

    result = harness("run", "--pipeline", "endpoint", "--from-run", broken)

    assert result.returncode == 1
    assert "-> RestorePreviousConfig" in result.stdout
    assert re.search(
        r"FAILED: SmokeTestFailed: the smoke test of endpoint \S+ failed: Received client error \(400\) "
        r"from primary with message \"bad input: X has \d+ features, but LogisticRegression is "
        r"expecting 2 features",
        result.stdout,
    )
    described = harness.sagemaker.describe_endpoint(EndpointName=harness.endpoint)
    assert described["EndpointStatus"] == "InService" and described["EndpointConfigName"] == serving
    records = [json.loads(p.read_text()) for p in harness.home.glob("runs/local/endpoint-*.json")]
    failed = [r for r in records if r["status"] == "FAILED"]
    assert [r["error"] for r in failed] == ["SmokeTestFailed"] and failed[0]["consumed"] == {"model": broken}


def test_a_new_endpoint_that_fails_the_smoke_test_is_deleted(harness):
    broken = _broken_model_run(harness)
    fresh = f"endpoint-fresh-{uuid.uuid4().hex[:6]}"

    result = harness(
        "run",
        "--pipeline",
        "endpoint",
        "--from-run",
        broken,
        extra=(f"settings.endpoint.endpoint_name={fresh}",),
    )

    assert result.returncode == 1 and "-> DeleteNewEndpoint" in result.stdout
    names = [e["EndpointName"] for e in harness.sagemaker.list_endpoints()["Endpoints"]]
    assert fresh not in names


def test_destroy_removes_the_stacks_endpoints_and_their_containers(harness, docker_client):
    arn = harness.sagemaker.describe_endpoint(EndpointName=harness.endpoint)["EndpointArn"]

    result = harness("destroy")

    assert result.returncode == 0, result.stderr
    assert f"endpoint {harness.endpoint} deleted" in result.stdout
    assert harness.endpoint not in [
        e["EndpointName"] for e in harness.sagemaker.list_endpoints()["Endpoints"]
    ]
    live = [
        c
        for c in own_containers(docker_client)
        if arn in (c.get("Labels") or {}).get("org.mlharness.job", "")
    ]
    assert live == [] or all(c["State"] != "running" for c in live)


def _sample(harness) -> bytes:
    published = json.loads(
        harness.s3.get_object(Bucket=harness.bucket, Key="models/latest.json")["Body"].read()
    )
    bucket, key = published["SampleUri"].removeprefix("s3://").split("/", 1)
    return harness.s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def _broken_model_run(harness) -> str:
    """A recorded training run whose model loads but expects 2 features (the sample has more)."""
    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(np.array([[0, 1], [1, 0], [1, 1], [0, 0]]), [0, 1, 1, 0])
    pickled, archive = io.BytesIO(), io.BytesIO()
    joblib.dump(model, pickled)
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        info = tarfile.TarInfo("model.joblib")
        info.size = len(pickled.getvalue())
        tar.addfile(info, io.BytesIO(pickled.getvalue()))
    run_id = f"training-20000101-000000-{uuid.uuid4().hex[:6]}"
    key = f"runs/{run_id}/model/model.tar.gz"
    harness.s3.put_object(Bucket=harness.bucket, Key=key, Body=archive.getvalue())
    good = next(
        json.loads(p.read_text())
        for p in sorted(harness.home.glob("runs/local/training-*.json"), reverse=True)
        if json.loads(p.read_text())["status"] == "SUCCEEDED"
    )
    model_record = {
        **good["produced"]["model"],
        "RunId": run_id,
        "ModelArtifactUri": f"s3://{harness.bucket}/{key}",
    }
    record = {
        **good,
        "run_id": run_id,
        "started_at": "2000-01-01T00:00:00+00:00",
        "produced": {"model": model_record},
    }
    (harness.home / "runs" / "local" / f"{run_id}.json").write_text(json.dumps(record))
    return run_id
