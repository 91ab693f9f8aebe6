"""Inference pipeline: name the run -> choose the model -> create it -> preprocess (transform)
-> batch transform.

The execution input is DataUri and CodeUri, and optionally the model to use (Model:
a model record, mlharness.MODEL). Without one it uses the model the last
training run that passed its gate published, so the schedule can start it with a
static input. Every name the run gives (model, jobs, output prefixes) derives from
the execution name, so runs never collide and all names carry the `inference-`
prefix its IAM statements allow.
"""

from __future__ import annotations

from stepfunctions import steps
from stepfunctions.inputs import ExecutionInput

from mlharness import tasks
from mlharness.contract import MODEL, BuildContext, Outputs, Pipeline, RunContext, Schedule
from mlharness.tasks import ARTIFACT_BUCKET, CODE_URI, PUBLISHED_MODEL_KEY, SCHEDULE_DATA_URI, state_path
from pipelines import data

PREFIX = "inference"
PROCESSING = "/opt/ml/processing"
# The run's id, and so every name it gives, carries the prefix, however the execution was
# started (the harness, the schedule).
RUN_ID = f"{PREFIX}-{{}}"
RUN_PREFIX = f"s3://{ARTIFACT_BUCKET}/runs/{RUN_ID}"

INPUT_SCHEMA = {"DataUri": str, "CodeUri": str, "Model": dict}


def definition(build: BuildContext) -> dict:
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
        parameters={
            "RunId.$": "$.Model.RunId",
            "ModelArtifactUri.$": "$.Model.ModelArtifactUri",
            "TransformerUri.$": "$.Model.TransformerUri",
        },
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
            "RunId.$": "$.published.model.RunId",
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
    choose_model.add_choice(steps.ChoiceRule.IsPresent(variable="$.Model", value=True), next_step=given_model)
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
    for task in (create_model, preprocess, transform):
        tasks.retry_transient(task)
    for task in (read_published, create_model, preprocess, transform):
        tasks.catch_all(task, failed)
    create_model.next(preprocess)
    preprocess.next(transform)
    return steps.Graph(steps.Chain([name_run, choose_model])).to_dict()


def execution_input(run: RunContext) -> dict:
    """The data and code, and the model record to use (the published one when none is given)."""
    given = {"DataUri": run.inputs["data"], "CodeUri": run.code_uri}
    if MODEL.kind in run.consumed:
        given["Model"] = dict(run.consumed[MODEL.kind])
    return given


def outputs(execution_input: dict, output: dict) -> Outputs:
    predictions = output["run"]["PredictionsUri"]
    return Outputs(
        values={
            "predictions_uri": predictions,
            "model_name": output["run"]["ModelName"],
            "model_artifact_uri": output["model_source"]["ModelArtifactUri"],
        },
        consumed={MODEL.kind: output["model_source"]["RunId"]},
        summary=[("predictions", predictions)],
        headline=predictions,
    )


PIPELINE = Pipeline(
    name="inference",
    prefix=PREFIX,
    description="score data with a trained model: the same features, then batch transform",
    definition=definition,
    execution_input=execution_input,
    outputs=outputs,
    kinds=frozenset({"processing-job", "transform-job", "model"}),
    consumes=(MODEL,),
    inputs=(data.SCORING_DATA,),
    code=data.CODE,
    schedule=Schedule(
        input={"DataUri": SCHEDULE_DATA_URI, "CodeUri": CODE_URI},
        description="scores {DataUri} with the published model",
    ),
)
