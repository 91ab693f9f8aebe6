"""Contract tests: each patch in harness.emulator.patches, pinned by the behaviour it gives
(or, for upstream behaviour it builds on, that behaviour). A moto upgrade that moves a hook
fails here, loudly and by name, instead of silently in an end-to-end run. Upstream source is
read only to ask whether upstream still lacks what a patch adds (then the patch is to go)
or still calls the name a patch replaces."""

from __future__ import annotations

import inspect
import json
import re
import time

import boto3
import pytest
from botocore.config import Config

from harness.emulator import patches


@pytest.fixture(scope="module", autouse=True)
def patched():
    patches.apply_patches()


def test_upstream_executes_only_when_the_switch_we_set_is_on(monkeypatch):
    # If moto ever executes by default, enable_state_machine_execution is dead code.
    from moto.core.config import default_user_config
    from moto.stepfunctions import responses
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends
    from moto.stepfunctions.responses import get_backend

    # Without the switch, the backends the responses module was given (the plain ones, unless it
    # was imported after the CloudFormation routing patch pointed that name at the executing ones).
    monkeypatch.setitem(default_user_config, "stepfunctions", {})
    plain = responses.stepfunctions_backends["123456789012"]["us-east-1"]
    assert get_backend("123456789012", "us-east-1") is plain
    monkeypatch.setitem(default_user_config, "stepfunctions", {"execute_state_machine": True})
    executing = stepfunctions_parser_backends["123456789012"]["us-east-1"]
    assert get_backend("123456789012", "us-east-1") is executing


def test_execution_is_switched_on():
    from moto.core.config import default_user_config

    assert default_user_config["stepfunctions"]["execute_state_machine"] is True


def test_cloudformation_state_machines_land_in_the_executing_backend():
    import moto.stepfunctions.models as models
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    # CloudFormation resolves the backend through this module global; that such a machine
    # executes is test_a_state_machine_created_by_cloudformation_executes.
    assert models.stepfunctions_backends is stepfunctions_parser_backends


def test_jsonata_is_evaluated_in_python():
    from moto.stepfunctions.parser.asl.jsonata import jsonata as asl_jsonata

    assert asl_jsonata.eval_jsonata_expression("$sum([1, 2, 3])") == 6
    assert asl_jsonata.eval_jsonata_expression('$uppercase("a") & $string($count([1, 2]))') == "A2"


def test_jsonata_errors_keep_their_code():
    from moto.stepfunctions.parser.asl.jsonata import jsonata as asl_jsonata

    with pytest.raises(asl_jsonata.JSONataException) as raised:
        asl_jsonata.eval_jsonata_expression("$unknownFunction(")
    assert raised.value.error


def test_fail_states_may_raise_states_errors(sfn):
    fail = {"Type": "Fail", "Error": "States.TaskFailed", "Cause": "gate"}
    ended = _execute(sfn, {"StartAt": "F", "States": {"F": fail}})
    assert (ended["status"], ended["error"], ended["cause"]) == ("FAILED", "States.TaskFailed", "gate")


def test_stop_execution_hooks_exist():
    from moto.stepfunctions.parser.backend.execution import Execution
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    assert list(inspect.signature(Execution.stop).parameters) == ["self", "stop_date", "error", "cause"]
    assert hasattr(StepFunctionsParserBackend, "_get_state_machine_for_execution")


def test_sagemaker_tasks_are_served_by_our_integration():
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_factory as factory,
    )

    from harness.emulator.sfn_sagemaker import integration_class

    StateTaskServiceSageMaker = integration_class("moto")
    assert "sagemaker" not in factory._UNSUPPORTED_SERVICE_NAMES
    assert isinstance(factory.state_task_service_for("sagemaker"), StateTaskServiceSageMaker)
    assert isinstance(state_task_factory.state_task_service_for("sagemaker"), StateTaskServiceSageMaker)
    assert type(factory.state_task_service_for("batch")).__name__ == "StateTaskServiceBatch"


def test_the_sync_pattern_hooks_exist():
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (  # noqa: E501
        StateTaskServiceCallback,
    )

    assert "_eval_sync" in vars(StateTaskServiceCallback)
    assert "_build_sync_resolver" in vars(StateTaskServiceCallback)
    # What they do is pinned by test_job_lifecycle's .sync Tasks, which end with their jobs.


def test_sagemaker_api_is_served_by_the_local_backend():
    import moto.sagemaker
    import moto.sagemaker.models
    import moto.sagemaker.responses

    from harness.emulator.sagemaker.backends import local_sagemaker_backends
    from harness.emulator.sagemaker.models import LocalSageMakerBackend

    for module in (moto.sagemaker, moto.sagemaker.models, moto.sagemaker.responses):
        assert module.sagemaker_backends is local_sagemaker_backends
    backend = local_sagemaker_backends["123456789012"]["us-east-1"]
    assert isinstance(backend, LocalSageMakerBackend)
    # moto routes requests through the urls module that sits beside the backend's models.
    assert backend._url_module.__name__ == "harness.emulator.sagemaker.urls"


def test_a_state_machine_created_by_cloudformation_executes():
    from moto import mock_aws

    template = {
        "Resources": {
            "Machine": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "StateMachineName": "from-cfn",
                    "RoleArn": "arn:aws:iam::123456789012:role/sfn",
                    "DefinitionString": json.dumps(
                        {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"ok": 1}, "End": True}}}
                    ),
                },
            }
        }
    }
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        cfn = boto3.client("cloudformation", region_name="us-east-1")
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        cfn.create_stack(StackName="s", TemplateBody=json.dumps(template))
        arn = sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]
        execution = sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]

        for _ in range(100):
            answer = sfn.describe_execution(executionArn=execution)
            if answer["status"] != "RUNNING":
                break
            time.sleep(0.05)
        assert answer["status"] == "SUCCEEDED"
        assert json.loads(answer["output"]) == {"ok": 1}


def test_cloudformation_hooks_exist():
    # What the hooks do is pinned by the condition, change set and nested stack tests below.
    from moto.cloudformation import parsing
    from moto.cloudformation.models import CloudFormationBackend

    assert inspect.unwrap(parsing.parse_and_create_resource).__module__ == "moto.cloudformation.parsing"
    patched = CloudFormationBackend.execute_change_set.__module__
    assert patched.startswith("harness.emulator.patches.cloudformation.")


def test_sub_variables_count_as_references():
    from moto.cloudformation import parsing

    node = {"Fn::Sub": "${ImageUri} in ${AWS::Region} ${!Literal}", "Other": {"Ref": "Bucket"}}
    assert sorted(parsing.get_references_from_template(node)) == ["AWS::Region", "Bucket", "ImageUri"]


def test_start_sync_execution_is_ours_while_upstream_lacks_it(sfn):
    import moto.stepfunctions.responses as upstream_responses

    # If upstream gains StartSyncExecution, drop add_start_sync_execution.
    assert "def start_sync_execution" not in inspect.getsource(upstream_responses)
    express = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"got.$": "$.x"}, "End": True}}}
    machine = sfn.create_state_machine(
        name="express",
        definition=json.dumps(express),
        roleArn=ROLE,
        type="EXPRESS",
    )["stateMachineArn"]
    answer = sfn.start_sync_execution(stateMachineArn=machine, input='{"x": 1}')
    assert answer["status"] == "SUCCEEDED" and json.loads(answer["output"]) == {"got": 1}


