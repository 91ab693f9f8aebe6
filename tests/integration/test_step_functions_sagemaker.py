"""State machines whose tasks are SageMaker jobs, run by the emulator's engine."""

from __future__ import annotations

import json
import time

import pytest
from botocore.exceptions import ClientError

from tests.integration.helpers import (
    ROLE,
    training_request,
    unique,
    wait_for_execution,
    wait_for_running_container,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SFN_ROLE = "arn:aws:iam::123456789012:role/stepfunctions"


@pytest.fixture(scope="module")
def bucket(aws_client):
    name = unique("sfn")
    s3 = aws_client("s3")
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="raw/data.csv", Body=b"1,a\n2,b\n3,c\n4,d\n5,e\n")
    s3.put_object(Bucket=name, Key="train/data.csv", Body=b"1,a\n")
    script = (
        b"import pathlib\n"
        b"rows = pathlib.Path('/opt/ml/processing/input/data/data.csv').read_text().splitlines()\n"
        b"out = pathlib.Path('/opt/ml/processing/output')\n"
        b"(out / 'train.csv').write_text('\\n'.join(rows[:3]) + '\\n')\n"
    )
    s3.put_object(Bucket=name, Key="code/split.py", Body=script)
    return name


def pipeline_definition(image: str, bucket: str) -> dict:
    """Processing -> Training -> Model -> Transform, each .sync where it is a job."""
    fail = {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "PipelineFailed"}
    return {
        "StartAt": "Preprocess",
        "States": {
            "Preprocess": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sagemaker:createProcessingJob.sync",
                "Parameters": {
                    "ProcessingJobName.$": "$.names.processing",
                    "RoleArn": ROLE,
                    "AppSpecification": {
                        "ImageUri": image,
                        "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/split.py"],
                    },
                    "ProcessingResources": {
                        "ClusterConfig": {
                            "InstanceCount": 1,
                            "InstanceType": "ml.t3.medium",
                            "VolumeSizeInGB": 1,
                        }
                    },
                    "ProcessingInputs": [
                        {
                            "InputName": "code",
                            "S3Input": {
                                "S3Uri": f"s3://{bucket}/code/split.py",
                                "LocalPath": "/opt/ml/processing/input/code",
                                "S3DataType": "S3Prefix",
                                "S3InputMode": "File",
                            },
                        },
                        {
                            "InputName": "data",
                            "S3Input": {
                                "S3Uri": f"s3://{bucket}/raw/",
                                "LocalPath": "/opt/ml/processing/input/data",
                                "S3DataType": "S3Prefix",
                                "S3InputMode": "File",
                            },
                        },
                    ],
                    "ProcessingOutputConfig": {
                        "Outputs": [
                            {
                                "OutputName": "train",
                                "S3Output": {
                                    "S3Uri.$": "States.Format('s3://{}/runs/{}/train', $.bucket, $.run)",
                                    "LocalPath": "/opt/ml/processing/output",
                                    "S3UploadMode": "EndOfJob",
                                },
                            }
                        ]
                    },
                },
                "ResultPath": "$.preprocess",
                "Catch": [fail],
                "Next": "Train",
            },
            "Train": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",
                "Parameters": {
                    "TrainingJobName.$": "$.names.training",
                    "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
                    "RoleArn": ROLE,
                    "HyperParameters.$": "$.hyperparameters",
                    "InputDataConfig": [
                        {
                            "ChannelName": "train",
                            "DataSource": {
                                "S3DataSource": {
                                    "S3DataType": "S3Prefix",
                                    "S3Uri.$": "$.preprocess.ProcessingOutputConfig"
                                    ".Outputs[0].S3Output.S3Uri",
                                }
                            },
                        }
                    ],
                    "OutputDataConfig": {
                        "S3OutputPath.$": "States.Format('s3://{}/runs/{}/model', $.bucket, $.run)"
                    },
                    "ResourceConfig": {
                        "InstanceType": "ml.m5.large",
                        "InstanceCount": 1,
                        "VolumeSizeInGB": 1,
                    },
                    "StoppingCondition": {"MaxRuntimeInSeconds": 120},
                },
                "ResultPath": "$.train",
                "Catch": [fail],
                "Next": "CreateModel",
            },
            "CreateModel": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sagemaker:createModel",
                "Parameters": {
                    "ModelName.$": "$.names.model",
                    "ExecutionRoleArn": ROLE,
                    "PrimaryContainer": {
                        "Image": image,
                        "ModelDataUrl.$": "$.train.ModelArtifacts.S3ModelArtifacts",
                    },
                },
                "ResultPath": "$.model",
                "Catch": [fail],
                "Next": "Transform",
            },
            "Transform": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sagemaker:createTransformJob.sync",
                "Parameters": {
                    "TransformJobName.$": "$.names.transform",
                    "ModelName.$": "$.names.model",
                    "TransformInput": {
                        "DataSource": {
                            "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/raw/"}
                        },
                        "ContentType": "text/csv",
                        "SplitType": "Line",
                    },
                    "TransformOutput": {
                        "S3OutputPath.$": "States.Format('s3://{}/runs/{}/predictions', $.bucket, $.run)",
                        "AssembleWith": "Line",
                    },
                    "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
                },
                "ResultPath": "$.transform",
                "Catch": [fail],
                "End": True,
            },
            "PipelineFailed": {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"},
        },
    }


def run_input(bucket: str, **hyperparameters) -> dict:
    run = unique("run")
    return {
        "bucket": bucket,
        "run": run,
        "hyperparameters": hyperparameters,
        "names": {kind: f"{run}-{kind}" for kind in ("processing", "training", "model", "transform")},
    }


