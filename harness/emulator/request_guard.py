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
Whatever still fails inside moto answers a JSON `InternalFailure` naming the operation,
never an HTML page.

The query-protocol services (CloudFormation, IAM, STS: `Action=` in a form body, the
service named by the request's signature) get the same first two checks and the same
last resort, answered in their XML error shape (`InvalidAction` for an operation the
service does not have).
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
_SIGNED_SERVICE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")
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
            return _answer(start_response, *refusal)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return _no_html_errors(app, environ, start_response, f"{SERVICES[prefix][0]}.{operation}")

    return application


def _query_guarded(app, environ, start_response):
    """CloudFormation, IAM and STS requests: the operation exists and is served, or an XML refusal."""
    signed = _SIGNED_SERVICE.search(environ.get("HTTP_AUTHORIZATION", ""))
    service = signed.group(1) if signed else None
    if service not in QUERY_SERVICES or environ.get("REQUEST_METHOD") != "POST":
        return app(environ, start_response)
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
    operation = (form.get("Action") or [""])[0]
    if not operation:
        return app(environ, start_response)
    if operation not in _model(service).operation_names:
        message = f"Could not find operation {operation} for version {(form.get('Version') or [''])[0]}"
        return _answer_xml(start_response, 400, "InvalidAction", message)
    unsupported = _unsupported(service, operation, QUERY_SERVICES[service])
    if unsupported:
        return _answer_xml(start_response, 501, "UnsupportedOperation", unsupported)
    return _no_html_errors(app, environ, start_response, f"{service}.{operation}", xml=True)


def _refusal(prefix: str, operation: str, body: bytes) -> tuple[int, str, str] | None:
    service, responses = SERVICES[prefix]
    model = _model(service)
    if operation not in model.operation_names:
        return 400, "UnknownOperationException", f"{prefix}.{operation} is not an operation of {service}"
    unsupported = _unsupported(service, operation, responses)
    if unsupported:
        return 501, "UnsupportedOperation", unsupported
    try:
        params = json.loads(body or b"{}")
    except ValueError:
        return 400, "SerializationException", "the request body is not JSON"
    if not isinstance(params, dict):
        return 400, "SerializationException", "Start of structure or map expected"
    shape = model.operation_model(operation).input_shape
    if shape is None:
        return None
    return _validation_problem(params, shape)


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
    constraints += [
        f"Value '{value}' at '{where}' failed to satisfy constraint: Member must satisfy enum value set: "
        f"[{', '.join(allowed)}]"
        for where, value, allowed in _outside_enums(params, shape, "")
    ]
    if not constraints:
        return None
    count = len(constraints)
    heading = f"{count} validation error{'s' if count > 1 else ''} detected: "
    return 400, "ValidationException", heading + "; ".join(constraints)


def _outside_enums(value, shape, where: str):
    """(AWS's member path, value, allowed values) for each string outside its shape's enum."""
    kind = shape.type_name
    if kind == "string" and shape.enum and isinstance(value, str) and value not in shape.enum:
        yield where, value, shape.enum
    elif kind == "structure" and isinstance(value, dict):
        for name, member in value.items():
            if name in shape.members:
                step = name[:1].lower() + name[1:]
                yield from _outside_enums(member, shape.members[name], f"{where}.{step}" if where else step)
    elif kind == "list" and isinstance(value, list):
        for index, item in enumerate(value):
            yield from _outside_enums(item, shape.member, f"{where}.{index + 1}.member")
    elif kind == "map" and isinstance(value, dict):
        for item in value.values():
            yield from _outside_enums(item, shape.value, where)


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


def _no_html_errors(app, environ, start_response, operation: str, xml: bool = False):
    """Pass the answer through, except an HTML 500 from inside moto: an InternalFailure in the
    service's own error shape."""
    caught = {}

    def capture(status, headers, exc_info=None):
        caught["status"], caught["headers"] = status, headers
        return lambda data: None

    chunks = list(app(environ, capture))
    content_type = dict((k.lower(), v) for k, v in caught["headers"]).get("content-type", "")
    if caught["status"].startswith("500") and "html" in content_type:
        answer = _answer_xml if xml else _answer
        return answer(
            start_response, 500, "InternalFailure", f"the local AWS failed on {operation}: see its log"
        )
    start_response(caught["status"], caught["headers"])
    return chunks


def _answer(start_response, status: int, code: str, message: str):
    body = json.dumps({"__type": code, "message": message}).encode()
    reason = {400: "Bad Request", 500: "Internal Server Error", 501: "Not Implemented"}[status]
    start_response(
        f"{status} {reason}",
        [
            ("Content-Type", "application/x-amz-json-1.1"),
            ("Content-Length", str(len(body))),
            ("x-amzn-ErrorType", code),
        ],
    )
    return [body]


def _answer_xml(start_response, status: int, code: str, message: str):
    """The query protocol's error document (what botocore's query parser reads)."""
    from xml.sax.saxutils import escape

    sender = "Sender" if status < 500 else "Receiver"
    body = (
        f"<ErrorResponse><Error><Type>{sender}</Type><Code>{code}</Code>"
        f"<Message>{escape(message)}</Message></Error><RequestId>local</RequestId></ErrorResponse>"
    ).encode()
    reason = {400: "Bad Request", 500: "Internal Server Error", 501: "Not Implemented"}[status]
    start_response(f"{status} {reason}", [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))])
    return [body]


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
