"""Release the pipelines to a target: job image, code bundle, stack. `deploy` is this;
`run` does it first. `destroy` removes the stack and keeps the bucket's data unless asked."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

from harness import build, deploy, package, records
from harness.config import Config
from harness.errors import HarnessError

PIPELINES = ("training", "inference")


@dataclasses.dataclass
class Release:
    image: dict
    code: package.Uploaded
    definitions: dict[str, str]  # pipeline -> ASL text, as built
    state_machines: dict[str, str]  # pipeline -> state machine ARN
    action: str  # created | updated | unchanged


def release(config: Config, target, report: Callable[[str], None]) -> Release:
    clients = target.clients()
    s3 = clients.client("s3")
    files = build.render(config)
    _check_definitions(clients.client("stepfunctions"), {n: files[f"{n}.asl.json"] for n in PIPELINES})
    image = target.job_image()
    tls_only = (clients.endpoint_url or "https:").startswith("https:")
    kms_key_arn = (
        _kms_key_arn(clients.client("kms"), config.aws.kms_key_id) if config.aws.kms_key_id else None
    )
    if deploy.ensure_bucket(s3, config.artifact_bucket, config.region, kms_key_arn, tls_only):
        report(f"created bucket {config.artifact_bucket}")
    code = package.upload_code(s3, config.artifact_bucket, package.code_bundle())
    report(f"code bundle {code.uri}" + ("" if code.uploaded else " (unchanged)"))
    parameters = {
        "ArtifactBucket": config.artifact_bucket,
        "JobImageUri": image["reference"],
        "ProcessingInstanceType": config.instances.processing,
        "TrainingInstanceType": config.instances.training,
        "TransformInstanceType": config.instances.transform,
        "SageMakerRoleArn": config.aws.sagemaker_role_arn or "",
        "InferenceScheduleExpression": config.schedule.inference or "",
        "InferenceDataUri": config.schedule.data_uri_in(config.artifact_bucket),
        "CodeUri": code.uri,
    }
    if kms_key_arn:
        parameters["KmsKeyArn"] = kms_key_arn
    try:
        deployed = deploy.deploy(
            clients.client("cloudformation"),
            config.stack_name,
            files[build.TEMPLATE_FILE],
            parameters,
            report,
            confirm=target.confirm,
        )
    except deploy.DeployError as ex:
        raise HarnessError(str(ex)) from None
    return Release(
        image=image,
        code=code,
        definitions={name: files[f"{name}.asl.json"] for name in PIPELINES},
        state_machines={name: deployed.outputs[f"{name.title()}StateMachineArn"] for name in PIPELINES},
        action=deployed.action,
    )


def _check_definitions(sfn, definitions: dict[str, str]) -> None:
    """Refuse, before anything is pushed or deployed, a definition the target's Step Functions
    does not accept (ValidateStateMachineDefinition)."""
    for name, definition in definitions.items():
        answer = sfn.validate_state_machine_definition(definition=definition, type="STANDARD")
        if answer["result"] == "OK":
            continue
        errors = [d for d in answer["diagnostics"] if d["severity"] == "ERROR"] or answer["diagnostics"]
        first = errors[0]
        where = f" at {first['location']}" if first.get("location") else ""
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise HarnessError(
            f"the {name} state machine definition does not validate: {first['code']}{where}: "
            f"{first['message']}{more}"
        )


def _kms_key_arn(kms, key_id: str) -> str:
    """The key's ARN (IAM policies need it), from an id, alias or ARN; one line if it is unusable."""
    from botocore.exceptions import ClientError

    try:
        metadata = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    except ClientError as ex:
        raise HarnessError(f"aws.kms_key_id {key_id}: {ex.response['Error'].get('Message', ex)}") from None
    if metadata.get("KeyState") != "Enabled":
        raise HarnessError(f"aws.kms_key_id {key_id}: the key is {metadata.get('KeyState')}, not Enabled")
    return metadata["Arn"]


def destroy(config: Config, target, delete_data: bool, report: Callable[[str], None]) -> None:
    clients = target.clients()
    try:
        gone = deploy.delete_stack(clients.client("cloudformation"), config.stack_name)
    except deploy.DeployError as ex:
        raise HarnessError(str(ex)) from None
    report(f"stack {config.stack_name} deleted" if gone else f"stack {config.stack_name} does not exist")
    if delete_data:
        removed = deploy.delete_bucket(clients.client("s3"), config.artifact_bucket)
        report(f"bucket {config.artifact_bucket} deleted ({removed} objects)")
    else:
        report(f"bucket {config.artifact_bucket} kept (--delete-data removes it)")


def schedule_status(config: Config, target, recent: int = 10) -> list[str]:
    """The deployed inference schedule and the executions it (or anyone but the harness) started."""
    clients = target.clients()
    outputs = deploy.stack_outputs(clients.client("cloudformation"), config.stack_name)
    if outputs is None:
        return [f"inference schedule: none deployed (no stack {config.stack_name}; `deploy` creates it)"]
    deployed = _deployed_schedule(clients, outputs)
    if deployed is None:
        return ["inference schedule: none (set schedule.inference to deploy one)"]
    rule, schedule_input = deployed
    lines = [
        f"inference schedule: {rule['ScheduleExpression']} {rule.get('State', '')} (rule {rule['Name']})",
        f"  each run scores {schedule_input.get('DataUri', '?')} with the published model",
    ]
    if target.name == "local":
        lines.append(
            "  the local AWS does not fire schedules: `run --pipeline inference --as-scheduled` "
            "starts one as the rule would"
        )
    executions = clients.client("stepfunctions").list_executions(
        stateMachineArn=outputs["InferenceStateMachineArn"], maxResults=100
    )["executions"]
    others = [e for e in executions if not records.started_by_harness(e["name"])][:recent]
    for execution in others:
        started = execution["startDate"].isoformat(timespec="seconds")
        lines.append(f"  scheduled run inference-{execution['name']}: {execution['status']} {started}")
    return lines


def schedule_input(config: Config, target) -> dict:
    """The input the deployed schedule starts the inference pipeline with."""
    clients = target.clients()
    outputs = deploy.stack_outputs(clients.client("cloudformation"), config.stack_name) or {}
    deployed = _deployed_schedule(clients, outputs)
    if deployed is None:
        raise HarnessError(
            f"no inference schedule is deployed in stack {config.stack_name}: set schedule.inference"
        )
    return deployed[1]


def _deployed_schedule(clients, outputs: dict) -> tuple[dict, dict] | None:
    """The schedule's rule and the input its target gets, or None when none is deployed."""
    rule_name = outputs.get("InferenceScheduleName")
    if not rule_name:
        return None
    events = clients.client("events")
    rule = events.describe_rule(Name=rule_name)
    targets = events.list_targets_by_rule(Rule=rule_name)["Targets"]
    return rule, json.loads(targets[0].get("Input") or "{}") if targets else {}
