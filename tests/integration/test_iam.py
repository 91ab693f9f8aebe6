"""IAM evaluated in the local AWS: the project's own pipelines pass under `strict`; a user's
pipeline whose job names miss the prefix its policy allows is named in the fidelity report
under `soft` (and fails `--strict-fidelity`), and fails under `strict` as on AWS; a job
reading outside what its role allows, a state machine writing a key its role may not, and a
state machine passing a role it may not pass are denied with AWS's wording."""

from __future__ import annotations

import json
import re
import uuid

import boto3
import pytest

from harness.emulator import LocalAWS
from tests.integration.helpers import (
    free_port,
    harness_cli,
    processing_request,
    training_request,
    wait_for_execution,
    wait_for_job,
)
from tests.integration.test_user_pipeline import write_team_project

pytestmark = [pytest.mark.docker, pytest.mark.slow]
ACCOUNT = "123456789012"


@pytest.fixture
def local(tmp_path, docker_client):
    """A local AWS of the test's own, in the IAM mode the test asks for: `local(mode, *settings)`
    starts it and returns a harness that uses it."""
    started = []

    def start(iam: str, *more: str, project=None):
        aws = LocalAWS(port=free_port(), state_dir=tmp_path / f"state-{iam}", iam=iam).start()
        started.append(aws)
        name = f"{iam}-{uuid.uuid4().hex[:6]}"
        settings = [f"emulator.port={aws.endpoint_url.rsplit(':', 1)[1]}", f"emulator.iam={iam}",
                    f"stack_name={name}", f"artifact_bucket={name}", *more]  # fmt: skip
        harness = harness_cli(tmp_path / f"home-{iam}", settings, project=project)
        harness.s3 = boto3.client("s3", endpoint_url=aws.endpoint_url, region_name="us-east-1")
        return harness

    yield start
    for aws in started:
        aws.stop()


def test_the_projects_own_pipelines_pass_under_strict(job_image, local):
    harness = local("strict", "inputs.data.generate.rows=500")
    result = harness("run", "--target", "local", "--strict-fidelity")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert re.search(r"training run \S+: SUCCEEDED", result.stdout)
    assert re.search(r"inference run \S+: SUCCEEDED", result.stdout)
    assert "[iam]" not in result.stdout


SHARED = "team-shared-reports"


@pytest.fixture(scope="module")
def mistaken_team(tmp_path_factory):
    """The documentation's team project with a mistake its build cannot see: its job writes its
    output to a team bucket of its own, which the jobs' role (the artifact bucket only) may not write."""
    folder = write_team_project(tmp_path_factory.mktemp("mistaken-team"))
    pipeline = folder / "team_profile" / "pipeline.py"
    pipeline.write_text(
        pipeline.read_text().replace('f"{run.prefix_uri}/profile"', f'f"s3://{SHARED}/{{run.run_id}}"')
    )
    assert f"s3://{SHARED}/" in pipeline.read_text()
    return folder


def test_soft_names_the_call_aws_would_deny_and_strict_fidelity_fails_the_run(
    job_image, mistaken_team, local
):
    harness = local("soft", project=mistaken_team)
    harness.s3.create_bucket(Bucket=SHARED)  # it exists, locally as on AWS: only the role's policy is wrong
    result = harness("run", "--target", "local", "--strict-fidelity")
    assert "profile run" in result.stdout and ": SUCCEEDED" in result.stdout  # it ran, locally
    summary = result.stdout.split("== summary", 1)[1]
    denied = re.search(
        r"\[iam\] (profile-\S+): on AWS this call would be denied: User: (\S+) is not authorized "
        r"to perform: s3:PutObject on resource: (\S+) because",
        summary,
    )
    assert denied, summary
    assert denied[2] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{denied[2].split('/')[1]}/{denied[1]}"
    assert denied[3].startswith(f"arn:aws:s3:::{SHARED}/profile-")
    assert result.returncode == 1  # --strict-fidelity
    assert any(
        line.startswith("error: --strict-fidelity: profile run")
        and f"s3:PutObject on resource: arn:aws:s3:::{SHARED}/" in line
        for line in result.stderr.splitlines()
    ), result.stderr