def test_the_context_object_has_what_aws_puts_in_it(sfn):
    context = {
        "StartAt": "P",
        "States": {"P": {"Type": "Pass", "Parameters": {"e.$": "$$.Execution"}, "End": True}},
    }
    execution = json.loads(_execute(sfn, context)["output"])["e"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", execution["StartTime"])
    assert execution["RedriveCount"] == 0


def test_a_jsonata_timestamp_aws_cannot_parse_is_a_query_evaluation_error(sfn):
    wait = {"Type": "Wait", "Timestamp": "{% 'yesterday' %}", "End": True}
    assert _query_evaluation_cause(sfn, wait).endswith(
        " The Timestamp field cannot be parsed as an ISO-8601 extended offset date-time"
        " format string: yesterday"
    )


def test_map_item_errors_are_worded_as_aws(sfn):
    iterate = {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}}
    jsonata_map = {"Type": "Map", "ItemProcessor": iterate, "End": True}
    ended = _execute(sfn, {"QueryLanguage": "JSONata", "StartAt": "M", "States": {"M": jsonata_map}}, True)
    assert ended["error"] == "States.QueryEvaluationError"
    assert ended["cause"].endswith(" Map state input must be an array but was: true")
    jsonata_map["Items"] = "{% 'one' %}"
    ended = _execute(sfn, {"QueryLanguage": "JSONata", "StartAt": "M", "States": {"M": jsonata_map}})
    assert ended["error"] == "States.QueryEvaluationError"
    assert "specified for the field 'Items'" in ended["cause"]


def test_invocations_reach_the_local_backend():
    from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

    assert SageMakerRuntimeResponse.invoke_endpoint.__module__ == "harness.emulator.patches.sagemaker"


CONDITIONED = {
    "Parameters": {"WithTopic": {"Type": "String", "Default": "no"}},
    "Conditions": {"Topic": {"Fn::Equals": [{"Ref": "WithTopic"}, "yes"]}},
    "Resources": {
        "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "pinned"}},
        "Extra": {"Type": "AWS::SNS::Topic", "Condition": "Topic", "Properties": {"TopicName": "pinned"}},
    },
}


@pytest.fixture
def cfn():
    from moto import mock_aws

    with mock_aws():
        yield boto3.client("cloudformation", region_name="us-east-1")


def _listed(cfn, stack: str) -> list[str]:
    return sorted(
        r["LogicalResourceId"] for r in cfn.describe_stack_resources(StackName=stack)["StackResources"]
    )


def _change_set(cfn, stack: str, name: str, template: dict, with_topic: str) -> dict:
    cfn.create_change_set(
        StackName=stack,
        ChangeSetName=name,
        ChangeSetType="UPDATE",
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": "WithTopic", "ParameterValue": with_topic}],
    )
    return cfn.describe_change_set(StackName=stack, ChangeSetName=name)


def test_a_resource_whose_condition_is_false_is_not_listed(cfn):
    cfn.create_stack(StackName="s", TemplateBody=json.dumps(CONDITIONED))
    assert _listed(cfn, "s") == ["Queue"]


def test_an_update_follows_conditions_its_parameters_turn(cfn):
    cfn.create_stack(StackName="s", TemplateBody=json.dumps(CONDITIONED))
    on = _change_set(cfn, "s", "on", CONDITIONED, "yes")
    assert [
        (c["ResourceChange"]["Action"], c["ResourceChange"]["LogicalResourceId"]) for c in on["Changes"]
    ] == [("Add", "Extra")]
    cfn.execute_change_set(StackName="s", ChangeSetName="on")
    assert _listed(cfn, "s") == ["Extra", "Queue"]
    cfn.update_stack(
        StackName="s",
        TemplateBody=json.dumps(CONDITIONED),
        Parameters=[{"ParameterKey": "WithTopic", "ParameterValue": "no"}],
    )
    assert _listed(cfn, "s") == ["Queue"]


def test_a_change_set_without_changes_fails_as_on_aws(cfn):
    cfn.create_stack(
        StackName="s",
        TemplateBody=json.dumps(CONDITIONED),
        Parameters=[{"ParameterKey": "WithTopic", "ParameterValue": "no"}],
    )
    same = _change_set(cfn, "s", "same", CONDITIONED, "no")
    assert same["Status"] == "FAILED" and "didn't contain changes" in same["StatusReason"]


