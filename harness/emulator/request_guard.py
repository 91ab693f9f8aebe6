"""Requests to the JSON-protocol services checked as AWS checks them, before moto sees them.

For Step Functions, SageMaker, CloudWatch Logs, ECR, EventBridge and KMS (the services
addressed by an `X-Amz-Target` header), against botocore's model of each operation:
- an operation the service does not have: `UnknownOperationException`;
- one moto does not implement, or whose work the local AWS does not do (refused.py):
  refused with `UnsupportedOperation` (HTTP 501), naming it: the local AWS never answers
  for work it does not do;
- a body that is not a JSON object: `SerializationException`;
- a member of the wrong type: `SerializationException`, worded as AWS words it;
- a missing required member, one shorter or smaller than allowed, or a value outside its
  enum (an instance type SageMaker does not have): `ValidationException`
  ("1 validation error detected: Value null at 'trainingJobName' failed to satisfy
  constraint: Member must not be null").
Whatever still fails inside moto answers an `InternalFailure` naming the operation, never
an HTML page (protocol_errors, the outermost layer).

The query-protocol services (CloudFormation, IAM, STS: `Action=` in a form body, the
service named by the request's signature) get the same first two checks, a missing
required member refused as `ValidationError`, and the same last resort, answered in their
XML error shape (`InvalidAction` for an operation the service does not have).
"""

from __future__ import annotations

import functools
import importlib
import io
import json
import re
import urllib.parse

from harness.emulator import refused
from harness.emulator.fidelity import JOURNAL
from harness.emulator.protocol_errors import OPERATION_KEY, json_error, query_error, signed_service

# X-Amz-Target prefix -> (botocore service name, moto's responses class that serves it)
SERVICES = {
    "AWSStepFunctions": ("stepfunctions", "moto.stepfunctions.responses:StepFunctionResponse"),
    "SageMaker": ("sagemaker", "harness.emulator.sagemaker.responses:LocalSageMakerResponse"),
    "Logs_20140328": ("logs", "moto.logs.responses:LogsResponse"),
    "AmazonEC2ContainerRegistry_V20150921": ("ecr", "moto.ecr.responses:ECRResponse"),
    "AWSEvents": ("events", "moto.events.responses:EventsHandler"),
    "TrentService": ("kms", "moto.kms.responses:KmsResponse"),
}
# SigV4 signing name -> moto's responses class, for the query-protocol services
QUERY_SERVICES = {
    "cloudformation": "moto.cloudformation.responses:CloudFormationResponse",
    "iam": "moto.iam.responses:IamResponse",
    "sts": "moto.sts.responses:TokenResponse",
}
_JSON_TYPES = {str: "STRING_VALUE", int: "NUMBER_VALUE", float: "NUMBER_VALUE", bool: "BOOLEAN_VALUE"}
_SHAPE_TYPES = {
    "integer": "Integer",
    "long": "Long",
    "float": "Float",
    "double": "Double",
    "boolean": "Boolean",
    "string": "String",
    "timestamp": "Date",
    "blob": "ByteBuffer",
}


