"""Patches to moto's CloudFormation: a stack's events name its resources, as AWS's do.

moto recorded the stack's own events only; DescribeStackEvents on AWS lists each resource's
too (CREATE_IN_PROGRESS then CREATE_COMPLETE, and so for updates and deletions), and tools
that follow a deploy (`aws cloudformation deploy`, CDK, sam) print them. A resource that
fails has its *_FAILED event from change_sets.record_failure.
"""

from __future__ import annotations

import contextvars

# the stack whose deletion runs (DeleteStack takes it out of the backend's stacks first)
_DELETING: contextvars.ContextVar = contextvars.ContextVar("deleting_stack", default=None)


def report_resource_events() -> None:
    from moto.cloudformation import parsing
    from moto.cloudformation.models import Stack

    upstream_create = parsing.parse_and_create_resource
    upstream_update = parsing.parse_and_update_resource
    upstream_delete = parsing.ResourceMap._delete_resource
    if getattr(upstream_delete, "reports_events", False):
        return  # already applied

    def parse_and_create_resource(logical_id, resource_json, resources_map, *args, **kwargs):
        stack = _stack_of(resources_map)
        if stack is not None and _active(resource_json, resources_map):
            _event(stack, logical_id, resource_json, "CREATE_IN_PROGRESS")
        resource = upstream_create(logical_id, resource_json, resources_map, *args, **kwargs)
        if stack is not None and resource is not None:
            _event(stack, logical_id, resource_json, "CREATE_COMPLETE", resource)
        return resource

    def parse_and_update_resource(logical_id, resource_json, resources_map, *args, **kwargs):
        resource = upstream_update(logical_id, resource_json, resources_map, *args, **kwargs)
        stack = _stack_of(resources_map)
        if stack is not None:  # moto retries what fails on a later pass: reported once it is done
            _event(stack, logical_id, resource_json, "UPDATE_IN_PROGRESS", resource)
            _event(stack, logical_id, resource_json, "UPDATE_COMPLETE", resource)
        return resource

    def _delete_resource(resources_map, parsed_resource, resource_json):
        upstream_delete(resources_map, parsed_resource, resource_json)
        stack = _stack_of(resources_map)
        logical_id = getattr(parsed_resource, "logical_resource_id", None)
        if stack is not None and logical_id:
            _event(stack, logical_id, resource_json, "DELETE_IN_PROGRESS", parsed_resource)
            _event(stack, logical_id, resource_json, "DELETE_COMPLETE", parsed_resource)

    upstream_stack_delete = Stack.delete

    def delete(stack):
        token = _DELETING.set(stack)
        try:
            upstream_stack_delete(stack)
        finally:
            _DELETING.reset(token)

    delete.__wrapped__ = upstream_stack_delete
    Stack.delete = delete
    parse_and_create_resource.__wrapped__ = upstream_create
    parse_and_update_resource.__wrapped__ = upstream_update
    _delete_resource.__wrapped__ = upstream_delete
    _delete_resource.reports_events = True
    parsing.parse_and_create_resource = parse_and_create_resource
    parsing.parse_and_update_resource = parse_and_update_resource
    parsing.ResourceMap._delete_resource = _delete_resource


def _active(resource_json, resources_map) -> bool:
    condition = resource_json.get("Condition") if isinstance(resource_json, dict) else None
    return not condition or bool(resources_map.lazy_condition_map[condition])


def _stack_of(resources_map):
    """The stack a resource map belongs to (None while it is only being validated)."""
    from moto.cloudformation.models import cloudformation_backends

    try:
        backend = cloudformation_backends[resources_map._account_id][resources_map._region_name]
    except KeyError:
        return None
    stack = backend.stacks.get(resources_map.stack_id)
    deleting = _DELETING.get()
    if stack is None and deleting is not None and deleting.stack_id == resources_map.stack_id:
        stack = deleting
    return stack


def _event(stack, logical_id: str, resource_json, status: str, resource=None) -> None:
    from moto.cloudformation.models import Event

    stack.events.append(
        Event(
            stack_id=stack.stack_id,
            stack_name=stack.name,
            logical_resource_id=logical_id,
            physical_resource_id=getattr(resource, "physical_resource_id", None) or "",
            resource_type=resource_json.get("Type", "") if isinstance(resource_json, dict) else "",
            resource_status=status,
            resource_status_reason=None,
            resource_properties=None,
        )
    )


def describe_resources_by_their_events() -> None:
    """DescribeStackResource(s) and ListStackResources gave each resource its stack's status
    (UPDATE_ROLLBACK_COMPLETE for a queue) and a timestamp fixed at 2010, and no
    LastUpdatedTimestamp, which AWS's model requires: each resource's status and time are now
    those of its last event."""
    from moto.cloudformation import responses

    dto = responses.StackResourceDTO
    upstream_init = dto.__init__
    upstream_list = responses.CloudFormationResponse.list_stack_resources
    if getattr(upstream_init, "__wrapped__", None) is not None:
        return  # already applied

    def __init__(self, stack, resource):
        upstream_init(self, stack, resource)
        status, when = resource_state(stack, self.logical_resource_id)
        self.resource_status = status
        self.timestamp = self.last_updated_timestamp = when

    def list_stack_resources(response):
        result = upstream_list(response)
        stack = response.cloudformation_backend.get_stack(response._get_param("StackName"))
        for summary in result.result["StackResourceSummaries"]:
            status, when = resource_state(stack, summary["LogicalResourceId"])
            summary["ResourceStatus"], summary["LastUpdatedTimestamp"] = status, when
        return result

    __init__.__wrapped__ = upstream_init
    list_stack_resources.__wrapped__ = upstream_list
    dto.__init__ = __init__
    responses.CloudFormationResponse.list_stack_resources = list_stack_resources


def resource_state(stack, logical_id: str | None):
    """(status, time) of a resource's last event in the stack; a resource without one (made
    before events were recorded) is CREATE_COMPLETE since the stack's creation."""
    for event in reversed(stack.events):
        if event.logical_resource_id == logical_id and event.logical_resource_id != stack.name:
            return event.resource_status, event.timestamp
    return "CREATE_COMPLETE", stack.creation_time
