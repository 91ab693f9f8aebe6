"""What a target has deployed for the registered pipelines, read through the AWS APIs:
schedules and the runs they started, the live state of resources runs left in service,
and the endpoints the stack's pipelines created."""

from __future__ import annotations

import json
from collections.abc import Iterator

from harness import deploy, records
from harness.config import Config
from harness.errors import HarnessError
from harness.template import schedule_output, state_machine_output
from mlharness.contract import Pipeline
from mlharness.tasks import STACK_TAG


def schedule_lines(config: Config, target, pipeline: Pipeline, recent: int = 10) -> list[str]:
    """The pipeline's deployed schedule and the executions it (or anyone but the harness) started."""
    clients = target.clients()
    outputs = deploy.stack_outputs(clients.client("cloudformation"), config.stack_name)
    label = f"{pipeline.name} schedule"
    if outputs is None:
        return [f"{label}: none deployed (no stack {config.stack_name}; `deploy` creates it)"]
    deployed = _deployed_schedule(clients, outputs, pipeline)
    if deployed is None:
        return [f"{label}: none (set schedules.{pipeline.name}.expression to deploy one)"]
    rule, schedule_input = deployed
    described = pipeline.schedule.description.format_map(_Missing(schedule_input))
    lines = [
        f"{label}: {rule['ScheduleExpression']} {rule.get('State', '')} (rule {rule['Name']})",
        f"  each run {described}",
    ]
    if not target.fires_schedules():
        lines.append(
            f"  the local AWS does not fire schedules: `run --pipeline {pipeline.name} --as-scheduled` "
            "starts one as the rule would"
        )
    executions = clients.client("stepfunctions").list_executions(
        stateMachineArn=outputs[state_machine_output(pipeline)], maxResults=100
    )["executions"]
    others = [e for e in executions if not records.started_by_harness(e["name"])][:recent]
    for execution in others:
        started = execution["startDate"].isoformat(timespec="seconds")
        lines.append(
            f"  scheduled run {pipeline.prefix}-{execution['name']}: {execution['status']} {started}"
        )
    return lines


def schedule_input(config: Config, target, pipeline: Pipeline) -> dict:
    """The input the deployed schedule starts the pipeline with."""
    clients = target.clients()
    outputs = deploy.stack_outputs(clients.client("cloudformation"), config.stack_name) or {}
    deployed = _deployed_schedule(clients, outputs, pipeline)
    if deployed is None:
        raise HarnessError(
            f"no {pipeline.name} schedule is deployed in stack {config.stack_name}: "
            f"set schedules.{pipeline.name}.expression"
        )
    return deployed[1]


def _deployed_schedule(clients, outputs: dict, pipeline: Pipeline) -> tuple[dict, dict] | None:
    """The schedule's rule and the input its target gets, or None when none is deployed."""
    rule_name = outputs.get(schedule_output(pipeline))
    if not rule_name:
        return None
    events = clients.client("events")
    rule = events.describe_rule(Name=rule_name)
    targets = events.list_targets_by_rule(Rule=rule_name)["Targets"]
    return rule, json.loads(targets[0].get("Input") or "{}") if targets else {}


class _Missing(dict):
    def __missing__(self, key: str) -> str:
        return "?"


# -- resources runs leave in service ----------------------------------------------
def resource_lines(target, run: records.RunRecord) -> list[str]:
    """The live state of what a run left in service (today: endpoints)."""
    sagemaker = target.clients().client("sagemaker")
    lines = []
    for kind, name in sorted(run.resources.items()):
        if kind != "endpoint":
            continue
        shown = f"endpoint {name} (from {run.pipeline} run {run.run_id})"
        try:
            described = sagemaker.describe_endpoint(EndpointName=name)
        except sagemaker.exceptions.ClientError as ex:
            lines.append(f"{shown}: gone ({ex.response['Error'].get('Message', '')})")
            continue
        state = f"{described['EndpointStatus']}, config {described['EndpointConfigName']}"
        if described.get("FailureReason"):
            state += f", last failure: {described['FailureReason']}"
        lines.append(f"{shown}: {state}")
    return lines


def stack_endpoints(sagemaker, stack_name: str) -> Iterator[str]:
    """Endpoints tagged as created by this stack's pipelines."""
    for page in sagemaker.get_paginator("list_endpoints").paginate():
        for endpoint in page["Endpoints"]:
            tags = sagemaker.list_tags(ResourceArn=endpoint["EndpointArn"]).get("Tags", [])
            if {"Key": STACK_TAG, "Value": stack_name} in tags:
                yield endpoint["EndpointName"]