def guarded(app):
    """The WSGI app, with JSON-protocol requests checked first (see the module docstring)."""

    def application(environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        prefix, _, operation = target.partition(".")
        if prefix not in SERVICES or not operation:
            return _query_guarded(app, environ, start_response)
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        refusal = _refusal(prefix, operation, body)
        if refusal is not None:
            return json_error(start_response, *refusal)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ[OPERATION_KEY] = f"{SERVICES[prefix][0]}.{operation}"  # named if it fails inside
        return app(environ, start_response)

    return application


def _query_guarded(app, environ, start_response):
    """CloudFormation, IAM and STS requests: the operation exists and is served, or an XML refusal."""
    service = signed_service(environ)
    if service not in QUERY_SERVICES or environ.get("REQUEST_METHOD") != "POST":
        return app(environ, start_response)
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    form = urllib.parse.parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    operation = (form.get("Action") or [""])[0]
    if not operation:
        return app(environ, start_response)
    if operation not in _model(service).operation_names:
        message = f"Could not find operation {operation} for version {(form.get('Version') or [''])[0]}"
        return query_error(start_response, 400, "InvalidAction", message)
    unsupported = _unsupported(service, operation, QUERY_SERVICES[service])
    if unsupported:
        return query_error(start_response, 501, "UnsupportedOperation", unsupported)
    missing = _missing_query_members(service, operation, form)
    if missing:
        return query_error(start_response, 400, "ValidationError", missing)
    misnamed = _misnamed(service, operation, form)
    if misnamed:
        return query_error(start_response, 400, "ValidationError", misnamed)
    environ[OPERATION_KEY] = f"{service}.{operation}"  # named if it fails inside
    return app(environ, start_response)


# Names AWS checks against a pattern botocore's model does not carry, by (service, operation):
# the member and its pattern. A stack's name becomes a file of the local AWS's state dir.
_NAME_PATTERNS = {
    ("cloudformation", "CreateStack"): ("StackName", r"[a-zA-Z][-a-zA-Z0-9]*"),
    ("cloudformation", "CreateChangeSet"): ("StackName", r"[a-zA-Z][-a-zA-Z0-9]*|arn:[-a-zA-Z0-9:/._+]*"),
}


def _misnamed(service: str, operation: str, form: dict) -> str | None:
    """AWS's validation message for a name outside its pattern (and 128 characters)."""
    if (service, operation) not in _NAME_PATTERNS:
        return None
    member, pattern = _NAME_PATTERNS[(service, operation)]
    value = (form.get(member) or [""])[0]
    if re.fullmatch(pattern, value) and len(value) <= 128:
        return None
    where = member[:1].lower() + member[1:]
    return (
        f"1 validation error detected: Value '{value}' at '{where}' failed to satisfy constraint: "
        f"Member must satisfy regular expression pattern: {pattern}"
    )


def _missing_query_members(service: str, operation: str, form: dict) -> str | None:
    """AWS's validation message for the required top-level members a query request lacks."""
    shape = _model(service).operation_model(operation).input_shape
    if shape is None:
        return None
    missing = [
        name
        for name in shape.required_members
        if not any(key == name or key.startswith(f"{name}.") for key in form)
    ]
    if not missing:
        return None
    constraints = [
        f"Value null at '{name[:1].lower() + name[1:]}' failed to satisfy constraint: Member must not be null"
        for name in missing
    ]
    count = len(constraints)
    return f"{count} validation error{'s' if count > 1 else ''} detected: " + "; ".join(constraints)


def _refusal(prefix: str, operation: str, body: bytes) -> tuple[int, str, str] | None:
    service, responses = SERVICES[prefix]
    model = _model(service)
    if operation not in model.operation_names:
        return 400, "UnknownOperationException", f"{prefix}.{operation} is not an operation of {service}"
    unsupported = _unsupported(service, operation, responses)
    if unsupported:
        return 501, "UnsupportedOperation", unsupported
    too_deep = 400, "SerializationException", "the request body is nested too deeply"
    try:
        params = json.loads(body or b"{}")
    except ValueError:
        return 400, "SerializationException", "the request body is not JSON"
    except RecursionError:
        return too_deep
    if not isinstance(params, dict):
        return 400, "SerializationException", "Start of structure or map expected"
    shape = model.operation_model(operation).input_shape
    try:
        return None if shape is None else _validation_problem(params, shape)
    except RecursionError:  # a value nested deeper than the validator walks
        return too_deep


def _unsupported(service: str, operation: str, responses: str) -> str | None:
    """Why the local AWS refuses an operation AWS has (no handler, or work it does not do)."""
    why = refused.reason(service, operation)
    if not why and hasattr(_responses_class(responses), _snake(operation)):
        return None
    because = f": {why}" if why else ""
    message = (
        f"the local AWS does not support {service}:{operation} (AWS does; this emulator does not{because})"
    )
    JOURNAL.note("", "unsupported", f"{service}:{operation} was refused as unsupported", of_job=False)
    return message


def _validation_problem(params: dict, shape) -> tuple[int, str, str] | None:
    from botocore.validate import ParamValidator

    report = ParamValidator().validate(params, shape)
    errors = report._errors  # (kind, path, details): botocore's own structured findings
    for kind, path, details in errors:
        if kind == "invalid type":
            value = details["param"]
            target = _target_type(shape, path)
            found = _JSON_TYPES.get(type(value), "START_OBJECT" if isinstance(value, dict) else "START_ARRAY")
            return 400, "SerializationException", f"{found} can not be converted to {target}"
    constraints = []
    for kind, path, details in errors:
        where = _member_path(path, details.get("required_name"))
        if kind == "missing required field":
            constraints.append(
                f"Value null at '{where}' failed to satisfy constraint: Member must not be null"
            )
        elif kind == "invalid length":
            constraints.append(
                f"Value at '{where}' failed to satisfy constraint: Member must have length greater than or "
                f"equal to {details['min_allowed']}"
            )
        elif kind == "invalid range":
            constraints.append(
                f"Value '{details['param']}' at '{where}' failed to satisfy constraint: "
                f"Member must have value greater than or equal to {details['min_allowed']}"
            )
    constraints += list(_beyond_the_model(params, shape, ""))
    if not constraints:
        return None
    count = len(constraints)
    heading = f"{count} validation error{'s' if count > 1 else ''} detected: "
    return 400, "ValidationException", heading + "; ".join(constraints)


_SIZED = {"string": str, "list": list, "map": dict}  # the shapes whose max is a length


@functools.cache
def _compiled(pattern: str) -> re.Pattern | None:
    """The model's (Java) pattern as Python reads it; None for the few it cannot (\\p{...}).
    `.` matches a line break too: SageMaker takes multi-line values (a `python -c` program in
    a ContainerEntrypoint) under a pattern of `.*`."""
    try:
        return re.compile(pattern, re.DOTALL)
    except re.error:
        return None


def _outside_pattern(shape, value: str) -> bool:
    pattern = shape.metadata.get("pattern")
    compiled = _compiled(pattern) if pattern else None
    return compiled is not None and compiled.fullmatch(value) is None


_NUMBERS = ("integer", "long", "float", "double")


def _beyond_the_model(value, shape, where: str):
    """AWS's constraint message for each value botocore's validator lets through: a string outside
    its shape's enum or pattern, and a string, list, map or number above its shape's maximum."""
    kind = shape.type_name
    limit = shape.metadata.get("max")
    if kind == "string" and shape.enum and isinstance(value, str) and value not in shape.enum:
        yield (
            f"Value '{value}' at '{where}' failed to satisfy constraint: Member must satisfy enum value set: "
            f"[{', '.join(shape.enum)}]"
        )
    elif limit is not None and kind in _SIZED and isinstance(value, _SIZED[kind]) and len(value) > limit:
        yield (
            f"Value at '{where}' failed to satisfy constraint: "
            f"Member must have length less than or equal to {limit}"
        )
    elif kind == "string" and isinstance(value, str) and _outside_pattern(shape, value):
        yield (
            f"Value '{value}' at '{where}' failed to satisfy constraint: "
            f"Member must satisfy regular expression pattern: {shape.metadata['pattern']}"
        )
    elif limit is not None and kind in _NUMBERS and isinstance(value, int | float) and value > limit:
        yield (
            f"Value '{value}' at '{where}' failed to satisfy constraint: "
            f"Member must have value less than or equal to {limit}"
        )
    if kind == "structure" and isinstance(value, dict):
        for name, member in value.items():
            if name in shape.members:
                step = name[:1].lower() + name[1:]
                yield from _beyond_the_model(
                    member, shape.members[name], f"{where}.{step}" if where else step
                )
    elif kind == "list" and isinstance(value, list):
        for index, item in enumerate(value):
            yield from _beyond_the_model(item, shape.member, f"{where}.{index + 1}.member")
    elif kind == "map" and isinstance(value, dict):
        for item in value.values():
            yield from _beyond_the_model(item, shape.value, where)


def _member_path(path: str, leaf: str | None) -> str:
    """botocore's `.A.B[0].C` as AWS writes it: `a.b.1.member.c`."""
    parts = [p for p in re.split(r"\.", path.strip(".")) if p] + ([leaf] if leaf else [])
    written = []
    for part in parts:
        name, *indexes = re.split(r"\[(\d+)\]", part)
        written.append(name[:1].lower() + name[1:])
        written += [f"{int(i) + 1}.member" for i in indexes if i]
    return ".".join(written)


def _target_type(shape, path: str) -> str:
    for part in [p for p in path.strip(".").split(".") if p]:
        name = re.sub(r"\[\d+\]", "", part)
        shape = shape.members[name] if shape.type_name == "structure" else shape
        while shape.type_name == "list" and "[" in part:
            shape = shape.member
            part = part[part.index("]") + 1 :]
    return _SHAPE_TYPES.get(shape.type_name, shape.type_name.title())


@functools.cache
def _model(service: str):
    import botocore.session

    return botocore.session.get_session().get_service_model(service)


@functools.cache
def _responses_class(path: str):
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def _snake(name: str) -> str:
    from moto.core.utils import camelcase_to_underscores

    return camelcase_to_underscores(name)
