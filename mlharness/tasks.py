"""State builders for the SageMaker Task states of a pipeline, and the placeholders they use.

Each builder returns a Step Functions Data Science SDK `Task` whose parameters are a
valid SageMaker request: deploy-time values are `${...}` placeholders (the stack
substitutes them: the images, the role, the bucket, instance types), run-time values
come from the execution input (SDK placeholders, or `state_path("$.x")`). Job code
ships as a bundle (`CodeUri`), so a code change needs no new image.

Images: `image_uri("trainer")` stands for the image the project's configuration
names `trainer` (built from a folder of the project and pushed to ECR, or an image
URI); `JOB_IMAGE` is the image named `job`, by default the harness's own job image
(scikit-learn, pandas, the sagemaker-training toolkit, `run-bundle` and `serve`).
Every builder takes `image=`.
"""

from __future__ import annotations

import copy
import enum
import re

from stepfunctions import steps

from mlharness import kinds
from mlharness.contract import ContractError
from mlharness.definitions import states

IMAGE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$|^[a-z]$")
_IMAGE_PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Za-z0-9]*)ImageUri\}")


def image_logical_id(name: str) -> str:
    """The CloudFormation name part of an image: job -> Job, churn-trainer -> ChurnTrainer."""
    return "".join(part.title() for part in name.split("-"))


def image_uri(name: str) -> str:
    """The deploy-time placeholder of the image the project's configuration names `name`."""
    if not IMAGE_NAME.match(name):
        raise ContractError(f"image name {name!r}: use 1-32 lower-case letters, digits and '-'")
    return f"${{{image_logical_id(name)}ImageUri}}"


def image_placeholders(text: str) -> set[str]:
    """The logical ids of the images a definition (as text) names: {"Job", "ChurnTrainer"}."""
    return set(_IMAGE_PLACEHOLDER.findall(text))


# Deploy-time placeholders: stack parameters or resources (see harness/template.py).
JOB_IMAGE = image_uri("job")
SAGEMAKER_ROLE = "${SageMakerRoleArn}"
PROCESSING_INSTANCE = "${ProcessingInstanceType}"
TRAINING_INSTANCE = "${TrainingInstanceType}"
TRANSFORM_INSTANCE = "${TransformInstanceType}"
ENDPOINT_INSTANCE = "${EndpointInstanceType}"
ARTIFACT_BUCKET = "${ArtifactBucket}"
STACK_NAME = "${AWS::StackName}"
KMS_KEY = "${KmsKeyArn}"  # only in definitions built for an environment with aws.kms_key_id
# In a schedule's input: the deployed code bundle, and the data that schedule scores.
CODE_URI = "${CodeUri}"
SCHEDULE_DATA_URI = "${ScheduleDataUri}"
# The tag a pipeline puts on the endpoints it creates, valued with STACK_NAME: `destroy` deletes them.
STACK_TAG = "mlharness:stack"
# Where a training run that passes its gate publishes its model; the schedule's inference reads it.
PUBLISHED_MODEL_KEY = "models/latest.json"
S3_GET_OBJECT = "arn:aws:states:::aws-sdk:s3:getObject"
S3_PUT_OBJECT = "arn:aws:states:::aws-sdk:s3:putObject"

SAGEMAKER = "arn:aws:states:::sagemaker"
CODE_DIR = "/opt/ml/processing/input/code"
VOLUME_GB = 10
MAX_RUNTIME_S = 3600


class _Field(enum.Enum):
    ErrorPath = "error_path"
    CausePath = "cause_path"
    ResultSelector = "result_selector"


class Fail(steps.Fail):
    """The SDK's Fail lacks ErrorPath and CausePath (part of ASL since 2023)."""

    def allowed_fields(self):
        return super().allowed_fields() + [_Field.ErrorPath, _Field.CausePath]


class Task(steps.Task):
    """The SDK's Task lacks ResultSelector (part of ASL since 2020)."""

    def allowed_fields(self):
        return super().allowed_fields() + [_Field.ResultSelector]


def from_execution_name(pattern: str) -> str:
    """An intrinsic giving `pattern` with its `{}` replaced by the execution's name."""
    return f"States.Format('{pattern}', $$.Execution.Name)"


