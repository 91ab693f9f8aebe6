"""Inference pipeline: model from a training run -> preprocess (transform) -> batch transform.

It depends only on the artifact URIs recorded by the training run it uses (model
and transformer), so it works after the local AWS restarts and on AWS alike. The
model it creates has a run-unique name.
"""

from __future__ import annotations

from stepfunctions import steps
from stepfunctions.inputs import ExecutionInput

from pipelines import tasks

NAME = "inference"
PROCESSING = "/opt/ml/processing"

INPUT_SCHEMA = {
    "RunId": str,
    "DataUri": str,
    "CodeUri": str,
    "ModelName": str,
    "ModelArtifactUri": str,
    "TransformerUri": str,
    "PreprocessJobName": str,
    "FeaturesUri": str,
    "TransformJobName": str,
    "PredictionsUri": str,
}


def definition(quality_metric: str | None = None) -> dict:
    run = ExecutionInput(schema=INPUT_SCHEMA)
    failed = tasks.pipeline_failed()
    create_model = tasks.create_model(
        "CreateModel",
        run["ModelName"],
        "$$.Execution.Input.ModelArtifactUri",
        run["CodeUri"],
        result_path="$.model",
    )
    preprocess = tasks.processing(
        "Preprocess",
        run["PreprocessJobName"],
        "jobs/preprocess.py",
        ["transform"],
        inputs={
            "data": (run["DataUri"], f"{PROCESSING}/input/data"),
            "transformer": (run["TransformerUri"], f"{PROCESSING}/input/transformer"),
        },
        outputs={"features": (f"{PROCESSING}/output/features", run["FeaturesUri"])},
        code_uri=run["CodeUri"],
        result_path="$.preprocess",
    )
    transform = tasks.batch_transform(
        "Predict",
        run["TransformJobName"],
        run["ModelName"],
        input_uri=run["FeaturesUri"],
        output_uri=run["PredictionsUri"],
        result_path="$.transform",
    )
    for task in (create_model, preprocess, transform):
        tasks.catch_all(task, failed)
    return steps.Graph(steps.Chain([create_model, preprocess, transform])).to_dict()


def execution_input(run: dict, training_outputs: dict) -> dict:
    """run: RunId, Prefix, DataUri, CodeUri; training_outputs: the training run's recorded outputs."""
    prefix, run_id = run["Prefix"], run["RunId"]
    return {
        "RunId": run_id,
        "DataUri": run["DataUri"],
        "CodeUri": run["CodeUri"],
        "ModelName": f"{run_id}-model",
        "ModelArtifactUri": training_outputs["model_artifact_uri"],
        "TransformerUri": training_outputs["transformer_uri"],
        "PreprocessJobName": f"{run_id}-preprocess",
        "FeaturesUri": f"{prefix}/features",
        "TransformJobName": f"{run_id}-predict",
        "PredictionsUri": f"{prefix}/predictions",
    }


def outputs(execution_input: dict, output: dict) -> dict:
    return {
        "predictions_uri": execution_input["PredictionsUri"],
        "model_name": execution_input["ModelName"],
        "model_artifact_uri": execution_input["ModelArtifactUri"],
    }