def test_aws_sdk_errors_are_named_as_aws_names_them(sfn):
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="pinned-bucket")
    get = {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:getObject", "End": True}
    for bucket, error in (
        ("pinned-bucket", "S3.NoSuchKeyException"),
        ("no-bucket", "S3.NoSuchBucketException"),
    ):
        get["Parameters"] = {"Bucket": bucket, "Key": "absent"}
        assert _execute(sfn, {"StartAt": "G", "States": {"G": get}})["error"] == error


def test_execution_history_is_served_by_our_pager(sfn):
    passes = {f"P{i}": {"Type": "Pass", "Next": f"P{i + 1}"} for i in range(3)}
    passes["P3"] = {"Type": "Pass", "End": True}
    arn = _execute(sfn, {"StartAt": "P0", "States": passes})["executionArn"]
    everything = sfn.get_execution_history(executionArn=arn)["events"]
    first = sfn.get_execution_history(executionArn=arn, maxResults=3)
    rest = sfn.get_execution_history(executionArn=arn, maxResults=100, nextToken=first["nextToken"])
    assert first["events"] + rest["events"] == everything and "nextToken" not in rest
    newest = sfn.get_execution_history(executionArn=arn, maxResults=1, reverseOrder=True)["events"]
    assert newest == everything[-1:] and newest[0]["type"] == "ExecutionSucceeded"


def test_an_undefined_jsonata_result_names_its_field(sfn):
    output = {"Type": "Pass", "Output": {"result": "{% $nothing %}"}, "End": True}
    assert _query_evaluation_cause(sfn, output).endswith(
        " The JSONata expression '$nothing' specified for the field 'Output/result'"
        " returned nothing (undefined)."
    )


def test_validate_state_machine_definition_is_ours_while_upstream_lacks_it(sfn):
    import moto.stepfunctions.responses as upstream_responses
    from moto.stepfunctions.responses import StepFunctionResponse

    # If upstream gains it, compare and drop add_validate_state_machine_definition.
    assert "def validate_state_machine_definition" not in inspect.getsource(upstream_responses)
    assert StepFunctionResponse.validate_state_machine_definition.__module__ == (
        "harness.emulator.patches.stepfunctions"
    )
    good = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    bad = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Next": "Nowhere"}}}
    assert sfn.validate_state_machine_definition(definition=json.dumps(good))["result"] == "OK"
    refused = sfn.validate_state_machine_definition(definition=json.dumps(bad))
    assert refused["result"] == "FAIL" and refused["diagnostics"][0]["severity"] == "ERROR"


def test_aws_sdk_tasks_reach_services_whose_boto_name_differs(sfn):
    invoke = {
        "Type": "Task",
        "Resource": "arn:aws:states:::aws-sdk:sagemakerruntime:invokeEndpoint",
        "Parameters": {"EndpointName": "absent", "Body": "1,2"},
        "End": True,
    }
    ended = _execute(sfn, {"StartAt": "I", "States": {"I": invoke}})
    assert ended["error"] == "SageMakerRuntime.ValidationErrorException"  # SageMaker Runtime answered
    assert ended["cause"].startswith("Endpoint absent of account 123456789012 not found.")


def test_a_mocked_test_case_runs_with_its_answers_and_throws_states_errors(sfn, tmp_path, monkeypatch):
    from harness.emulator import sfn_mocking

    read = {
        "Type": "Task",
        "Resource": "arn:aws:states:::aws-sdk:s3:getObject",
        "Parameters": {"Bucket": "not-there", "Key": "k"},
        "Retry": [{"ErrorEquals": ["States.Timeout"], "IntervalSeconds": 1, "MaxAttempts": 1}],
        "End": True,
    }
    mocks = {
        "StateMachines": {"mocked": {"TestCases": {"Slow": {"Read": "TimeoutThenBody"}}}},
        "MockedResponses": {
            "TimeoutThenBody": {
                "0": {"Throw": {"Error": "States.Timeout", "Cause": "mocked"}},
                "1": {"Return": {"Body": "mocked"}},
            }
        },
    }
    (tmp_path / "mocks.json").write_text(json.dumps(mocks))
    monkeypatch.setattr(sfn_mocking, "configured", sfn_mocking.MockConfig(tmp_path / "mocks.json"))
    machine = sfn.create_state_machine(
        name="mocked", definition=json.dumps({"StartAt": "Read", "States": {"Read": read}}), roleArn=ROLE
    )["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=f"{machine}#Slow", input="{}")["executionArn"]
    ended = _ended(sfn, arn)
    assert ended["status"] == "SUCCEEDED" and json.loads(ended["output"]) == {"Body": "mocked"}
    with pytest.raises(sfn.exceptions.InvalidName, match="Invalid mock test case name 'Absent'"):
        sfn.start_execution(stateMachineArn=f"{machine}#Absent", input="{}")


def test_test_state_is_ours_while_upstream_lacks_it_and_runs_the_engines_program(sfn):
    import moto.stepfunctions.responses as upstream_responses

    # If upstream gains TestState, compare and drop add_test_state.
    assert "def test_state" not in inspect.getsource(upstream_responses)
    state = {"Type": "Pass", "Parameters": {"sum.$": "States.MathAdd($.a, 1)"}, "End": True}
    answer = sfn.test_state(
        definition=json.dumps(state), roleArn=ROLE, input='{"a": 2}', inspectionLevel="DEBUG"
    )
    assert answer["status"] == "SUCCEEDED" and json.loads(answer["output"]) == {"sum": 3}
    assert json.loads(answer["inspectionData"]["afterParameters"]) == {"sum": 3}


def test_query_language_scopes_are_per_parse_where_upstream_shares_them():
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    # Upstream keeps the stack as a class attribute (shared by every parse); ours is per instance.
    assert isinstance(Preprocessor.__dict__.get("_query_language_per_scope"), list)
    first, second = Preprocessor(), Preprocessor()
    assert first._query_language_per_scope is not second._query_language_per_scope


def test_a_task_stopped_before_its_timeouts_are_read_pops_defaults_not_its_input():
    from types import SimpleNamespace

    from moto.stepfunctions.parser.asl.component.common.timeouts.heartbeat import HeartbeatSeconds
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds

    state_input = {"a": 1}
    stopped = SimpleNamespace(is_running=lambda: False, stack=[state_input])
    TimeoutSeconds(5).eval(stopped)  # upstream skips a stopped execution's evaluation
    HeartbeatSeconds(3).eval(stopped)
    default = TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS
    assert stopped.stack == [state_input, default, default]  # the Task pops these two, not its input
    running = SimpleNamespace(is_running=lambda: True, stack=[], next_field_name=None)
    TimeoutSeconds(5).eval(running)
    assert running.stack == [5]


def test_a_parse_inside_a_jsonata_scope_does_not_leak_into_another_parse():
    from moto.stepfunctions.parser.asl.component.common.query_language import QueryLanguage, QueryLanguageMode
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    in_progress = Preprocessor()  # another execution's parse, inside a JSONata scope
    in_progress._query_language_per_scope.append(QueryLanguage(QueryLanguageMode.JSONata))
    jsonpath = {"StartAt": "P", "States": {"P": {"Type": "Pass", "QueryLanguage": "JSONPath", "End": True}}}
    AmazonStateLanguageParser.parse(json.dumps(jsonpath))  # a shared stack: "Cannot downgrade..."


def test_an_engine_failure_fails_the_execution_instead_of_leaving_it_running(sfn, monkeypatch):
    from moto.stepfunctions.parser.asl.component.program.program import Program

    def broken(program, env):
        raise RuntimeError("an engine defect")

    monkeypatch.setattr(Program, "eval", broken)
    ended = _execute(sfn, _machine("P"))
    assert (ended["status"], ended["error"]) == ("FAILED", "States.Runtime")
    assert ended["cause"] == "the local AWS's engine failed: RuntimeError: an engine defect"


def test_state_machine_creation_is_checked_where_upstream_returns_the_old_machine(sfn):
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    # Upstream answers a name in use with the existing machine, whatever the new definition.
    backend = StepFunctionsParserBackend("us-east-1", "123456789012")
    first = _machine("A")
    upstream_create = StepFunctionsParserBackend.create_state_machine.__wrapped__
    made = upstream_create(backend, "m", json.dumps(first), ROLE)
    again = upstream_create(backend, "m", json.dumps(_machine("B")), ROLE)
    assert again.arn == made.arn and json.loads(again.definition) == first
    # Ours, as AWS: the same request is idempotent, a different one is refused.
    arn = sfn.create_state_machine(name="m", definition=json.dumps(first), roleArn=ROLE)["stateMachineArn"]
    assert (
        sfn.create_state_machine(name="m", definition=json.dumps(first), roleArn=ROLE)["stateMachineArn"]
        == arn
    )
    with pytest.raises(sfn.exceptions.StateMachineAlreadyExists, match="State Machine Already Exists"):
        sfn.create_state_machine(name="m", definition=json.dumps(_machine("B")), roleArn=ROLE)
    with pytest.raises(sfn.exceptions.InvalidDefinition, match="Invalid State Machine Definition"):
        sfn.update_state_machine(stateMachineArn=arn, definition=json.dumps(_machine("B", "Nowhere")))


def _machine(name: str, next_state: str | None = None) -> dict:
    state = {"Type": "Pass", **({"Next": next_state} if next_state else {"End": True})}
    return {"StartAt": name, "States": {name: state}}


@pytest.fixture
def sfn():
    """A Step Functions client of an in-process moto whose state machines execute."""
    from moto import mock_aws

    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        # No "sync-" host prefix: moto serves StartSyncExecution on the API's own host, as the local AWS does.
        yield boto3.client("stepfunctions", region_name="us-east-1", config=Config(inject_host_prefix=False))


ROLE = "arn:aws:iam::123456789012:role/sfn"


def _ended(sfn, arn: str) -> dict:
    """The DescribeExecution answer of execution `arn` once it is no longer running."""
    for _ in range(200):
        answer = sfn.describe_execution(executionArn=arn)
        if answer["status"] != "RUNNING":
            return answer
        time.sleep(0.02)
    raise AssertionError(f"{arn} still running")


def _execute(sfn, definition: dict, given=None) -> dict:
    """Runs `definition` to its end; the DescribeExecution answer."""
    machine = sfn.create_state_machine(
        name=f"m{time.monotonic_ns()}", definition=json.dumps(definition), roleArn=ROLE
    )["stateMachineArn"]
    given = json.dumps({} if given is None else given)
    return _ended(sfn, sfn.start_execution(stateMachineArn=machine, input=given)["executionArn"])


def _query_evaluation_cause(sfn, state: dict) -> str:
    """The cause of the States.QueryEvaluationError a one-state JSONata machine fails with."""
    ended = _execute(sfn, {"QueryLanguage": "JSONata", "StartAt": "S", "States": {"S": state}})
    assert ended["error"] == "States.QueryEvaluationError"
    return ended["cause"]


def _signature(function) -> list[str]:
    return list(inspect.signature(inspect.unwrap(function)).parameters)


def _source(function) -> str:
    return inspect.getsource(inspect.unwrap(function))


CHILD = {
    "Parameters": {"Name": {"Type": "String"}},
    "Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Ref": "Name"}}}},
    "Outputs": {"QueueArn": {"Value": {"Fn::GetAtt": ["Queue", "Arn"]}}},
}


