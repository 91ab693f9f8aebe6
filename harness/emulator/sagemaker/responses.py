"""SageMaker API handlers: parse the request, call the backend, shape the answer."""

from __future__ import annotations

import functools
import json

from moto.core.responses import ActionResult, EmptyResult
from moto.sagemaker.responses import SageMakerResponse

from harness.emulator.sagemaker import backends
from mlharness.kinds import PROCESSING, TRAINING, TRANSFORM, Kind


@functools.cache  # a new session parses the service's JSON again: ~0.1 s of CPU per Describe
def _model():
    import botocore.session

    return botocore.session.get_session().get_service_model("sagemaker")


def _without_empty_structures(described: dict, operation: str) -> dict:
    """AWS leaves an absent optional structure out; moto answered some as {} (VpcConfig,
    DataCaptureConfig), which clients then read as configured. (Maps stay as they are.)"""
    members = _model().operation_model(operation).output_shape.members
    return {
        key: value
        for key, value in described.items()
        if not (value == {} and key in members and members[key].type_name == "structure")
    }


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

    def list_training_jobs(self) -> ActionResult:
        return self._list_jobs(TRAINING)

    def list_processing_jobs(self) -> ActionResult:
        return self._list_jobs(PROCESSING)

    def list_transform_jobs(self) -> ActionResult:
        return self._list_jobs(TRANSFORM)

    def _list_jobs(self, kind: Kind) -> ActionResult:
        summaries_member = f"{kind.noun}Summaries"
        output = _model().operation_model(kind.operation("List") + "s").output_shape
        members = list(output.members[summaries_member].member.members)
        summaries, token = self.sagemaker_backend.list_jobs_of_kind(kind, self._request(), members)
        return ActionResult({summaries_member: summaries, "NextToken": token})

    def describe_training_job(self) -> ActionResult:
        return self._described("DescribeTrainingJob", "TrainingJobName")

    def describe_processing_job(self) -> ActionResult:
        return self._described("DescribeProcessingJob", "ProcessingJobName")

    def describe_transform_job(self) -> ActionResult:
        return self._described("DescribeTransformJob", "TransformJobName")

    def describe_endpoint(self) -> ActionResult:
        return self._described("DescribeEndpoint", "EndpointName")

    def describe_endpoint_config(self) -> ActionResult:
        return self._described("DescribeEndpointConfig", "EndpointConfigName")

    def describe_model(self) -> ActionResult:
        return self._described("DescribeModel", "ModelName")

    def _described(self, operation: str, name_member: str) -> ActionResult:
        from moto.core.utils import camelcase_to_underscores

        describe = getattr(self.sagemaker_backend, camelcase_to_underscores(operation))
        answer = describe(self._get_param(name_member))
        described = dict(getattr(answer, "response_object", answer))
        return ActionResult(_without_empty_structures(described, operation))

    def describe_model_package(self) -> ActionResult:
        package = self.sagemaker_backend.describe_model_package(self._get_param("ModelPackageName"))
        described = package.gen_response_object()
        # A versioned package is named after its group; moto left the name out and said it
        # was created by a made-up Studio user profile.
        described.setdefault("ModelPackageName", package.model_package_name)
        described["CreatedBy"] = {}
        return ActionResult(described)

    def create_hyper_parameter_tuning_job(self) -> ActionResult:
        run = self.sagemaker_backend.create_hyper_parameter_tuning_job_from_request(self._request())
        return ActionResult({"HyperParameterTuningJobArn": run.arn})

    def describe_hyper_parameter_tuning_job(self) -> ActionResult:
        name = self._get_param("HyperParameterTuningJobName")
        return ActionResult(self.sagemaker_backend.describe_hyper_parameter_tuning_job_answer(name))

    def list_hyper_parameter_tuning_jobs(self) -> ActionResult:
        summaries, token = self.sagemaker_backend.list_tuning_runs(self._request())
        return ActionResult({"HyperParameterTuningJobSummaries": summaries, "NextToken": token})

    def list_training_jobs_for_hyper_parameter_tuning_job(self) -> ActionResult:
        request = self._request()
        summaries, token = self.sagemaker_backend.list_training_jobs_of_tuning_run(
            request["HyperParameterTuningJobName"], request
        )
        return ActionResult({"TrainingJobSummaries": summaries, "NextToken": token})

    def stop_hyper_parameter_tuning_job(self) -> EmptyResult:
        self.sagemaker_backend.stop_hyper_parameter_tuning_job(self._get_param("HyperParameterTuningJobName"))
        return EmptyResult()

    def update_endpoint(self) -> ActionResult:
        endpoint = self.sagemaker_backend.update_endpoint(
            self._get_param("EndpointName"), self._get_param("EndpointConfigName")
        )
        return ActionResult({"EndpointArn": endpoint.arn})
