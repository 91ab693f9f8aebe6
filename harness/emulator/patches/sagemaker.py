"""Patches that give moto a SageMaker whose jobs run, and a SageMaker Task integration."""

from __future__ import annotations


def register_sagemaker_service_integration() -> None:
    """moto lists "sagemaker" as an unsupported Task integration; supply one."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import (
        state_task_factory,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_factory as factory,
    )

    from harness.emulator.sfn_sagemaker import StateTaskServiceSageMaker

    factory._UNSUPPORTED_SERVICE_NAMES.discard("sagemaker")
    upstream = factory.state_task_service_for

    def state_task_service_for(service_name: str):
        if service_name == "sagemaker":
            return StateTaskServiceSageMaker()
        return upstream(service_name)

    factory.state_task_service_for = state_task_service_for
    # state_task_factory imported the function by value.
    state_task_factory.state_task_service_for = state_task_service_for


def install_local_sagemaker_backend() -> None:
    """moto's SageMaker marks every job Completed at once; ours runs them in Docker."""
    import moto.sagemaker
    import moto.sagemaker.models
    import moto.sagemaker.responses

    from harness.emulator.sagemaker.backends import local_sagemaker_backends as backends

    moto.sagemaker.models.sagemaker_backends = backends
    moto.sagemaker.responses.sagemaker_backends = backends
    moto.sagemaker.sagemaker_backends = backends
