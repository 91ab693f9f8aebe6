"""Build-time check of SageMaker requests against botocore's service model, offline.

Each SageMaker Task of a definition (the optimised integrations, `aws-sdk:sagemaker:*`)
sends its parameters as the request of one SageMaker operation. What the service
model says of that request (required members, members that exist, types, lengths,
list sizes, numeric ranges, enums, patterns) is checked here, so that a request
AWS would refuse at run time (`ContainerArguments: []`, an unknown member, a name
too long) is refused at build, naming the pipeline, the state and the member.

Values known only later are not judged: `"X.$"` paths, JSONata `{% %}` expressions,
and strings holding `${...}` deploy-time placeholders.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from mlharness.contract import ContractError, Pipeline
from mlharness.definitions import arguments, states

_TASK = re.compile(
    r"^arn:[^:]+:states:::(?P<sdk>aws-sdk:)?sagemaker:(?P<action>[a-zA-Z]+)(?:\.(?:sync|waitForTaskToken))?(?::\d+)?$"
)


@functools.cache
def _model():
    import botocore.session

    return botocore.session.get_session().get_service_model("sagemaker")


def check_requests(pipeline: Pipeline, definition: dict) -> None:
    """Raise ContractError (one line) for the first SageMaker request AWS would refuse."""
    for name, state in states(definition):
        match = _TASK.match(str(state.get("Resource", "")))
        if state.get("Type") != "Task" or not match:
            continue
        request = arguments(state)
        if not isinstance(request, dict):
            continue  # one JSONata expression: known at run time
        operation = match["action"][0].upper() + match["action"][1:]
        try:
            shape = _model().operation_model(operation).input_shape
        except Exception:  # noqa: BLE001  (an unknown action is the other checks' to name)
            continue
        problem = problem_of(request, shape, "")
        if problem:
            raise ContractError(
                f"pipeline {pipeline.name!r}: state {name!r}: SageMaker would refuse its {operation} "
                f"request: {problem}"
            )


def problem_of(value: Any, shape, where: str) -> str | None:
    """What botocore's `shape` says is wrong with `value` (None when nothing is)."""
    if _later(value):
        return None
    kind = shape.type_name
    if kind == "structure":
        return _structure(value, shape, where)
    if kind == "list":
        if not isinstance(value, list):
            return f"{where or 'the request'} must be a list"
        count = len(value)
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and count < low:
            return f"{where} has {count} member(s), at least {low} are required"
        if high is not None and count > high:
            return f"{where} has {count} members, at most {high} are allowed"
        for index, item in enumerate(value):
            found = problem_of(item, shape.member, f"{where}[{index}]")
            if found:
                return found
        return None
    if kind == "map":
        if not isinstance(value, dict):
            return f"{where} must be a mapping"
        high = shape.metadata.get("max")
        if high is not None and len(value) > high:
            return f"{where} has {len(value)} entries, at most {high} are allowed"
        for key, item in value.items():
            key = key.removesuffix(".$") if isinstance(key, str) else key
            found = problem_of(key, shape.key, f"{where} key") or problem_of(
                item, shape.value, f"{where}.{key}"
            )
            if found:
                return found
        return None
    if kind == "string":
        return _string(value, shape, where)
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{where} must be a whole number, not {value!r}"
        return _range(value, shape, where)
    if kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{where} must be a number, not {value!r}"
        return _range(value, shape, where)
    if kind == "boolean":
        return None if isinstance(value, bool) else f"{where} must be true or false, not {value!r}"
    return None  # timestamps, blobs: left to the service


def _structure(value: Any, shape, where: str) -> str | None:
    if not isinstance(value, dict):
        return f"{where or 'the request'} must be an object"
    given = {key.removesuffix(".$"): key for key in value}
    unknown = sorted(set(given) - set(shape.members))
    if unknown:
        return f"{_join(where, unknown[0])} is not a member of {shape.name}"
    missing = [member for member in shape.required_members if member not in given]
    if missing:
        return f"{_join(where, missing[0])} is required"
    for member, key in given.items():
        if key.endswith(".$"):
            continue  # a path: its value is known at run time
        found = problem_of(value[key], shape.members[member], _join(where, member))
        if found:
            return found
    return None


def _string(value: Any, shape, where: str) -> str | None:
    if not isinstance(value, str):
        return f"{where} must be a string, not {value!r}"
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and len(value) < low:
        return f"{where} {value!r} is shorter than {low} character(s)"
    if high is not None and len(value) > high:
        return f"{where} is {len(value)} characters long, at most {high} are allowed"
    if shape.enum and value not in shape.enum:
        shown = ", ".join(shape.enum[:8]) + (", ..." if len(shape.enum) > 8 else "")
        return f"{where} {value!r} is not one of {shown}"
    pattern = shape.metadata.get("pattern")
    if pattern:
        compiled = _compiled(pattern)
        if compiled is not None and not compiled.search(value):
            return f"{where} {value!r} does not match the pattern {pattern}"
    return None


@functools.cache
def _compiled(pattern: str) -> re.Pattern | None:
    try:
        return re.compile(pattern, re.S)
    except re.error:  # a pattern Python's engine reads otherwise than AWS's: not judged
        return None


def _range(value: float, shape, where: str) -> str | None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and value < low:
        return f"{where} is {value}, at least {low} is required"
    if high is not None and value > high:
        return f"{where} is {value}, at most {high} is allowed"
    return None


def _later(value: Any) -> bool:
    """A value known only at deploy or run time."""
    return isinstance(value, str) and ("${" in value or value.strip().startswith("{%"))


def _join(where: str, member: str) -> str:
    return f"{where}.{member}" if where else member
