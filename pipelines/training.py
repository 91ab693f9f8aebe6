"""Training pipeline: preprocess (fit) -> train -> evaluate -> quality gate -> create model
-> publish it.

The gate reads the metrics JSON from S3 inside the state machine and compares the
configured metric with the run's threshold; below it the run ends in a Fail whose
cause names the metric and both numbers. A model that passes is published to
models/latest.json in the artifact bucket, where scheduled inference runs find it.
Every task catches into a Fail that keeps the error.
"""

from __future__ import annotations

import json

from stepfunctions import steps
from stepfunctions.inputs import ExecutionInput

from pipelines import tasks
from pipelines.tasks import ARTIFACT_BUCKET, PUBLISHED_MODEL_KEY, state_path

NAME = "training"
PROCESSING = "/opt/ml/processing"

INPUT_SCHEMA = {
    "RunId": str,
    "ArtifactBucket": str,
    "DataUri": str,
    "CodeUri": str,
    "PreprocessJobName": str,
    "PreprocessArguments": list,
    "TrainUri": str,
    "TestUri": str,
    "TransformerUri": str,
    "TrainingJobName": str,
    "Hyperparameters": dict,
    "ModelOutputUri": str,
    "EvaluateJobName": str,
    "EvaluationUri": str,
    "MetricsKey": str,
    "Threshold": float,
    "ModelName": str,
}


def definition(quality_metric: str) -> dict:
    """The ASL of the training pipeline, gated on `quality_metric` (e.g. "roc_auc")."""
    run = ExecutionInput(schema=INPUT_SCHEMA)
    failed = tasks.pipeline_failed()

    preprocess = tasks.processing(
        "Preprocess",
        run["PreprocessJobName"],
        "jobs/preprocess.py",
        run["PreprocessArguments"],
        inputs={"data": (run["DataUri"], f"{PROCESSING}/input/data")},
        outputs={
            "train": (f"{PROCESSING}/output/train", run["TrainUri"]),
            "test": (f"{PROCESSING}/output/test", run["TestUri"]),
            "transformer": (f"{PROCESSING}/output/transformer", run["TransformerUri"]),
        },
        code_uri=run["CodeUri"],
        result_path="$.preprocess",
    )
    train = tasks.training(
        "Train",
        run["TrainingJobName"],
        run["Hyperparameters"],
        train_uri=run["TrainUri"],
        output_uri=run["ModelOutputUri"],
        result_path="$.train",
    )
    evaluate = tasks.processing(
        "Evaluate",
        run["EvaluateJobName"],
        "jobs/evaluate.py",
        ["--model", f"{PROCESSING}/input/model", "--test", f"{PROCESSING}/input/test"],
        inputs={
            "model": (state_path("$.train.ModelArtifacts.S3ModelArtifacts"), f"{PROCESSING}/input/model"),
            "test": (run["TestUri"], f"{PROCESSING}/input/test"),
        },
        outputs={"metrics": (f"{PROCESSING}/output", run["EvaluationUri"])},
        code_uri=run["CodeUri"],
        result_path="$.evaluate",
    )
    read_metrics = steps.Task(
        "ReadMetrics",
        resource=tasks.S3_GET_OBJECT,
        parameters={"Bucket": run["ArtifactBucket"], "Key": run["MetricsKey"]},
        result_path="$.metrics_object",
    )
    parse_metrics = steps.Pass(
        "ParseMetrics",
        parameters={
            "metrics.$": "States.StringToJson($.metrics_object.Body)",
            "threshold.$": "$$.Execution.Input.Threshold",
        },
        result_path="$.evaluation",
    )
    create_model = tasks.create_model(
        "CreateModel",
        run["ModelName"],
        state_path("$.train.ModelArtifacts.S3ModelArtifacts"),
        run["CodeUri"],
        result_path="$.model",
    )
    model_record = steps.Pass(
        "ModelRecord",
        parameters={
            "RunId.$": "$$.Execution.Input.RunId",
            "ModelArtifactUri.$": "$.train.ModelArtifacts.S3ModelArtifacts",
            "TransformerUri.$": "$$.Execution.Input.TransformerUri",
            "Metrics.$": "$.evaluation.metrics",
        },
        result_path="$.published",
    )
    publish_model = steps.Task(
        "PublishModel",
        resource=tasks.S3_PUT_OBJECT,
        parameters={
            "Bucket": ARTIFACT_BUCKET,
            "Key": PUBLISHED_MODEL_KEY,
            "ContentType": "application/json",
            "Body.$": "States.JsonToString($.published)",
        },
        result_path="$.publish",
    )
    create_model.next(model_record).next(publish_model)
    below = steps.Pass(
        "BelowThreshold",
        parameters={
            "cause.$": (
                f"States.Format('{quality_metric} {{}} is below the threshold {{}}', "
                f"$.evaluation.metrics.{quality_metric}, $.evaluation.threshold)"
            )
        },
        result_path="$.gate",
    )
    below.next(tasks.Fail("QualityGateFailed", error="QualityGateFailed", cause_path="$.gate.cause"))
    gate = steps.Choice("QualityGate")
    gate.add_choice(
        steps.ChoiceRule.NumericGreaterThanEqualsPath(
            variable=f"$.evaluation.metrics.{quality_metric}", value="$.evaluation.threshold"
        ),
        next_step=create_model,
    )
    gate.default_choice(below)

    for task in (preprocess, train, evaluate, read_metrics, create_model, publish_model):
        tasks.catch_all(task, failed)
    return steps.Graph(
        steps.Chain([preprocess, train, evaluate, read_metrics, parse_metrics, gate])
    ).to_dict()


