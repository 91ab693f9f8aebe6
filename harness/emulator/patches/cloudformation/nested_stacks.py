"""Nested stacks (`AWS::CloudFormation::Stack`) as `aws cloudformation package` + `deploy`
use them.

- A TemplateURL names an object of the local AWS's S3 in any form a client writes:
  `s3://bucket/key`, path style on any host (`http://127.0.0.1:4566/bucket/key`,
  `localhost`, `s3.amazonaws.com`), virtual-host style (`bucket.s3.amazonaws.com`,
  `bucket.s3.us-east-1.amazonaws.com`, `bucket.localhost`), with `?versionId=`.
  moto read `http://127.0.0.1:PORT/bucket/key` as the bucket "127".
- A nested stack is named `<parent>-<logical id>-<suffix>`, its Ref is its stack ID,
  `Fn::GetAtt Child.Outputs.X` reads its output, DescribeStacks gives its ParentId
  and RootId; an update of the parent updates it in place (moto deleted and created it
  again); a child that fails rolls itself back and fails the parent with AWS's words.
- CreateStack rolls a stack whose resource fails back (CREATE_FAILED event,
  ROLLBACK_COMPLETE), as AWS does by default (moto answered HTTP 500 and left it
  half-made).
"""

from __future__ import annotations

from harness.emulator.s3_uris import object_of_url


def read_template_urls_as_aws() -> None:
    """Every place moto reads a TemplateURL (CreateStack, UpdateStack, CreateChangeSet,
    ValidateTemplate, nested stacks) goes through `template_at`."""
    import moto.cloudformation.models as models
    import moto.cloudformation.responses as responses
    import moto.cloudformation.utils as utils

    original = utils.get_stack_from_s3_url
    template_at.__wrapped__ = original
    for module in (utils, models, responses):
        if hasattr(module, "get_stack_from_s3_url"):
            module.get_stack_from_s3_url = template_at


def template_at(template_url: str, account_id: str, partition: str) -> str:
    """The text of the template a TemplateURL names, or ValidationError as AWS words it."""
    from moto.cloudformation.exceptions import ValidationError
    from moto.s3.models import s3_backends

    s3 = s3_backends[account_id][partition]
    try:
        bucket, key, version = object_of_url(template_url, lambda name: name in s3.buckets)
    except ValueError:
        raise ValidationError(message="TemplateURL must be a supported URL.") from None
    try:
        stored = s3.get_object(bucket, key, version_id=version)
    except Exception:
        stored = None
    if stored is None:
        raise ValidationError(
            message=f"S3 error: The specified key does not exist. (TemplateURL {template_url}: "
            "TemplateURL must reference a valid S3 object to which you have access.)"
        )
    return stored.value.decode("utf-8")


def nest_stacks_as_aws() -> None:
    from moto.cloudformation.models import Stack

    Stack.create_from_cloudformation_json = classmethod(_create_nested)
    Stack.update_from_cloudformation_json = classmethod(_update_nested)
    Stack.physical_resource_id = property(lambda stack: stack.stack_id)
    Stack.get_cfn_attribute = _output_of
    Stack.parent_id = None  # DescribeStacks' ParentId and RootId, for nested stacks only
    Stack.root_id = None


def _output_of(stack, attribute_name: str):
    from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

    if attribute_name.startswith("Outputs."):
        wanted = attribute_name.removeprefix("Outputs.")
        for output in stack.outputs or []:
            if output["OutputKey"] == wanted:
                return output["OutputValue"]
    raise UnformattedGetAttTemplateException()


def _create_nested(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    from moto.cloudformation.models import cloudformation_backends
    from moto.utilities.utils import get_partition

    backend = cloudformation_backends[account_id][region_name]
    properties = cloudformation_json["Properties"]
    template = template_at(properties["TemplateURL"], account_id, get_partition(region_name))
    parent = backend.stacks.get(kwargs.get("StackId"))
    stack = backend.create_stack(
        name=resource_name,
        template=template,
        parameters=_parameter_values(properties.get("Parameters")),
        tags=getattr(parent, "tags", None),
        nested_in=parent,
    )
    if stack.status != "CREATE_COMPLETE":
        failure = _embedded_failure(stack, "created")
        backend.delete_stack(stack.stack_id)  # the parent's rollback removes it, as on AWS
        raise failure
    return stack


def _update_nested(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name):
    import copy

    from moto.utilities.utils import get_partition

    from harness.emulator.patches.cloudformation.change_sets import failed_resources, roll_back_update

    stack = original_resource
    properties = cloudformation_json["Properties"]
    template = template_at(properties["TemplateURL"], account_id, get_partition(region_name))
    previous = (stack.template, copy.deepcopy(stack.template_dict), dict(stack.parameters or {}))
    try:
        stack.update(template, parameters=_parameter_values(properties.get("Parameters")))
    except Exception as ex:
        roll_back_update(stack, ex, previous)
        raise _embedded_failure(stack, "updated", failed_resources(stack)) from None
    return stack


def _parameter_values(parameters) -> dict:
    """Nested stack parameters as strings; lists (CommaDelimitedList) joined as AWS joins them."""
    return {
        name: ",".join(map(str, value)) if isinstance(value, list) else str(value)
        for name, value in (parameters or {}).items()
    }


def _embedded_failure(stack, verb: str, failed: list[str] | None = None) -> Exception:
    from moto.cloudformation.exceptions import ValidationError

    from harness.emulator.patches.cloudformation.change_sets import failed_resources

    failed = failed if failed is not None else failed_resources(stack)
    return ValidationError(
        message=f"Embedded stack {stack.stack_id} was not successfully {verb}: The following resource(s) "
        f"failed to {'create' if verb == 'created' else 'update'}: [{', '.join(failed)}]."
    )


def roll_back_failed_creations() -> None:
    """CreateStack: a resource that fails is a CREATE_FAILED event, then the stack rolls back
    (its resources deleted) to ROLLBACK_COMPLETE; CreateStack itself has answered already,
    as on AWS. (Only CreateStack calls Stack.create_resources; change sets apply an update.)"""
    from moto.cloudformation.models import Stack

    from harness.emulator.patches.cloudformation.change_sets import roll_back_creation

    original = Stack.create_resources

    def create_resources(stack):
        try:
            original(stack)
        except Exception as ex:
            roll_back_creation(stack, ex)

    create_resources.__wrapped__ = original
    Stack.create_resources = create_resources


def create_nested_stacks_with_their_parent() -> None:
    """CreateStack takes `nested_in` (the parent stack) for a nested stack: its ParentId and
    RootId are set before anything records the stack."""
    from moto.cloudformation.models import CloudFormationBackend

    original = CloudFormationBackend.create_stack

    def create_stack(backend, name, template, parameters, *args, nested_in=None, **kwargs):
        stack = original(backend, name, template, parameters, *args, **kwargs)
        if nested_in is not None:
            stack.parent_id = nested_in.stack_id
            stack.root_id = nested_in.root_id or nested_in.stack_id
        return stack

    create_stack.__wrapped__ = original
    CloudFormationBackend.create_stack = create_stack
