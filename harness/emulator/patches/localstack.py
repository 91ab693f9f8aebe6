"""Patches to LocalStack (`--engine localstack`), applied inside LocalStack's own Python by
harness.emulator.localstack_plugin, from the LocalStack list of harness.emulator.patches.
Each names the LocalStack 4.14 defect it works around."""

from __future__ import annotations


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
