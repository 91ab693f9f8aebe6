"""CloudFormation on the local AWS behaves as AWS does for the deploy path."""

from __future__ import annotations

import json
import time
import uuid

import boto3
import pytest

from harness.emulator import LocalAWS

MACHINE_ROLE = "arn:aws:iam::123456789012:role/sfn"


def template(extra_resources: dict | None = None) -> str:
    definition = {
        "StartAt": "Announce",
        "States": {"Announce": {"Type": "Pass", "Result": {"image": "${ImageUri}"}, "End": True}},
    }
    resources = {
        "Pipeline": {
            "Type": "AWS::StepFunctions::StateMachine",
            "Properties": {
                # names are unique per account and region, as on AWS: one per stack
                "StateMachineName": {"Fn::Sub": "${AWS::StackName}-pipeline"},
                "RoleArn": MACHINE_ROLE,
                "DefinitionString": {"Fn::Sub": json.dumps(definition)},
            },
        }
    }
    resources.update(extra_resources or {})
    return json.dumps(
        {
            "Parameters": {"ImageUri": {"Type": "String"}},
            "Resources": resources,
            "Outputs": {"PipelineArn": {"Value": {"Ref": "Pipeline"}}},
        }
    )


@pytest.fixture(scope="module")
def aws(tmp_path_factory):
    with LocalAWS(state_dir=tmp_path_factory.mktemp("cfn"), docker_gateway=False) as running:
        yield running


@pytest.fixture
def clients(aws):
    def make(service):
        return boto3.client(service, endpoint_url=aws.endpoint_url, region_name="us-east-1")

    return make("cloudformation"), make("stepfunctions")


def deploy(cfn, stack: str, body: str, image: str, change_set_type: str) -> dict:
    name = f"cs-{abs(hash((body, image))) % 10**8}"
    cfn.create_change_set(
        StackName=stack,
        ChangeSetName=name,
        TemplateBody=body,
        ChangeSetType=change_set_type,
        Parameters=[{"ParameterKey": "ImageUri", "ParameterValue": image}],
    )
    described = cfn.describe_change_set(StackName=stack, ChangeSetName=name)
    cfn.execute_change_set(StackName=stack, ChangeSetName=name)
    if change_set_type == "CREATE":  # an update may fail on purpose; a create is the test's set-up
        assert cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    return described


def announced_image(sfn, stack_outputs) -> str:
    arn = next(o["OutputValue"] for o in stack_outputs if o["OutputKey"] == "PipelineArn")
    definition = json.loads(sfn.describe_state_machine(stateMachineArn=arn)["definition"])
    return definition["States"]["Announce"]["Result"]["image"]


def test_a_parameter_only_change_set_updates_the_resources_that_use_it(clients):
    cfn, sfn = clients
    deploy(cfn, "params", template(), "repo/image@sha256:aaa", "CREATE")

    described = deploy(cfn, "params", template(), "repo/image@sha256:bbb", "UPDATE")

    assert [
        (c["ResourceChange"]["Action"], c["ResourceChange"]["LogicalResourceId"])
        for c in described["Changes"]
    ] == [("Modify", "Pipeline")]
    stack = cfn.describe_stacks(StackName="params")["Stacks"][0]
    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    assert stack["Parameters"] == [{"ParameterKey": "ImageUri", "ParameterValue": "repo/image@sha256:bbb"}]
    assert announced_image(sfn, stack["Outputs"]) == "repo/image@sha256:bbb"
    machine = next(o["OutputValue"] for o in stack["Outputs"] if o["OutputKey"] == "PipelineArn")
    execution = sfn.start_execution(stateMachineArn=machine)["executionArn"]
    for _ in range(100):
        described = sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING":
            break
        time.sleep(0.05)
    assert json.loads(described["output"]) == {"image": "repo/image@sha256:bbb"}
    # moto answered HTTP 500 here once a change set had updated the stack
    described_template = json.dumps({**json.loads(template()), "Description": "now described"})
    cfn.update_stack(
        StackName="params",
        TemplateBody=described_template,
        Parameters=[{"ParameterKey": "ImageUri", "UsePreviousValue": True}],
    )
    assert cfn.describe_stacks(StackName="params")["Stacks"][0]["Parameters"][0]["ParameterValue"] == (
        "repo/image@sha256:bbb"
    )


