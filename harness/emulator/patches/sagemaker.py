"""Patches that give moto a SageMaker whose jobs run, and a SageMaker Task integration."""

from __future__ import annotations


def register_sagemaker_service_integration() -> None:
    """moto lists "sagemaker" as an unsupported Task integration; supply one."""
    from harness.emulator.patches import interpreter

    interpreter.add_sagemaker_task_integration("moto")


def install_local_sagemaker_backend() -> None:
    """moto's SageMaker marks every job Completed at once; ours runs them in Docker."""
    import moto.sagemaker
    import moto.sagemaker.models
    import moto.sagemaker.responses

    from harness.emulator.sagemaker.backends import local_sagemaker_backends as backends

    moto.sagemaker.models.sagemaker_backends = backends
    moto.sagemaker.responses.sagemaker_backends = backends
    moto.sagemaker.sagemaker_backends = backends


def route_invocations_to_served_models() -> None:
    """moto's InvokeEndpoint answers canned data; ours forwards to the endpoint's container,
    the body byte for byte (moto decoded it as UTF-8 first: every NumPy, protobuf or image
    payload was an HTTP 500)."""
    from moto.core.exceptions import ServiceException
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

    # moto serializes an error by its class's `code`: one class per AWS error code.
    class InvokeValidationError(ServiceException):
        code = "ValidationError"

    class ModelError(ServiceException):
        code = "ModelError"

    from harness.emulator.sagemaker.backends import local_sagemaker_backends

    def invoke_endpoint(response):
        endpoint_name = response.path.split("/")[2]
        backend = local_sagemaker_backends[response.current_account][response.region]
        body = (
            response.raw_body if isinstance(response.raw_body, bytes) else (response.raw_body or "").encode()
        )
        try:
            status, answer, content_type = backend.invoke_endpoint(
                endpoint_name, body, response.headers.get("Content-Type"), response.headers.get("Accept")
            )
        except ValidationError as ex:
            raise InvokeValidationError(ex.message) from None
        if status != 200:
            text = answer.decode("utf-8", "replace")
            side = "client" if 400 <= status < 500 else "server"  # 0: the container gave no answer
            error = ModelError(f'Received {side} error ({status}) from primary with message "{text}".')
            error.OriginalStatusCode = status
            error.OriginalMessage = text
            raise error
        return 200, {"Content-Type": content_type, "x-Amzn-Invoked-Production-Variant": "AllTraffic"}, answer

    SageMakerRuntimeResponse.use_raw_body = True
    SageMakerRuntimeResponse.invoke_endpoint = invoke_endpoint
