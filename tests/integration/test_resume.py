"""`mlharness run --resume RUN_ID` on the local target, with a team project's two-step pipeline
(profile, then check): a step that failed for a reason outside
the code is redriven (the steps that succeeded are not run again); a step whose code was
fixed after the failure is run again in a new run linked to the first, the steps before it
served from the step cache."""

from __future__ import annotations

import json
import re
import subprocess
import uuid

import boto3
import pytest

from harness.emulator import LocalAWS, cache_api
from tests.integration.helpers import census_csv, harness_cli, stack_settings
from tests.projects import write_project

pytestmark = [pytest.mark.docker, pytest.mark.slow]

PIPELINE = '''
"""Profile the data, read a switch from the bucket, then check the profile."""

from stepfunctions import steps
from stepfunctions.inputs import ExecutionInput

from mlharness import BuildContext, Input, Outputs, Pipeline, RunContext, tasks

DATA, OUTPUT = "/opt/ml/processing/input/data", "/opt/ml/processing/output"


def definition(build: BuildContext) -> dict:
    run = ExecutionInput(schema={"ProfileJob": str, "CheckJob": str, "DataUri": str, "CodeUri": str,
                                 "ProfileUri": str, "CheckUri": str, "Bucket": str, "CheckArguments": list})
    profile = tasks.processing(
        "Profile", run["ProfileJob"], "team_checks/profile_job.py", ["--name", "profile"],
        inputs={"data": (run["DataUri"], DATA)}, outputs={"profile": (OUTPUT, run["ProfileUri"])},
        code_uri=run["CodeUri"], result_path="$.profile",
    )
    switch = steps.Task("ReadSwitch", resource=tasks.S3_GET_OBJECT,
                        parameters={"Bucket": run["Bucket"], "Key": "switch"}, result_path="$.switch")
    check = tasks.processing(
        "Check", run["CheckJob"], "team_checks/check_job.py", run["CheckArguments"],
        inputs={"profile": (run["ProfileUri"], "/opt/ml/processing/input/profile")},
        outputs={"check": (OUTPUT, run["CheckUri"])},
        code_uri=run["CodeUri"], result_path="$.check",
    )
    return steps.Graph(steps.Chain([profile, switch, check])).to_dict()


def execution_input(run: RunContext) -> dict:
    return {
        "ProfileJob": f"{run.run_id}-profile", "CheckJob": f"{run.run_id}-check",
        "DataUri": run.inputs["data"], "CodeUri": run.code_uri,
        "ProfileUri": f"{run.prefix_uri}/profile", "CheckUri": f"{run.prefix_uri}/check",
        "Bucket": run.artifact_bucket,
        "CheckArguments": ["--switch", f"s3://{run.artifact_bucket}/switch"],
    }


def outputs(execution_input: dict, output: dict) -> Outputs:
    return Outputs(values={"check_uri": execution_input["CheckUri"]}, headline="checked")


PIPELINE = Pipeline(
    name="checks", prefix="checks", description="profile, then check", definition=definition,
    execution_input=execution_input, outputs=outputs, kinds=frozenset({"processing-job"}),
    code=("team_checks",), inputs=(Input("data"),),
)
'''

PROFILE_JOB = """
import json, pathlib
found = pathlib.Path("/opt/ml/processing/input/data").rglob("*.csv")
rows = sum(len(p.read_text().splitlines()) - 1 for p in found)
pathlib.Path("/opt/ml/processing/output/profile.json").write_text(json.dumps({"rows": rows}))
print(f"profile: {rows} rows")
"""

CHECK_JOB = """
import argparse, json, pathlib
import boto3
parser = argparse.ArgumentParser()
parser.add_argument("--switch")
args = parser.parse_args()
bucket, key = args.switch.removeprefix("s3://").split("/", 1)
if boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read() != b"on":
    raise SystemExit("check: the switch is off")
{body}
profile = json.loads(pathlib.Path("/opt/ml/processing/input/profile/profile.json").read_text())
pathlib.Path("/opt/ml/processing/output/check.json").write_text(json.dumps({"ok": profile["rows"] > 0}))
print("check: passed")
"""


@pytest.fixture(scope="module")
def cached_aws(tmp_path_factory, docker_client):
    with LocalAWS(state_dir=tmp_path_factory.mktemp("resume-aws"), cache=True) as aws:
        yield aws


@pytest.fixture
def team(tmp_path):
    folder = write_project(
        tmp_path / "team", "inputs:\n  data: table.csv\n", ["team_checks/pipeline.py"], "checks"
    )
    (folder / "table.csv").write_bytes(census_csv(300))
    (folder / "team_checks").mkdir(parents=True)
    (folder / "team_checks" / "pipeline.py").write_text(PIPELINE)
    (folder / "team_checks" / "profile_job.py").write_text(PROFILE_JOB)
    (folder / "team_checks" / "check_job.py").write_text(CHECK_JOB.replace("{body}", ""))
    return folder


@pytest.fixture
def harness(cached_aws, job_image, team, tmp_path):
    cache_api.call(cached_aws.endpoint_url, "DELETE")  # each test starts from an empty step cache
    name = f"resume-{uuid.uuid4().hex[:6]}"
    run = harness_cli(tmp_path / "home", stack_settings(cached_aws, name), project=team)
    run.bucket = name
    run.s3 = boto3.client("s3", endpoint_url=cached_aws.endpoint_url, region_name="us-east-1")
    return run


