"""Lambda: functions really run (harness.emulator.functions), and only Python ones.

moto keeps functions' configuration and code, and runs an invocation by pulling a public
runtime image (mlupin/docker-lambda, ghcr.io/shogo82148/...) and reading the result from
the container's last line of output, with FunctionError `Handled`. Here an invocation
runs in an execution environment of the local AWS's (the local base image with the
Lambda runtime client for a .zip package, the function's own image from the local ECR
for an image package); nothing is pulled from a public registry. A function whose
runtime is not Python is refused when it is created or changed, naming the runtime.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from pathlib import Path

PYTHON_RUNTIME = re.compile(r"^python3\.\d+$")
MAX_REQUEST_BYTES = 6 * 1024 * 1024  # a synchronous invocation's payload, as AWS limits it


def refuse_functions_the_local_aws_cannot_run() -> None:
    """CreateFunction and UpdateFunctionConfiguration naming a runtime other than Python's
    (for a .zip package) answer UnsupportedOperation, naming it: AWS would accept it, the local
    AWS could not run it, so it says so before anything depends on the function. A .zip
    package that could not be unpacked safely (a member outside its folder, a link) is refused
    as AWS refuses a package it cannot unzip (moto keeps any bytes). Applies to CloudFormation's
    functions too: they are created through the same method."""
    from moto.awslambda.models import LambdaBackend

    from harness.emulator.functions import packages

    create, update = LambdaBackend.create_function, LambdaBackend.update_function_configuration
    update_code, publish_layer = LambdaBackend.update_function_code, LambdaBackend.publish_layer_version

    def create_function(self, spec):
        _check_runtime(spec.get("Runtime"), spec.get("PackageType") or "Zip")
        function = create(self, spec)
        if function.package_type != "Image" and function.code_bytes:
            try:
                packages.check(function.code_bytes)
            except packages.BadPackage as ex:
                self.delete_function(function.function_name)
                raise _error(400, "InvalidParameterValueException", str(ex)) from None
        return function

    def update_function_configuration(self, name_or_arn, qualifier, body):
        if "Runtime" in body:
            function = self.get_function(name_or_arn, qualifier)
            _check_runtime(body["Runtime"], function.package_type)
        return update(self, name_or_arn, qualifier, body)

    def update_function_code(self, name_or_arn, qualifier, body):
        _check_package(body.get("ZipFile"))
        return update_code(self, name_or_arn, qualifier, body)

    def publish_layer_version(self, spec):
        _check_package((spec.get("Content") or {}).get("ZipFile"))
        return publish_layer(self, spec)

    LambdaBackend.create_function = create_function
    LambdaBackend.update_function_configuration = update_function_configuration
    LambdaBackend.update_function_code = update_function_code
    LambdaBackend.publish_layer_version = publish_layer_version


def run_invocations_in(functions, work_dir: Path, runtime_image: str) -> None:
    """Invoke runs the function in `functions` (a harness.emulator.functions.service.Functions):
    RequestResponse waits for its answer, Event queues it (202), DryRun runs nothing (204).
    moto's own event sources (S3 notifications, SNS, EventBridge targets) call a function with
    no headers: as on AWS, those invocations are asynchronous. DeleteFunction ends the
    function's warm environments. work_dir: where .zip packages are unpacked; runtime_image:
    what they run in."""
    from moto.awslambda.models import LambdaBackend, LambdaFunction

    from harness.emulator.functions import service

    delete = LambdaBackend.delete_function

    def invoke_function(self, body, request_headers, response_headers):
        payload = _event_payload(body)
        default = "RequestResponse" if request_headers else "Event"  # no headers: an event source's
        kind = request_headers.get("X-Amz-Invocation-Type") or default
        if kind == "DryRun":
            return b""
        config = _config_of(self, work_dir, runtime_image)
        if kind == "Event":
            functions.invoke_later(config, payload)
            return b""
        if len(payload) > MAX_REQUEST_BYTES:
            raise _error(
                413,
                "RequestTooLargeException",
                f"Request must be smaller than {MAX_REQUEST_BYTES} bytes for the InvokeFunction operation",
            )
        try:
            answer = functions.invoke(config, payload, _client_context(request_headers))
        except service.FunctionUnavailable as ex:
            raise _error(500, "ServiceException", str(ex)) from None
        if answer.function_error:
            response_headers["x-amz-function-error"] = answer.function_error
        response_headers["x-amz-log-result"] = answer.log_tail  # moto drops it unless LogType is Tail
        response_headers["x-amz-executed-version"] = config.version
        return answer.payload

    def invoke(self, function_name, qualifier, body, headers, response_headers):
        payload = self.get_function(function_name, qualifier).invoke(body, headers, response_headers)
        response_headers["Content-Length"] = str(len(payload))
        return payload

    def delete_function(self, function_name, qualifier=None):
        arn = self.get_function(function_name, qualifier).function_arn
        deleted = delete(self, function_name, qualifier)
        functions.retire(arn)
        return deleted

    LambdaFunction.invoke = invoke_function  # every caller's: the API's, InvokeAsync's, moto's event sources'
    LambdaBackend.invoke = invoke
    LambdaBackend.delete_function = delete_function


def leave_roles_to_the_front() -> None:
    """Behind LocalStack (`--engine localstack`), a function's role is in LocalStack's IAM, not
    in this process's: moto's check that the role exists (InvalidParameterValueException "The
    role defined for the function cannot be assumed by Lambda.") would refuse every function.
    The role's form and account are still checked, as moto checks them."""
    from moto.awslambda.exceptions import CrossAccountNotAllowed, InvalidRoleFormat
    from moto.awslambda.models import LambdaStorage

    def put_function(self, fn):
        valid = re.match(InvalidRoleFormat.pattern, fn.role)
        if not valid:
            raise InvalidRoleFormat(fn.role)
        if valid.group(2) != self.account_id:
            raise CrossAccountNotAllowed()
        if fn.function_name in self._functions:
            self._functions[fn.function_name]["latest"] = fn
        else:
            self._functions[fn.function_name] = {"latest": fn, "versions": []}
        self._arns[fn.function_arn] = fn

    LambdaStorage.put_function = put_function


def _check_runtime(runtime: str | None, package_type: str) -> None:
    if package_type == "Image" or (runtime and PYTHON_RUNTIME.match(runtime)):
        return
    raise _error(
        501,
        "UnsupportedOperation",
        f"The local AWS runs Python Lambda functions only (a python3.x runtime, or an image): "
        f"runtime {runtime or 'none'} is not supported",
    )


def _check_package(encoded: str | bytes | None) -> None:
    """A package given inline (base64, as the API carries it) that could not be unpacked safely:
    refused."""
    from harness.emulator.functions import packages

    if not encoded:
        return
    try:
        packages.check(base64.b64decode(encoded))
    except (binascii.Error, packages.BadPackage) as ex:
        raise _error(400, "InvalidParameterValueException", str(ex)) from None


def _event_payload(body) -> bytes:
    raw = body.encode() if isinstance(body, str) else (body or b"")
    if not raw.strip():
        return b"{}"
    try:
        json.loads(raw)
    except ValueError as ex:
        raise _error(
            400, "InvalidRequestContentException", f"Could not parse request body into json: {ex}"
        ) from None
    return raw


def _client_context(headers) -> str | None:
    encoded = headers.get("X-Amz-Client-Context")
    if not encoded:
        return None
    try:
        return base64.b64decode(encoded).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise _error(
            400, "InvalidRequestContentException", "Client context must be a base64-encoded JSON object"
        ) from None


def _config_of(function, work_dir: Path, runtime_image: str):
    """The environment configuration of one version of a moto LambdaFunction."""
    from moto.awslambda.models import lambda_backends

    from harness.emulator import containers
    from harness.emulator.functions import packages
    from harness.emulator.functions.environments import FunctionConfig

    image_config = function.image_config
    code_folder = layers_folder = None
    if function.package_type == "Image":
        image = function.code["ImageUri"]
        image = containers.in_the_local_ecr(image) or image
        containers.image_id(image)  # pulled from the local ECR when it is there
    else:
        image = runtime_image
        try:
            code_folder = packages.unpacked([function.code_bytes], _digest(function), work_dir / "code")
            if function.layers:
                backend = lambda_backends[function.account_id][function.region]
                layers = [backend.layers_versions_by_arn(layer["Arn"]) for layer in function.layers]
                key = hashlib.sha256("".join(_digest(layer) for layer in layers).encode()).hexdigest()
                codes = [layer.code_bytes for layer in layers]
                layers_folder = packages.unpacked(codes, key, work_dir / "layers")
        except packages.BadPackage as ex:
            raise _error(400, "InvalidParameterValueException", str(ex)) from None
    return FunctionConfig(
        arn=function.function_arn,
        name=function.function_name,
        version=str(function.version),
        region=function.region,
        account=function.account_id,
        role=function.role,
        runtime=function.run_time,
        handler=function.handler,
        memory_mb=int(function.memory_size),
        timeout_s=float(function.timeout),
        ephemeral_mb=int(function.ephemeral_storage),
        variables=tuple(sorted((function.environment_vars or {}).items())),
        code_sha256=function.code_sha_256,
        image=image,
        code_folder=code_folder,
        layers_folder=layers_folder,
        entry_point=tuple(image_config.entry_point) or None,
        command=tuple(image_config.cmd) or None,
        working_directory=image_config.working_directory,
    )


def _digest(package) -> str:
    """A function's or layer's code by its sha256 (hex), which moto computed when it took the
    code (hashed again only where it kept none): invocations never hash the package again."""
    return package.code_digest or hashlib.sha256(package.code_bytes).hexdigest()


def _error(status: int, code: str, message: str):
    from moto.awslambda.exceptions import LambdaClientError

    error = LambdaClientError(code, message)
    error.code = status
    return error