def test_an_update_that_fails_part_way_rolls_back_and_reports_the_failing_resource(clients):
    cfn, sfn = clients
    deploy(cfn, "rollback", template(), "repo/image@sha256:good", "CREATE")
    broken = {
        "Broken": {
            "Type": "AWS::StepFunctions::StateMachine",
            "Properties": {
                "StateMachineName": "broken",
                "RoleArn": MACHINE_ROLE,
                "DefinitionString": "{not json",
            },
        }
    }

    deploy(cfn, "rollback", template(broken), "repo/image@sha256:new", "UPDATE")

    stack = cfn.describe_stacks(StackName="rollback")["Stacks"][0]
    assert stack["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    assert stack["Parameters"][0]["ParameterValue"] == "repo/image@sha256:good"
    assert announced_image(sfn, stack["Outputs"]) == "repo/image@sha256:good"
    assert "broken" not in [m["name"] for m in sfn.list_state_machines()["stateMachines"]]
    events = cfn.describe_stack_events(StackName="rollback")["StackEvents"]
    failed = [e for e in events if e["ResourceStatus"] == "UPDATE_FAILED"]
    assert [e["LogicalResourceId"] for e in failed] == ["Broken"]
    assert failed[0]["ResourceStatusReason"]


def test_a_condition_turned_by_a_parameter_adds_then_removes_its_resource(aws):
    cfn, events = (
        boto3.client(service, endpoint_url=aws.endpoint_url, region_name="us-east-1")
        for service in ("cloudformation", "events")
    )
    body = json.dumps(
        {
            "Parameters": {"Schedule": {"Type": "String", "Default": ""}},
            "Conditions": {"Scheduled": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Schedule"}, ""]}]}},
            "Resources": {
                "Always": {"Type": "AWS::Events::Rule", "Properties": {"ScheduleExpression": "rate(7 days)"}},
                "Tick": {
                    "Type": "AWS::Events::Rule",
                    "Condition": "Scheduled",
                    "Properties": {"ScheduleExpression": {"Ref": "Schedule"}},
                },
            },
        }
    )

    def change(schedule: str, kind: str) -> list[str]:
        name = f"cs-{kind.lower()}-{abs(hash(schedule)) % 10**6}"
        cfn.create_change_set(
            StackName="conditions", ChangeSetName=name, TemplateBody=body, ChangeSetType=kind,
            Parameters=[{"ParameterKey": "Schedule", "ParameterValue": schedule}],
        )  # fmt: skip
        listed = cfn.describe_change_set(StackName="conditions", ChangeSetName=name)["Changes"]
        cfn.execute_change_set(StackName="conditions", ChangeSetName=name)
        return [f"{c['ResourceChange']['Action']} {c['ResourceChange']['LogicalResourceId']}" for c in listed]

    def status_and_schedules() -> tuple[str, list[str]]:
        stack = cfn.describe_stacks(StackName="conditions")["Stacks"][0]
        rules = events.list_rules(NamePrefix="conditions-")["Rules"]
        return stack["StackStatus"], sorted(r["ScheduleExpression"] for r in rules)

    assert change("", "CREATE") == ["Add Always"]
    assert status_and_schedules() == ("CREATE_COMPLETE", ["rate(7 days)"])
    assert change("rate(1 day)", "UPDATE") == ["Add Tick"]
    assert status_and_schedules() == ("UPDATE_COMPLETE", ["rate(1 day)", "rate(7 days)"])
    assert change("", "UPDATE") == ["Remove Tick"]
    assert status_and_schedules() == ("UPDATE_COMPLETE", ["rate(7 days)"])
    listed = cfn.describe_stack_resources(StackName="conditions")["StackResources"]
    assert [r["LogicalResourceId"] for r in listed] == ["Always"]


@pytest.mark.parametrize(
    "body, message",
    [
        ("{not json", "Template format error: JSON not well-formed. (line 1, column 2)"),
        ("Resources: [unbalanced", "Template format error: YAML not well-formed."),
        ("Resources: {}", "Template format error: At least one Resources member must be defined."),
        (
            '{"Resources": {"R": {"Properties": {}}}}',
            "[/Resources/R] Every Resources object must contain a Type",
        ),
        (
            '{"Resources": {"P": {"Type": "AWS::S3::BucketPolicy", "Properties": {}}}}',
            "the local AWS does not create resource type(s) [AWS::S3::BucketPolicy]",
        ),
    ],
)
def test_a_template_that_cannot_be_deployed_is_a_validation_error_not_a_500(local_aws, body, message):
    cfn = boto3.client("cloudformation", endpoint_url=local_aws.endpoint_url, region_name="us-east-1")
    name = f"refused-{uuid.uuid4().hex[:6]}"
    for call in (
        lambda: cfn.create_stack(StackName=name, TemplateBody=body),
        lambda: cfn.create_change_set(
            StackName=name, ChangeSetName="c", TemplateBody=body, ChangeSetType="CREATE"
        ),
    ):
        with pytest.raises(cfn.exceptions.ClientError) as refused:
            call()
        assert refused.value.response["Error"]["Code"] == "ValidationError"
        assert message in refused.value.response["Error"]["Message"]
    assert name not in [s["StackName"] for s in cfn.list_stacks()["StackSummaries"]]