def processing(
    state_id: str,
    job_name,
    script: str,
    arguments,
    inputs: dict,
    outputs: dict,
    image: str = JOB_IMAGE,
    **kwargs,
) -> steps.Task:
    """A processing job running `script` from the code bundle (`code_uri=`) with `run-bundle`,
    which the harness's job image has; in an image of the project's own, `entrypoint=[...]`
    replaces it (the bundle is still at /opt/ml/processing/input/code).

    inputs: {name: (s3 uri, local path)}; outputs: {name: (local path, s3 uri)}; arguments: a
    list (an empty one is left out: SageMaker refuses it) or an execution input placeholder.
    """
    entrypoint = kwargs.pop("entrypoint", None) or ["run-bundle", CODE_DIR, script]
    processing_inputs = [_processing_input("code", kwargs.pop("code_uri"), CODE_DIR)] + [
        _processing_input(name, uri, path) for name, (uri, path) in inputs.items()
    ]
    app = {"ImageUri": image, "ContainerEntrypoint": entrypoint}
    if not (isinstance(arguments, list | tuple) and not arguments):
        app["ContainerArguments"] = arguments
    return steps.Task(
        state_id,
        resource=f"{SAGEMAKER}:createProcessingJob.sync",
        parameters=_with_paths(
            {
                "ProcessingJobName": job_name,
                "RoleArn": SAGEMAKER_ROLE,
                "AppSpecification": app,
                "ProcessingResources": {
                    "ClusterConfig": {
                        "InstanceCount": 1,
                        "InstanceType": PROCESSING_INSTANCE,
                        "VolumeSizeInGB": VOLUME_GB,
                    }
                },
                "ProcessingInputs": processing_inputs,
                "ProcessingOutputConfig": {
                    "Outputs": [
                        {
                            "OutputName": name,
                            "S3Output": {"LocalPath": path, "S3Uri": uri, "S3UploadMode": "EndOfJob"},
                        }
                        for name, (path, uri) in outputs.items()
                    ]
                },
                "StoppingCondition": {"MaxRuntimeInSeconds": MAX_RUNTIME_S},
            }
        ),
        **kwargs,
    )


def training_job_definition(
    hyperparameters, train_uri, output_uri, metric_definitions=(), image: str = JOB_IMAGE
) -> dict:
    """A training job: the image's `train` (the job image's is the sagemaker-training toolkit,
    whose entry point the hyperparameters name); `metric_definitions` ({Name, Regex}) turn
    lines of its log into SageMaker metrics."""
    algorithm = {"TrainingImage": image, "TrainingInputMode": "File"}
    if metric_definitions:
        algorithm["MetricDefinitions"] = [dict(d) for d in metric_definitions]
    return {
        "RoleArn": SAGEMAKER_ROLE,
        "AlgorithmSpecification": algorithm,
        "HyperParameters": hyperparameters,
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "ContentType": "text/csv",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3DataDistributionType": "FullyReplicated",
                        "S3Uri": train_uri,
                    }
                },
            }
        ],
        "OutputDataConfig": {"S3OutputPath": output_uri},
        "ResourceConfig": {
            "InstanceCount": 1,
            "InstanceType": TRAINING_INSTANCE,
            "VolumeSizeInGB": VOLUME_GB,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": MAX_RUNTIME_S},
    }


def training(
    state_id: str,
    job_name,
    hyperparameters,
    train_uri,
    output_uri,
    metric_definitions=(),
    image: str = JOB_IMAGE,
    **kwargs,
) -> steps.Task:
    """A training job (see training_job_definition)."""
    definition = training_job_definition(hyperparameters, train_uri, output_uri, metric_definitions, image)
    return steps.Task(
        state_id,
        resource=f"{SAGEMAKER}:createTrainingJob.sync",
        parameters=_with_paths({"TrainingJobName": job_name, **definition}),
        **kwargs,
    )


