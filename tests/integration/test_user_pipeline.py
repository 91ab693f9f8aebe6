"""A team's project, as the documentation's "A complete project" shows it: its files written
from docs/pipelines.md into a folder of its own, then run, shown, logged and deployed on both
targets with no harness change, and only its own pipeline in its stack."""

from __future__ import annotations

import json
import re
import uuid

import boto3
import pytest

from tests import docs_examples
from tests.conftest import own_containers
from tests.integration.helpers import census_csv, harness_cli, stack_settings

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def write_team_project(folder):
    files = docs_examples.files("pipelines.md")
    assert set(files) == {"mlharness.yaml", "team_profile/pipeline.py", "team_profile/profile_job.py"}
    for path, text in files.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text(text)
    (folder / "data").mkdir()
    (folder / "data" / "table.csv").write_bytes(census_csv(1200))
    return folder


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    return write_team_project(tmp_path_factory.mktemp("team"))


@pytest.fixture(scope="module")
def harness(local_aws, job_image, team, tmp_path_factory):
    name = f"team-{uuid.uuid4().hex[:6]}"
    run = harness_cli(tmp_path_factory.mktemp("team-home"), stack_settings(local_aws, name), project=team)
    run.stack = run.bucket = name
    return run


def client(local_aws, service: str):
    return boto3.client(service, endpoint_url=local_aws.endpoint_url, region_name="us-east-1")


def test_the_users_pipeline_is_listed_runs_and_writes_its_output(harness, local_aws):
    listed = harness("pipelines")
    assert listed.returncode == 0, listed.stderr
    assert "profile: column statistics of the input data" in listed.stdout
    assert "settings.profile.min_rows: 100" in listed.stdout
    assert "  names profile-*; creates processing-job" in listed.stdout

    result = harness("run", "--target", "local")

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "| profile: 1200 rows, 9 columns" in result.stdout  # the job's own log line
    uri = re.search(r"  profile: (s3://\S+/profile\.json)", result.stdout.split("== summary", 1)[1]).group(1)
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    profile = json.loads(client(local_aws, "s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    assert profile["rows"] == 1200 and profile["columns"]["age"] == "int64"
    assert key.startswith("runs/profile-")
    (record,) = [json.loads(p.read_text()) for p in (harness.home / "runs" / "local").glob("*.json")]
    assert record["project"]["name"] == "team" and record["project"]["git_revision"] is None  # not in git
    table = record["inputs"]["table"]
    assert table["path"].endswith("data/table.csv") and table["uri"].endswith(f"/inputs/{table['sha256']}/")
    assert set(record["images"]) == {"job"} and "@sha256:" in record["images"]["job"]["reference"]
    # only the team's own pipeline is in its stack
    stack = client(local_aws, "cloudformation").describe_stack_resources(StackName=harness.stack)
    machines = [r for r in stack["StackResources"] if r["ResourceType"] == "AWS::StepFunctions::StateMachine"]
    assert [m["LogicalResourceId"] for m in machines] == ["ProfileStateMachine"]


def test_status_and_logs_show_the_users_run(harness):
    status = harness("status", "--target", "local", "--pipeline", "profile")
    assert status.returncode == 0, status.stderr
    assert re.search(r"profile-\S+\s+SUCCEEDED\s+\S+\s+s3://\S+/profile\.json", status.stdout)
    logs = harness("logs", "--target", "local")
    assert logs.returncode == 0, logs.stderr
    assert "== /aws/sagemaker/ProcessingJobs/profile-" in logs.stdout
    assert "profile: 1200 rows, 9 columns" in logs.stdout


def test_its_iam_allows_its_own_prefix_and_nothing_more(harness, local_aws):
    cfn = client(local_aws, "cloudformation")
    body = cfn.get_template(StackName=harness.stack)["TemplateBody"]
    import yaml

    template = body if isinstance(body, dict) else yaml.safe_load(body)
    statements = template["Resources"]["ProfileStateMachineRole"]["Properties"]["Policies"][0][
        "PolicyDocument"
    ]["Statement"]
    sagemaker = [s for s in statements if any(a.startswith("sagemaker:") for a in s["Action"])]
    assert [s["Resource"]["Fn::Sub"].rsplit(":", 1)[1] for s in sagemaker] == ["processing-job/profile-*"]
    assert sorted(sagemaker[0]["Action"]) == [
        "sagemaker:AddTags",
        "sagemaker:CreateProcessingJob",
        "sagemaker:DescribeProcessingJob",
        "sagemaker:StopProcessingJob",
    ]
    assert not any(s["Action"] == "s3:PutObject" for s in statements)


def test_a_name_without_the_prefix_is_refused_at_build_in_one_line(harness, tmp_path):
    renamed = write_team_project(tmp_path)
    pipeline = renamed / "team_profile" / "pipeline.py"
    pipeline.write_text(pipeline.read_text().replace('f"{run.run_id}-profile"', '"nightly-profile"'))

    result = harness("build", project=renamed)

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: pipeline 'profile': state 'Profile': ProcessingJobName 'nightly-profile' does not start with "
        "'profile-', which its IAM statements allow"
    ]


def test_the_aws_target_deploys_it_too(harness, local_aws):
    env = {
        "MLHARNESS_AWS_ENDPOINT_URL": local_aws.endpoint_url,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "MLHARNESS_STACK_NAME": f"{harness.stack}-aws",
        "MLHARNESS_ARTIFACT_BUCKET": f"{harness.bucket}-aws-{{account_id}}",
    }
    result = harness("deploy", "--target", "aws", "dev", env_extra=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert (
        f"stack {harness.stack}-aws: Add ProfileStateMachine (AWS::StepFunctions::StateMachine)"
        in result.stdout
    )
    assert re.search(r"profile: arn:aws:states:\S+:stateMachine:\S+-aws-profile", result.stdout)


def test_a_job_whose_code_raises_fails_the_run_in_one_stderr_line(harness, docker_client):
    result = harness("run", "--target", "local", extra=("settings.profile.min_rows=5000",))

    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    run_id = re.search(r"profile run (profile-\S+) FAILED", line).group(1)
    assert line == (
        f"error: profile run {run_id} FAILED: States.TaskFailed: profile: 1200 rows, fewer than 5000 "
        f"(exit code 1) (job {run_id}-profile; its log: python -m harness logs --run {run_id})"
    )
    assert not [c for c in own_containers(docker_client) if run_id in json.dumps(c.get("Labels"))]
    logs = harness("logs", "--target", "local", "--run", run_id)
    assert "profile: 1200 rows, fewer than 5000" in logs.stdout
