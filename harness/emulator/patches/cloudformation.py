"""Patches to moto's CloudFormation: change sets as AWS runs them.

- Fn::Sub with a variables map keeps "$$" (moto turned it into "$").
- DescribeStackResources leaves out resources whose Condition is false.
- A change set whose only difference is a parameter value lists the resources
  that reference it (through Ref or Fn::Sub) as Modify, and executing it updates them (moto compared
  templates only).
- An update adds a resource whose Condition turns true and removes one whose
  Condition turns false (moto diffed templates only and "modified" it).
- Executing a change set records the new parameters, template and outputs (moto
  kept the old parameters, so a later UsePreviousValue failed with HTTP 500).
- An update that fails part-way reports the failing resource's event, rolls the
  stack back to its previous template and parameters and ends in
  UPDATE_ROLLBACK_COMPLETE; a failed creation ends in ROLLBACK_COMPLETE (moto
  raised and left the stack half-changed).
"""

from __future__ import annotations

import copy
import re

from moto.cloudformation import parsing
from moto.cloudformation.models import ChangeSet, CloudFormationBackend, Event, Stack
from moto.cloudformation.parsing import ResourceMap, parse_condition
from moto.core.exceptions import ServiceException


class ResourceFailed(Exception):
    """A resource could not be created or updated; carries which one and why."""

    def __init__(self, logical_id: str, resource_type: str, reason: str):
        super().__init__(f"{logical_id}: {reason}")
        self.logical_id = logical_id
        self.resource_type = resource_type
        self.reason = reason


def apply() -> None:
    leave_conditioned_out_resources_unlisted()
    substitute_sub_variables_literally()
    count_sub_variables_as_references()
    name_failing_resources()
    diff_change_sets_with_parameters()
    follow_conditions_in_updates()
    execute_change_sets_with_rollback()
    refuse_a_second_stack_of_one_name()
    refuse_templates_that_cannot_be_deployed()


def leave_conditioned_out_resources_unlisted() -> None:
    """A resource whose Condition is false was listed by DescribeStackResources as an
    entry with no LogicalResourceId; AWS does not list it at all."""
    original = Stack.stack_resources.fget

    def stack_resources(stack):
        return [resource for resource in original(stack) if resource is not None]

    stack_resources.__wrapped__ = original
    Stack.stack_resources = property(stack_resources)


def substitute_sub_variables_literally() -> None:
    """Fn::Sub's [template, variables] form went through Python's string.Template, which
    turns "$$" into "$": a state machine's "$$.Execution.Input" lost its context-object
    prefix. CloudFormation replaces ${Name} and nothing else."""
    original = parsing.clean_json

    def clean_json(resource_json, resources_map):
        if isinstance(resource_json, dict) and isinstance(resource_json.get("Fn::Sub"), list):
            text, variables = resource_json["Fn::Sub"]
            values = {name: str(original(value, resources_map)) for name, value in variables.items()}
            text = re.sub(
                r"\$\{([^!}][^}]*)\}",
                lambda m: values.get(m.group(1), m.group(0)),
                original(text, resources_map),
            )
            return original({"Fn::Sub": text}, resources_map)
        return original(resource_json, resources_map)

    clean_json.__wrapped__ = original
    parsing.clean_json = clean_json


_SUB_VARIABLE = re.compile(r"\$\{(?!!)([A-Za-z0-9_:.]+)\}")


def count_sub_variables_as_references() -> None:
    """moto finds a resource's parameters through `Ref` only; `Fn::Sub` uses them too."""
    original = parsing.get_references_from_template

    def get_references_from_template(template):
        references = original(template)
        for text in _sub_strings(template):
            references.extend(_SUB_VARIABLE.findall(text))
        return references

    parsing.get_references_from_template = get_references_from_template


