"""Operations moto answers but whose work the local AWS does not do: refused by name.

moto models these as records that reach a final state at once (a tuning job Completed
with a best job named FakeTrainingJobName, a pipeline execution Succeeded with nothing
run, a notebook InService with no notebook). Answering so would be fake success, so the
request guard refuses each with `UnsupportedOperation` (HTTP 501) and the reason here.
Operations that only keep metadata (experiments, model packages, pipeline definitions,
feature groups, monitoring job definitions) are served.
"""

from __future__ import annotations

REFUSED: dict[tuple[str, str], str] = {
    ("sagemaker", "StartPipelineExecution"): "it runs no SageMaker Pipelines executions",
    ("sagemaker", "RetryPipelineExecution"): "it runs no SageMaker Pipelines executions",
    ("sagemaker", "CreateAutoMLJob"): "it runs no AutoML jobs",
    ("sagemaker", "CreateAutoMLJobV2"): "it runs no AutoML jobs",
    ("sagemaker", "CreateCompilationJob"): "it compiles no models (SageMaker Neo)",
    ("sagemaker", "CreateCluster"): "it runs no HyperPod clusters",
    ("sagemaker", "CreateDomain"): "it runs no SageMaker Studio",
    ("sagemaker", "CreateNotebookInstance"): "it runs no notebook instances",
    ("sagemaker", "StartNotebookInstance"): "it runs no notebook instances",
    ("sagemaker", "UpdateEndpointWeightsAndCapacities"): "its endpoints serve one variant on one container",
    ("ecr", "StartImageScan"): "it scans no images",
    ("events", "StartReplay"): "it replays no archived events",
}


def reason(service: str, operation: str) -> str | None:
    """Why the local AWS refuses `service:operation`, or None when it serves it."""
    return REFUSED.get((service, operation))