def _parent(template_url: str, name: str) -> str:
    child = {"TemplateURL": template_url, "Parameters": {"Name": name}}
    return json.dumps(
        {
            "Resources": {"Child": {"Type": "AWS::CloudFormation::Stack", "Properties": child}},
            "Outputs": {"FromChild": {"Value": {"Fn::GetAtt": ["Child", "Outputs.QueueArn"]}}},
        }
    )


def test_nested_stacks_read_their_template_url_and_update_in_place_as_on_aws(cfn):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="templates")
    s3.put_object(Bucket="templates", Key="child.json", Body=json.dumps(CHILD).encode())
    for url in ("s3://templates/child.json", "http://127.0.0.1:4566/templates/child.json"):
        stack = f"p{len(url)}"
        cfn.create_stack(StackName=stack, TemplateBody=_parent(url, stack))
        parent = cfn.describe_stacks(StackName=stack)["Stacks"][0]
        assert parent["Outputs"][0]["OutputValue"] == f"arn:aws:sqs:us-east-1:123456789012:{stack}"
    child_id = cfn.describe_stack_resource(StackName=stack, LogicalResourceId="Child")["StackResourceDetail"][
        "PhysicalResourceId"
    ]
    child = cfn.describe_stacks(StackName=child_id)["Stacks"][0]
    assert child["StackName"].startswith(f"{stack}-Child-")
    assert child["ParentId"] == child["RootId"] == parent["StackId"]
    cfn.update_stack(StackName=stack, TemplateBody=_parent("s3://templates/child.json", "renamed"))
    assert cfn.describe_stacks(StackName=child_id)["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"
    with pytest.raises(cfn.exceptions.ClientError, match="TemplateURL must reference a valid S3 object"):
        cfn.create_stack(StackName="missing", TemplateURL="s3://templates/absent.json")


def test_get_att_short_forms_in_yaml_read_as_on_aws(cfn):
    template = """
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties: {QueueName: pinned}
Outputs:
  Dotted: {Value: !GetAtt Queue.Arn}
  Listed: {Value: !GetAtt [Queue, QueueName]}
"""
    cfn.create_stack(StackName="s", TemplateBody=template)
    outputs = {
        o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(StackName="s")["Stacks"][0]["Outputs"]
    }
    assert outputs == {
        "Dotted": "arn:aws:sqs:us-east-1:123456789012:pinned",
        "Listed": "pinned",
    }


def test_documented_attributes_come_from_cfn_lint_schemas():
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    atts = PROVIDER_SCHEMA_MANAGER.get_resource_schema(
        "us-east-1", "AWS::StepFunctions::StateMachine"
    ).get_atts
    assert {"Arn", "Name"} <= set(atts)


def test_ecr_images_are_mirrored_through_the_upstream_backend_methods():
    from moto.ecr.models import ECRBackend, Image

    assert _signature(ECRBackend.describe_images)[:4] == [
        "self",
        "repository_name",
        "registry_id",
        "image_ids",
    ]
    assert _signature(ECRBackend.list_images)[:3] == ["self", "repository_name", "registry_id"]
    assert _signature(ECRBackend.batch_get_image)[:4] == [
        "self",
        "repository_name",
        "registry_id",
        "image_ids",
    ]
    assert _signature(ECRBackend.batch_delete_image)[:4] == [
        "self",
        "repository_name",
        "registry_id",
        "image_ids",
    ]
    assert _signature(ECRBackend.put_image)[:4] == ["self", "repository_name", "image_manifest", "image_tag"]
    assert _signature(Image.__init__)[:7] == [
        "self", "account_id", "tag", "manifest", "repository", "image_manifest_mediatype", "digest",
    ]  # fmt: skip


def test_log_events_are_filtered_by_stream_prefix_as_on_aws():
    from moto import mock_aws

    with mock_aws():
        logs = boto3.client("logs", region_name="us-east-1")
        logs.create_log_group(logGroupName="/g")
        for stream in ("job-a/algo-1", "job-b/algo-1", "job-a/algo-2"):
            logs.create_log_stream(logGroupName="/g", logStreamName=stream)
            logs.put_log_events(
                logGroupName="/g",
                logStreamName=stream,
                logEvents=[{"timestamp": int(time.time() * 1000), "message": stream}],
            )
        found = logs.filter_log_events(logGroupName="/g", logStreamNamePrefix="job-a/")["events"]
        assert sorted(e["message"] for e in found) == ["job-a/algo-1", "job-a/algo-2"]
        with pytest.raises(logs.exceptions.InvalidParameterException, match="cannot specify both"):
            logs.filter_log_events(logGroupName="/g", logStreamNamePrefix="job-a/", logStreamNames=["x"])


def test_invocations_read_the_raw_body_upstream_keeps():
    from moto.core.responses import BaseResponse

    source = _source(BaseResponse.setup_class)
    assert "self.raw_body = self.body" in source and "not use_raw_body" in source


def test_write_through_hooks_wrap_upstream_methods_of_these_shapes():
    from moto.cloudformation.models import CloudFormationBackend
    from moto.s3.models import FakeKey, S3Backend
    from moto.stepfunctions.models import StepFunctionBackend
    from moto.stepfunctions.responses import StepFunctionResponse

    assert _signature(S3Backend.create_bucket)[:3] == ["self", "bucket_name", "region_name"]
    assert _signature(S3Backend.put_object)[:4] == ["self", "bucket_name", "key_name", "value"]
    assert _signature(S3Backend.delete_object)[:3] == ["self", "bucket_name", "key_name"]
    assert _signature(FakeKey.set_metadata) == ["self", "metadata", "replace"]
    for method in ("create_stack", "update_stack", "execute_change_set", "delete_stack"):
        assert hasattr(CloudFormationBackend, method)
    for action in ("create_state_machine", "update_state_machine", "delete_state_machine", "tag_resource"):
        assert hasattr(StepFunctionResponse, action)
    assert _signature(StepFunctionBackend.get_tags_list_for_state_machine) == ["self", "arn"]


def test_an_execution_that_ends_is_kept_with_its_description_and_events(sfn, tmp_path, monkeypatch):
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

    from harness.emulator.execution_store import ExecutionStore, StoredExecutions
    from harness.emulator.patches import persistence

    # upstream's hook, put back after the test whatever the patch does to it
    monkeypatch.setattr(
        BaseExecutionWorkerCommunication, "terminated", BaseExecutionWorkerCommunication.terminated
    )
    persistence.keep_ended_executions(ExecutionStore(tmp_path))
    ended = _execute(
        sfn, {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"a": 1}, "End": True}}}
    )
    for _ in range(100):  # written as the execution's worker ends, just after it says so
        if list(tmp_path.glob("*.json")):
            break
        time.sleep(0.02)
    kept = StoredExecutions(tmp_path)
    described = kept.describe_execution(executionArn=ended["executionArn"])
    assert (described["status"], json.loads(described["output"])) == ("SUCCEEDED", {"a": 1})
    assert described["stopDate"] == ended["stopDate"]
    events = kept.get_execution_history(executionArn=ended["executionArn"])["events"]
    assert [e["type"] for e in events][0] == "ExecutionStarted" and events[-1]["type"] == "ExecutionSucceeded"


