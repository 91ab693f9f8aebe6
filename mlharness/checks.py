"""Build-time checks of a definition against its pipeline's declaration, offline.

- every SageMaker task uses a kind the pipeline declares, through an action the
  kind's IAM statements grant;
- every SageMaker name it gives (jobs, models, endpoint configs, endpoints) can be
  shown to start with `<prefix>-`: a literal, a `States.Format` whose template starts
  with it, the execution input (checked on the input the pipeline builds for a sample
  run), or a field a Pass or Task state set from one of those.

What cannot be shown is refused: on AWS the IAM statements would deny it at run time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping

from mlharness.contract import ContractError, Pipeline, RunContext
from mlharness.definitions import arguments as _task_arguments
from mlharness.definitions import states as _states
from mlharness.kinds import ENDPOINT, ENDPOINT_CONFIG, JOBS, KINDS, MODEL

# What each kind's IAM statements grant, on <kind>/<prefix>-* only.
KIND_ACTIONS = {
    **{
        kind.resource: tuple(kind.operation(verb) for verb in ("Create", "Describe", "Stop")) for kind in JOBS
    },
    MODEL.resource: ("CreateModel", "DescribeModel", "DeleteModel"),
    # CreateEndpoint and UpdateEndpoint are authorised on the endpoint config as well
    ENDPOINT_CONFIG.resource: (
        "CreateEndpointConfig",
        "DescribeEndpointConfig",
        "DeleteEndpointConfig",
        "CreateEndpoint",
        "UpdateEndpoint",
    ),
    ENDPOINT.resource: (
        "CreateEndpoint",
        "DescribeEndpoint",
        "UpdateEndpoint",
        "DeleteEndpoint",
        "InvokeEndpoint",
    ),
}
# The name member of each kind in SageMaker's API.
NAME_FIELDS = {kind.name_member: kind.resource for kind in KINDS.values()}
# Step Functions' optimised SageMaker integrations: the names each one's IAM action is authorised on.
OPTIMISED = {
    **{kind.integration: (kind.name_member,) for kind in JOBS},
    MODEL.integration: (MODEL.name_member,),
    ENDPOINT_CONFIG.integration: (ENDPOINT_CONFIG.name_member,),
    ENDPOINT.integration: (ENDPOINT.name_member, ENDPOINT_CONFIG.name_member),
    "updateEndpoint": (ENDPOINT.name_member, ENDPOINT_CONFIG.name_member),
}
_RESOURCE = re.compile(
    r"^arn:[^:]+:states:::(?P<sdk>aws-sdk:)?(?P<service>sagemaker|sagemakerruntime):"
    r"(?P<action>[a-zA-Z]+)(?:\.(?:sync|waitForTaskToken))?(?::\d+)?$"
)
_VERBS = ("create", "describe", "delete", "update", "stop", "invoke")
_FORMAT = re.compile(r"^States\.Format\(\s*'((?:[^'\\]|\\.)*)'\s*(?:,(.*))?\)$", re.S)
_JSONATA_LITERAL = re.compile(r"""^\{%\s*(['"])((?:(?!\1).)*)\1\s*&""", re.S)


def check_definition(pipeline: Pipeline, definition: dict, sample: RunContext) -> None:
    """Raise ContractError (one line) for the first problem found. sample: a placeholder run
    context, whose execution input the names are traced through."""
    tracer = _Tracer(definition, pipeline.execution_input(sample), sample.execution_name)
    for name, state in _states(definition):
        for kind, action, fields in _sagemaker_calls(pipeline, name, state):
            if kind not in pipeline.kinds:
                raise ContractError(
                    f"pipeline {pipeline.name!r}: state {name!r} uses SageMaker {kind}s, which the "
                    f"pipeline does not declare: add {kind!r} to its kinds"
                )
            if action not in KIND_ACTIONS[kind]:
                raise ContractError(
                    f"pipeline {pipeline.name!r}: state {name!r} calls sagemaker:{action}, which a "
                    f"pipeline may not ({kind}s allow {', '.join(KIND_ACTIONS[kind])})"
                )
            for field in fields:
                _check_name(pipeline, name, state, field, tracer)


def used_kinds(definition: dict) -> set[str]:
    """The SageMaker kinds a definition's tasks touch (for tests and the template)."""
    found = set()
    for _, state in _states(definition):
        match = _RESOURCE.match(str(state.get("Resource", "")))
        if match:
            found |= {NAME_FIELDS[f] for f in _fields_of(match, _arguments(state)) if f in NAME_FIELDS}
    return found


def _arguments(state: dict) -> dict:
    found = _task_arguments(state)
    return found if isinstance(found, dict) else {}


def _fields_of(match: re.Match, arguments: dict) -> list[str]:
    action = match["action"]
    if not match["sdk"] and match["service"] == "sagemaker":
        return list(OPTIMISED.get(action, ()))
    noun = action
    for verb in _VERBS:
        if action.startswith(verb):
            noun = action[len(verb) :]
            break
    return [f"{noun}Name"]


def _sagemaker_calls(pipeline: Pipeline, name: str, state: dict) -> Iterator[tuple[str, str, list[str]]]:
    resource = str(state.get("Resource", ""))
    match = _RESOURCE.match(resource)
    if state.get("Type") != "Task" or not match:
        if state.get("Type") == "Task" and ":sagemaker" in resource:
            raise ContractError(
                f"pipeline {pipeline.name!r}: state {name!r}: cannot read the SageMaker resource {resource!r}"
            )
        return
    action = match["action"]
    if not match["sdk"] and match["service"] == "sagemaker" and action not in OPTIMISED:
        raise ContractError(
            f"pipeline {pipeline.name!r}: state {name!r} uses sagemaker:{action}, which the harness "
            f"does not support (it supports {', '.join(OPTIMISED)})"
        )
    fields = _fields_of(match, _arguments(state))
    kinds = [NAME_FIELDS[f] for f in fields if f in NAME_FIELDS]
    if not kinds:
        raise ContractError(
            f"pipeline {pipeline.name!r}: state {name!r} calls sagemaker:{action[0].upper()}{action[1:]}, "
            "which cannot be limited to the pipeline's prefix"
        )
    iam_action = action[0].upper() + action[1:]
    for field in fields:  # every resource the action is authorised on
        yield NAME_FIELDS[field], iam_action, [field]


def _check_name(pipeline: Pipeline, state_name: str, state: dict, field: str, tracer: _Tracer) -> None:
    arguments = _arguments(state)
    if field in arguments:
        value, is_path = arguments[field], False
    elif f"{field}.$" in arguments:
        value, is_path = arguments[f"{field}.$"], True
    else:
        raise ContractError(f"pipeline {pipeline.name!r}: state {state_name!r} gives no {field}")
    start = tracer.start_of(value, is_path)
    wanted = f"{pipeline.prefix}-"
    if start is None:
        raise ContractError(
            f"pipeline {pipeline.name!r}: state {state_name!r}: cannot show that {field} ({value}) starts "
            f"with {wanted!r}; build it from the run id or States.Format('{wanted}{{}}', $$.Execution.Name)"
        )
    if not start.startswith(wanted):
        raise ContractError(
            f"pipeline {pipeline.name!r}: state {state_name!r}: {field} {start!r} does not start with "
            f"{wanted!r}, which its IAM statements allow"
        )


class _Tracer:
    """Follows a value back to where its text starts: literals, the execution input, fields set
    by Pass/Task states (Parameters or ResultSelector under a ResultPath), variables."""

    def __init__(self, definition: dict, execution_input: Mapping, execution_name: str):
        self.execution_input = execution_input
        self.execution_name = execution_name
        self.fields: dict[str, list[tuple[object, bool]]] = {}
        for _, state in _states(definition):
            self._collect(state)

    def _collect(self, state: dict) -> None:
        result = state.get("ResultSelector") if state.get("Type") == "Task" else state.get("Parameters")
        target = state.get("ResultPath", "$")
        if isinstance(result, dict) and isinstance(target, str) and target.startswith("$"):
            for key, value in _flatten(result, target):
                self.fields.setdefault(key, []).append(value)
        for key, value in _flatten(state.get("Assign") or {}, "$"):
            self.fields.setdefault("$" + key.removeprefix("$."), []).append(value)

    def start_of(self, value: object, is_path: bool, depth: int = 0) -> str | None:
        if depth > 20 or not isinstance(value, str):
            return None
        if not is_path:
            literal = _JSONATA_LITERAL.match(value)
            if literal:
                return literal[2]
            return None if value.startswith("{%") else value
        expression = value.strip()
        formatted = _FORMAT.match(expression)
        if formatted:
            template, args = formatted[1], _split_args(formatted[2] or "")
            if not template.startswith("{}"):
                return template.split("{}", 1)[0]
            first = self.start_of(args[0], True, depth + 1) if args else None
            return None if first is None else first + template[2:].split("{}", 1)[0]
        if expression == "$$.Execution.Name":
            return self.execution_name
        if expression.startswith("$$.Execution.Input"):
            found = _lookup(self.execution_input, _path_parts(expression.removeprefix("$$.Execution.Input")))
            return found if isinstance(found, str) else None
        if expression.startswith("$"):
            key = _normalise(expression)
            starts = [self.start_of(v, p, depth + 1) for v, p in self.fields.get(key, [])]
            if starts:
                return None if any(s is None for s in starts) else min(starts, key=len)
            found = _lookup(self.execution_input, _path_parts(expression.removeprefix("$")))
            return found if isinstance(found, str) else None
        return None


def _flatten(mapping: dict, at: str) -> Iterator[tuple[str, tuple[object, bool]]]:
    for key, value in mapping.items():
        path = key.removesuffix(".$")
        full = f"{at}.{path}" if at != "$" else f"$.{path}"
        if isinstance(value, dict) and not key.endswith(".$"):
            yield from _flatten(value, full)
        else:
            yield full, (value, key.endswith(".$"))


def _normalise(path: str) -> str:
    """$['a']['b'] and $.a.b alike."""
    parts = _path_parts(path.removeprefix("$"))
    return "$" + "".join(f".{p}" for p in parts) if path.startswith("$.") or path.startswith("$[") else path


def _path_parts(path: str) -> list[str]:
    return [p for p in re.findall(r"\.([A-Za-z0-9_]+)|\['([^']+)'\]", path) for p in p if p]


def _lookup(document: object, parts: list[str]) -> object:
    for part in parts:
        if not isinstance(document, Mapping) or part not in document:
            return None
        document = document[part]
    return document


def _split_args(text: str) -> list[str]:
    """Top-level comma-separated arguments of an intrinsic (quotes and parentheses respected)."""
    args, depth, quoted, current = [], 0, False, ""
    for char in text:
        if char == "'" and not current.endswith("\\"):
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        if char == "," and depth == 0 and not quoted:
            args.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip():
        args.append(current.strip())
    return args


def check_images(pipeline: Pipeline, definition: dict, known: set[str]) -> None:
    """Every image the definition names (`tasks.image_uri(name)`) is one the project declares."""
    from mlharness.tasks import image_logical_id, image_placeholders

    by_logical_id = {image_logical_id(name): name for name in known}
    for name, state in _states(definition):
        for logical_id in sorted(image_placeholders(json.dumps(_task_arguments(state)))):
            if logical_id not in by_logical_id:
                raise ContractError(
                    f"pipeline {pipeline.name!r}: state {name!r} runs the image ${{{logical_id}ImageUri}}, "
                    f"which the project does not name under images (it names {', '.join(sorted(known))})"
                )
