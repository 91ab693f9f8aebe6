"""A Lambda runtime interface client for Python functions, standard library only.

It runs inside a function's container and does what AWS's own client (awslambdaric) does:
import the handler once (init), then loop on the Runtime API that AWS_LAMBDA_RUNTIME_API
names: take the next event, call the handler with it and a context object, post the
result or the error, in the shapes and with the error types AWS's client uses
(Runtime.ImportModuleError, Runtime.HandlerNotFound, Runtime.MarshalError, ...).

The local AWS mounts it at /var/runtime for functions packaged as a .zip; an image built
from the local base image can run it as its entry point (`python3 bootstrap.py app.handler`),
as an image built from AWS's base image runs awslambdaric.
"""

import importlib
import json
import os
import sys
import time
import traceback
import urllib.request

API = "http://{}/2018-06-01/runtime".format(os.environ.get("AWS_LAMBDA_RUNTIME_API", ""))
TASK_ROOT = os.environ.get("LAMBDA_TASK_ROOT", "/var/task")
BUILT_IN = set(sys.builtin_module_names)


class Fault(Exception):
    def __init__(self, error_type, message, trace=None):
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace or []


def call(method, path, body=b"", headers=None):
    request = urllib.request.Request(API + path, data=body if method == "POST" else None, method=method)
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    with urllib.request.urlopen(request, timeout=None) as answer:  # the next event may be minutes away
        return answer.headers, answer.read()


def error_document(error_type, message, trace, request_id=""):
    return {"errorMessage": message, "errorType": error_type, "requestId": request_id, "stackTrace": trace}


def from_exception(exc_info, request_id=""):
    kind, value, tb = exc_info
    trace = traceback.format_list(traceback.extract_tb(tb)[1:])  # the runtime's own frame left out
    return error_document(kind.__name__, str(value), trace, request_id)


def log_error(document):
    lines = ["[ERROR] {}: {}".format(document["errorType"], document["errorMessage"])]
    if document["stackTrace"]:
        lines.append("Traceback (most recent call last):")
        lines.extend(entry.rstrip("\n") for entry in document["stackTrace"])
    print("\n".join(lines), file=sys.stderr, flush=True)


def load_handler(spec):
    try:
        module_name, function_name = spec.rsplit(".", 1)
    except ValueError as ex:
        raise Fault("Runtime.MalformedHandlerName", f"Bad handler '{spec}': {ex}") from None
    if module_name.split(".")[0] in BUILT_IN:
        raise Fault(
            "Runtime.BuiltInModuleConflict", f"Cannot use built-in module {module_name} as a handler module"
        )
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as ex:
        raise Fault("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {ex}") from None
    except SyntaxError as ex:
        trace = [f'  File "{ex.filename}" Line {ex.lineno}\n    {ex.text}']
        message = f"Syntax error in module '{module_name}': {ex}"
        raise Fault("Runtime.UserCodeSyntaxError", message, trace) from None
    handler = getattr(module, function_name, None)
    if handler is None:
        raise Fault("Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'")
    return handler


class Context:
    def __init__(self, headers):
        self.aws_request_id = headers.get("Lambda-Runtime-Aws-Request-Id", "")
        self.invoked_function_arn = headers.get("Lambda-Runtime-Invoked-Function-Arn", "")
        self._deadline_ms = int(headers.get("Lambda-Runtime-Deadline-Ms") or 0)
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        client_context = headers.get("Lambda-Runtime-Client-Context")
        self.client_context = json.loads(client_context) if client_context else None
        identity = headers.get("Lambda-Runtime-Cognito-Identity")
        self.identity = json.loads(identity) if identity else None

    def get_remaining_time_in_millis(self):
        return max(0, self._deadline_ms - int(time.time() * 1000))


def post_error(path, document):
    body = json.dumps(document).encode()
    call("POST", path, body, {"Lambda-Runtime-Function-Error-Type": document["errorType"]})


def serve(handler):
    while True:
        headers, event_bytes = call("GET", "/invocation/next")
        request_id = headers.get("Lambda-Runtime-Aws-Request-Id", "")
        os.environ["_X_AMZN_TRACE_ID"] = headers.get("Lambda-Runtime-Trace-Id", "")
        path = f"/invocation/{request_id}"
        try:
            event = json.loads(event_bytes or b"{}")
            result = handler(event, Context(headers))
        except Fault as fault:
            document = error_document(fault.error_type, fault.message, fault.trace, request_id)
            log_error(document)
            post_error(path + "/error", document)
            continue
        except Exception:
            document = from_exception(sys.exc_info(), request_id)
            log_error(document)
            post_error(path + "/error", document)
            continue
        try:
            body = json.dumps(result).encode()
        except (TypeError, ValueError) as ex:
            document = error_document(
                "Runtime.MarshalError", f"Unable to marshal response: {ex}", [], request_id
            )
            log_error(document)
            post_error(path + "/error", document)
            continue
        call("POST", path + "/response", body)


def main(argv):
    spec = argv[1] if len(argv) > 1 else os.environ.get("_HANDLER", "")
    layers = "/opt/python/lib/python{}.{}/site-packages".format(*sys.version_info)
    sys.path[0:0] = [TASK_ROOT, layers, "/opt/python"]  # Lambda's order: the function, then its layers
    try:
        handler = load_handler(spec)
    except Fault as fault:
        document = error_document(fault.error_type, fault.message, fault.trace)
        log_error(document)
        post_error("/init/error", document)
        return 1
    except Exception:
        document = from_exception(sys.exc_info())
        log_error(document)
        post_error("/init/error", document)
        return 1
    serve(handler)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
