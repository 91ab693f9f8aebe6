"""The emulator process: start, state that survives a crash, containers it owns."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import boto3
import pytest

from harness.emulator import LocalAWS
from harness.emulator.containers import INSTANCE_LABEL, JOB_LABEL, OWNER_LABEL
from tests.integration.helpers import (
    training_request,
    unique,
    wait_for_execution,
    wait_for_job,
    wait_for_running_container,
)

REGION = "us-east-1"


def client(aws: LocalAWS, service: str):
    return boto3.client(service, endpoint_url=aws.endpoint_url, region_name=REGION)


def test_s3_objects_survive_kill_9_and_restart(tmp_path):
    state = tmp_path / "state"
    aws = LocalAWS(state_dir=state, docker_gateway=False).start()
    try:
        s3 = client(aws, "s3")
        s3.create_bucket(Bucket="kept-data")
        s3.put_object(
            Bucket="kept-data", Key="datasets/train.csv", Body=b"a,b\n1,2\n", ContentType="text/csv"
        )
        s3.put_object(Bucket="kept-data", Key="deleted.txt", Body=b"x")
        s3.delete_object(Bucket="kept-data", Key="deleted.txt")
        upload = s3.create_multipart_upload(Bucket="kept-data", Key="models/big.bin")
        part = b"m" * (5 * 1024 * 1024)
        etags = [
            s3.upload_part(
                Bucket="kept-data", Key="models/big.bin", UploadId=upload["UploadId"], PartNumber=n, Body=part
            )["ETag"]
            for n in (1, 2)
        ]
        s3.complete_multipart_upload(
            Bucket="kept-data",
            Key="models/big.bin",
            UploadId=upload["UploadId"],
            MultipartUpload={
                "Parts": [{"PartNumber": n, "ETag": e} for n, e in zip((1, 2), etags, strict=True)]
            },
        )
    finally:
        aws.kill()
    if aws.info.get("registry"):  # the emulator's registry dies with it
        assert _stops_answering(f"http://{aws.info['registry']}/v2/")

    with LocalAWS(state_dir=state, docker_gateway=False) as restarted:
        s3 = client(restarted, "s3")
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="kept-data")["Contents"])
        assert keys == ["datasets/train.csv", "models/big.bin"]
        train = s3.get_object(Bucket="kept-data", Key="datasets/train.csv")
        assert train["Body"].read() == b"a,b\n1,2\n"
        assert train["ContentType"] == "text/csv"
        assert s3.head_object(Bucket="kept-data", Key="models/big.bin")["ContentLength"] == 2 * len(part)


TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}
READ = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
}


def test_iam_roles_and_policies_made_through_the_api_survive_a_restart(tmp_path):
    """A stack's role comes back with its stack; the API's are kept by the IAM store."""
    role_stack = {
        "Resources": {
            "StackRole": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": TRUST}}
        }
    }
    with LocalAWS(state_dir=tmp_path, docker_gateway=False) as aws:
        iam = client(aws, "iam")
        policy_arn = iam.create_policy(PolicyName="read", PolicyDocument=json.dumps(READ))["Policy"]["Arn"]
        made = iam.create_role(
            RoleName="job", AssumeRolePolicyDocument=json.dumps(TRUST), Tags=[{"Key": "team", "Value": "ml"}]
        )
        iam.attach_role_policy(RoleName="job", PolicyArn=policy_arn)
        iam.attach_role_policy(RoleName="job", PolicyArn="arn:aws:iam::aws:policy/AmazonSageMakerFullAccess")
        iam.put_role_policy(RoleName="job", PolicyName="inline", PolicyDocument=json.dumps(READ))
        iam.create_role(RoleName="gone", AssumeRolePolicyDocument=json.dumps(TRUST))
        iam.delete_role(RoleName="gone")
        client(aws, "cloudformation").create_stack(
            StackName="roles", TemplateBody=json.dumps(role_stack), Capabilities=["CAPABILITY_IAM"]
        )
        stack_roles = {r["RoleName"] for r in iam.list_roles()["Roles"]} - {"job"}

    with LocalAWS(state_dir=tmp_path, docker_gateway=False) as aws:
        iam = client(aws, "iam")
        role = iam.get_role(RoleName="job")["Role"]
        assert (role["Arn"], role["RoleId"]) == (made["Role"]["Arn"], made["Role"]["RoleId"])
        assert role["Tags"] == [{"Key": "team", "Value": "ml"}]
        attached = sorted(
            p["PolicyName"] for p in iam.list_attached_role_policies(RoleName="job")["AttachedPolicies"]
        )
        assert attached == ["AmazonSageMakerFullAccess", "read"]
        assert iam.list_role_policies(RoleName="job")["PolicyNames"] == ["inline"]
        assert (
            json.loads(json.dumps(iam.get_role_policy(RoleName="job", PolicyName="inline")["PolicyDocument"]))
            == READ
        )
        # the stack's role came back with the stack, once; the deleted one stayed deleted
        assert {r["RoleName"] for r in iam.list_roles()["Roles"]} - {"job"} == stack_roles
        assert len(stack_roles) == 1


def test_a_deleted_bucket_stays_deleted(tmp_path):
    with LocalAWS(state_dir=tmp_path, docker_gateway=False) as aws:
        s3 = client(aws, "s3")
        s3.create_bucket(Bucket="short-lived")
        s3.delete_bucket(Bucket="short-lived")
    with LocalAWS(state_dir=tmp_path, docker_gateway=False) as aws:
        assert client(aws, "s3").list_buckets()["Buckets"] == []


def test_a_taken_port_is_reported_in_one_line(tmp_path):
    with LocalAWS(state_dir=tmp_path / "a", docker_gateway=False) as first:
        port = first.endpoint_url.rsplit(":", 1)[1]
        result = subprocess.run(
            [sys.executable, "-m", "harness", "emulator", "--port", port, "--state-dir", str(tmp_path / "b")],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        f"cannot listen on 127.0.0.1:{port}: Address already in use; choose another --port"
    )


@pytest.mark.docker
@pytest.mark.slow
def test_stopping_the_emulator_stops_its_jobs_and_a_restart_cleans_up_after_a_crash(
    tmp_path, tiny_image, docker_client
):
    aws = LocalAWS(state_dir=tmp_path).start()
    try:
        s3, sm = client(aws, "s3"), client(aws, "sagemaker")
        s3.create_bucket(Bucket="lifecycle")
        s3.put_object(Bucket="lifecycle", Key="train/a.csv", Body=b"1\n")
        name = unique("orphan")
        arn = sm.create_training_job(
            **training_request(name, tiny_image, "lifecycle", HyperParameters={"sleep": "120"})
        )["TrainingJobArn"]
        wait_for_running_container(docker_client, arn)
    finally:
        os.kill(aws.info["reaper_pid"], signal.SIGKILL)  # its watcher dies first (as on a reboot)...
        aws.kill()  # ...then the local AWS, kill -9: the container is orphaned
    orphans = docker_client.api.containers(all=True, filters={"label": f"{JOB_LABEL}={arn}"})
    assert len(orphans) == 1

    aws = LocalAWS(state_dir=tmp_path).start()  # removes what the dead one left
    try:
        assert docker_client.api.containers(all=True, filters={"label": f"{JOB_LABEL}={arn}"}) == []
        sm = client(aws, "sagemaker")
        name = unique("running")
        arn = sm.create_training_job(
            **training_request(name, tiny_image, "lifecycle", HyperParameters={"sleep": "120"})
        )["TrainingJobArn"]
        wait_for_running_container(docker_client, arn)
    finally:
        started = time.monotonic()
        aws.stop()
    assert aws.process.returncode == 0
    assert time.monotonic() - started < 30
    owned = docker_client.api.containers(all=True, filters={"label": f"{OWNER_LABEL}={aws.info['pid']}"})
    assert owned == []


def _stops_answering(url: str, timeout: float = 10) -> bool:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
        except urllib.error.HTTPError:
            pass  # still answering
        except OSError:
            return True
        time.sleep(0.1)
    return False


def test_job_logs_survive_kill_9_and_restart(tmp_path, tiny_image):
    state = tmp_path / "state"
    aws = LocalAWS(state_dir=state, docker_gateway=False).start()
    try:
        sm = client(aws, "sagemaker")
        sm.create_processing_job(
            ProcessingJobName="kept-logs",
            RoleArn="arn:aws:iam::123456789012:role/r",
            AppSpecification={
                "ImageUri": tiny_image,
                "ContainerEntrypoint": ["sh", "-c", "echo first; echo second"],
            },
            ProcessingResources={
                "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}
            },
        )
        wait_for_job(lambda: sm.describe_processing_job(ProcessingJobName="kept-logs"), "ProcessingJobStatus")
        logs = client(aws, "logs")
        group = "/aws/sagemaker/ProcessingJobs"
        (stream,) = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix="kept-logs/")[
            "logStreams"
        ]
        before = logs.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"])["events"]
    finally:
        aws.kill()

    with LocalAWS(state_dir=state, docker_gateway=False) as restarted:
        logs = client(restarted, "logs")
        after = logs.get_log_events(
            logGroupName=group, logStreamName=stream["logStreamName"], startFromHead=True
        )
    assert [e["message"] for e in before] == ["first", "second"]
    assert [(e["timestamp"], e["message"]) for e in after["events"]] == [
        (e["timestamp"], e["message"]) for e in before
    ]


def test_deployed_stacks_survive_kill_9_and_restart_and_deleted_ones_stay_deleted(tmp_path):
    definition = {"StartAt": "Say", "States": {"Say": {"Type": "Pass", "Result": "${Word}", "End": True}}}
    template = json.dumps(
        {
            "Parameters": {"Word": {"Type": "String"}},
            "Resources": {
                "Machine": {
                    "Type": "AWS::StepFunctions::StateMachine",
                    "Properties": {
                        "StateMachineName": "kept-machine",
                        "RoleArn": "arn:aws:iam::123456789012:role/sfn",
                        "DefinitionString": {"Fn::Sub": json.dumps(definition)},
                    },
                },
            },
            "Outputs": {"MachineArn": {"Value": {"Ref": "Machine"}}},
        }
    )
    state = tmp_path / "state"
    aws = LocalAWS(state_dir=state, docker_gateway=False).start()
    try:
        cfn = client(aws, "cloudformation")
        for stack, word in (("kept", "hello"), ("dropped", "bye")):
            cfn.create_change_set(
                StackName=stack, ChangeSetName="first", ChangeSetType="CREATE",
                TemplateBody=template.replace("kept-machine", f"{stack}-machine"),
                Parameters=[{"ParameterKey": "Word", "ParameterValue": word}],
            )  # fmt: skip
            cfn.execute_change_set(StackName=stack, ChangeSetName="first")
        cfn.delete_stack(StackName="dropped")
        arn = cfn.describe_stacks(StackName="kept")["Stacks"][0]["Outputs"][0]["OutputValue"]
    finally:
        aws.kill()

    with LocalAWS(state_dir=state, docker_gateway=False) as restarted:
        cfn = client(restarted, "cloudformation")
        (stack,) = [s for s in cfn.describe_stacks()["Stacks"] if s["StackStatus"] != "DELETE_COMPLETE"]
        assert (stack["StackName"], stack["StackStatus"]) == ("kept", "CREATE_COMPLETE")
        assert stack["Parameters"] == [{"ParameterKey": "Word", "ParameterValue": "hello"}]
        assert stack["Outputs"][0]["OutputValue"] == arn
        sfn = client(restarted, "stepfunctions")
        execution = sfn.start_execution(stateMachineArn=arn)["executionArn"]
        assert wait_for_execution(sfn, execution, timeout=10)["output"] == '"hello"'


def test_state_machines_created_through_the_api_survive_kill_9_and_restart(tmp_path):
    def definition(word: str) -> str:
        return json.dumps(
            {"StartAt": "Say", "States": {"Say": {"Type": "Pass", "Result": word, "End": True}}}
        )

    role = "arn:aws:iam::123456789012:role/sfn"
    state = tmp_path / "state"
    aws = LocalAWS(state_dir=state, docker_gateway=False).start()
    try:
        sfn = client(aws, "stepfunctions")
        kept = sfn.create_state_machine(
            name="api-kept", definition=definition("one"), roleArn=role, tags=[{"key": "team", "value": "ml"}]
        )["stateMachineArn"]
        sfn.update_state_machine(stateMachineArn=kept, definition=definition("two"))
        sfn.tag_resource(resourceArn=kept, tags=[{"key": "stage", "value": "dev"}])
        sfn.untag_resource(resourceArn=kept, tagKeys=["team"])
        dropped = sfn.create_state_machine(name="api-dropped", definition=definition("x"), roleArn=role)
        sfn.delete_state_machine(stateMachineArn=dropped["stateMachineArn"])
    finally:
        aws.kill()

    with LocalAWS(state_dir=state, docker_gateway=False) as restarted:
        sfn = client(restarted, "stepfunctions")
        assert [m["name"] for m in sfn.list_state_machines()["stateMachines"]] == ["api-kept"]
        assert sfn.list_tags_for_resource(resourceArn=kept)["tags"] == [{"key": "stage", "value": "dev"}]
        execution = sfn.start_execution(stateMachineArn=kept)["executionArn"]
        assert wait_for_execution(sfn, execution, timeout=10)["output"] == '"two"'


@pytest.mark.docker
@pytest.mark.slow
def test_what_a_killed_local_aws_left_goes_at_once_without_another_start(tmp_path, tiny_image, docker_client):
    aws = LocalAWS(state_dir=tmp_path).start()
    instance = aws.info["instance"]
    try:
        s3, sm = client(aws, "s3"), client(aws, "sagemaker")
        s3.create_bucket(Bucket="reaped")
        s3.put_object(Bucket="reaped", Key="train/a.csv", Body=b"1\n")
        arn = sm.create_training_job(
            **training_request(unique("reaped"), tiny_image, "reaped", HyperParameters={"sleep": "120"})
        )["TrainingJobArn"]
        wait_for_running_container(docker_client, arn)
    finally:
        aws.kill()  # kill -9, and no local AWS starts after it
    deadline = time.monotonic() + 30
    left = [None]
    while left and time.monotonic() < deadline:
        left = docker_client.api.containers(all=True, filters={"label": f"{INSTANCE_LABEL}={instance}"})
        time.sleep(0.2)
    assert left == []  # the job's container and the network sandboxes went with it
    assert docker_client.networks.list(filters={"label": f"{INSTANCE_LABEL}={instance}"}) == []


@pytest.mark.docker
def test_ecr_repositories_and_their_images_survive_a_restart_at_the_same_uris(
    tmp_path, tiny_image, docker_client
):
    import base64

    def login(ecr) -> dict:
        token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
        username, password = base64.b64decode(token).decode().split(":", 1)
        return {"username": username, "password": password}

    with LocalAWS(state_dir=tmp_path) as aws:
        ecr = client(aws, "ecr")
        made = ecr.create_repository(
            repositoryName="team/model", imageTagMutability="IMMUTABLE", tags=[{"Key": "team", "Value": "ml"}]
        )["repository"]
        ecr.create_repository(repositoryName="gone")
        ecr.delete_repository(repositoryName="gone")
        ecr.set_repository_policy(repositoryName="team/model", policyText=json.dumps(READ))
        uri = made["repositoryUri"]
        docker_client.images.get(tiny_image).tag(uri, tag="v1")
        try:
            for event in docker_client.images.push(
                uri, tag="v1", stream=True, decode=True, auth_config=login(ecr)
            ):
                assert "error" not in event, event
        finally:
            docker_client.images.remove(f"{uri}:v1", noprune=True)

    with LocalAWS(state_dir=tmp_path) as aws:
        ecr = client(aws, "ecr")
        (kept,) = ecr.describe_repositories()["repositories"]
        assert {
            k: kept[k] for k in ("repositoryArn", "repositoryUri", "createdAt", "imageTagMutability")
        } == {k: made[k] for k in ("repositoryArn", "repositoryUri", "createdAt", "imageTagMutability")}
        assert ecr.list_tags_for_resource(resourceArn=kept["repositoryArn"])["tags"] == [
            {"Key": "team", "Value": "ml"}
        ]
        assert json.loads(ecr.get_repository_policy(repositoryName="team/model")["policyText"]) == READ
        assert [i["imageTag"] for i in ecr.list_images(repositoryName="team/model")["imageIds"]] == ["v1"]
        docker_client.images.pull(uri, tag="v1", auth_config=login(ecr))  # the same URI as before
        docker_client.images.remove(f"{uri}:v1", noprune=True)  # the tag only: the image is the test image
