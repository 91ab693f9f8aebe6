"""The churn pipeline: preprocess -> train (in the project's own image) -> evaluate -> gate on
the model's AUC -> create the model -> batch transform the test customers.

Every name it gives starts with its prefix (`churn-`), which is what its IAM statements allow;
everything a run writes goes under the run's own prefix in the bucket.
"""

from __future__ import annotations

from stepfunctions import steps
from stepfunctions.inputs import ExecutionInput

from data import generate
from mlharness import Input, Outputs, Pipeline, RunContext, tasks

PROCESSING = "/opt/ml/processing"
TRAINER = tasks.image_uri("trainer")  # images.trainer in mlharness.yaml
RUN = ExecutionInput(
    schema={
        "RunId": str,
        "ArtifactBucket": str,
        "CustomersUri": str,
        "CodeUri": str,
        "Hyperparameters": dict,
        "Threshold": float,
        "MetricsKey": str,
        **{
            key: str
            for key in ("TrainUri", "TestUri", "ScoreUri", "ModelUri", "EvaluationUri", "PredictionsUri")
        },
    }
)
METRICS = ({"Name": "train:auc", "Regex": r"train: auc=([0-9.]+)"},)


def job(step: str) -> str:
    """A job name of this run: <run id>-<step>, from the execution's name."""
    return tasks.from_execution_name(f"churn-{{}}-{step}")


def definition(build) -> dict:
    failed = tasks.pipeline_failed()
    preprocess = tasks.processing(
        "Preprocess",
        tasks.state_path(job("preprocess")),
        "jobs/preprocess.py",
        ["--seed", "7"],
        inputs={"customers": (RUN["CustomersUri"], f"{PROCESSING}/input/customers")},
        outputs={
            "train": (f"{PROCESSING}/output/train", RUN["TrainUri"]),
            "test": (f"{PROCESSING}/output/test", RUN["TestUri"]),
            "score": (f"{PROCESSING}/output/score", RUN["ScoreUri"]),
        },
        code_uri=RUN["CodeUri"],
        result_path="$.preprocess",
    )
    train = tasks.training(
        "Train",
        tasks.state_path(job("train")),
        RUN["Hyperparameters"],
        train_uri=RUN["TrainUri"],
        output_uri=RUN["ModelUri"],
        metric_definitions=METRICS,
        image=TRAINER,
        result_path="$.train",
    )
    evaluate = tasks.processing(
        "Evaluate",
        tasks.state_path(job("evaluate")),
        "jobs/evaluate.py",
        [],
        inputs={
            "model": (
                tasks.state_path("$.train.ModelArtifacts.S3ModelArtifacts"),
                f"{PROCESSING}/input/model",
            ),
            "test": (RUN["TestUri"], f"{PROCESSING}/input/test"),
        },
        outputs={"metrics": (f"{PROCESSING}/output", RUN["EvaluationUri"])},
        code_uri=RUN["CodeUri"],
        result_path="$.evaluate",
    )
    read_metrics = tasks.Task(
        "ReadMetrics",
        resource=tasks.S3_GET_OBJECT,
        parameters={"Bucket": RUN["ArtifactBucket"], "Key": RUN["MetricsKey"]},
        result_selector={
            "metrics.$": "States.StringToJson($.Body)",
            "threshold.$": "$$.Execution.Input.Threshold",
        },
        result_path="$.evaluation",
    )
    create_model = tasks.create_model(
        "CreateModel",
        tasks.state_path(job("model")),
        tasks.state_path("$.train.ModelArtifacts.S3ModelArtifacts"),
        image=TRAINER,
        result_path="$.model",
    )
    predict = tasks.batch_transform(
        "Predict",
        tasks.state_path(job("predict")),
        tasks.state_path(job("model")),
        input_uri=RUN["ScoreUri"],
        output_uri=RUN["PredictionsUri"],
        result_path="$.predict",
    )
    below = tasks.Fail(
        "AucBelowThreshold", error="AucBelowThreshold", cause="the model's AUC is below the threshold"
    )
    gate = steps.Choice("AucGate")
    gate.add_choice(
        steps.ChoiceRule.NumericGreaterThanEqualsPath(
            variable="$.evaluation.metrics.auc", value="$.evaluation.threshold"
        ),
        next_step=create_model,
    )
    gate.default_choice(below)
    create_model.next(predict)
    for task in (preprocess, train, evaluate, read_metrics, create_model, predict):
        tasks.catch_all(task, failed)
    return steps.Graph(steps.Chain([preprocess, train, evaluate, read_metrics, gate])).to_dict()


def execution_input(run: RunContext) -> dict:
    prefix = run.prefix_uri
    return {
        "RunId": run.run_id,
        "ArtifactBucket": run.artifact_bucket,
        "CustomersUri": run.inputs["customers"],
        "CodeUri": run.code_uri,
        "Hyperparameters": {
            key: str(value) for key, value in sorted(run.settings["hyperparameters"].items())
        },
        "Threshold": float(run.settings["threshold"]),
        "TrainUri": f"{prefix}/preprocess/train",
        "TestUri": f"{prefix}/preprocess/test",
        "ScoreUri": f"{prefix}/preprocess/score",
        "ModelUri": f"{prefix}/model",
        "EvaluationUri": f"{prefix}/evaluation",
        "MetricsKey": f"{run.prefix_key}/evaluation/metrics.json",
        "PredictionsUri": f"{prefix}/predictions",
    }


def outputs(execution_input: dict, output: dict) -> Outputs:
    metrics = output["evaluation"]["metrics"]
    predictions = execution_input["PredictionsUri"]
    return Outputs(
        values={
            "predictions_uri": predictions,
            "model_uri": output["train"]["ModelArtifacts"]["S3ModelArtifacts"],
        },
        metrics=metrics,
        summary=[
            ("metrics", f"auc={metrics['auc']}, accuracy={metrics['accuracy']}"),
            ("predictions", predictions),
        ],
        headline=f"auc={metrics['auc']}",
    )


PIPELINE = Pipeline(
    name="churn",
    prefix="churn",
    description="train a churn model in the project's image, gate it on AUC, score the test customers",
    definition=definition,
    execution_input=execution_input,
    outputs=outputs,
    kinds=frozenset({"processing-job", "training-job", "model", "transform-job"}),
    settings={"threshold": 0.7, "hyperparameters": {"n_estimators": 50, "max_depth": 3}},
    code=("jobs",),
    inputs=(
        Input(
            "customers",
            description="customers with the columns of data/generate.py (CSV with a header)",
            check=generate.check,
            generate=generate.generate,
            generate_options={"rows": 2000, "seed": 7},
            file_name="customers.csv",
        ),
    ),
)