def test_engine_errors_reach_the_client_with_their_aws_code(sfn):
    machine = sfn.create_state_machine(name="m", definition=json.dumps(_machine("P")), roleArn=ROLE)[
        "stateMachineArn"
    ]
    with pytest.raises(sfn.exceptions.InvalidExecutionInput):
        sfn.start_execution(stateMachineArn=machine, input="{")


def test_local_sagemaker_describes_and_serves_from_upstream_shapes():
    from moto import mock_aws

    from harness.emulator.sagemaker.backends import local_sagemaker_backends

    container = {"Image": "images/serve:1", "ModelDataUrl": "s3://b/model.tar.gz", "Environment": {"A": "1"}}
    with mock_aws():
        sm = boto3.client("sagemaker", region_name="us-east-1")
        sm.create_model_package_group(ModelPackageGroupName="churn")
        arn = sm.create_model_package(
            ModelPackageGroupName="churn",
            InferenceSpecification={
                "Containers": [container],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
        )["ModelPackageArn"]
        described = sm.describe_model_package(ModelPackageName=arn)
        assert described["ModelPackageName"] == "churn" and described["ModelPackageVersion"] == 1
        sm.create_model(
            ModelName="from-package",
            ExecutionRoleArn=ROLE,
            PrimaryContainer={"ModelPackageName": arn, "Environment": {"B": "2"}},
        )
        assert sm.describe_model(ModelName="from-package")["PrimaryContainer"]["ModelPackageName"] == arn
        backend = local_sagemaker_backends["123456789012"]["us-east-1"]
        served = backend.serving_container(backend.describe_model("from-package"))
        assert served["Image"] == "images/serve:1" and served["Environment"] == {"A": "1", "B": "2"}


def test_a_patch_that_no_longer_fits_fails_by_its_own_name():
    def rename_something_upstream_moved() -> None:
        from moto.core import name_that_is_not_there  # noqa: F401

    with pytest.raises(
        patches.PatchFailed, match=r"rename_something_upstream_moved no longer applies to moto "
    ):
        patches.apply(rename_something_upstream_moved)


def _read_later(key: str) -> dict:
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::aws-sdk:s3:getObject",
        "Parameters": {"Bucket": "redrive-pins", "Key": key},
        "ResultSelector": {"body.$": "$.Body"},
        "End": True,
    }


def _redriven(sfn, definition: dict, key: str, given=None) -> tuple[dict, list[str]]:
    """Runs `definition` until it fails for want of object `key`, writes it, redrives: the
    redriven execution's description and the names of the states entered, in order."""
    failed = _execute(sfn, definition, given)
    assert failed["status"] == "FAILED" and failed["error"] == "S3.NoSuchKeyException", failed
    boto3.client("s3", region_name="us-east-1").put_object(Bucket="redrive-pins", Key=key, Body=b"written")
    arn = failed["executionArn"]
    sfn.redrive_execution(executionArn=arn)
    ended = _ended(sfn, arn)
    events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    return ended, [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]


def test_a_redrive_reruns_only_the_branches_and_iterations_that_did_not_succeed(sfn):
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="redrive-pins")
    first = {"Type": "Pass", "Parameters": {"first.$": "$$.Execution.RedriveCount"}, "End": True}
    both = {
        "Type": "Parallel",
        "Branches": [
            {"StartAt": "First", "States": {"First": first}},
            {"StartAt": "Read", "States": {"Read": _read_later("branch")}},
        ],
        "End": True,
    }
    before = {"Type": "Pass", "Next": "Both"}
    ended, entered = _redriven(
        sfn, {"StartAt": "Before", "States": {"Before": before, "Both": both}}, "branch"
    )
    assert (ended["status"], ended["redriveCount"]) == ("SUCCEEDED", 1)
    assert json.loads(ended["output"]) == [{"first": 0}, {"body": "written"}]  # First's earlier output
    assert (entered.count("Before"), entered.count("First"), entered.count("Read")) == (1, 1, 2)

    which = {
        "Type": "Choice",
        "Choices": [{"Variable": "$", "NumericEquals": 1, "Next": "One"}],
        "Default": "Read",
    }
    iteration = {"StartAt": "Which", "States": {"Which": which, "One": first, "Read": _read_later("item")}}
    each = {"Type": "Map", "ItemsPath": "$.items", "ItemProcessor": iteration, "End": True}
    ended, entered = _redriven(sfn, {"StartAt": "Each", "States": {"Each": each}}, "item", {"items": [1, 2]})
    assert ended["status"] == "SUCCEEDED"
    assert json.loads(ended["output"]) == [{"first": 0}, {"body": "written"}]
    assert (entered.count("One"), entered.count("Read")) == (1, 2)


def test_redrive_is_ours_while_upstream_lacks_it():
    import moto.stepfunctions.responses as upstream_responses
    from moto.stepfunctions.parser.api import HistoryEventType
    from moto.stepfunctions.responses import StepFunctionResponse
    from moto.stepfunctions.utils import PAGINATION_MODEL

    # If upstream gains RedriveExecution, drop add_redrive_execution.
    assert "def redrive_execution" not in inspect.getsource(upstream_responses)
    assert StepFunctionResponse.redrive_execution.__module__ == "harness.emulator.patches.stepfunctions"
    assert HistoryEventType.ExecutionRedriven.value == "ExecutionRedriven"
    assert PAGINATION_MODEL["list_executions"]["unique_attribute"] == ["start_date", "execution_arn"]


