"""deploy and destroy through CloudFormation change sets, on the local AWS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import boto3
import pytest

from harness import build, config, deploy
from tests import ROOT

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def settings(local_aws, job_image):
    suffix = uuid.uuid4().hex[:6]
    port = local_aws.endpoint_url.rsplit(":", 1)[1]
    return [f"emulator.port={port}", f"stack_name=deploy-{suffix}", f"artifact_bucket=deploy-{suffix}"]


def harness(command: str, settings: list[str], *extra: str) -> subprocess.CompletedProcess:
    overrides = [item for setting in settings for item in ("--set", setting)]
    return subprocess.run(
        [sys.executable, "-m", "harness", command, "--target", "local", *overrides, *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env=os.environ.copy(),
    )  # fmt: skip


def test_deploy_creates_then_is_a_no_op_then_updates_a_changed_pipeline(settings):
    stack = settings[1].split("=")[1]
    first = harness("deploy", settings)
    assert first.returncode == 0, first.stderr
    assert f"stack {stack} created" in first.stdout
    assert "training: arn:aws:states:" in first.stdout

    again = harness("deploy", settings)
    assert again.returncode == 0 and f"stack {stack}: no changes" in again.stdout

    changed = harness("deploy", [*settings, "settings.training.quality_metric=f1"])
    assert changed.returncode == 0, changed.stderr
    assert f"stack {stack}: Modify TrainingStateMachine (AWS::StepFunctions::StateMachine)" in changed.stdout
    assert f"stack {stack} updated" in changed.stdout


def test_a_broken_template_is_reported_and_the_previous_stack_stays(local_aws, settings):
    harness("deploy", settings)
    cfn = boto3.client("cloudformation", endpoint_url=local_aws.endpoint_url, region_name="us-east-1")
    stack = settings[1].split("=")[1]
    before = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in before["Parameters"]}
    template = build.render(config.load("local"))[build.TEMPLATE_FILE]

    with pytest.raises(deploy.DeployError, match="does not validate"):
        deploy.deploy(cfn, stack, template + "\n  : [unbalanced", parameters, log=lambda line: None)
    assert cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == before["StackStatus"]

    broken = template.replace(
        "Outputs:",
        "  Broken:\n    Type: AWS::StepFunctions::StateMachine\n    Properties:\n"
        "      RoleArn: arn:aws:iam::123456789012:role/x\n      DefinitionString: '{not json'\nOutputs:",
        1,
    )
    with pytest.raises(deploy.DeployError) as raised:
        deploy.deploy(cfn, stack, broken, parameters, log=lambda line: None)
    assert "UPDATE_ROLLBACK_COMPLETE" in str(raised.value) and "Broken UPDATE_FAILED" in str(raised.value)
    after = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    assert after["Outputs"] == before["Outputs"]


def test_destroy_keeps_the_data_unless_asked(local_aws, settings):
    harness("deploy", settings)
    stack, bucket = settings[1].split("=")[1], settings[2].split("=")[1]
    s3 = boto3.client("s3", endpoint_url=local_aws.endpoint_url, region_name="us-east-1")

    kept = harness("destroy", settings)
    assert kept.returncode == 0 and f"stack {stack} deleted" in kept.stdout
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] >= 1  # the code bundle is still there

    removed = harness("destroy", settings, "--delete-data")
    assert removed.returncode == 0 and f"stack {stack} does not exist" in removed.stdout
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_the_bootstrapped_bucket_is_encrypted_versioned_and_private(local_aws, settings):
    harness("deploy", settings)
    bucket = settings[2].split("=")[1]
    s3 = boto3.client("s3", endpoint_url=local_aws.endpoint_url, region_name="us-east-1")
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    # The TLS-only policy is left out where the endpoint is plain HTTP (see deploy.ensure_bucket).
    with pytest.raises(s3.exceptions.ClientError):
        s3.get_bucket_policy(Bucket=bucket)


def test_the_tls_only_policy_denies_plain_requests(local_aws):
    s3 = boto3.client("s3", endpoint_url=local_aws.endpoint_url, region_name="us-east-1")
    bucket = f"tls-{uuid.uuid4().hex[:6]}"
    deploy.ensure_bucket(s3, bucket, "us-east-1", tls_only=True)
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    assert policy["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    with pytest.raises(s3.exceptions.ClientError) as refused:
        s3.put_object(Bucket=bucket, Key="x", Body=b"plain http")
    assert refused.value.response["Error"]["Code"] in ("AccessDenied", "403")


def test_a_given_sagemaker_role_replaces_the_one_the_stack_creates(local_aws, job_image):
    suffix = uuid.uuid4().hex[:6]
    port = local_aws.endpoint_url.rsplit(":", 1)[1]
    role = "arn:aws:iam::123456789012:role/given-by-the-platform-team"
    settings = [
        f"emulator.port={port}", f"stack_name=role-{suffix}", f"artifact_bucket=role-{suffix}",
        f"aws.sagemaker_role_arn={role}",
    ]  # fmt: skip
    result = harness("deploy", settings)
    assert result.returncode == 0, result.stderr
    cfn = boto3.client("cloudformation", endpoint_url=local_aws.endpoint_url, region_name="us-east-1")
    resources = cfn.describe_stack_resources(StackName=f"role-{suffix}")["StackResources"]
    assert "SageMakerRole" not in [r["LogicalResourceId"] for r in resources]
    sfn = boto3.client("stepfunctions", endpoint_url=local_aws.endpoint_url, region_name="us-east-1")
    training = next(
        m for m in sfn.list_state_machines()["stateMachines"] if m["name"] == f"role-{suffix}-training"
    )
    definition = sfn.describe_state_machine(stateMachineArn=training["stateMachineArn"])["definition"]
    assert f'"RoleArn": "{role}"' in definition


def test_a_definition_that_does_not_validate_is_refused_before_anything_is_deployed(
    local_aws, monkeypatch, tmp_path
):
    from harness import release, targets
    from harness.errors import HarnessError

    fresh = f"invalid-{uuid.uuid4().hex[:6]}"
    port = local_aws.endpoint_url.rsplit(":", 1)[1]
    settings = config.load(
        "local", [f"emulator.port={port}", f"stack_name={fresh}", f"artifact_bucket={fresh}"]
    )
    rendered = build.render(settings)
    broken = json.loads(rendered["inference.asl.json"])
    broken["States"]["Preprocess"]["Next"] = "Score"  # a state that does not exist
    monkeypatch.setattr(build, "render", lambda _: {**rendered, "inference.asl.json": json.dumps(broken)})
    with targets.LocalTarget(settings, log=lambda line: None) as target:
        with pytest.raises(HarnessError) as refused:
            release.release(settings, target, report=lambda line: None)

    assert str(refused.value) == (
        "the inference state machine definition does not validate: SCHEMA_VALIDATION_FAILED at "
        "/States/Preprocess/Next: Missing 'Next' target: Score"
    )
    cfn = boto3.client("cloudformation", endpoint_url=local_aws.endpoint_url, region_name="us-east-1")
    assert fresh not in [s["StackName"] for s in cfn.list_stacks()["StackSummaries"]]
    s3 = boto3.client("s3", endpoint_url=local_aws.endpoint_url, region_name="us-east-1")
    assert fresh not in [b["Name"] for b in s3.list_buckets()["Buckets"]]  # nothing bootstrapped either