def tuning(
    state_id: str, job_name, config: dict, static_hyperparameters, train_uri, output_uri, metric_definitions,
    image: str = JOB_IMAGE, **kwargs,
) -> steps.Task:  # fmt: skip
    """A hyperparameter tuning job over training_job_definition's jobs; `config` is its
    HyperParameterTuningJobConfig (tuning_config makes one from a pipeline's settings)."""
    definition = training_job_definition(
        static_hyperparameters, train_uri, output_uri, metric_definitions, image
    )
    definition["StaticHyperParameters"] = definition.pop("HyperParameters")
    return steps.Task(
        state_id,
        resource=f"{SAGEMAKER}:createHyperParameterTuningJob.sync",
        parameters=_with_paths(
            {
                "HyperParameterTuningJobName": job_name,
                "HyperParameterTuningJobConfig": config,
                "TrainingJobDefinition": definition,
            }  # fmt: skip
        ),
        **kwargs,
    )


def tuning_config(tuning: dict) -> dict:
    """HyperParameterTuningJobConfig from a pipeline's `tuning` settings: `strategy`, `max_jobs`,
    `max_parallel`, `objective` ({metric, type}) and `ranges` (name -> {min, max, scaling,
    integer} for numbers, or a list of values)."""
    ranges: dict[str, list] = {}
    for name, spec in sorted(tuning["ranges"].items()):
        if isinstance(spec, list):
            ranges.setdefault("CategoricalParameterRanges", []).append(
                {"Name": name, "Values": [str(v) for v in spec]}
            )
            continue
        for bound in ("min", "max"):  # refused here, not by SageMaker at the run's tuning step
            if isinstance(spec.get(bound), bool) or not isinstance(spec.get(bound), int | float):
                raise ValueError(f"tuning.ranges.{name}.{bound}: expected a number, got {spec.get(bound)!r}")
        kind = "IntegerParameterRanges" if spec.get("integer") else "ContinuousParameterRanges"
        ranges.setdefault(kind, []).append(
            {
                "Name": name,
                "MinValue": str(spec["min"]),
                "MaxValue": str(spec["max"]),
                "ScalingType": spec.get("scaling", "Auto"),
            }
        )
    return {
        "Strategy": tuning.get("strategy", "Bayesian"),
        "HyperParameterTuningJobObjective": {
            "Type": tuning["objective"]["type"],
            "MetricName": tuning["objective"]["metric"],
        },
        "ResourceLimits": {
            "MaxNumberOfTrainingJobs": int(tuning.get("max_jobs", 4)),
            "MaxParallelTrainingJobs": int(tuning.get("max_parallel", 2)),
        },
        "ParameterRanges": ranges,
        "TrainingJobEarlyStoppingType": "Off",
    }


def create_model(
    state_id: str,
    model_name,
    model_data,
    code_uri=None,
    image: str = JOB_IMAGE,
    program: str = "jobs/serve.py",
    environment: dict | None = None,
    **kwargs,
) -> steps.Task:
    """A model serving `model_data` with the image's `serve`. With `code_uri`, the job image's
    `serve` runs `program` from that code bundle (SAGEMAKER_PROGRAM, SAGEMAKER_SUBMIT_DIRECTORY);
    an image of the project's own serves as it is built to, with `environment`."""
    container_environment = dict(environment or {})
    if code_uri is not None:
        container_environment |= {"SAGEMAKER_PROGRAM": program, "SAGEMAKER_SUBMIT_DIRECTORY": code_uri}
    container = {"Image": image, "ModelDataUrl": model_data}
    if container_environment:
        container["Environment"] = container_environment
    return steps.Task(
        state_id,
        resource=f"{SAGEMAKER}:createModel",
        parameters=_with_paths(
            {"ModelName": model_name, "ExecutionRoleArn": SAGEMAKER_ROLE, "PrimaryContainer": container}
        ),
        **kwargs,
    )


def batch_transform(state_id: str, job_name, model_name, input_uri, output_uri, **kwargs) -> steps.Task:
    return steps.Task(
        state_id,
        resource=f"{SAGEMAKER}:createTransformJob.sync",
        parameters=_with_paths(
            {
                "TransformJobName": job_name,
                "ModelName": model_name,
                "BatchStrategy": "MultiRecord",
                "MaxPayloadInMB": 6,
                "TransformInput": {
                    "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_uri}},
                    "ContentType": "text/csv",
                    "SplitType": "Line",
                },
                "TransformOutput": {"S3OutputPath": output_uri, "AssembleWith": "Line", "Accept": "text/csv"},
                "TransformResources": {"InstanceCount": 1, "InstanceType": TRANSFORM_INSTANCE},
            }
        ),
        **kwargs,
    )