def execution_input(run: dict, parameters: dict) -> dict:
    """The execution input for one run.

    run: RunId, ArtifactBucket, Prefix (s3://bucket/runs/<run id>), DataUri, CodeUri.
    parameters: test_size, seed, hyperparameters (dict), threshold.
    """
    prefix, run_id = run["Prefix"], run["RunId"]
    hyperparameters = {k: str(v) for k, v in sorted(parameters["hyperparameters"].items())}
    # The toolkit's own settings are JSON strings, as the SageMaker SDK writes them.
    hyperparameters.update(
        {
            "sagemaker_program": json.dumps("jobs/train.py"),
            "sagemaker_submit_directory": json.dumps(run["CodeUri"]),
        }
    )
    return {
        "RunId": run_id,
        "ArtifactBucket": run["ArtifactBucket"],
        "DataUri": run["DataUri"],
        "CodeUri": run["CodeUri"],
        "PreprocessJobName": f"{run_id}-preprocess",
        "PreprocessArguments": [
            "fit",
            "--test-size",
            str(parameters["test_size"]),
            "--seed",
            str(parameters["seed"]),
        ],
        "TrainUri": f"{prefix}/preprocess/train",
        "TestUri": f"{prefix}/preprocess/test",
        "TransformerUri": f"{prefix}/preprocess/transformer",
        "TrainingJobName": f"{run_id}-train",
        "Hyperparameters": hyperparameters,
        "ModelOutputUri": f"{prefix}/model",
        "EvaluateJobName": f"{run_id}-evaluate",
        "EvaluationUri": f"{prefix}/evaluation",
        "MetricsKey": f"{prefix.split('/', 3)[3]}/evaluation/metrics.json",
        "Threshold": float(parameters["threshold"]),
        "ModelName": f"{run_id}-model",
    }


def outputs(execution_input: dict, output: dict) -> dict:
    """What a finished run produced, for the run record."""
    return {
        "model_artifact_uri": output["train"]["ModelArtifacts"]["S3ModelArtifacts"],
        "transformer_uri": execution_input["TransformerUri"],
        "metrics_uri": f"{execution_input['EvaluationUri']}/metrics.json",
        "model_name": execution_input["ModelName"],
        "published_model_uri": f"s3://{execution_input['ArtifactBucket']}/{PUBLISHED_MODEL_KEY}",
        "metrics": output["evaluation"]["metrics"],
    }
