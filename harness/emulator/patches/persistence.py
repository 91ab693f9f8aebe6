"""Write-through hooks on moto: what the stores under the state dir keep, and when.

moto keeps everything in memory. Each function here wraps the moto methods after which a
store must write (the stores themselves only read and write files): S3 buckets and
objects, stack changes, state machines created through the API, executions that ended.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def write_s3_through(store) -> None:
    """Every bucket and object change is on disk before the API call that made it returns;
    a put the disk cannot keep is undone and refused (InsufficientStorage)."""
    from moto.s3.models import FakeKey, S3Backend

    from harness.emulator.s3_store import InsufficientStorage
    from harness.emulator.state_files import StateDirFull

    original_create = S3Backend.create_bucket
    original_delete_bucket = S3Backend.delete_bucket
    original_put = S3Backend.put_object
    original_delete = S3Backend.delete_object
    original_set_metadata = FakeKey.set_metadata

    def create_bucket(backend, bucket_name, region_name, *args, **kwargs):
        bucket = original_create(backend, bucket_name, region_name, *args, **kwargs)
        store.save_bucket(bucket_name, backend.account_id, backend.partition, region_name)
        return bucket

    def delete_bucket(backend, bucket_name):
        bucket = original_delete_bucket(backend, bucket_name)
        store.drop_bucket(bucket_name)
        return bucket

    def put_object(backend, bucket_name, key_name, value, *args, **kwargs):
        key = original_put(backend, bucket_name, key_name, value, *args, **kwargs)
        try:
            store.save_object(bucket_name, key)
        except StateDirFull as ex:  # not kept: not acknowledged either
            original_delete(backend, bucket_name, key_name)
            raise InsufficientStorage(str(ex)) from None
        return key

    def delete_object(backend, bucket_name, key_name, *args, **kwargs):
        result = original_delete(backend, bucket_name, key_name, *args, **kwargs)
        bucket = backend.buckets.get(bucket_name)
        current = bucket.keys.get(key_name) if bucket is not None else None
        if not isinstance(current, FakeKey):
            store.drop_object(bucket_name, key_name)
        return result

    def set_metadata(key, metadata, replace=False):
        original_set_metadata(key, metadata, replace)
        if key.bucket_name and store.has_object(key.bucket_name, key.name):
            store.save_object(key.bucket_name, key, data=False)

    for name, method, original in (
        ("create_bucket", create_bucket, original_create),
        ("delete_bucket", delete_bucket, original_delete_bucket),
        ("put_object", put_object, original_put),
        ("delete_object", delete_object, original_delete),
    ):
        method.__wrapped__ = original
        setattr(S3Backend, name, method)
    set_metadata.__wrapped__ = original_set_metadata
    FakeKey.set_metadata = set_metadata


def record_stack_changes(store) -> None:
    """Whenever a stack change completes (a change set executed, a stack created, updated or
    deleted), the stack store records the stack's template and parameters, or forgets it."""
    from moto.cloudformation.models import CloudFormationBackend

    def recording(method_name: str, stack_name_of):
        original = getattr(CloudFormationBackend, method_name)

        def method(backend, *args, **kwargs):
            result = original(backend, *args, **kwargs)
            store.record(backend, stack_name_of(backend, args, kwargs, result))
            return result

        method.__wrapped__ = original
        setattr(CloudFormationBackend, method_name, method)

    recording("create_stack", lambda backend, args, kwargs, result: result.name)
    recording("update_stack", lambda backend, args, kwargs, result: result.name)
    recording("execute_change_set", _change_set_stack)
    recording("delete_stack", _deleted_stack)


def _change_set_stack(backend, args, kwargs, result) -> str | None:
    """ExecuteChangeSet names the stack (a name or an id) or only the change set (a name or an ARN)."""
    stack = kwargs.get("stack_name")
    if stack:
        return backend.stacks[stack].name if stack in backend.stacks else stack
    return backend.describe_change_set(kwargs.get("change_set_name", args[0] if args else None)).stack.name


def _deleted_stack(backend, args, kwargs, result) -> str | None:
    """DeleteStack takes a name or a stack id; the stack has gone by the time we look."""
    given = kwargs.get("name_or_stack_id", args[0] if args else None)
    deleted = backend.deleted_stacks.get(given)
    return deleted.name if deleted is not None else given