def test_the_resume_point_is_the_last_top_level_state_entered_and_not_exited():
    from harness.emulator.redrive import resume_point

    def event(kind: str, name: str, data: str = "{}") -> dict:
        details = "stateEnteredEventDetails" if kind.endswith("Entered") else "stateExitedEventDetails"
        return {"type": kind, details: {"name": name, "input": data}}

    events = [
        event("PassStateEntered", "Prepare", '{"a": 1}'),
        event("PassStateExited", "Prepare"),
        event("ParallelStateEntered", "Both", '{"b": 2}'),
        event("TaskStateEntered", "Inner", '{"c": 3}'),  # inside the Parallel: not top-level
        {"type": "TaskFailed"},
    ]
    assert resume_point(events, {"Prepare", "Both", "Done"}) == ("Both", '{"b": 2}')
    assert resume_point(events[:2], {"Prepare", "Both"}) is None


def test_sync_tasks_sleep_through_the_module_time_that_a_job_end_wakes():
    import threading

    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback as callback,
    )

    from harness.emulator import job_events

    assert "time.sleep(_DELAY_SECONDS_SYNC_CONDITION_CHECK)" in inspect.getsource(callback)
    assert callback.time.sleep is job_events.wait and callback.time.time is time.time
    started = time.monotonic()
    threading.Timer(0.05, job_events.job_ended).start()
    callback.time.sleep(5)  # a job ends after 50 ms: the sleep ends with it
    assert time.monotonic() - started < 2


def test_engine_calls_are_signed_as_the_role_the_engine_works_out():
    """Upstream ignores the StateCredentials it computes and signs with a fixed key; every module of
    the engine that calls boto_client_for now gets ours, which signs as the role."""
    import sys

    from moto.stepfunctions.parser.asl.component.state.exec.state_task.credentials import StateCredentials
    from moto.stepfunctions.parser.asl.utils import boto_client

    from harness.emulator.iam import principals

    assert 'aws_access_key_id="ak"' in inspect.getsource(boto_client)  # what upstream still does
    callers = [
        module
        for name, module in sys.modules.items()
        if name.startswith("moto.stepfunctions.parser") and hasattr(module, "boto_client_for")
    ]
    assert callers and all(m.boto_client_for is boto_client.boto_client_for for m in callers)
    role = "arn:aws:iam::123456789012:role/pipeline"
    client = boto_client.boto_client_for("us-east-1", "s3", StateCredentials(role_arn=role))
    key = client._request_signer._credentials.access_key  # the upstream attribute the patch sets
    assert principals.of_access_key(key).role_arn == role


def test_a_role_arn_path_key_is_evaluated_where_upstream_lexes_it_as_a_keyword(sfn):
    from moto.stepfunctions.parser.asl.antlr.runtime.ASLLexer import ASLLexer

    assert "'\"RoleArn.$\"'" in ASLLexer.literalNames  # upstream: a token of its own
    definition = {
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Assign": {"RoleArn.$": "States.Format('{}', $.role)"}, "Next": "P"},
            "P": {
                "Type": "Pass",
                "Parameters": {"RoleArn.$": "$.role", "Nested": {"RoleArn.$": "$.role"}},
                "Next": "Q",
            },
            "Q": {"Type": "Pass", "Parameters": {"Kept.$": "$", "Assigned.$": "$RoleArn"}, "End": True},
        },
    }
    role = "arn:aws:iam::123456789012:role/job"
    output = json.loads(_execute(sfn, definition, {"role": role})["output"])
    assert output == {"Kept": {"RoleArn": role, "Nested": {"RoleArn": role}}, "Assigned": role}


def test_a_role_arn_path_key_with_a_value_that_is_no_path_is_an_invalid_definition(sfn):
    for value in ("not a path", 7):
        definition = {
            "StartAt": "P",
            "States": {"P": {"Type": "Pass", "Parameters": {"RoleArn.$": value}, "End": True}},
        }
        with pytest.raises(sfn.exceptions.InvalidDefinition):
            sfn.create_state_machine(
                name=f"m{time.monotonic_ns()}", definition=json.dumps(definition), roleArn=ROLE
            )


def test_a_definite_path_under_an_index_gives_its_value_and_a_filter_path_a_list(sfn):
    definition = {
        "StartAt": "P",
        "States": {
            "P": {
                "Type": "Pass",
                "Parameters": {"One.$": "$.items[0].name", "Filtered.$": "$.items[?(@.name == 'a')].name"},
                "End": True,
            }
        },
    }
    output = json.loads(_execute(sfn, definition, {"items": [{"name": "a"}, {"name": "b"}]})["output"])
    assert output == {"One": "a", "Filtered": ["a"]}


SAGEMAKER_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


def _role_stack(cfn, iam, stack: str, properties: dict, update: bool = False) -> str:
    template = {
        "Resources": {
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {"AssumeRolePolicyDocument": SAGEMAKER_TRUST, **properties},
            }
        }
    }
    call = cfn.update_stack if update else cfn.create_stack
    call(StackName=stack, TemplateBody=json.dumps(template), Capabilities=["CAPABILITY_NAMED_IAM"])
    return cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]


def test_aws_managed_policies_exist_and_stack_roles_hold_what_their_template_says(cfn):
    from harness.emulator.iam.enforcement import identity_policies

    iam = boto3.client("iam", region_name="us-east-1")
    sagemaker_full = "arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"
    s3_full = "arn:aws:iam::aws:policy/AmazonS3FullAccess"
    document = iam.get_policy_version(
        PolicyArn=s3_full, VersionId=iam.get_policy(PolicyArn=s3_full)["Policy"]["DefaultVersionId"]
    )
    assert {"Effect": "Allow", "Action": ["s3:*", "s3-object-lambda:*"], "Resource": "*"} in document[
        "PolicyVersion"
    ]["Document"]["Statement"]

    assert (
        _role_stack(cfn, iam, "roles", {"RoleName": "job", "ManagedPolicyArns": [sagemaker_full]})
        == "CREATE_COMPLETE"
    )
    attached = iam.list_attached_role_policies(RoleName="job")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [sagemaker_full]
    role_arn = iam.get_role(RoleName="job")["Role"]["Arn"]
    assert any("sagemaker:*" in str(d) for d in identity_policies(role_arn))

    inline = {
        "PolicyName": "read",
        "PolicyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
        },
    }
    updated = {"RoleName": "job", "ManagedPolicyArns": [s3_full], "Policies": [inline], "Description": "now"}
    assert _role_stack(cfn, iam, "roles", updated, update=True) == "UPDATE_COMPLETE"
    assert [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName="job")["AttachedPolicies"]] == [
        s3_full
    ]
    assert iam.list_role_policies(RoleName="job")["PolicyNames"] == ["read"]
    assert iam.get_role(RoleName="job")["Role"]["Description"] == "now"

    missing = "arn:aws:iam::aws:policy/NoSuchPolicy"
    assert (
        _role_stack(cfn, iam, "bad", {"RoleName": "bad", "ManagedPolicyArns": [missing]})
        == "ROLLBACK_COMPLETE"
    )
    reasons = [
        e.get("ResourceStatusReason", "") for e in cfn.describe_stack_events(StackName="bad")["StackEvents"]
    ]
    assert any(f"Policy {missing} does not exist or is not attachable." in reason for reason in reasons), (
        reasons
    )