def create_state_machine(sfn, definition: dict) -> str:
    return sfn.create_state_machine(
        name=unique("pipeline"), definition=json.dumps(definition), roleArn=SFN_ROLE
    )["stateMachineArn"]


def test_processing_training_model_transform_pipeline_runs_end_to_end(aws_client, bucket, tiny_image):
    sfn, s3, sm = aws_client("stepfunctions"), aws_client("s3"), aws_client("sagemaker")
    machine = create_state_machine(sfn, pipeline_definition(tiny_image, bucket))
    execution_input = run_input(bucket)
    execution = sfn.start_execution(stateMachineArn=machine, input=json.dumps(execution_input))[
        "executionArn"
    ]

    answer = wait_for_execution(sfn, execution)

    assert answer["status"] == "SUCCEEDED", answer
    output = json.loads(answer["output"])
    run = execution_input["run"]
    # .sync answers with the Describe* output, timestamps as epoch milliseconds
    assert output["train"]["TrainingJobStatus"] == "Completed"
    assert isinstance(output["train"]["TrainingEndTime"], int)
    assert output["train"]["ModelArtifacts"]["S3ModelArtifacts"] == (
        f"s3://{bucket}/runs/{run}/model/{run}-training/output/model.tar.gz"
    )
    assert output["model"]["ModelArn"].endswith(f":model/{run}-model")
    # a request-response integration's result carries what Step Functions adds on AWS
    assert output["model"]["SdkHttpMetadata"]["HttpStatusCode"] == 200
    request_id = output["model"]["SdkResponseMetadata"]["RequestId"]
    assert request_id and output["model"]["SdkHttpMetadata"]["HttpHeaders"]["x-amzn-RequestId"] == request_id
    assert output["transform"]["TransformJobStatus"] == "Completed"
    predictions = s3.get_object(Bucket=bucket, Key=f"runs/{run}/predictions/data.csv.out")["Body"].read()
    assert predictions.decode().splitlines() == ["3,1", "3,2", "3,3", "3,4", "3,5"]
    assert sm.describe_model(ModelName=f"{run}-model")["PrimaryContainer"]["Image"] == tiny_image
    entered = [
        e["stateEnteredEventDetails"]["name"]
        for e in sfn.get_execution_history(executionArn=execution)["events"]
        if e["type"] == "TaskStateEntered"
    ]
    assert entered == ["Preprocess", "Train", "CreateModel", "Transform"]


def test_a_failing_job_fails_the_task_and_catch_keeps_the_jobs_error(aws_client, bucket, tiny_image):
    sfn = aws_client("stepfunctions")
    machine = create_state_machine(sfn, pipeline_definition(tiny_image, bucket))
    execution = sfn.start_execution(stateMachineArn=machine, input=json.dumps(run_input(bucket, fail="1")))[
        "executionArn"
    ]

    answer = wait_for_execution(sfn, execution)

    assert answer["status"] == "FAILED"
    assert answer["error"] == "States.TaskFailed"
    cause = json.loads(answer["cause"])
    assert cause["TrainingJobStatus"] == "Failed"
    assert "the training script failed on purpose" in cause["FailureReason"]


def test_retry_reruns_a_task_after_an_api_error(aws_client, bucket, tiny_image):
    """A create call refused by the API fails the state with SageMaker.<Exception>; Retry sees it."""
    sfn, sm = aws_client("stepfunctions"), aws_client("sagemaker")
    taken = unique("taken")
    sm.create_training_job(**training_request(taken, tiny_image, bucket))
    definition = {
        "StartAt": "Train",
        "States": {
            "Train": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sagemaker:createTrainingJob",
                "Parameters": {
                    k if k != "TrainingJobName" else "TrainingJobName": v
                    for k, v in training_request(taken, tiny_image, bucket).items()
                },
                "Retry": [
                    {
                        "ErrorEquals": ["SageMaker.ResourceInUseException"],
                        "MaxAttempts": 1,
                        "IntervalSeconds": 1,
                    }
                ],
                "End": True,
            }
        },
    }
    machine = create_state_machine(sfn, definition)
    execution = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]

    answer = wait_for_execution(sfn, execution, timeout=60)

    assert answer["status"] == "FAILED"
    assert answer["error"] == "SageMaker.ResourceInUseException"
    assert "Error Code: ResourceInUse" in answer["cause"]
    history = sfn.get_execution_history(executionArn=execution)["events"]
    assert sum(1 for e in history if e["type"] == "TaskFailed") == 2  # the first try and one retry


def test_stop_execution_stops_the_running_job(aws_client, bucket, tiny_image, docker_client):
    sfn, sm = aws_client("stepfunctions"), aws_client("sagemaker")
    name = unique("long")
    request = training_request(name, tiny_image, bucket, HyperParameters={"sleep": "60"})
    definition = {
        "StartAt": "Train",
        "States": {
            "Train": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",
                "Parameters": request,
                "End": True,
            }
        },
    }
    machine = create_state_machine(sfn, definition)
    execution = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            arn = sm.describe_training_job(TrainingJobName=name)["TrainingJobArn"]
            break
        except ClientError:
            time.sleep(0.2)
    wait_for_running_container(docker_client, arn)

    sfn.stop_execution(executionArn=execution, error="Cancelled", cause="test")

    stopped = sfn.describe_execution(executionArn=execution)
    assert stopped["status"] == "ABORTED"
    deadline = time.monotonic() + 30
    status = None
    while time.monotonic() < deadline:
        status = sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"]
        if status == "Stopped":
            break
        time.sleep(0.3)
    assert status == "Stopped", sm.describe_training_job(TrainingJobName=name).get("FailureReason")