def _sub_strings(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Fn::Sub":
                yield value if isinstance(value, str) else value[0]
            else:
                yield from _sub_strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _sub_strings(item)


def name_failing_resources() -> None:
    """Wrap moto's resource parsers so a failure says which logical resource failed."""
    for name in ("parse_and_create_resource", "parse_and_update_resource"):
        original = getattr(parsing, name)
        setattr(parsing, name, _naming_failures(original))


def _naming_failures(original):
    def parse(logical_id, resource_json, *args, **kwargs):
        try:
            return original(logical_id, resource_json, *args, **kwargs)
        except ResourceFailed:
            raise
        except Exception as ex:
            resource_type = resource_json.get("Type", "") if isinstance(resource_json, dict) else ""
            raise ResourceFailed(logical_id, resource_type, _reason(ex)) from ex

    parse.__wrapped__ = original
    return parse


def diff_change_sets_with_parameters() -> None:
    def diff(change_set: ChangeSet):
        resource_map = change_set.stack.resource_map
        template = change_set.template_dict
        by_action = resource_map.build_resource_diff(template, change_set.parameters)
        changes = []
        for action, names in by_action.items():
            for name in names:
                source = template["Resources"] if action != "Remove" else resource_map._resource_json_map
                changes.append(_change(action, name, source[name]["Type"]))
        return changes

    ChangeSet.diff = diff


def follow_conditions_in_updates() -> None:
    """An update whose parameters turn a resource's Condition true must add it, and false
    remove it; moto diffed the templates alone, so it "modified" the resource (and failed
    on its now-empty properties) and listed it as changed in change sets."""
    original_diff = ResourceMap.build_resource_diff
    original_update = ResourceMap.update

    def build_resource_diff(resource_map, other_template, parameters=None):
        by_action = original_diff(resource_map, other_template, parameters)
        old, new = resource_map._resource_json_map, other_template["Resources"]
        old_active = _active_resources(old, resource_map._template, resource_map.input_parameters)
        new_active = _active_resources(new, other_template, parameters or resource_map.input_parameters)
        return {
            "Add": [name for name in new if name in new_active and name not in old_active],
            "Modify": [name for name in by_action["Modify"] if name in new_active and name in old_active],
            "Remove": [name for name in old if name in old_active and name not in new_active],
        }

    def update(resource_map, template, parameters=None):
        removed = build_resource_diff(resource_map, template, parameters)["Remove"]
        original_update(resource_map, template, parameters)
        for name in removed:  # moto deletes them but kept listing them
            resource_map._parsed_resources.pop(name, None)

    build_resource_diff.__wrapped__ = original_diff
    update.__wrapped__ = original_update
    ResourceMap.build_resource_diff = build_resource_diff
    ResourceMap.update = update


def _active_resources(resources: dict, template: dict | None, parameters: dict) -> set[str]:
    """The resources whose Condition holds in `template` with `parameters` (defaults filled in)."""
    template = template or {}
    values = {name: spec.get("Default") for name, spec in (template.get("Parameters") or {}).items()}
    values.update(parameters or {})
    definitions = template.get("Conditions") or {}

    class Conditions(dict):
        def __missing__(self, name):
            self[name] = parse_condition(definitions[name], values, self)
            return self[name]

    conditions = Conditions()
    return {
        name
        for name, resource in resources.items()
        if "Condition" not in resource or conditions[resource["Condition"]]
    }


def _change(action: str, logical_id: str, resource_type: str):
    from moto.cloudformation.models import Change

    return Change(action=action, logical_resource_id=logical_id, resource_type=resource_type)


def execute_change_sets_with_rollback() -> None:
    def execute_change_set(backend: CloudFormationBackend, change_set_name: str, stack_name=None) -> None:
        change_set = change_set_of(backend, change_set_name, stack_name)
        stack: Stack = backend.stacks[change_set.stack_id]
        creating = change_set.change_set_type == "CREATE"
        verb = "CREATE" if creating else "UPDATE"
        previous = (stack.template, copy.deepcopy(stack.template_dict), dict(stack.parameters or {}))
        stack._add_stack_event(f"{verb}_IN_PROGRESS", resource_status_reason="User Initiated")
        stack.status = f"{verb}_IN_PROGRESS"
        try:
            change_set.apply()
        except Exception as ex:
            failure = ex if isinstance(ex, ResourceFailed) else ResourceFailed(stack.name, "", _reason(ex))
            _rollback(stack, change_set, creating, failure, previous)
            return
        stack.template = change_set.template
        stack._parse_template()
        stack.parameters = dict(change_set.parameters or {})
        stack.output_map = stack._create_output_map()
        stack.description = stack.template_dict.get("Description")
        stack._add_stack_event(f"{verb}_COMPLETE")
        stack.status = f"{verb}_COMPLETE"
        change_set.execution_status = "EXECUTE_COMPLETE"

    CloudFormationBackend.execute_change_set = execute_change_set


def _rollback(stack: Stack, change_set: ChangeSet, creating: bool, failure: ResourceFailed, previous) -> None:
    verb = "CREATE" if creating else "UPDATE"
    _resource_event(stack, failure.logical_id, failure.resource_type, f"{verb}_FAILED", failure.reason)
    change_set.execution_status = "EXECUTE_FAILED"
    change_set.status_reason = str(failure)
    reason = f"The following resource(s) failed to {verb.lower()}: [{failure.logical_id}]. "
    if creating:
        stack._add_stack_event("ROLLBACK_IN_PROGRESS", resource_status_reason=reason)
        stack.resource_map.delete()
        stack._add_stack_event("ROLLBACK_COMPLETE")
        stack.status = "ROLLBACK_COMPLETE"
        return
    template, template_dict, parameters = previous
    stack._add_stack_event("UPDATE_ROLLBACK_IN_PROGRESS", resource_status_reason=reason)
    stack.resource_map.update(template_dict, parameters or None)
    stack.template = template
    stack._parse_template()
    stack.parameters = parameters
    stack.output_map = stack._create_output_map()
    stack._add_stack_event("UPDATE_ROLLBACK_COMPLETE")
    stack.status = "UPDATE_ROLLBACK_COMPLETE"


def _resource_event(stack: Stack, logical_id: str, resource_type: str, status: str, reason: str) -> None:
    event = Event(
        stack_id=stack.stack_id,
        stack_name=stack.name,
        logical_resource_id=logical_id,
        physical_resource_id="",
        resource_type=resource_type,
        resource_status=status,
        resource_status_reason=reason,
        resource_properties=None,
    )
    stack.events.append(event)


def _reason(ex: BaseException) -> str:
    message = getattr(ex, "message", None) or str(ex) or type(ex).__name__
    return " ".join(str(message).split())


def refuse_a_second_stack_of_one_name() -> None:
    """moto's CreateChangeSet (type CREATE) made a new stack whatever already had the name, and its
    check-then-create was not atomic: two first deploys at once left two stacks of one name and
    both deployers waiting. As on AWS: CreateStack on a live name is AlreadyExistsException; a
    CREATE change set for a stack past review is refused; one for a stack still in review
    (REVIEW_IN_PROGRESS) joins that stack."""
    import threading

    from moto.cloudformation.exceptions import ValidationError
    from moto.cloudformation.models import CloudFormationBackend

    lock = threading.RLock()
    original_create_stack = CloudFormationBackend.create_stack
    original_create_change_set = CloudFormationBackend.create_change_set

    def create_stack(backend, name, *args, **kwargs):
        with lock:
            return original_create_stack(backend, name, *args, **kwargs)

    def create_change_set(backend, stack_name, change_set_name, template, parameters, description,
                          change_set_type, *args, **kwargs):  # fmt: skip
        with lock:
            live = [
                s for s in backend.stacks.values() if s.name == stack_name and s.status != "DELETE_COMPLETE"
            ]
            if change_set_type == "CREATE" and live and live[0].status != "REVIEW_IN_PROGRESS":
                raise ValidationError(
                    message=f"Stack [{stack_name}] already exists and cannot be created again with the "
                    f"changeSet [{change_set_name}]."
                )
            change_set_id, stack_id = original_create_change_set(
                backend, stack_name, change_set_name, template, parameters, description, change_set_type,
                *args, **kwargs,
            )  # fmt: skip
            if change_set_type == "CREATE" and live:  # join the stack in review, not a second one
                change_set = backend.change_sets[change_set_id]
                backend.stacks.pop(stack_id, None)
                change_set.stack, change_set.stack_id = live[0], live[0].stack_id
                stack_id = live[0].stack_id
            return change_set_id, stack_id

    original_execute = CloudFormationBackend.execute_change_set

    def execute_change_set(backend, change_set_name, stack_name=None):
        with lock:
            change_set = change_set_of(backend, change_set_name, stack_name)
            if (
                change_set is not None
                and change_set.change_set_type == "CREATE"
                and (change_set.stack.status != "REVIEW_IN_PROGRESS")
            ):  # another change set created the stack first: this one is out of date
                raise InvalidChangeSetStatus(
                    f"ChangeSet [{change_set.change_set_id}] cannot be executed in its current status "
                    "of [OBSOLETE]"
                )
        return original_execute(backend, change_set_name, stack_name)

    create_stack.__wrapped__ = original_create_stack
    create_change_set.__wrapped__ = original_create_change_set
    execute_change_set.__wrapped__ = original_execute
    CloudFormationBackend.create_stack = create_stack
    CloudFormationBackend.create_change_set = create_change_set
    CloudFormationBackend.execute_change_set = execute_change_set


def change_set_of(backend: CloudFormationBackend, change_set_name: str, stack_name: str | None) -> ChangeSet:
    """A change set by ARN, or by name within the stack named (names are unique per stack only;
    moto's lookup took the last of that name in any stack)."""
    from moto.cloudformation.exceptions import ValidationError

    if change_set_name in backend.change_sets:
        return backend.change_sets[change_set_name]
    matches = [
        c
        for c in backend.change_sets.values()
        if c.change_set_name == change_set_name and stack_name in (None, c.stack_name, c.stack_id)
    ]
    if not matches:
        raise ValidationError(change_set_name)
    return matches[-1]


class InvalidChangeSetStatus(ServiceException):
    code = "InvalidChangeSetStatus"


def refuse_templates_that_cannot_be_deployed() -> None:
    """A template that is not JSON or YAML answered HTTP 500, and one naming a resource type moto
    does not model was reported CREATE_COMPLETE with that resource never made. CreateStack,
    CreateChangeSet and UpdateStack now refuse both with ValidationError before anything starts."""
    from moto.cloudformation.models import CloudFormationBackend

    def checked(method_name: str, template_position: int):
        original = getattr(CloudFormationBackend, method_name)

        def method(backend, *args, **kwargs):
            template = kwargs.get(
                "template", args[template_position] if len(args) > template_position else None
            )
            if template:
                template_problem(template)
            return original(backend, *args, **kwargs)

        method.__wrapped__ = original
        setattr(CloudFormationBackend, method_name, method)

    checked("create_stack", 1)  # (name, template, ...)
    checked("create_change_set", 2)  # (stack_name, change_set_name, template, ...)
    checked("update_stack", 1)  # (name, template, ...)


def template_problem(template: str) -> None:
    """Raise ValidationError, worded as CloudFormation words it, for a template it cannot deploy."""
    import json as json_module

    import yaml
    from moto.cloudformation.exceptions import ValidationError
    from moto.cloudformation.parsing import NULL_MODELS, get_model_map

    try:
        document = Stack.parse_template(template)
    except (yaml.YAMLError, ValueError) as ex:
        kind = "JSON" if template.lstrip().startswith("{") else "YAML"
        where = ""
        mark = getattr(ex, "problem_mark", None)
        if mark is not None:
            where = f" (line {mark.line + 1}, column {mark.column + 1})"
        elif isinstance(ex, json_module.JSONDecodeError):
            where = f" (line {ex.lineno}, column {ex.colno})"
        raise ValidationError(message=f"Template format error: {kind} not well-formed.{where}") from None
    if not isinstance(document, dict):
        raise ValidationError(message="Template format error: unsupported structure.")
    resources = document.get("Resources")
    if not isinstance(resources, dict) or not resources:
        raise ValidationError(message="Template format error: At least one Resources member must be defined.")
    for logical_id, resource in resources.items():
        if not isinstance(resource, dict) or not isinstance(resource.get("Type"), str):
            raise ValidationError(
                message=f"Template format error: [/Resources/{logical_id}] Every Resources object must "
                "contain a Type member."
            )
    if document.get("Transform"):
        return  # a transform names its own resource types
    known = get_model_map()
    unmade = sorted(
        {
            r["Type"]
            for r in resources.values()
            if r["Type"] not in known
            and r["Type"] not in NULL_MODELS
            and not r["Type"].startswith("Custom::")
        }
    )
    if unmade:
        raise ValidationError(
            message="Template format error: the local AWS does not create resource type(s) "
            f"[{', '.join(unmade)}] (it would report them created without making them)"
        )