def test_the_policy_simulator_answers_from_the_local_evaluation():
    from moto import mock_aws

    with mock_aws():
        iam = boto3.client("iam", region_name="us-east-1")
        role_arn = iam.create_role(RoleName="job", AssumeRolePolicyDocument=json.dumps(SAGEMAKER_TRUST))[
            "Role"
        ]["Arn"]
        iam.attach_role_policy(RoleName="job", PolicyArn="arn:aws:iam::aws:policy/AmazonSageMakerFullAccess")
        read = {
            "Version": "2012-10-17",
            "Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::data/*"},
        }
        iam.put_role_policy(RoleName="job", PolicyName="read", PolicyDocument=json.dumps(read))

        answer = iam.simulate_principal_policy(
            PolicySourceArn=role_arn,
            ActionNames=["sagemaker:CreateTrainingJob", "s3:GetObject", "s3:DeleteBucket"],
            ResourceArns=["arn:aws:s3:::data/key"],
        )
        decisions = {(r["EvalActionName"], r["EvalDecision"]) for r in answer["EvaluationResults"]}
        assert decisions == {
            ("sagemaker:CreateTrainingJob", "allowed"),
            ("s3:GetObject", "allowed"),
            ("s3:DeleteBucket", "implicitDeny"),
        }
        matched = {r["EvalActionName"]: r["MatchedStatements"] for r in answer["EvaluationResults"]}
        assert matched["sagemaker:CreateTrainingJob"] == [
            {"SourcePolicyId": "AmazonSageMakerFullAccess", "SourcePolicyType": "aws-managed"}
        ]
        assert matched["s3:GetObject"] == [{"SourcePolicyId": "read", "SourcePolicyType": "role"}]

        deny = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "s3:*", "Resource": "*"}]}
        denied = iam.simulate_principal_policy(
            PolicySourceArn=role_arn,
            ActionNames=["s3:GetObject"],
            ResourceArns=["arn:aws:s3:::data/key"],
            PolicyInputList=[json.dumps(deny)],
        )
        assert denied["EvaluationResults"][0]["EvalDecision"] == "explicitDeny"
        assert denied["EvaluationResults"][0]["MatchedStatements"][0]["SourcePolicyId"] == "PolicyInputList.1"

        bounded = iam.simulate_principal_policy(
            PolicySourceArn=role_arn,
            ActionNames=["sagemaker:CreateTrainingJob"],
            PermissionsBoundaryPolicyInputList=[
                json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
                    }
                )
            ],
        )["EvaluationResults"][0]
        assert bounded["EvalDecision"] == "implicitDeny"
        assert bounded["PermissionsBoundaryDecisionDetail"] == {"AllowedByPermissionsBoundary": False}

        condition = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "s3:ListBucket",
                    "Resource": "*",
                    "Condition": {"StringEquals": {"s3:prefix": "a/"}},
                }
            ],
        }
        custom = iam.simulate_custom_policy(
            PolicyInputList=[json.dumps(condition)],
            ActionNames=["s3:ListBucket"],
            ContextEntries=[
                {"ContextKeyName": "s3:prefix", "ContextKeyValues": ["a/"], "ContextKeyType": "string"}
            ],
        )["EvaluationResults"][0]
        assert (custom["EvalResourceName"], custom["EvalDecision"]) == ("*", "allowed")

        page = iam.simulate_custom_policy(
            PolicyInputList=[json.dumps(condition)], ActionNames=["s3:A", "s3:B", "s3:C"], MaxItems=2
        )
        assert page["IsTruncated"] and len(page["EvaluationResults"]) == 2
        rest = iam.simulate_custom_policy(
            PolicyInputList=[json.dumps(condition)],
            ActionNames=["s3:A", "s3:B", "s3:C"],
            Marker=page["Marker"],
        )
        assert [r["EvalActionName"] for r in rest["EvaluationResults"]] == ["s3:C"] and not rest[
            "IsTruncated"
        ]

        with pytest.raises(
            iam.exceptions.NoSuchEntityException, match="The role with name gone cannot be found."
        ):
            iam.simulate_principal_policy(
                PolicySourceArn="arn:aws:iam::123456789012:role/gone", ActionNames=["s3:GetObject"]
            )
        with pytest.raises(iam.exceptions.InvalidInputException):
            iam.simulate_custom_policy(PolicyInputList=["{not json"], ActionNames=["s3:GetObject"])


def test_bucket_names_are_held_to_aws_rules_and_content_md5_to_the_body():
    import base64
    import hashlib

    from moto import mock_aws

    with mock_aws():
        # over https botocore streams the body with a trailing checksum; the local AWS is answered over http
        config = Config(s3={"addressing_style": "path"}, request_checksum_calculation="when_required")
        s3 = boto3.client("s3", region_name="us-east-1", config=config)
        for name in (
            "Bad_Bucket",
            "xn--abc",
            "-abc",
            "abc-",
            "192.168.1.1",
            "abc..def",
            "abc-s3alias",
            "sthree-x",
            "UPPER",
        ):
            with pytest.raises(s3.exceptions.ClientError, match="InvalidBucketName"):
                s3.create_bucket(Bucket=name)
        s3.create_bucket(Bucket="my.bucket-1")

        def md5(body: bytes) -> str:
            return base64.b64encode(hashlib.md5(body).digest()).decode()

        s3.put_object(Bucket="my.bucket-1", Key="k", Body=b"data", ContentMD5=md5(b"data"))
        for content_md5, code in ((md5(b"other"), "BadDigest"), ("not-an-md5", "InvalidDigest")):
            with pytest.raises(s3.exceptions.ClientError, match=code):
                s3.put_object(Bucket="my.bucket-1", Key="damaged", Body=b"data", ContentMD5=content_md5)
        assert [o["Key"] for o in s3.list_objects_v2(Bucket="my.bucket-1")["Contents"]] == ["k"]


