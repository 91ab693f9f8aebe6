"""The project's SageMaker inside LocalStack (`--engine localstack`), by LocalStack's own plugins.

Loaded by LocalStack's Python, never by the harness's: it imports only LocalStack and the
modules of harness.emulator written for both engines (asl_engines, sfn_sagemaker) or for this
one (localstack_engine). harness.emulator.localstack_engine starts LocalStack with this
module's entry points on its path (localstack_engine.ENTRY_POINTS) and the address of the
SageMaker backend (the default engine's code, jobs really running in Docker) in
BACKEND_URL_VARIABLE.

- Providers (namespace `localstack.aws.provider`, named "mlharness", chosen by LocalStack's
  PROVIDER_OVERRIDE_<SERVICE>): sagemaker, sagemaker-runtime and ecr. Each has nothing of its own:
  its dispatch table forwards every operation, as received, to the backend, which answers as the
  default engine does.
- Hooks (`localstack.hooks.on_infra_start`): give LocalStack's Step Functions the `sagemaker:*`
  Task integration (`.sync` included) and the default engine's fixes of the interpreter both
  share (harness.emulator.asl_engines), and route the local AWS's own endpoints (/_mlharness/*:
  info, timeline, fidelity report, step cache) to the backend. Two fixes of LocalStack 4.14's
  EventBridge and CloudFormation make schedules work as on AWS: a rule with a fixed input starts
  its state machine, and a stack update changes a rule.
"""

from __future__ import annotations

import os

from localstack.runtime import hooks
from localstack.services.plugins import Service, aws_provider

from harness.emulator.localstack_engine import BACKEND_URL_VARIABLE, OWN_PATH_PREFIX, PROVIDER_NAME

ACCOUNT_HEADER = "x-moto-account-id"  # the backend (moto) takes a request's account from it


class ForwardedProvider:
    """A service LocalStack serves by forwarding: it implements nothing itself."""

    def __init__(self, service: str):
        self.service = service


def forwarding_service(name: str) -> Service:
    from localstack.aws.forwarder import AwsRequestProxy
    from localstack.aws.spec import load_service

    # Parsed and serialized again by LocalStack: its own clients (Step Functions' Tasks) take
    # answers as data, not as HTTP.
    proxy = AwsRequestProxy(os.environ[BACKEND_URL_VARIABLE])

    def forward(context, request=None):
        # The request as received (a parsed one would be serialized again, and a body LocalStack
        # left as a stream could not be), in the account LocalStack resolved for it: the
        # backend keeps the jobs in that account.
        context.request.headers[ACCOUNT_HEADER] = context.account_id
        return proxy(context)

    table = dict.fromkeys(load_service(name).operation_names, forward)
    return Service.for_provider(ForwardedProvider(name), dispatch_table_factory=lambda _: table)


@aws_provider(api="sagemaker", name=PROVIDER_NAME)
def sagemaker() -> Service:
    return forwarding_service("sagemaker")


@aws_provider(api="sagemaker-runtime", name=PROVIDER_NAME)
def sagemaker_runtime() -> Service:
    return forwarding_service("sagemaker-runtime")


@aws_provider(api="ecr", name=PROVIDER_NAME)
def ecr() -> Service:
    return forwarding_service("ecr")


@hooks.on_infra_start()
def extend_step_functions() -> None:
    """What the default engine's Step Functions has beyond the interpreter both share: the
    sagemaker Task integration, aws-sdk services and errors named as AWS names them, and JSONata
    evaluated in Python (LocalStack's needs a JVM it downloads at first use: not offline)."""
    from harness.emulator import asl_engines, sfn_sagemaker

    sfn_sagemaker.register("localstack")
    asl_engines.name_aws_sdk_errors_as_aws("localstack")
    asl_engines.call_aws_sdk_services_by_their_boto_names("localstack")
    asl_engines.evaluate_jsonata_in_python("localstack")
    asl_engines.pass_strings_to_blobs_as_they_are("localstack")


@hooks.on_infra_start()
def start_state_machines_from_rules_with_a_fixed_input() -> None:
    """A rule whose Step Functions target has a fixed Input (the inference schedule's) started
    nothing: LocalStack names the execution by the event's id, which a fixed input lacks
    (KeyError, logged and dropped). EventBridge names it with a fresh id, as here."""
    import uuid

    from localstack.services.events.target import StatesTargetSender
    from localstack.services.stepfunctions.asl.utils.encoding import to_json_str

    def send_event(self, event, trace_header):
        self.service = "stepfunctions"
        name = event.get("id") if isinstance(event, dict) and isinstance(event.get("id"), str) else None
        self.client.start_execution(
            stateMachineArn=self.target["Arn"], name=name or str(uuid.uuid4()), input=to_json_str(event)
        )

    StatesTargetSender.send_event = send_event


@hooks.on_infra_start()
def update_event_rules_in_stacks() -> None:
    """LocalStack's CloudFormation left an AWS::Events::Rule as it was on a stack update (a
    warning, and the update reported complete): a schedule changed in the template never changed.
    As on AWS, the rule keeps its name and takes the new properties and targets."""
    from localstack.services.events.resource_providers.aws_events_rule import (
        EventsRuleProvider,
        extract_rule_name,
    )

    def update(self, request):
        events = request.aws_client_factory.events
        previous = request.previous_state or {}
        name = extract_rule_name(previous["Id"])
        bus = {"EventBusName": previous["EventBusName"]} if previous.get("EventBusName") else {}
        kept = {target["Id"] for target in request.desired_state.get("Targets") or []}
        present = {target["Id"] for target in events.list_targets_by_rule(Rule=name, **bus)["Targets"]}
        if present - kept:
            events.remove_targets(Rule=name, Ids=sorted(present - kept), Force=True, **bus)
        request.desired_state["Name"] = name
        return self.create(request)  # PutRule and PutTargets: both update in place

    EventsRuleProvider.update = update


@hooks.on_infra_start()
def route_own_endpoints_to_the_backend() -> None:
    from localstack.http.proxy import Proxy
    from localstack.services.edge import ROUTER

    proxy = Proxy(forward_base_url=os.environ[BACKEND_URL_VARIABLE])

    def forward(request, path: str = ""):
        return proxy.forward(request, forward_path=request.path)

    ROUTER.add(OWN_PATH_PREFIX, endpoint=forward)
    ROUTER.add(f"{OWN_PATH_PREFIX}/<path:path>", endpoint=forward)
