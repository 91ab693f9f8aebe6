"""Patches to moto's CloudFormation: change sets and updates as AWS runs them.

- A change set whose only difference is a parameter value lists the resources
  that reference it (through Ref or Fn::Sub) as Modify, and executing it updates them
  (moto compared templates only).
- An update adds a resource whose Condition turns true and removes one whose
  Condition turns false (moto diffed templates only and "modified" it).
- Executing a change set records the new parameters, template and outputs (moto
  kept the old parameters, so a later UsePreviousValue failed with HTTP 500).
- An update that fails part-way reports the failing resource's event, rolls the
  stack back to its previous template and parameters and ends in
  UPDATE_ROLLBACK_COMPLETE; a failed creation ends in ROLLBACK_COMPLETE (moto
  raised and left the stack half-changed).
- One live stack per name; change sets are found within their stack.
"""

from __future__ import annotations

import copy


class ResourceFailed(Exception):
    """A resource could not be created or updated; carries which one and why."""

    def __init__(self, logical_id: str, resource_type: str, reason: str):
        super().__init__(f"{logical_id}: {reason}")
        self.logical_id = logical_id
        self.resource_type = resource_type
        self.reason = reason


def name_failing_resources() -> None:
    """Wrap moto's resource parsers so a failure says which logical resource failed."""
    from moto.cloudformation import parsing

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
    from moto.cloudformation.models import ChangeSet

    original = ChangeSet.diff

    def diff(change_set):
        resource_map = change_set.stack.resource_map
        template = change_set.template_dict
        by_action = resource_map.build_resource_diff(template, change_set.parameters)
        changes = []
        for action, names in by_action.items():
            for name in names:
                source = template["Resources"] if action != "Remove" else resource_map._resource_json_map
                changes.append(_change(action, name, source[name]["Type"]))
        return changes

    diff.__wrapped__ = original
    ChangeSet.diff = diff


def follow_conditions_in_updates() -> None:
    """An update whose parameters turn a resource's Condition true must add it, and false
    remove it; moto diffed the templates alone, so it "modified" the resource (and failed
    on its now-empty properties) and listed it as changed in change sets. A parameter changes
    when its value, defaults included, does (moto compared the values given, so a deploy that
    kept a default "modified" every resource using it: AWS reports no changes)."""
    from moto.cloudformation.models import Stack
    from moto.cloudformation.parsing import ResourceMap, get_references_from_template

    original_diff = ResourceMap.build_resource_diff
    original_update = ResourceMap.update

    def build_resource_diff(resource_map, other_template, parameters=None):
        by_action = original_diff(resource_map, other_template)  # the templates alone
        old, new = resource_map._resource_json_map, other_template["Resources"]
        changed = _changed_parameters(resource_map, other_template, parameters)
        for name in new:
            unchanged_template = name in old and new[name] == old[name]
            if unchanged_template and changed & set(get_references_from_template(new[name])):
                by_action["Modify"].append(name)
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

    original_has_parameters = Stack.has_parameters

    def has_parameters(stack, other_parameters) -> bool:
        """Whether an update with these parameters and the stack's template changes none."""
        return not _changed_parameters(stack.resource_map, stack.template_dict, other_parameters)

    build_resource_diff.__wrapped__ = original_diff
    update.__wrapped__ = original_update
    has_parameters.__wrapped__ = original_has_parameters
    ResourceMap.build_resource_diff = build_resource_diff
    ResourceMap.update = update
    Stack.has_parameters = has_parameters


def _changed_parameters(resource_map, template: dict, parameters: dict | None) -> set[str]:
    """The parameters whose value, defaults filled in, differs between the stack and an update
    with `template` and `parameters` (None or empty: the stack's own, as moto's update keeps)."""
    old = _values(resource_map._template, resource_map.input_parameters)
    new = _values(template, parameters or resource_map.input_parameters)
    return {name for name in set(old) | set(new) if old.get(name) != new.get(name)}


def _values(template: dict | None, given: dict | None) -> dict[str, str]:
    specs = (template or {}).get("Parameters") or {}
    values = {name: spec.get("Default") for name, spec in specs.items() if isinstance(spec, dict)}
    values.update({name: value for name, value in (given or {}).items() if name in specs})
    return {name: _as_text(value) for name, value in values.items()}


def _as_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def _active_resources(resources: dict, template: dict | None, parameters: dict) -> set[str]:
    """The resources whose Condition holds in `template` with `parameters` (defaults filled in)."""
    from moto.cloudformation.parsing import parse_condition

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
    from moto.cloudformation.models import CloudFormationBackend

    original = CloudFormationBackend.execute_change_set

    def execute_change_set(backend, change_set_name: str, stack_name=None) -> None:
        change_set = change_set_of(backend, change_set_name, stack_name)
        stack = backend.stacks[change_set.stack_id]
        creating = change_set.change_set_type == "CREATE"
        verb = "CREATE" if creating else "UPDATE"
        previous = (stack.template, copy.deepcopy(stack.template_dict), dict(stack.parameters or {}))
        stack._add_stack_event(f"{verb}_IN_PROGRESS", resource_status_reason="User Initiated")
        stack.status = f"{verb}_IN_PROGRESS"
        if creating:  # moto's stack in review holds {} until executed; its template is the change set's
            stack.template = change_set.template
            stack._parse_template()
        try:
            change_set.apply()
        except Exception as ex:
            change_set.execution_status = "EXECUTE_FAILED"
            change_set.status_reason = _reason(ex)
            if creating:
                roll_back_creation(stack, ex)
            else:
                roll_back_update(stack, ex, previous)
            return
        stack.template = change_set.template
        stack._parse_template()
        stack.parameters = dict(change_set.parameters or {})
        stack.output_map = stack._create_output_map()
        stack.description = stack.template_dict.get("Description")
        stack._add_stack_event(f"{verb}_COMPLETE")
        stack.status = f"{verb}_COMPLETE"
        change_set.execution_status = "EXECUTE_COMPLETE"

    execute_change_set.__wrapped__ = original
    CloudFormationBackend.execute_change_set = execute_change_set


