"""Release the pipelines to a target: their images, code bundle, stack. `deploy` is this;
`run` does it first. `destroy` removes the stack and keeps the bucket's data unless asked."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

import yaml

from harness import build, deploy, deployed, package
from harness import images as image_builds
from harness.config import Config, image_repository
from harness.errors import HarnessError
from harness.template import (
    image_parameter,
    instance_parameter,
    schedule_parameters,
    state_machine_output,
    used_images,
)
from mlharness.contract import INSTANCE_KINDS


@dataclasses.dataclass
class Release:
    images: dict[str, dict]  # image name -> {reference, id, tag} of each image the pipelines run
    code: package.Uploaded
    definitions: dict[str, str]  # pipeline -> ASL text, as built
    state_machines: dict[str, str]  # pipeline -> state machine ARN
    action: str  # created | updated | unchanged


def release(config: Config, target, report: Callable[[str], None]) -> Release:
    clients = target.clients()
    s3 = clients.client("s3")
    files = build.render(config)
    definitions = {p.name: files[build.definition_file(p.name)] for p in config.pipelines}
    _check_definitions(clients.client("stepfunctions"), definitions)
    # from the endpoint S3 really is (AWS_ENDPOINT_URL included): a TLS-only policy over plain HTTP
    # would lock the harness out of its own bucket
    tls_only = clients.endpoint_of("s3").startswith("https:")
    kms_key_arn = (
        _kms_key_arn(clients.client("kms"), config.aws.kms_key_id) if config.aws.kms_key_id else None
    )
    try:
        created = deploy.ensure_bucket(s3, config.artifact_bucket, config.region, kms_key_arn, tls_only)
    except deploy.DeployError as ex:
        raise HarnessError(str(ex)) from None
    if created:
        report(f"created bucket {config.artifact_bucket}")
    parsed = {name: json.loads(text) for name, text in definitions.items()}
    images = {name: publish_image(config, target, name) for name in used_images(parsed, list(config.images))}
    try:
        bundle = package.code_bundle(
            config.project.root, importable=[name for p in config.pipelines for name in p.code]
        )
    except package.BundleError as ex:
        raise HarnessError(str(ex)) from None
    code = package.upload_code(s3, config.artifact_bucket, bundle)
    report(f"code bundle {code.uri}" + ("" if code.uploaded else " (unchanged)"))
    declared = yaml.safe_load(files[build.TEMPLATE_FILE])["Parameters"]
    parameters = {
        name: value
        for name, value in _parameter_values(config, images, code.uri, kms_key_arn).items()
        if name in declared
    }
    template_url = None
    if not deploy.fits_inline(files[build.TEMPLATE_FILE]):
        staged = package.upload_template(s3, config.artifact_bucket, files[build.TEMPLATE_FILE])
        template_url = deploy.template_url(staged.uri, clients.endpoint_of("s3"))
    try:
        with target.deploy_lock(config.stack_name):
            deployed_stack = deploy.deploy(
                clients.client("cloudformation"),
                config.stack_name,
                files[build.TEMPLATE_FILE],
                parameters,
                report,
                confirm=target.confirm,
                template_url=template_url,
            )
    except deploy.DeployError as ex:
        raise HarnessError(str(ex)) from None
    return Release(
        images=images,
        code=code,
        definitions=definitions,
        state_machines={p.name: deployed_stack.outputs[state_machine_output(p)] for p in config.pipelines},
        action=deployed_stack.action,
    )


def publish_image(config: Config, target, name: str) -> dict:
    """An image of the project where the target's jobs can run it: a build context built (or
    reused) and pushed to the target's ECR, by digest; an image URI as it is."""
    image = config.images[name]
    if image.uri is not None:
        return {"reference": image.uri, "id": None}
    builtin = image.context == image_builds.JOB_IMAGE_CONTEXT
    local_name = image_builds.JOB_IMAGE_REPOSITORY if builtin else f"{config.project.name}/{name}"
    try:
        tag = image_builds.ensure_image(image.context, local_name, log=target.log)
    except image_builds.ImageBuildError as ex:
        raise HarnessError(f"image {name}: {ex}") from None
    reference = target.publish_image(tag, image_repository(config, name))
    return {"reference": reference, "id": image_builds.image_id(tag), "tag": tag}


def _parameter_values(
    config: Config, images: dict[str, dict], code_uri: str, kms_key_arn: str | None
) -> dict[str, str]:
    """Every value the stack may take; the template declares those its pipelines use."""
    values = {
        "ArtifactBucket": config.artifact_bucket,
        **{image_parameter(name): image["reference"] for name, image in images.items()},
        "SageMakerRoleArn": config.aws.sagemaker_role_arn or "",
        "CodeUri": code_uri,
    }
    for kind, title in INSTANCE_KINDS.items():
        values[instance_parameter(kind)] = getattr(config.instances, title.lower())
    for pipeline in config.pipelines:
        if pipeline.schedule is not None:
            expression, data_uri = schedule_parameters(pipeline)
            schedule = config.schedule(pipeline.name)
            values[expression] = schedule.expression or ""
            values[data_uri] = schedule.data_uri_in(config.artifact_bucket)
    if kms_key_arn:
        values["KmsKeyArn"] = kms_key_arn
    return values


def _check_definitions(sfn, definitions: dict[str, str]) -> None:
    """Refuse, before anything is pushed or deployed, a definition the target's Step Functions
    does not accept (ValidateStateMachineDefinition)."""
    for name, definition in definitions.items():
        answer = sfn.validate_state_machine_definition(definition=definition, type="STANDARD")
        if answer["result"] != "OK":
            raise HarnessError(build.invalid_definition(name, answer["diagnostics"]))


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
    """The endpoints the stack's pipelines created, then the stack; the bucket unless kept."""
    clients = target.clients()
    sagemaker = clients.client("sagemaker")
    for endpoint in list(deployed.stack_endpoints(sagemaker, config.stack_name)):
        sagemaker.delete_endpoint(EndpointName=endpoint)
        report(f"endpoint {endpoint} deleted")
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