def record_api_state_machines(store) -> None:
    """CreateStateMachine, UpdateStateMachine, TagResource and UntagResource through the API
    record the machine; DeleteStateMachine forgets it. (CloudFormation's machines come back
    with their stacks, so only the API's responses are wrapped.)"""
    from moto.stepfunctions.exceptions import StateMachineDoesNotExist
    from moto.stepfunctions.responses import StepFunctionResponse

    def arn_of(response, action: str) -> str | None:
        if action == "create_state_machine":
            backend, name = response.stepfunction_backend, response._get_param("name")
            where = f"{backend.partition}:states:{backend.region_name}:{backend.account_id}"
            return f"arn:{where}:stateMachine:{name}"
        return response._get_param("stateMachineArn") or response._get_param("resourceArn")

    def keep(response, arn: str | None) -> None:
        backend = response.stepfunction_backend
        if not arn or ":stateMachine:" not in arn or arn.count(":") != 6:
            return  # an execution, activity, version or alias: not kept
        try:
            machine = backend.describe_state_machine(arn)
        except StateMachineDoesNotExist:
            store.drop(backend.account_id, backend.region_name, arn.rsplit(":", 1)[1])
            return
        if action_is_api_made(store, backend, machine):
            store.record(backend, machine)

    def wrapping(action: str):
        original = getattr(StepFunctionResponse, action)

        def method(response):
            result = original(response)
            keep(response, arn_of(response, action))
            return result

        method.__wrapped__ = original
        setattr(StepFunctionResponse, action, method)

    for action in (
        "create_state_machine",
        "update_state_machine",
        "delete_state_machine",
        "tag_resource",
        "untag_resource",
    ):
        wrapping(action)


def action_is_api_made(store, backend, machine) -> bool:
    """A machine is the API's when it is kept already or no stack made it."""
    from moto.cloudformation.models import cloudformation_backends

    if store.has(backend.account_id, backend.region_name, machine.name):
        return True
    stacks = cloudformation_backends[backend.account_id][backend.region_name].stacks.values()
    return not any(
        getattr(resource, "arn", None) == machine.arn
        for stack in stacks
        for resource in stack.resource_map._parsed_resources.values()
    )


def keep_ended_executions(store) -> None:
    """An execution that ends (succeeded, failed, aborted, timed out) is written to the store:
    its description and its events outlive the local AWS (harness.emulator.execution_store)."""
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

    from harness.emulator.patches.stepfunctions import execution_description

    original = BaseExecutionWorkerCommunication.terminated

    def terminated(communication) -> None:
        original(communication)
        execution = communication.execution
        try:
            store.record(execution_description(execution), list(execution.to_history_output()["events"]))
        except Exception:  # a record that cannot be kept must not break the execution's end
            log.warning("could not keep execution %s", execution.execution_arn, exc_info=True)

    terminated.__wrapped__ = original
    BaseExecutionWorkerCommunication.terminated = terminated


# IAM API actions that change roles or policies
_IAM_CHANGES = (
    "create_", "delete_", "put_", "attach_", "detach_", "update_", "tag_", "untag_",
    "set_default_policy_version", "add_role_to_", "remove_role_from_",
)  # fmt: skip


def record_api_iam(store) -> None:
    """Every IAM API call that changes something and succeeds records the account's API-made
    roles and policies (harness.emulator.iam_store). Wrapped at IAM's dispatch, once, rather
    than each operation: what each one answers is moto's, unchanged."""
    from moto.core.utils import camelcase_to_underscores
    from moto.iam.responses import IamResponse

    original = IamResponse.call_action

    def call_action(response):
        answered = original(response)
        status = answered[0] if isinstance(answered, tuple) else 200
        if int(status) < 300 and camelcase_to_underscores(response._get_action()).startswith(_IAM_CHANGES):
            store.record(response.backend)
        return answered

    call_action.__wrapped__ = original
    IamResponse.call_action = call_action


# ECR API actions that change a repository's record (images are the registry's, on disk)
_ECR_CHANGES = (
    "create_repository", "delete_repository", "tag_resource", "untag_resource", "put_image_tag_mutability",
    "put_image_scanning_configuration", "set_repository_policy", "delete_repository_policy",
    "put_lifecycle_policy", "delete_lifecycle_policy",
)  # fmt: skip


def record_api_ecr(store) -> None:
    """Every ECR API call that changes a repository and succeeds records the region's
    repositories (harness.emulator.ecr_store). Wrapped at ECR's dispatch, once."""
    from moto.core.utils import camelcase_to_underscores
    from moto.ecr.responses import ECRResponse

    original = ECRResponse.call_action

    def call_action(response):
        answered = original(response)
        status = answered[0] if isinstance(answered, tuple) else 200
        if int(status) < 300 and camelcase_to_underscores(response._get_action()) in _ECR_CHANGES:
            store.record(response.ecr_backend)
        return answered

    call_action.__wrapped__ = original
    ECRResponse.call_action = call_action