QUEUE_TEMPLATE = {
    "Parameters": {"Env": {"Type": "String", "Default": "dev"}},
    "Resources": {"Q": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Fn::Sub": "q-${Env}"}}}},
}


def test_a_change_set_is_an_update_by_default_and_a_kept_default_changes_nothing(cfn):
    cfn.create_stack(StackName="s", TemplateBody=json.dumps(QUEUE_TEMPLATE))
    keep = [{"ParameterKey": "Env", "UsePreviousValue": True}]
    cfn.create_change_set(
        StackName="s", ChangeSetName="kept", TemplateBody=json.dumps(QUEUE_TEMPLATE), Parameters=keep
    )
    kept = cfn.describe_change_set(StackName="s", ChangeSetName="kept")
    assert (kept["ChangeSetType"] if "ChangeSetType" in kept else "UPDATE", kept["Status"]) == (
        "UPDATE",
        "FAILED",
    )
    assert kept["StatusReason"].startswith("The submitted information didn't contain changes.")
    given = [{"ParameterKey": "Env", "ParameterValue": "dev"}]  # the default, given
    cfn.create_change_set(
        StackName="s", ChangeSetName="same", TemplateBody=json.dumps(QUEUE_TEMPLATE), Parameters=given
    )
    assert cfn.describe_change_set(StackName="s", ChangeSetName="same")["Status"] == "FAILED"
    changed = [{"ParameterKey": "Env", "ParameterValue": "prod"}]
    cfn.create_change_set(
        StackName="s", ChangeSetName="prod", TemplateBody=json.dumps(QUEUE_TEMPLATE), Parameters=changed
    )
    prod = cfn.describe_change_set(StackName="s", ChangeSetName="prod")
    assert prod["Status"] == "CREATE_COMPLETE"
    assert [c["ResourceChange"]["LogicalResourceId"] for c in prod["Changes"]] == ["Q"]
    with pytest.raises(cfn.exceptions.ClientError, match="does not exist"):
        cfn.create_change_set(StackName="absent", ChangeSetName="c", TemplateBody=json.dumps(QUEUE_TEMPLATE))


def test_stack_events_and_resource_descriptions_name_each_resource(cfn):
    cfn.create_stack(StackName="ev", TemplateBody=json.dumps(QUEUE_TEMPLATE))
    cfn.update_stack(
        StackName="ev",
        TemplateBody=json.dumps(QUEUE_TEMPLATE),
        Parameters=[{"ParameterKey": "Env", "ParameterValue": "prod"}],
    )
    events = [
        (e["LogicalResourceId"], e["ResourceStatus"])
        for e in cfn.describe_stack_events(StackName="ev")["StackEvents"]
    ][::-1]
    assert events == [
        (name, f"{verb}_{stage}")
        for verb in ("CREATE", "UPDATE")
        for name, stage in (
            ("ev", "IN_PROGRESS"),
            ("Q", "IN_PROGRESS"),
            ("Q", "COMPLETE"),
            ("ev", "COMPLETE"),
        )
    ]
    detail = cfn.describe_stack_resource(StackName="ev", LogicalResourceId="Q")["StackResourceDetail"]
    assert detail["ResourceStatus"] == "UPDATE_COMPLETE" and detail["LastUpdatedTimestamp"].year >= 2026
    summary = cfn.list_stack_resources(StackName="ev")["StackResourceSummaries"][0]
    assert summary["ResourceStatus"] == "UPDATE_COMPLETE"
    cfn.delete_stack(StackName="ev")
    statuses = [
        e["ResourceStatus"]
        for e in cfn.describe_stack_events(StackName=_stack_id(cfn, "ev"))["StackEvents"]
        if e["LogicalResourceId"] == "Q"
    ]
    assert statuses[:2] == ["DELETE_COMPLETE", "DELETE_IN_PROGRESS"]


def _stack_id(cfn, name: str) -> str:
    stacks = cfn.list_stacks()["StackSummaries"]
    return next(s["StackId"] for s in stacks if s["StackName"] == name)


def test_executions_and_their_state_machines_are_described_with_what_aws_requires(sfn):
    definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    ended = _execute(sfn, definition, {"a": 1})
    assert ended["inputDetails"] == {"included": True} and ended["outputDetails"] == {"included": True}
    machine = sfn.describe_state_machine_for_execution(executionArn=ended["executionArn"])
    assert machine["updateDate"] and json.loads(machine["definition"]) == definition
    assert "creationDate" not in machine and "status" not in machine


def test_lambda_functions_of_other_runtimes_and_unsafe_packages_are_refused_where_upstream_keeps_them():
    import io
    import zipfile

    from moto import mock_aws

    def package(name: str) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr(name, "x = 1")
        return buffer.getvalue()

    with mock_aws():
        trust = {"Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}]}
        iam = boto3.client("iam", region_name="us-east-1")
        role = iam.create_role(RoleName="fn", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        lam = boto3.client("lambda", region_name="us-east-1")
        with pytest.raises(lam.exceptions.ClientError, match="runtime nodejs20.x is not supported"):
            lam.create_function(
                FunctionName="node", Runtime="nodejs20.x", Role=role, Handler="index.handler",
                Code={"ZipFile": package("index.js")},
            )  # fmt: skip
        with pytest.raises(lam.exceptions.ClientError, match="outside its folder"):
            lam.create_function(
                FunctionName="escaping", Runtime="python3.12", Role=role, Handler="app.handler",
                Code={"ZipFile": package("../app.py")},
            )  # fmt: skip
        assert lam.list_functions()["Functions"] == []
        lam.create_function(
            FunctionName="fine", Runtime="python3.12", Role=role, Handler="app.handler",
            Code={"ZipFile": package("app.py")},
        )  # fmt: skip
        with pytest.raises(lam.exceptions.ClientError, match="runtime java21 is not supported"):
            lam.update_function_configuration(FunctionName="fine", Runtime="java21")
        with pytest.raises(lam.exceptions.ClientError, match="outside its folder"):
            lam.update_function_code(FunctionName="fine", ZipFile=package("/etc/app.py"))


def test_lambda_invocations_leave_upstream_through_the_names_the_patch_replaces():
    from moto.awslambda import models, responses

    # every caller reaches a function through LambdaFunction.invoke or LambdaBackend.invoke
    assert "self.backend.invoke(" in inspect.getsource(responses.LambdaResponse.invoke)
    assert "fn.invoke(" in inspect.getsource(responses.LambdaResponse.invoke_async)
    # the patch's replacements take the arguments upstream passes, in its order
    assert "function_name, qualifier, self.body, self.headers, response_headers" in (
        inspect.getsource(responses.LambdaResponse.invoke)
    )
    assert "update_function_code(\n            function_name, qualifier, body=self.json_body" in (
        inspect.getsource(responses.LambdaResponse.update_function_code)
    )
    # the configuration an execution environment is made from
    source = inspect.getsource(models.LambdaFunction.__init__)
    for attribute in ("code_bytes", "environment_vars", "memory_size", "timeout", "image_config", "layers"):
        assert f"self.{attribute}" in source or attribute in inspect.getsource(models.LambdaFunction)
    assert {"cmd", "entry_point", "working_directory"} <= set(vars(models.ImageConfig({})))


def test_registry_scanning_without_rules_leaves_repositories_creatable_where_upstream_broke_them():
    from moto import mock_aws

    with mock_aws():
        ecr = boto3.client("ecr", region_name="us-east-1")
        ecr.put_registry_scanning_configuration(scanType="BASIC")
        assert ecr.create_repository(repositoryName="after")["repository"]["repositoryName"] == "after"
        assert ecr.get_registry_scanning_configuration()["scanningConfiguration"]["rules"] == []
