"""CloudFormation as `aws cloudformation package` + `deploy` use it: nested stacks, Fn::GetAtt,
ValidateTemplate, capabilities, empty change sets, rollback of CreateStack.

The aws CLI is driven as a user drives it, with only AWS_ENDPOINT_URL pointing it here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import pytest

from harness.emulator import LocalAWS

AWS_CLI = str(Path(sys.executable).with_name("aws"))

CHILD = """\
Parameters:
  Name: {Type: String}
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement: [{Effect: Allow, Principal: {Service: states.amazonaws.com}, Action: sts:AssumeRole}]
  Machine:
    Type: AWS::StepFunctions::StateMachine
    Properties:
      StateMachineName: !Sub "${Name}-machine"
      RoleArn: !GetAtt Role.Arn
      DefinitionString: '{"StartAt":"P","States":{"P":{"Type":"Pass","Result":RESULT,"End":true}}}'
Outputs:
  MachineArn: {Value: !GetAtt Machine.Arn}
  MachineName: {Value: !GetAtt Machine.Name}
"""
SIBLING = """\
Parameters:
  MachineArn: {Type: String}
Resources:
  Logs:
    Type: AWS::Logs::LogGroup
    Properties: {LogGroupName: !Sub "/probe/${AWS::StackName}"}
Outputs:
  Received: {Value: !Ref MachineArn}
  LogsArn: {Value: !GetAtt Logs.Arn}
"""
MASTER = """\
Parameters:
  Name: {Type: String}
Resources:
  Machines:
    Type: AWS::CloudFormation::Stack
    Properties:
      TemplateURL: ./child.yaml
      Parameters: {Name: !Ref Name}
  Consumer:
    Type: AWS::CloudFormation::Stack
    Properties:
      TemplateURL: ./sibling.yaml
      Parameters: {MachineArn: !GetAtt Machines.Outputs.MachineArn}
Outputs:
  MachineArn: {Value: !GetAtt Consumer.Outputs.Received}
  MachineName: {Value: !GetAtt Machines.Outputs.MachineName}
