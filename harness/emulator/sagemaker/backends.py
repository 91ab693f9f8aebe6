"""The process-wide SageMaker backends, one per account and region (moto's BackendDict)."""

from moto.core.base_backend import BackendDict

from harness.emulator.sagemaker.models import LocalSageMakerBackend

local_sagemaker_backends = BackendDict(LocalSageMakerBackend, "sagemaker")
