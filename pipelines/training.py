"""Training pipeline: preprocess (fit) -> train -> evaluate -> quality gate -> create model
-> publish it.

The gate reads the metrics JSON from S3 inside the state machine and compares the
configured metric with the run's threshold; below it the run ends in a Fail whose
cause names the metric and both numbers. A model that passes is published to
models/latest.json in the artifact bucket, where scheduled inference runs find it.
Every task catches into a Fail that keeps the error. The published record is the
model record (mlharness.MODEL) that the inference and endpoint pipelines
consume.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from stepfunctions import steps
from stepfunctions.inputs import ExecutionInput

from mlharness import tasks
from mlharness.contract import MODEL, BuildContext, Outputs, Pipeline, RunContext
from mlharness.tasks import ARTIFACT_BUCKET, PUBLISHED_MODEL_KEY, state_path
from pipelines import data

PROCESSING = "/opt/ml/processing"
SAMPLE_FILE = "sample.csv"  # a few rows of test features, for a served model's smoke test
METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
SETTINGS = {
    "quality_metric": "roc_auc",  # one of METRICS: the gate compares it with the threshold
    "threshold": 0.7,
    "test_size": 0.2,
    "seed": 7,
    "hyperparameters": {"C": 1.0, "max_iter": 200},
    # {} trains once; else a tuning job picks the hyperparameters (tasks.tuning_config), e.g.
    # {strategy: Random, max_jobs: 6, max_parallel: 2, objective: {metric: "train:log_loss",
    #  type: Minimize}, ranges: {C: {min: 0.01, max: 10, scaling: Logarithmic}}}
    "tuning": {},
}

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
    "SampleOutputUri": str,
    "SampleUri": str,
    "TrainingJobName": str,
    "TuningJobName": str,
    "Hyperparameters": dict,
    "ModelOutputUri": str,
    "EvaluateJobName": str,
    "EvaluationUri": str,
    "MetricsKey": str,
    "Threshold": float,
    "ModelName": str,
}

# What jobs/train.py prints ("train: accuracy=0.8310 log_loss=0.3870 on the training rows"),
# as SageMaker metrics: FinalMetricDataList in the job's description, CloudWatch datapoints.
TRAINING_METRICS = (
    {"Name": "train:accuracy", "Regex": r"train: accuracy=([0-9.]+)"},
    {"Name": "train:log_loss", "Regex": r"log_loss=([0-9.]+)"},
)


def definition(build: BuildContext) -> dict:
    """The ASL of the training pipeline, gated on the configured quality metric."""
    quality_metric = build.settings["quality_metric"]
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
            "sample": (f"{PROCESSING}/output/sample", run["SampleOutputUri"]),
        },
        code_uri=run["CodeUri"],
        result_path="$.preprocess",
    )
    if build.settings["tuning"]:
        train = tasks.tuning(
            "Tune",
            run["TuningJobName"],
            tasks.tuning_config(build.settings["tuning"]),
            run["Hyperparameters"],
            train_uri=run["TrainUri"],
            output_uri=run["ModelOutputUri"],
            metric_definitions=TRAINING_METRICS,
            result_path="$.tune",
        )
        # The best job's model, where every training job leaves it: what the rest reads as $.train.
        best = steps.Pass(
            "BestTrainingJob",
            parameters={
                "TrainingJobName.$": "$.tune.BestTrainingJob.TrainingJobName",
                "TunedHyperParameters.$": "$.tune.BestTrainingJob.TunedHyperParameters",
                "ModelArtifacts": {
                    "S3ModelArtifacts.$": (
                        "States.Format('{}/{}/output/model.tar.gz', $$.Execution.Input.ModelOutputUri, "
                        "$.tune.BestTrainingJob.TrainingJobName)"
                    )
                },
            },
            result_path="$.train",
        )
    else:
        train = tasks.training(
            "Train",
            run["TrainingJobName"],
            run["Hyperparameters"],
            train_uri=run["TrainUri"],
            output_uri=run["ModelOutputUri"],
            metric_definitions=TRAINING_METRICS,
            result_path="$.train",
        )
        best = None
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
            "SampleUri.$": "$$.Execution.Input.SampleUri",
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

    for task in (preprocess, train, evaluate, create_model):
        tasks.retry_transient(task)
    for task in (preprocess, train, evaluate, read_metrics, create_model, publish_model):
        tasks.catch_all(task, failed)
    chain = [preprocess, train, *([best] if best else []), evaluate, read_metrics, parse_metrics, gate]
    return steps.Graph(steps.Chain(chain)).to_dict()


def execution_input(run: RunContext) -> dict:
    """The execution input of one run: its names, URIs and parameters."""
    prefix, run_id, settings = run.prefix_uri, run.run_id, run.settings
    tuned = set((settings["tuning"] or {}).get("ranges", {}))
    hyperparameters = {k: str(v) for k, v in sorted(settings["hyperparameters"].items()) if k not in tuned}
    # The toolkit's own settings are JSON strings, as the SageMaker SDK writes them.
    hyperparameters.update(
        {
            "sagemaker_program": json.dumps("jobs/train.py"),
            "sagemaker_submit_directory": json.dumps(run.code_uri),
        }
    )
    return {
        "RunId": run_id,
        "ArtifactBucket": run.artifact_bucket,
        "DataUri": run.inputs["data"],
        "CodeUri": run.code_uri,
        "PreprocessJobName": f"{run_id}-preprocess",
        "PreprocessArguments": [
            "fit",
            "--test-size",
            str(settings["test_size"]),
            "--seed",
            str(settings["seed"]),
        ],
        "TrainUri": f"{prefix}/preprocess/train",
        "TestUri": f"{prefix}/preprocess/test",
        "TransformerUri": f"{prefix}/preprocess/transformer",
        "SampleOutputUri": f"{prefix}/preprocess/sample",
        "SampleUri": f"{prefix}/preprocess/sample/{SAMPLE_FILE}",
        "TrainingJobName": f"{run_id}-train",
        "TuningJobName": run_id,  # at most 32 characters: training-YYYYMMDD-HHMMSS-xxxxxx is 31
        "Hyperparameters": hyperparameters,
        "ModelOutputUri": f"{prefix}/model",
        "EvaluateJobName": f"{run_id}-evaluate",
        "EvaluationUri": f"{prefix}/evaluation",
        "MetricsKey": f"{run.prefix_key}/evaluation/metrics.json",
        "Threshold": float(settings["threshold"]),
        "ModelName": f"{run_id}-model",
    }


def outputs(execution_input: dict, output: dict) -> Outputs:
    """What a finished run produced: the model record it published, its metrics."""
    model = output["published"]
    metrics = output["evaluation"]["metrics"]
    shown = ", ".join(f"{k}={v}" for k, v in metrics.items() if k != "confusion_matrix")
    tuned = []
    if "tune" in output:
        best = output["tune"]["BestTrainingJob"]
        chosen = ", ".join(f"{k}={v}" for k, v in sorted(best["TunedHyperParameters"].items()))
        objective = best["FinalHyperParameterTuningJobObjectiveMetric"]
        counters = output["tune"]["TrainingJobStatusCounters"]
        tuned = [
            (
                "tuning",
                f"best of {counters['Completed']} training job(s): {best['TrainingJobName']} ({chosen}; "
                f"{objective['MetricName']} {objective['Value']:g})",
            )
        ]
    return Outputs(
        values={
            "model_artifact_uri": model["ModelArtifactUri"],
            "transformer_uri": model["TransformerUri"],
            "metrics_uri": f"{execution_input['EvaluationUri']}/metrics.json",
            "model_name": execution_input["ModelName"],
            "published_model_uri": f"s3://{execution_input['ArtifactBucket']}/{PUBLISHED_MODEL_KEY}",
        },
        metrics=metrics,
        produced={MODEL.kind: model},
        summary=[
            ("metrics", shown),
            ("confusion matrix [[tn, fp], [fn, tp]]", str(metrics.get("confusion_matrix"))),
            ("model artifact", model["ModelArtifactUri"]),
            *tuned,
        ],
        headline=", ".join(f"{k}={metrics[k]}" for k in ("roc_auc", "accuracy") if k in metrics),
    )


# The hyperparameters jobs/train.py takes: name -> (type, the smallest value it accepts, inclusive?).
HYPERPARAMETERS = {"C": (float, 0.0, False), "max_iter": (int, 1, True), "seed": (int, 0, True)}


def check_settings(settings: Mapping) -> None:
    for name, value in settings["hyperparameters"].items():
        if name not in HYPERPARAMETERS:
            raise ValueError(f"hyperparameters.{name}: expected one of {', '.join(HYPERPARAMETERS)}")
        kind, least, inclusive = HYPERPARAMETERS[name]
        if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
            raise ValueError(f"hyperparameters.{name}: expected a {kind.__name__}, got {value!r}")
        if value < least or (value == least and not inclusive):
            bound = f"at least {least}" if inclusive else f"greater than {least}"
            raise ValueError(f"hyperparameters.{name}: expected a number {bound}, got {value!r}")
    if settings["quality_metric"] not in METRICS:
        raise ValueError(f"quality_metric: expected one of {', '.join(METRICS)}")
    if not 0 < settings["test_size"] < 1:
        raise ValueError("test_size: expected a number between 0 and 1")
    if not 0 <= settings["threshold"] <= 1:
        raise ValueError("threshold: expected a number between 0 and 1")
    if settings["tuning"]:
        _check_tuning(settings["tuning"])


TUNING_KEYS = {"strategy", "max_jobs", "max_parallel", "objective", "ranges"}


def _check_tuning(tuning: Mapping) -> None:
    unknown = sorted(set(tuning) - TUNING_KEYS)
    if unknown:
        raise ValueError(f"tuning.{unknown[0]}: expected one of {', '.join(sorted(TUNING_KEYS))}")
    if tuning.get("strategy", "Bayesian") not in ("Random", "Grid", "Bayesian"):
        raise ValueError("tuning.strategy: expected Random, Grid or Bayesian")
    for key in ("max_jobs", "max_parallel"):
        value = tuning.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"tuning.{key}: expected a whole number of at least 1, got {value!r}")
    objective = tuning.get("objective")
    metrics = [m["Name"] for m in TRAINING_METRICS]
    if not isinstance(objective, Mapping) or objective.get("metric") not in metrics:
        raise ValueError(f"tuning.objective.metric: expected one of {', '.join(metrics)}")
    if objective.get("type") not in ("Minimize", "Maximize"):
        raise ValueError("tuning.objective.type: expected Minimize or Maximize")
    ranges = tuning.get("ranges")
    if not isinstance(ranges, Mapping) or not ranges:
        raise ValueError("tuning.ranges: expected at least one hyperparameter to tune")
    for name, spec in ranges.items():
        if name not in HYPERPARAMETERS:
            raise ValueError(f"tuning.ranges.{name}: expected one of {', '.join(HYPERPARAMETERS)}")
        if isinstance(spec, list):
            if not spec:
                raise ValueError(f"tuning.ranges.{name}: expected at least one value")
            continue
        if not isinstance(spec, Mapping) or not {"min", "max"} <= set(spec):
            raise ValueError(
                f"tuning.ranges.{name}: expected {{min, max[, scaling, integer]}} or a list of values"
            )
        for bound in ("min", "max"):
            if isinstance(spec[bound], bool) or not isinstance(spec[bound], int | float):
                raise ValueError(f"tuning.ranges.{name}.{bound}: expected a number, got {spec[bound]!r}")
        if not spec["min"] <= spec["max"]:
            raise ValueError(
                f"tuning.ranges.{name}: expected min at most max, got {spec['min']} and {spec['max']}"
            )
        if spec.get("scaling", "Auto") not in ("Auto", "Linear", "Logarithmic", "ReverseLogarithmic"):
            raise ValueError(
                f"tuning.ranges.{name}.scaling: expected Auto, Linear, Logarithmic or ReverseLogarithmic"
            )


PIPELINE = Pipeline(
    name="training",
    prefix="training",
    description="fit the features, train, evaluate, gate on a metric, publish the model",
    definition=definition,
    execution_input=execution_input,
    outputs=outputs,
    # hyper-parameter-tuning-job: the tuning stage, when pipelines.training.tuning is set
    kinds=frozenset({"processing-job", "training-job", "hyper-parameter-tuning-job", "model"}),
    settings=SETTINGS,
    check_settings=check_settings,
    produces=(MODEL,),
    publishes={MODEL.kind: PUBLISHED_MODEL_KEY},
    writes=(PUBLISHED_MODEL_KEY,),
    inputs=(data.TRAINING_DATA,),
    code=data.CODE,
)