"""


@pytest.fixture(scope="module")
def aws(tmp_path_factory):
    with LocalAWS(state_dir=tmp_path_factory.mktemp("packaging"), docker_gateway=False) as running:
        yield running


@pytest.fixture
def client(aws):
    return lambda service: boto3.client(service, endpoint_url=aws.endpoint_url, region_name="us-east-1")


def cli(aws, folder: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": aws.endpoint_url,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    done = subprocess.run([AWS_CLI, *args], cwd=folder, env=env, capture_output=True, text=True, timeout=120)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def write_project(folder: Path, result: int) -> None:
    (folder / "child.yaml").write_text(CHILD.replace("RESULT", str(result)))
    (folder / "sibling.yaml").write_text(SIBLING)
    (folder / "master.yaml").write_text(MASTER)


def package_and_deploy(
    aws, folder: Path, stack: str, bucket: str, *extra: str
) -> subprocess.CompletedProcess:
    cli(aws, folder, "cloudformation", "package", "--template-file", "master.yaml", "--s3-bucket", bucket,
        "--output-template-file", "packaged.yaml")  # fmt: skip
    cli(aws, folder, "cloudformation", "validate-template", "--template-body", "file://packaged.yaml")
    deploy = ("cloudformation", "deploy", "--stack-name", stack, "--template-file", "packaged.yaml")
    return cli(aws, folder, *deploy, "--parameter-overrides", f"Name={stack}", *extra, check=False)


def outputs_of(cfn, stack: str) -> dict:
    described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


def test_packaged_nested_stacks_deploy_update_in_place_and_delete_with_their_parent(aws, client, tmp_path):
    cfn, sfn = client("cloudformation"), client("stepfunctions")
    stack, bucket = f"nest-{uuid.uuid4().hex[:6]}", f"pkg-{uuid.uuid4().hex[:6]}"
    client("s3").create_bucket(Bucket=bucket)
    write_project(tmp_path, result=1)

    refused = package_and_deploy(aws, tmp_path, stack, bucket)  # a nested stack holds an IAM role
    assert refused.returncode != 0 and "Requires capabilities : [CAPABILITY_IAM]" in refused.stderr
    deployed = package_and_deploy(aws, tmp_path, stack, bucket, "--capabilities", "CAPABILITY_IAM")
    assert deployed.returncode == 0, deployed.stderr

    machine_arn = f"arn:aws:states:us-east-1:123456789012:stateMachine:{stack}-machine"
    assert outputs_of(cfn, stack) == {"MachineArn": machine_arn, "MachineName": f"{stack}-machine"}
    root = cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackId"]
    nested = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cfn.describe_stack_resources(StackName=stack)["StackResources"]
    }
    for logical_id, stack_id in nested.items():
        child = cfn.describe_stacks(StackName=stack_id)["Stacks"][0]
        assert child["StackName"].startswith(f"{stack}-{logical_id}-")
        assert (child["ParentId"], child["RootId"], child["StackStatus"]) == (root, root, "CREATE_COMPLETE")
    assert outputs_of(cfn, nested["Consumer"])["Received"] == machine_arn

    unchanged = package_and_deploy(
        aws, tmp_path, stack, bucket, "--capabilities", "CAPABILITY_IAM", "--no-fail-on-empty-changeset"
    )
    assert unchanged.returncode == 0 and "No changes to deploy" in unchanged.stdout

    write_project(tmp_path, result=2)
    updated = package_and_deploy(aws, tmp_path, stack, bucket, "--capabilities", "CAPABILITY_IAM")
    assert updated.returncode == 0, updated.stderr
    child = cfn.describe_stacks(StackName=nested["Machines"])["Stacks"][0]
    assert child["StackStatus"] == "UPDATE_COMPLETE"  # the same nested stack, updated in place
    definition = json.loads(sfn.describe_state_machine(stateMachineArn=machine_arn)["definition"])
    assert definition["States"]["P"]["Result"] == 2

    cfn.delete_stack(StackName=stack)
    live = [s["StackName"] for s in cfn.describe_stacks()["Stacks"]]
    assert not [name for name in live if name.startswith(stack)]
    assert machine_arn not in [m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]]


@pytest.mark.parametrize(
    "url_form",
    [
        "s3://{bucket}/{key}",
        "{endpoint}/{bucket}/{key}",
        "http://localhost:{port}/{bucket}/{key}",
        "https://{bucket}.s3.amazonaws.com/{key}",
        "https://{bucket}.s3.us-east-1.amazonaws.com/{key}",
        "https://s3.us-east-1.amazonaws.com/{bucket}/{key}",
        "http://{bucket}.localhost:{port}/{key}",
    ],
)
def test_a_template_url_names_the_object_in_any_form_clients_write(aws, client, url_form):
    cfn, s3 = client("cloudformation"), client("s3")
    bucket, key = f"tpl-{uuid.uuid4().hex[:6]}", "templates/a b.json"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(
        Bucket=bucket, Key=key, Body=json.dumps({"Resources": {"Group": {"Type": "AWS::Logs::LogGroup"}}})
    )
    url = url_form.format(
        bucket=bucket,
        key=key.replace(" ", "%20"),
        endpoint=aws.endpoint_url,
        port=aws.endpoint_url.rsplit(":", 1)[1],
    )
    name = f"url-{uuid.uuid4().hex[:6]}"
    cfn.create_stack(StackName=name, TemplateURL=url)
    assert cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"


def test_a_missing_template_object_is_refused_as_aws_refuses_it(client):
    cfn = client("cloudformation")
    with pytest.raises(cfn.exceptions.ClientError) as refused:
        cfn.create_stack(StackName="missing-template", TemplateURL="https://nowhere.s3.amazonaws.com/t.yaml")
    assert refused.value.response["Error"]["Code"] == "ValidationError"
    assert "TemplateURL must reference a valid S3 object" in refused.value.response["Error"]["Message"]


def test_a_nested_stack_that_fails_rolls_back_and_fails_its_parent_with_the_reason(client):
    cfn, s3 = client("cloudformation"), client("s3")
    bucket = f"bad-{uuid.uuid4().hex[:6]}"
    s3.create_bucket(Bucket=bucket)
    broken = {
        "Resources": {
            "Machine": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "RoleArn": "arn:aws:iam::123456789012:role/r",
                    "DefinitionString": "{not json",
                },
            }
        }
    }
    s3.put_object(Bucket=bucket, Key="child.json", Body=json.dumps(broken))
    parent = {
        "Resources": {
            "Child": {
                "Type": "AWS::CloudFormation::Stack",
                "Properties": {"TemplateURL": f"s3://{bucket}/child.json"},
            }
        }
    }
    name = f"parent-{uuid.uuid4().hex[:6]}"
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(parent))

    assert cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"] == "ROLLBACK_COMPLETE"
    events = cfn.describe_stack_events(StackName=name)["StackEvents"]
    failed = [e for e in events if e["ResourceStatus"] == "CREATE_FAILED"]
    assert [e["LogicalResourceId"] for e in failed] == ["Child"]
    assert (
        "was not successfully created: The following resource(s) failed to create: [Machine]"
        in (failed[0]["ResourceStatusReason"])
    )
    live = [s["StackName"] for s in cfn.describe_stacks()["Stacks"]]
    assert not [s for s in live if s.startswith(f"{name}-Child-")]  # the child is gone with the rollback


ATTRIBUTES_TEMPLATE = {
    "Resources": {
        "Role": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "sagemaker.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            },
        },
        "Bucket": {"Type": "AWS::S3::Bucket"},
        "Rule": {"Type": "AWS::Events::Rule", "Properties": {"ScheduleExpression": "rate(1 day)"}},
        "Logs": {"Type": "AWS::Logs::LogGroup"},
        "Model": {
            "Type": "AWS::SageMaker::Model",
            "Properties": {
                "ExecutionRoleArn": {"Fn::GetAtt": ["Role", "Arn"]},
                "PrimaryContainer": {"Image": "repo/image:1"},
            },
        },
    },
    "Outputs": {
        name: {"Value": {"Fn::GetAtt": [resource, attribute]}}
        for name, resource, attribute in [
            ("RoleArn", "Role", "Arn"),
            ("RoleId", "Role", "RoleId"),
            ("BucketArn", "Bucket", "Arn"),
            ("BucketDomain", "Bucket", "RegionalDomainName"),
            ("RuleArn", "Rule", "Arn"),
            ("RuleName", "Rule", "RuleName"),
            ("LogsArn", "Logs", "Arn"),
            ("ModelName", "Model", "ModelName"),
            ("ModelArn", "Model", "ModelArn"),
        ]
    },
}


def test_documented_attributes_resolve_and_an_undocumented_one_is_refused_up_front(client):
    cfn = client("cloudformation")
    name = f"attrs-{uuid.uuid4().hex[:6]}"
    cfn.create_stack(
        StackName=name, TemplateBody=json.dumps(ATTRIBUTES_TEMPLATE), Capabilities=["CAPABILITY_IAM"]
    )
    outputs = outputs_of(cfn, name)
    assert outputs["RoleArn"].startswith("arn:aws:iam::123456789012:role/")
    assert outputs["RuleArn"] == f"arn:aws:events:us-east-1:123456789012:rule/{outputs['RuleName']}"
    assert outputs["BucketArn"].startswith("arn:aws:s3:::") and ".s3." in outputs["BucketDomain"]
    assert (
        outputs["ModelArn"].lower()
        == f"arn:aws:sagemaker:us-east-1:123456789012:model/{outputs['ModelName']}".lower()
    )
    assert outputs["LogsArn"].startswith("arn:aws:logs:us-east-1:123456789012:log-group:")

    wrong = json.loads(json.dumps(ATTRIBUTES_TEMPLATE))
    wrong["Outputs"] = {"Nope": {"Value": {"Fn::GetAtt": ["Rule", "Nope"]}}}
    with pytest.raises(cfn.exceptions.ClientError) as refused:
        cfn.create_stack(
            StackName=f"{name}-x", TemplateBody=json.dumps(wrong), Capabilities=["CAPABILITY_IAM"]
        )
    assert refused.value.response["Error"]["Message"] == (
        "Template error: resource Rule does not support attribute type Nope in Fn::GetAtt"
    )
    assert cfn.describe_stacks()["Stacks"]  # every stack still describes


def test_validate_template_reports_what_the_template_declares(client, tmp_path):
    cfn = client("cloudformation")
    template = {
        "Description": "a described template",
        "Parameters": {
            "Unused": {"Type": "String", "Default": "x", "Description": "never referenced (a lint warning)"},
            "Secret": {"Type": "String", "NoEcho": True},
        },
        "Resources": {"Role": ATTRIBUTES_TEMPLATE["Resources"]["Role"] | {"Properties": {
            **ATTRIBUTES_TEMPLATE["Resources"]["Role"]["Properties"], "RoleName": {"Ref": "Secret"}}}},
    }  # fmt: skip
    answer = cfn.validate_template(TemplateBody=json.dumps(template))
    assert answer["Description"] == "a described template"
    assert answer["Capabilities"] == ["CAPABILITY_NAMED_IAM"]
    assert answer["CapabilitiesReason"] == "The following resource(s) require capabilities: [AWS::IAM::Role]"
    assert sorted(answer["Parameters"], key=lambda p: p["ParameterKey"]) == [
        {"ParameterKey": "Secret", "NoEcho": True},
        {
            "ParameterKey": "Unused",
            "DefaultValue": "x",
            "NoEcho": False,
            "Description": "never referenced (a lint warning)",
        },
    ]  # fmt: skip

    dangling = {
        "Resources": {
            "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": {"Ref": "Nowhere"}}}
        }
    }
    with pytest.raises(cfn.exceptions.ClientError) as refused:
        cfn.validate_template(TemplateBody=json.dumps(dangling))
    assert refused.value.response["Error"]["Message"] == (
        "Template format error: Unresolved resource dependencies [Nowhere] in the Resources block of the "
        "template"
    )


def test_a_change_set_may_keep_a_parameter_with_use_previous_value(client):
    cfn = client("cloudformation")
    name = f"prev-{uuid.uuid4().hex[:6]}"
    body = {
        "Parameters": {"Retention": {"Type": "String"}, "Tag": {"Type": "String"}},
        "Resources": {
            "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": {"Ref": "Retention"}}}
        },
        "Outputs": {"Tag": {"Value": {"Ref": "Tag"}}},
    }
    cfn.create_stack(
        StackName=name,
        TemplateBody=json.dumps(body),
        Parameters=[
            {"ParameterKey": "Retention", "ParameterValue": "7"},
            {"ParameterKey": "Tag", "ParameterValue": "a"},
        ],
    )
    cfn.create_change_set(
        StackName=name, ChangeSetName="keep", TemplateBody=json.dumps(body), ChangeSetType="UPDATE",
        Parameters=[
            {"ParameterKey": "Retention", "UsePreviousValue": True},
            {"ParameterKey": "Tag", "ParameterValue": "b"},
        ],
    )  # fmt: skip
    cfn.execute_change_set(StackName=name, ChangeSetName="keep")
    described = cfn.describe_stacks(StackName=name)["Stacks"][0]
    assert {p["ParameterKey"]: p["ParameterValue"] for p in described["Parameters"]} == {
        "Retention": "7",
        "Tag": "b",
    }
    assert outputs_of(cfn, name) == {"Tag": "b"}


def test_create_stack_whose_resource_fails_rolls_back_instead_of_answering_500(client):
    cfn = client("cloudformation")
    name = f"fails-{uuid.uuid4().hex[:6]}"
    body = {
        "Resources": {
            "Logs": {"Type": "AWS::Logs::LogGroup"},
            "Machine": {
                "Type": "AWS::StepFunctions::StateMachine",
                "DependsOn": "Logs",
                "Properties": {
                    "RoleArn": "arn:aws:iam::123456789012:role/r",
                    "DefinitionString": "{not json",
                },
            },
        }
    }
    stack_id = cfn.create_stack(StackName=name, TemplateBody=json.dumps(body))["StackId"]
    described = cfn.describe_stacks(StackName=stack_id)["Stacks"][0]
    assert described["StackStatus"] == "ROLLBACK_COMPLETE"
    events = [
        (e["LogicalResourceId"], e["ResourceStatus"])
        for e in cfn.describe_stack_events(StackName=name)["StackEvents"]
    ]
    assert ("Machine", "CREATE_FAILED") in events and (name, "ROLLBACK_COMPLETE") in events
    with pytest.raises(cfn.exceptions.ClientError) as refused:
        cfn.create_change_set(
            StackName=name, ChangeSetName="again", TemplateBody=json.dumps(body), ChangeSetType="UPDATE"
        )
    assert (
        "is in ROLLBACK_COMPLETE state and can not be updated" in refused.value.response["Error"]["Message"]
    )


def test_nested_stacks_come_back_with_their_parent_after_a_restart(tmp_path):
    state = tmp_path / "state"
    with LocalAWS(state_dir=state, docker_gateway=False) as first:
        s3 = boto3.client("s3", endpoint_url=first.endpoint_url, region_name="us-east-1")
        cfn = boto3.client("cloudformation", endpoint_url=first.endpoint_url, region_name="us-east-1")
        s3.create_bucket(Bucket="kept")
        s3.put_object(Bucket="kept", Key="child.yaml", Body=CHILD.replace("RESULT", "1"))
        parent = {
            "Resources": {
                "Child": {
                    "Type": "AWS::CloudFormation::Stack",
                    "Properties": {"TemplateURL": "s3://kept/child.yaml", "Parameters": {"Name": "kept"}},
                }
            },
            "Outputs": {"Machine": {"Value": {"Fn::GetAtt": ["Child", "Outputs.MachineArn"]}}},
        }
        cfn.create_stack(StackName="kept", TemplateBody=json.dumps(parent), Capabilities=["CAPABILITY_IAM"])
    with LocalAWS(state_dir=state, docker_gateway=False) as second:
        cfn = boto3.client("cloudformation", endpoint_url=second.endpoint_url, region_name="us-east-1")
        stacks = cfn.describe_stacks()["Stacks"]
        assert sorted(s["StackName"].split("-Child-")[0] for s in stacks) == [
            "kept",
            "kept",
        ]  # one parent, one child
        assert outputs_of(cfn, "kept") == {
            "Machine": "arn:aws:states:us-east-1:123456789012:stateMachine:kept-machine"
        }


DEFAULTED = """
Parameters:
  Env: {Type: String, Default: dev}
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties: {QueueName: !Sub "queue-${Env}-STACK"}
"""


def test_an_unchanged_deploy_with_parameters_at_their_defaults_changes_nothing(aws, client, tmp_path):
    """`aws cloudformation deploy` passes UsePreviousValue for each parameter it is not given; a
    parameter left at its default is no change (AWS: "No changes to deploy")."""
    stack = f"defaults-{uuid.uuid4().hex[:6]}"
    (tmp_path / "template.yaml").write_text(DEFAULTED.replace("STACK", stack))
    deploy = ("cloudformation", "deploy", "--stack-name", stack, "--template-file", "template.yaml")
    cli(aws, tmp_path, *deploy)
    unchanged = cli(aws, tmp_path, *deploy, check=False)
    assert unchanged.returncode == 255 and "No changes to deploy" in unchanged.stdout + unchanged.stderr
    cli(aws, tmp_path, *deploy, "--parameter-overrides", "Env=prod")
    cfn = client("cloudformation")
    events = [
        (e["LogicalResourceId"], e["ResourceStatus"])
        for e in cfn.describe_stack_events(StackName=stack)["StackEvents"]
    ]
    assert ("Queue", "UPDATE_COMPLETE") in events and ("Queue", "CREATE_COMPLETE") in events