def test_strict_fails_the_mistaken_pipeline_at_its_job_as_aws_would(job_image, mistaken_team, local):
    harness = local("strict", project=mistaken_team)
    harness.s3.create_bucket(Bucket=SHARED)
    result = harness("run", "--target", "local")
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: profile run") and "FAILED" in line
    assert "ClientError: Data access failed (AccessDenied)" in line
    assert f"s3:PutObject on resource: arn:aws:s3:::{SHARED}/" in line


# -- the local AWS under strict, request by request -----------------------------------------
TRUST = {"Version": "2012-10-17"}


@pytest.fixture(scope="module")
def strict(tmp_path_factory, docker_client):
    with LocalAWS(state_dir=tmp_path_factory.mktemp("strict"), iam="strict") as aws:

        def client(service):
            return boto3.client(service, endpoint_url=aws.endpoint_url, region_name="us-east-1")

        aws.client = client
        iam, s3 = client("iam"), client("s3")
        for bucket in ("ours", "theirs"):
            s3.create_bucket(Bucket=bucket)
            s3.put_object(Bucket=bucket, Key="train/part-1.csv", Body=b"1,a\n")

        def role(name: str, service: str, statements: list[dict]) -> str:
            trust = {**TRUST, "Statement": [{"Effect": "Allow", "Principal": {"Service": service},
                                             "Action": "sts:AssumeRole"}]}  # fmt: skip
            arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
            iam.put_role_policy(RoleName=name, PolicyName="p",
                                PolicyDocument=json.dumps({**TRUST, "Statement": statements}))  # fmt: skip
            return arn

        aws.jobs_role = role("jobs", "sagemaker.amazonaws.com", [
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:ListBucket"],
             "Resource": ["arn:aws:s3:::ours", "arn:aws:s3:::ours/*"]},
            {"Effect": "Allow", "Action": "logs:*", "Resource": "*"},
        ])  # fmt: skip
        aws.other_role = role(
            "other", "sagemaker.amazonaws.com", [{"Effect": "Allow", "Action": "logs:*", "Resource": "*"}]
        )
        aws.machine_role = role("machine", "states.amazonaws.com", [
            {"Effect": "Allow", "Action": ["sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob",
                                           "sagemaker:AddTags"],
             "Resource": f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:training-job/ok-*"},
            {"Effect": "Allow", "Action": "iam:PassRole", "Resource": aws.jobs_role,
             "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}},
            {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::ours/models/latest.json"},
        ])  # fmt: skip
        yield aws


def _run_machine(aws, definition: dict) -> dict:
    sfn = aws.client("stepfunctions")
    arn = sfn.create_state_machine(
        name=f"m-{uuid.uuid4().hex[:6]}", definition=json.dumps(definition), roleArn=aws.machine_role
    )["stateMachineArn"]
    return wait_for_execution(sfn, sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"])


def _put(key: str) -> dict:
    return {"StartAt": "Put", "States": {"Put": {
        "Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:putObject",
        "Parameters": {"Bucket": "ours", "Key": key, "Body": "{}"}, "End": True}}}  # fmt: skip


def test_a_state_machine_writes_the_key_its_role_allows_and_no_other(strict):
    assert _run_machine(strict, _put("models/latest.json"))["status"] == "SUCCEEDED"
    failed = _run_machine(strict, _put("models/other.json"))
    assert failed["status"] == "FAILED"
    assert failed["error"].startswith("S3.")
    assert (
        "is not authorized to perform: s3:PutObject on resource: arn:aws:s3:::ours/models/other.json"
        in (failed["cause"])
    )
    assert "(Service: S3, Status Code: 403," in failed["cause"]


def test_a_state_machine_may_not_pass_a_role_or_name_a_job_its_policy_does_not_allow(strict, tiny_image):
    def train(role: str, prefix: str = "ok") -> dict:
        request = training_request(f"{prefix}-{uuid.uuid4().hex[:6]}", tiny_image, "ours", RoleArn=role)
        return {"StartAt": "Train", "States": {"Train": {
            "Type": "Task", "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",
            "Parameters": request, "End": True}}}  # fmt: skip

    assert _run_machine(strict, train(strict.jobs_role))["status"] == "SUCCEEDED"
    failed = _run_machine(strict, train(strict.other_role))
    assert failed["status"] == "FAILED"
    assert f"iam:PassRole on resource: {strict.other_role}" in failed["cause"]
    outside = _run_machine(strict, train(strict.jobs_role, prefix="nightly"))  # not the prefix it may use
    assert outside["status"] == "FAILED"
    assert (
        "assumed-role/machine/StepFunctions is not authorized to perform: sagemaker:CreateTrainingJob on "
        f"resource: arn:aws:sagemaker:us-east-1:{ACCOUNT}:training-job/nightly-"
    ) in outside["cause"]


def test_a_job_reading_outside_what_its_role_allows_fails_as_on_aws(strict, tiny_image):
    sm = strict.client("sagemaker")
    name = f"outside-{uuid.uuid4().hex[:6]}"
    request = training_request(name, tiny_image, "theirs", RoleArn=strict.jobs_role)
    request["OutputDataConfig"] = {"S3OutputPath": "s3://ours/models"}
    sm.create_training_job(**request)
    answer, _ = wait_for_job(lambda: sm.describe_training_job(TrainingJobName=name), "TrainingJobStatus")
    assert answer["TrainingJobStatus"] == "Failed"
    assert answer["FailureReason"].startswith(
        "ClientError: Data access failed (AccessDenied): User: "
        f"arn:aws:sts::{ACCOUNT}:assumed-role/jobs/{name} is not authorized "
        "to perform: s3:ListBucket on resource: arn:aws:s3:::theirs"
    )


def test_a_job_may_use_a_kms_key_only_as_its_key_policy_and_role_allow(strict, tiny_image):
    kms, iam, sm = strict.client("kms"), strict.client("iam"), strict.client("sagemaker")
    key = kms.create_key()["KeyMetadata"]  # its default policy lets the account's IAM policies decide

    def train(name: str) -> dict:
        request = training_request(name, tiny_image, "ours", RoleArn=strict.jobs_role)
        request["OutputDataConfig"] = {"S3OutputPath": "s3://ours/models", "KmsKeyId": key["KeyId"]}
        sm.create_training_job(**request)
        return wait_for_job(lambda: sm.describe_training_job(TrainingJobName=name), "TrainingJobStatus")[0]

    denied = train(f"kms-{uuid.uuid4().hex[:6]}")
    assert denied["TrainingJobStatus"] == "Failed"
    assert denied["FailureReason"].startswith("ClientError: KMS key access failed (AccessDenied): User: ")
    assert (
        f"kms:GenerateDataKey on resource: {key['Arn']} because no identity-based policy allows"
        in (denied["FailureReason"])
    )
    allowed = {"Effect": "Allow", "Action": "kms:GenerateDataKey", "Resource": key["Arn"]}
    iam.put_role_policy(
        RoleName="jobs", PolicyName="key", PolicyDocument=json.dumps({**TRUST, "Statement": [allowed]})
    )
    assert train(f"kms-{uuid.uuid4().hex[:6]}")["TrainingJobStatus"] == "Completed"


PRETENDER = """
import json, os, pathlib, boto3
from botocore.exceptions import ClientError
s3 = boto3.client('s3', aws_access_key_id='test', aws_secret_access_key='test')
try:
    s3.list_objects_v2(Bucket='theirs')
    outcome = 'listed'
except ClientError as ex:
    outcome = ex.response['Error']['Code']
pathlib.Path('/opt/ml/processing/output/outcome.txt').write_text(outcome)
"""


def test_a_job_cannot_act_as_the_user_with_the_well_known_test_keys(strict, tiny_image):
    sm, s3 = strict.client("sagemaker"), strict.client("s3")
    name = f"pretender-{uuid.uuid4().hex[:6]}"
    s3.put_object(Bucket="ours", Key=f"code/{name}/pretend.py", Body=PRETENDER.encode())
    entrypoint = ["python3", "/opt/ml/processing/input/code/pretend.py"]
    code = (f"s3://ours/code/{name}/", "/opt/ml/processing/input/code", "S3Prefix")
    output = f"s3://ours/pretender/{name}"
    sm.create_processing_job(
        **processing_request(name, tiny_image, entrypoint, [code], output, role=strict.jobs_role)
    )
    describe = lambda: sm.describe_processing_job(ProcessingJobName=name)  # noqa: E731
    answer, _ = wait_for_job(describe, "ProcessingJobStatus")
    assert answer["ProcessingJobStatus"] == "Completed", answer.get("FailureReason")
    outcome = s3.get_object(Bucket="ours", Key=f"pretender/{name}/outcome.txt")["Body"].read()
    assert outcome == b"InvalidAccessKeyId"  # as AWS answers keys it never issued; not the user's access
