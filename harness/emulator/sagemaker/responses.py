"""SageMaker API handlers: parse the request, call the backend, shape the answer."""

from __future__ import annotations

import json

from moto.core.responses import ActionResult, EmptyResult
from moto.sagemaker.responses import SageMakerResponse

from harness.emulator.sagemaker import backends


class LocalSageMakerResponse(SageMakerResponse):
    @property
    def sagemaker_backend(self):
        return backends.local_sagemaker_backends[self.current_account][self.region]

    def _request(self) -> dict:
        return json.loads(self.body or "{}")

    def create_processing_job(self) -> ActionResult:
        job = self.sagemaker_backend.create_processing_job_from_request(self._request())
        return ActionResult({"ProcessingJobArn": job.arn})

    def create_training_job(self) -> ActionResult:
        job = self.sagemaker_backend.create_training_job_from_request(self._request())
        return ActionResult({"TrainingJobArn": job.arn})

    def create_transform_job(self) -> ActionResult:
        job = self.sagemaker_backend.create_transform_job_from_request(self._request())
        return ActionResult({"TransformJobArn": job.arn})

    def stop_training_job(self) -> EmptyResult:
        self.sagemaker_backend.stop_training_job(self._get_param("TrainingJobName"))
        return EmptyResult()

    def stop_transform_job(self) -> EmptyResult:
        self.sagemaker_backend.stop_transform_job(self._get_param("TransformJobName"))
        return EmptyResult()

    def update_endpoint(self) -> ActionResult:
        endpoint = self.sagemaker_backend.update_endpoint(
            self._get_param("EndpointName"), self._get_param("EndpointConfigName")
        )
        return ActionResult({"EndpointArn": endpoint.arn})