def records(harness) -> dict[str, dict]:
    found = [json.loads(p.read_text()) for p in (harness.home / "runs" / "local").glob("*.json")]
    return {r["run_id"]: r for r in found}


def run_checks(harness, switch: bytes | None) -> subprocess.CompletedProcess:
    harness.s3.create_bucket(Bucket=harness.bucket)
    if switch is None:
        harness.s3.delete_object(Bucket=harness.bucket, Key="switch")
    else:
        harness.s3.put_object(Bucket=harness.bucket, Key="switch", Body=switch)
    return harness("run", "--target", "local")


def test_a_run_that_failed_outside_a_job_is_redriven_from_the_failed_state(harness):
    failed = run_checks(harness, switch=None)  # ReadSwitch fails: no such key
    assert failed.returncode == 1 and "S3.NoSuchKeyException" in failed.stderr, failed.stderr
    (record,) = records(harness).values()
    run_id = record["run_id"]
    harness.s3.put_object(Bucket=harness.bucket, Key="switch", Body=b"on")

    resumed = harness("run", "--target", "local", "--resume", run_id)

    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-2000:]
    out = resumed.stdout
    assert f"resuming run {run_id}: redriving its execution" in out
    assert (
        "-> ReadSwitch" in out and "-> Check" in out and "-> Profile" not in out
    )  # Profile is not run again
    assert "| check: passed" in out
    (record,) = records(harness).values()  # the same run, not a new one
    assert record["status"] == "SUCCEEDED" and record["run_id"] == run_id
    assert [(a["status"], a["error"]) for a in record["attempts"]] == [("FAILED", "S3.NoSuchKeyException")]
    assert [s["name"] for s in record["steps"]] == ["Profile", "ReadSwitch", "Check"]
    assert [(e["job"].rsplit("-", 1)[1], e["outcome"]) for e in record["cache"]] == [("check", "miss")]
    sfn = boto3.client("stepfunctions", endpoint_url=harness.s3.meta.endpoint_url, region_name="us-east-1")
    assert sfn.describe_execution(executionArn=record["execution_arn"])["redriveCount"] == 1

    again = harness("run", "--target", "local", "--resume", run_id)
    assert again.returncode == 1
    assert again.stderr.strip() == (
        f"error: run {run_id} is SUCCEEDED: only a failed, aborted or timed-out run can be resumed"
    )


def test_a_failed_job_is_resumed_in_a_new_run_as_a_redrive_would_reuse_its_name(harness):
    failed = run_checks(harness, switch=b"off")
    assert failed.returncode == 1 and "check: the switch is off" in failed.stderr, failed.stderr
    (first,) = records(harness).values()
    harness.s3.put_object(Bucket=harness.bucket, Key="switch", Body=b"on")

    resumed = harness("run", "--target", "local", "--resume", first["run_id"])

    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-2000:]
    would = f"a redrive would submit job {first['run_id']}-check again"
    assert f"resuming run {first['run_id']} as a new run: {would}" in resumed.stdout
    served = r"step cache: job checks-\S+-profile served from job " + re.escape(first["run_id"])
    assert re.search(served, resumed.stdout)
    assert "| check: passed" in resumed.stdout
    runs = records(harness)
    (second,) = [r for r in runs.values() if r["run_id"] != first["run_id"]]
    assert second["status"] == "SUCCEEDED" and second["resumes"] == first["run_id"]
    assert runs[first["run_id"]]["resumed_by"] == second["run_id"]
    assert runs[first["run_id"]]["status"] == "FAILED"  # what happened to it stays said


def test_a_step_fixed_after_the_failure_runs_again_with_the_steps_before_it_from_the_cache(harness, team):
    broken = CHECK_JOB.replace("{body}", 'raise SystemExit("check: a bug")')
    (team / "team_checks" / "check_job.py").write_text(broken)
    failed = run_checks(harness, switch=b"on")
    assert failed.returncode == 1 and "check: a bug" in failed.stderr
    (first,) = records(harness).values()

    (team / "team_checks" / "check_job.py").write_text(CHECK_JOB.replace("{body}", ""))  # the fix
    resumed = harness("run", "--target", "local", "--resume", first["run_id"])

    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-2000:]
    assert f"resuming run {first['run_id']} as a new run: its code changed" in resumed.stdout
    served = r"step cache: job checks-\S+-profile served from job " + re.escape(first["run_id"])
    assert re.search(served, resumed.stdout)  # the profile script did not change: the cache serves it
    # its only earlier run failed: never served, but the miss names it and the fix
    miss = (
        r"step cache: job checks-\S+-check ran \(miss: differs from job "
        + re.escape(first["run_id"])
        + r"-check \(Failed\): input code: 1 object changed \(team_checks/check_job.py\)\)"
    )
    assert re.search(miss, resumed.stdout), resumed.stdout[-3000:]
    assert "| check: passed" in resumed.stdout
    (second,) = [r for r in records(harness).values() if r["run_id"] != first["run_id"]]
    assert second["status"] == "SUCCEEDED" and second["resumes"] == first["run_id"]
