"""Inference pipeline: name the run -> choose the model -> create it -> preprocess (transform)
-> batch transform.

The execution input is DataUri and CodeUri, and optionally the model to use
(ModelArtifactUri and TransformerUri, as a training run recorded them). Without a
model it uses the one the last training run that passed its gate published, so
the schedule can start it with a static input. Every name the run gives (model,
jobs, output prefixes) derives from the execution name, so runs never collide and
all names carry the `inference-` prefix the IAM policies allow.
"""

from __future__ import annotations

from stepfunctions import steps
from stepfunctions.inputs import ExecutionInput

from pipelines import tasks
from pipelines.tasks import ARTIFACT_BUCKET, PUBLISHED_MODEL_KEY, state_path

NAME = "inference"
PROCESSING = "/opt/ml/processing"
# The run's id, and so every name it gives, carries the prefix the IAM policies allow,
# however the execution was started (the harness, the schedule).
RUN_ID = f"{NAME}-{{}}"
RUN_PREFIX = f"s3://{ARTIFACT_BUCKET}/runs/{RUN_ID}"

INPUT_SCHEMA = {"DataUri": str, "CodeUri": str, "ModelArtifactUri": str, "TransformerUri": str}


def definition(quality_metric: str | None = None) -> dict:
    run = ExecutionInput(schema=INPUT_SCHEMA)
    failed = tasks.pipeline_failed()

    name_run = steps.Pass(
        "NameRun",
        parameters={
            "RunId.$": tasks.from_execution_name(RUN_ID),
            "ModelName.$": tasks.from_execution_name(f"{RUN_ID}-model"),
            "PreprocessJobName.$": tasks.from_execution_name(f"{RUN_ID}-preprocess"),
            "TransformJobName.$": tasks.from_execution_name(f"{RUN_ID}-predict"),
            "FeaturesUri.$": tasks.from_execution_name(f"{RUN_PREFIX}/features"),
            "PredictionsUri.$": tasks.from_execution_name(f"{RUN_PREFIX}/predictions"),
        },
        result_path="$.run",
    )
    given_model = steps.Pass(
        "UseGivenModel",
        parameters={"ModelArtifactUri.$": "$.ModelArtifactUri", "TransformerUri.$": "$.TransformerUri"},
        result_path="$.model_source",
    )
    read_published = tasks.Task(
        "ReadPublishedModel",
        resource=tasks.S3_GET_OBJECT,
        parameters={"Bucket": ARTIFACT_BUCKET, "Key": PUBLISHED_MODEL_KEY},
        result_selector={"model.$": "States.StringToJson($.Body)"},
        result_path="$.published",
    )
    read_published.add_catch(
        steps.Catch(
            error_equals=["S3.NoSuchKeyException"],
            next_step=tasks.Fail(
                "NoPublishedModel",
                error="NoPublishedModel",
                cause=(
                    f"no model is published at s3://{ARTIFACT_BUCKET}/{PUBLISHED_MODEL_KEY}: "
                    "a training run that passes its quality gate publishes one"
                ),
            ),
            result_path="$.error",
        )
    )
    published_model = steps.Pass(
        "UsePublishedModel",
        parameters={
            "ModelArtifactUri.$": "$.published.model.ModelArtifactUri",
            "TransformerUri.$": "$.published.model.TransformerUri",
            "TrainingRunId.$": "$.published.model.RunId",
        },
        result_path="$.model_source",
    )
    create_model = tasks.create_model(
        "CreateModel",
        state_path("$.run.ModelName"),
        state_path("$.model_source.ModelArtifactUri"),
        run["CodeUri"],
        result_path="$.model",
    )
    choose_model = steps.Choice("ChooseModel")
    choose_model.add_choice(
        steps.ChoiceRule.IsPresent(variable="$.ModelArtifactUri", value=True), next_step=given_model
    )
    choose_model.default_choice(read_published)
    given_model.next(create_model)
    read_published.next(published_model)
    published_model.next(create_model)

    preprocess = tasks.processing(
        "Preprocess",
        state_path("$.run.PreprocessJobName"),
        "jobs/preprocess.py",
        ["transform"],
        inputs={
            "data": (run["DataUri"], f"{PROCESSING}/input/data"),
            "transformer": (state_path("$.model_source.TransformerUri"), f"{PROCESSING}/input/transformer"),
        },
        outputs={"features": (f"{PROCESSING}/output/features", state_path("$.run.FeaturesUri"))},
        code_uri=run["CodeUri"],
        result_path="$.preprocess",
    )
    transform = tasks.batch_transform(
        "Predict",
        state_path("$.run.TransformJobName"),
        state_path("$.run.ModelName"),
        input_uri=state_path("$.run.FeaturesUri"),
        output_uri=state_path("$.run.PredictionsUri"),
        result_path="$.transform",
    )
    for task in (read_published, create_model, preprocess, transform):
        tasks.catch_all(task, failed)
    create_model.next(preprocess)
    preprocess.next(transform)
    return steps.Graph(steps.Chain([name_run, choose_model])).to_dict()


def execution_input(run: dict, model: dict | None) -> dict:
    """run: DataUri, CodeUri; model: a training run's recorded outputs, or None for the published model."""
    given = {"DataUri": run["DataUri"], "CodeUri": run["CodeUri"]}
    if model is not None:
        given |= {"ModelArtifactUri": model["model_artifact_uri"], "TransformerUri": model["transformer_uri"]}
    return given


def outputs(execution_input: dict, output: dict) -> dict:
    found = {
        "predictions_uri": output["run"]["PredictionsUri"],
        "model_name": output["run"]["ModelName"],
        "model_artifact_uri": output["model_source"]["ModelArtifactUri"],
    }
    if "TrainingRunId" in output["model_source"]:  # the published model says whose it is
        found["training_run_id"] = output["model_source"]["TrainingRunId"]
    return found