_SAGEMAKER_TASK = re.compile(r"^arn:[^:]+:states:::sagemaker:(?P<action>[A-Za-z]+)(?:\.sync)?$")


def with_kms_key(definition: dict) -> dict:
    """The definition with every job's volumes and outputs encrypted with the stack's KMS key:
    jobs at any depth (Parallel branches, Map iterators), with Parameters or JSONata Arguments.
    A block the request only has at run time (`"OutputDataConfig.$": "$.x"`, a JSONata
    expression) cannot be encrypted here, and is refused naming the state."""
    encrypted = copy.deepcopy(definition)
    for name, state in states(encrypted):
        match = _SAGEMAKER_TASK.match(str(state.get("Resource", "")))
        kind = kinds.by_integration(match["action"]) if match and state.get("Type") == "Task" else None
        for path in (kind.volume_kms_key, kind.output_kms_key) if kind else ():
            _set_kms_field(name, state, path[:-1], path[-1])
    return encrypted


def _set_kms_field(state_name: str, state: dict, path: tuple[str, ...], field: str) -> None:
    where = "Parameters" if "Parameters" in state else "Arguments"
    block = state.get(where)
    for key in path:
        if not isinstance(block, dict) or (key not in block and f"{key}.$" not in block):
            if isinstance(block, dict):
                return  # no such block in this request (a job without outputs): nothing to encrypt
            break
        if f"{key}.$" in block:
            block = None  # a block given at run time
            break
        block = block[key]
    if not isinstance(block, dict):
        shown = ".".join(path)
        raise ContractError(
            f"state {state_name!r}: cannot encrypt with the KMS key: its {shown} is known only at run "
            f"time; write {shown} as an object so that {field} can be set in it"
        )
    block.pop(f"{field}.$", None)
    block[field] = KMS_KEY


# SageMaker's answers that a retry may get past: throttling and capacity (ThrottlingException and
# other unmodelled errors arrive as AmazonSageMakerException, as Step Functions names them).
TRANSIENT_SAGEMAKER_ERRORS = [
    "SageMaker.AmazonSageMakerException",
    "SageMaker.ResourceLimitExceededException",
]


def retry_transient(task: steps.Task) -> steps.Task:
    """Retry a SageMaker call twice (after 2 s, then 4 s) when SageMaker refused it for now."""
    task.add_retry(
        steps.Retry(
            error_equals=TRANSIENT_SAGEMAKER_ERRORS, interval_seconds=2, max_attempts=2, backoff_rate=2
        )
    )
    return task


def catch_all(task: steps.Task, handler: steps.State) -> steps.Task:
    """Send any error of `task` to `handler`, keeping it under $.error."""
    task.add_catch(steps.Catch(error_equals=["States.ALL"], next_step=handler, result_path="$.error"))
    return task


def pipeline_failed() -> Fail:
    return Fail("PipelineFailed", error_path="$.error.Error", cause_path="$.error.Cause")


def state_path(path: str) -> str:
    """Mark a value as read from the state's data at run time (a JSONPath)."""
    return _StatePath(path)


class _StatePath(str):
    pass


def _with_paths(parameters: dict) -> dict:
    """Parameters with every state_path value under a `.$` key, at any depth."""
    if isinstance(parameters, list):
        return [_with_paths(item) for item in parameters]
    if not isinstance(parameters, dict):
        return parameters
    return {
        (f"{key}.$" if isinstance(value, _StatePath) else key): (
            str(value) if isinstance(value, _StatePath) else _with_paths(value)
        )
        for key, value in parameters.items()
    }


def _processing_input(name: str, uri, path: str) -> dict:
    return {
        "InputName": name,
        "S3Input": {
            "S3Uri": uri,
            "LocalPath": path,
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated",
        },
    }