def record_failure(stack, verb: str, failure: ResourceFailed) -> None:
    """The failing resource's <verb>_FAILED event, with the reason AWS would give."""
    _resource_event(stack, failure.logical_id, failure.resource_type, f"{verb}_FAILED", failure.reason)


def failed_resources(stack) -> list[str]:
    """The logical ids of the resources whose last event in `stack` is a failure."""
    return sorted(
        {
            event.logical_resource_id
            for event in stack.events
            if event.resource_status.endswith("_FAILED") and event.logical_resource_id != stack.name
        }
    )


def roll_back_creation(stack, error: BaseException) -> None:
    """A creation failed: its failing resource's event, then every resource made so far deleted
    (ROLLBACK_COMPLETE)."""
    failure = error if isinstance(error, ResourceFailed) else ResourceFailed(stack.name, "", _reason(error))
    record_failure(stack, "CREATE", failure)
    reason = f"The following resource(s) failed to create: [{failure.logical_id}]. "
    stack._add_stack_event("ROLLBACK_IN_PROGRESS", resource_status_reason=reason)
    stack.resource_map.delete()
    stack._add_stack_event("ROLLBACK_COMPLETE")
    stack.status = "ROLLBACK_COMPLETE"


def roll_back_update(stack, error: BaseException, previous) -> None:
    """An update failed part-way: its failing resource's event, then the previous template and
    parameters put back (UPDATE_ROLLBACK_COMPLETE)."""
    failure = error if isinstance(error, ResourceFailed) else ResourceFailed(stack.name, "", _reason(error))
    record_failure(stack, "UPDATE", failure)
    reason = f"The following resource(s) failed to update: [{failure.logical_id}]. "
    template, template_dict, parameters = previous
    stack._add_stack_event("UPDATE_ROLLBACK_IN_PROGRESS", resource_status_reason=reason)
    stack.resource_map.update(template_dict, parameters or None)
    stack.template = template
    stack._parse_template()
    stack.parameters = parameters
    stack.output_map = stack._create_output_map()
    stack._add_stack_event("UPDATE_ROLLBACK_COMPLETE")
    stack.status = "UPDATE_ROLLBACK_COMPLETE"


def _resource_event(stack, logical_id: str, resource_type: str, status: str, reason: str) -> None:
    from moto.cloudformation.models import Event

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


# A stack in one of these can only be deleted (AWS refuses an update with ValidationError).
UNUPDATABLE_STATUSES = frozenset(
    {"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "ROLLBACK_IN_PROGRESS", "CREATE_FAILED", "REVIEW_IN_PROGRESS",
     "DELETE_IN_PROGRESS", "DELETE_FAILED"}
)  # fmt: skip


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
            if change_set_type == "UPDATE" and live and live[0].status in UNUPDATABLE_STATUSES:
                raise ValidationError(
                    message=f"Stack:{live[0].stack_id} is in {live[0].status} state and can not be updated."
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
                raise _invalid_change_set_status(
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


def report_empty_change_sets_as_aws() -> None:
    """CreateChangeSet with the stack's own template and parameters succeeds on AWS, and the
    change set is FAILED with "didn't contain changes" (which `aws cloudformation deploy
    --no-fail-on-empty-changeset` relies on); moto refused the call with "No updates are to be
    performed.", which only UpdateStack answers."""
    from moto.cloudformation.responses import CloudFormationResponse

    original = CloudFormationResponse._validate_different_update

    def _validate_different_update(response, *args, **kwargs):
        if response._get_action() == "CreateChangeSet":
            return None
        return original(response, *args, **kwargs)

    _validate_different_update.__wrapped__ = original
    CloudFormationResponse._validate_different_update = _validate_different_update


def _invalid_change_set_status(message: str) -> Exception:
    from moto.cloudformation.exceptions import CloudFormationError

    return CloudFormationError("InvalidChangeSetStatus", message)


def change_set_of(backend, change_set_name: str, stack_name: str | None):
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


def make_update_the_default_change_set_type() -> None:
    """CreateChangeSet without ChangeSetType makes an UPDATE change set on AWS (a CREATE one must
    be asked for); moto took it for CREATE, and failed on UsePreviousValue."""
    from moto.cloudformation.responses import CloudFormationResponse

    original = CloudFormationResponse.create_change_set
    if getattr(original, "defaults_to_update", False):
        return  # already applied

    def create_change_set(response):
        if not response._get_param("ChangeSetType"):
            read = response._get_param

            def _get_param(name, *default, **kwargs):
                return "UPDATE" if name == "ChangeSetType" else read(name, *default, **kwargs)

            response._get_param = _get_param
        return original(response)

    create_change_set.__wrapped__ = original
    create_change_set.defaults_to_update = True
    CloudFormationResponse.create_change_set = create_change_set
