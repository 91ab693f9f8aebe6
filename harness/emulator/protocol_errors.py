"""Every answer in its protocol's shape, never an HTML page.

The outermost request layer: whatever raises inside a layer or a handler, and whatever
handler answers werkzeug's HTML 500, becomes the error document the caller's protocol
reads, logged with its traceback: `InternalFailure` for the JSON and query protocols (as
the operation request_guard named), S3's `InternalError`, a JSON message for the local
AWS's own endpoints. The error documents themselves are built here for every layer.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from xml.sax.saxutils import escape

log = logging.getLogger(__name__)

OPERATION_KEY = "mlharness.operation"  # set by request_guard: "sagemaker.CreateTrainingJob"
OWN_PATHS = ("/_localstack/", "/_mlharness/")
QUERY_SERVICES = ("cloudformation", "iam", "sts")
_REASONS = {400: "Bad Request", 403: "Forbidden", 500: "Internal Server Error", 501: "Not Implemented"}
_SIGNED_SERVICE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")


def serving(app):
    """The WSGI app, answering its failures in the caller's protocol."""

    def application(environ, start_response):
        caught: dict = {}

        def capture(status, headers, exc_info=None):
            caught["status"], caught["headers"] = status, headers
            return lambda data: None

        try:
            chunks = list(app(environ, capture))
        except Exception:
            log.exception("the local AWS failed on %s", _what(environ))
            return failure(environ, start_response)
        content_type = dict((k.lower(), v) for k, v in caught.get("headers", [])).get("content-type", "")
        if caught.get("status", "").startswith("500") and "html" in content_type:
            log.error("the local AWS failed on %s (an HTML 500 from its handler)", _what(environ))
            return failure(environ, start_response)
        headers = caught["headers"]
        if "html" in content_type and environ.get("HTTP_X_AMZ_TARGET"):
            # a JSON answer some moto handlers label text/html: labelled as the JSON protocol's
            headers = [(k, v) for k, v in headers if k.lower() != "content-type"]
            headers.append(("Content-Type", "application/x-amz-json-1.1"))
        start_response(caught["status"], headers)
        return chunks

    return application


def failure(environ, start_response):
    """An internal failure, in the shape the request's protocol reads."""
    message = f"the local AWS failed on {_what(environ)}: see its log"
    path = environ.get("PATH_INFO", "")
    if environ.get("HTTP_X_AMZ_TARGET") or path.startswith("/endpoints/"):
        return json_error(start_response, 500, "InternalFailure", message)
    if path.startswith(OWN_PATHS):
        return _json(start_response, 500, {"message": message}, [])
    if signed_service(environ) in QUERY_SERVICES:
        return query_error(start_response, 500, "InternalFailure", message)
    return s3_error(start_response, 500, "InternalError", message)


def signed_service(environ) -> str | None:
    """The service a request is signed for (SigV4 header), None when unsigned."""
    signed = _SIGNED_SERVICE.search(environ.get("HTTP_AUTHORIZATION", ""))
    return signed.group(1) if signed else None


def json_error(start_response, status: int, code: str, message: str):
    """The JSON protocols' error document (botocore reads `__type` and x-amzn-ErrorType)."""
    return _json(start_response, status, {"__type": code, "message": message}, [("x-amzn-ErrorType", code)])


def query_error(start_response, status: int, code: str, message: str):
    """The query protocol's error document."""
    sender = "Sender" if status < 500 else "Receiver"
    body = (
        f"<ErrorResponse><Error><Type>{sender}</Type><Code>{code}</Code>"
        f"<Message>{escape(message)}</Message></Error><RequestId>{_request_id()}</RequestId></ErrorResponse>"
    ).encode()
    return _send(start_response, status, "text/xml", body, [])


def s3_error(start_response, status: int, code: str, message: str):
    """S3's (REST-XML) error document."""
    request_id = _request_id()
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
        f"<Message>{escape(message)}</Message><RequestId>{request_id}</RequestId></Error>"
    ).encode()
    return _send(start_response, status, "application/xml", body, [("x-amz-request-id", request_id)])


def _json(start_response, status: int, document: dict, headers: list):
    body = json.dumps(document).encode()
    return _send(start_response, status, "application/x-amz-json-1.1", body, headers)


def _send(start_response, status: int, content_type: str, body: bytes, headers: list):
    start_response(
        f"{status} {_REASONS.get(status, 'Error')}",
        [("Content-Type", content_type), ("Content-Length", str(len(body))), *headers],
    )
    return [body]


def _what(environ) -> str:
    method, path = environ.get("REQUEST_METHOD", "?"), environ.get("PATH_INFO", "")
    return environ.get(OPERATION_KEY) or f"{method} {path}"


def _request_id() -> str:
    return uuid.uuid4().hex.upper()[:16]
