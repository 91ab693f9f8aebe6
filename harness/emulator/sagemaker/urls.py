"""URL routing for the SageMaker API (moto finds it beside models.py)."""

from moto.sagemaker.urls import url_bases  # noqa: F401  (read by moto)

from harness.emulator.sagemaker.responses import LocalSageMakerResponse

url_paths = {
    "{0}/$": LocalSageMakerResponse.dispatch,
}
