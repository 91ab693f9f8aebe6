"""SageMaker jobs run for real in containers behind the emulator's SageMaker API."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
from botocore.exceptions import ClientError

from tests.conftest import job_label, own_containers
from tests.integration.helpers import ROLE, training_request, unique, wait_for_job, wait_for_running_container

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def bucket(aws_client):
    name = unique("jobs")
    s3 = aws_client("s3")
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="train/part-1.csv", Body=b"1,a\n2,b\n3,c\n")
    s3.put_object(Bucket=name, Key="train/part-2.csv", Body=b"4,d\n")
    return name


def describe_training(sm, name):
    return lambda: sm.describe_training_job(TrainingJobName=name)


def test_training_job_runs_in_a_container_and_reports_its_lifecycle(
    aws_client, bucket, tiny_image, docker_client
):
    sm, s3 = aws_client("sagemaker"), aws_client("s3")
    name = unique("train")
    arn = sm.create_training_job(
        **training_request(name, tiny_image, bucket, HyperParameters={"epochs": "2"})
    )["TrainingJobArn"]
    assert arn.endswith(f":training-job/{name}")

    answer, seen = wait_for_job(describe_training(sm, name), "TrainingJobStatus")

    assert seen[0] == "InProgress" and seen[-1] == "Completed"
    assert answer["HyperParameters"] == {"epochs": "2"}
    assert answer["ResourceConfig"]["InstanceType"] == "ml.m5.large"
    assert answer["StoppingCondition"] == {"MaxRuntimeInSeconds": 300}
    assert answer["TrainingStartTime"] <= answer["TrainingEndTime"]
    assert [t["Status"] for t in answer["SecondaryStatusTransitions"]][-1] == "Completed"
    artifact = answer["ModelArtifacts"]["S3ModelArtifacts"]
    assert artifact == f"s3://{bucket}/models/{name}/output/model.tar.gz"
    body = s3.get_object(Bucket=bucket, Key=f"models/{name}/output/model.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        assert json.load(tar.extractfile("model.json")) == {"lines": 4, "host": "algo-1"}
    assert not [c for c in own_containers(docker_client) if job_label(c) == arn]


def test_container_output_goes_to_cloudwatch_logs(aws_client, bucket, tiny_image):
    sm, logs = aws_client("sagemaker"), aws_client("logs")
    name = unique("logged")
    sm.create_training_job(**training_request(name, tiny_image, bucket))
    wait_for_job(describe_training(sm, name), "TrainingJobStatus")

    group = "/aws/sagemaker/TrainingJobs"
    streams = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=f"{name}/")["logStreams"]
    assert len(streams) == 1 and streams[0]["logStreamName"].startswith(f"{name}/algo-1-")
    events = logs.get_log_events(logGroupName=group, logStreamName=streams[0]["logStreamName"])["events"]
    assert "trained on 4 lines" in [e["message"] for e in events]


def test_code_in_a_container_reaches_the_emulator_with_boto3(aws_client, bucket, tiny_image):
    sm, s3 = aws_client("sagemaker"), aws_client("s3")
    name = unique("probe")
    probe = f"s3://{bucket}/probes/{name}.txt"
    sm.create_training_job(**training_request(name, tiny_image, bucket, HyperParameters={"s3_probe": probe}))
    answer, _ = wait_for_job(describe_training(sm, name), "TrainingJobStatus")
    assert answer["TrainingJobStatus"] == "Completed", answer.get("FailureReason")
    assert s3.get_object(Bucket=bucket, Key=f"probes/{name}.txt")["Body"].read() == b"lines=4"


def test_a_failing_job_is_failed_with_the_containers_last_lines(
    aws_client, bucket, tiny_image, docker_client
):
    sm = aws_client("sagemaker")
    name = unique("fails")
    sm.create_training_job(**training_request(name, tiny_image, bucket, HyperParameters={"fail": "1"}))
    answer, _ = wait_for_job(describe_training(sm, name), "TrainingJobStatus")
    assert answer["TrainingJobStatus"] == "Failed"
    assert answer["FailureReason"].startswith("AlgorithmError: ")
    assert "the training script failed on purpose" in answer["FailureReason"]
    assert answer["FailureReason"].endswith("exit code: 1")
    assert "ModelArtifacts" not in answer
    assert not own_containers(docker_client) or all(
        job_label(c) != answer["TrainingJobArn"] for c in own_containers(docker_client)
    )


def test_a_job_past_its_time_limit_is_stopped_as_max_runtime_exceeded(aws_client, bucket, tiny_image):
    sm = aws_client("sagemaker")
    name = unique("slow")
    sm.create_training_job(
        **training_request(
            name,
            tiny_image,
            bucket,
            HyperParameters={"sleep": "60"},
            StoppingCondition={"MaxRuntimeInSeconds": 3},
        )
    )
    answer, _ = wait_for_job(describe_training(sm, name), "TrainingJobStatus", timeout=45)
    assert answer["TrainingJobStatus"] == "Stopped"
    assert answer["SecondaryStatus"] == "MaxRuntimeExceeded"
    runtime = (answer["TrainingEndTime"] - answer["TrainingStartTime"]).total_seconds()
    assert 3 <= runtime < 30


def test_stop_training_job_stops_the_container(aws_client, bucket, tiny_image, docker_client):
    sm = aws_client("sagemaker")
    name = unique("stopped")
    arn = sm.create_training_job(
        **training_request(name, tiny_image, bucket, HyperParameters={"sleep": "60"})
    )["TrainingJobArn"]
    wait_for_running_container(docker_client, arn)
    sm.stop_training_job(TrainingJobName=name)
    assert sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] in ("Stopping", "Stopped")
    answer, _ = wait_for_job(describe_training(sm, name), "TrainingJobStatus", timeout=45)
    assert answer["TrainingJobStatus"] == "Stopped"
    assert answer["SecondaryStatus"] == "Stopped"


def test_a_reused_job_name_is_refused(aws_client, bucket, tiny_image):
    sm = aws_client("sagemaker")
    name = unique("twice")
    sm.create_training_job(**training_request(name, tiny_image, bucket))
    with pytest.raises(ClientError) as raised:
        sm.create_training_job(**training_request(name, tiny_image, bucket))
    assert raised.value.response["Error"]["Code"] == "ResourceInUse"
    wait_for_job(describe_training(sm, name), "TrainingJobStatus")


def test_list_training_jobs_filters_then_sorts_then_pages_as_aws_does(aws_client, bucket, tiny_image):
    sm = aws_client("sagemaker")
    tag = unique("listed")
    names = [f"{tag}-{letter}" for letter in ("b", "c", "a")]  # created in this order
    for name in names:
        sm.create_training_job(**training_request(name, tiny_image, bucket))
    for name in names:
        wait_for_job(describe_training(sm, name), "TrainingJobStatus")

    def listed(**kwargs) -> list[str]:
        return [
            s["TrainingJobName"]
            for s in sm.list_training_jobs(NameContains=tag, **kwargs)["TrainingJobSummaries"]
        ]

    assert listed() == names  # CreationTime, Ascending: the documented defaults
    assert listed(SortOrder="Descending") == names[::-1]
    assert listed(SortBy="Name") == sorted(names)
    assert listed(MaxResults=1, SortBy="Name", SortOrder="Descending") == [f"{tag}-c"]  # after filtering
    first = sm.list_training_jobs(NameContains=tag, MaxResults=2)
    rest = sm.list_training_jobs(NameContains=tag, MaxResults=2, NextToken=first["NextToken"])
    assert [
        s["TrainingJobName"] for s in first["TrainingJobSummaries"] + rest["TrainingJobSummaries"]
    ] == names
    assert "NextToken" not in rest
    assert listed(StatusEquals="Failed") == []
    summary = sm.list_training_jobs(NameContains=names[0])["TrainingJobSummaries"][0]
    assert summary["TrainingJobStatus"] == "Completed" and summary["TrainingJobArn"].endswith(names[0])


def test_a_finished_job_cannot_be_stopped_and_its_description_has_aws_shape(aws_client, bucket, tiny_image):
    sm = aws_client("sagemaker")
    name = unique("ended")
    sm.create_training_job(**training_request(name, tiny_image, bucket))
    answer, _ = wait_for_job(describe_training(sm, name), "TrainingJobStatus")
    assert answer["OutputDataConfig"] == {"KmsKeyId": "", "S3OutputPath": f"s3://{bucket}/models"}
    assert "VpcConfig" not in answer  # none asked: absent, not {}
    with pytest.raises(ClientError) as refused:
        sm.stop_training_job(TrainingJobName=name)
    assert refused.value.response["Error"] == {
        "Code": "ValidationException",
        "Message": "The request was rejected because the training job is in status Completed.",
    }


def test_an_instance_type_sagemaker_does_not_have_is_refused_with_the_real_list(
    aws_client, bucket, tiny_image
):
    sm = aws_client("sagemaker")
    request = training_request(unique("odd"), tiny_image, bucket)
    request["ResourceConfig"]["InstanceType"] = "ml.m5.huge"
    with pytest.raises(ClientError) as refused:
        sm.create_training_job(**request)
    message = refused.value.response["Error"]["Message"]
    assert message.startswith(
        "1 validation error detected: Value 'ml.m5.huge' at 'resourceConfig.instanceType' failed to satisfy "
        "constraint: Member must satisfy enum value set: ["
    )
    assert "ml.m5.large" in message and "ml.p4d.24xlarge" in message


@pytest.mark.parametrize(
    "operation, arguments",
    [
        (
            "create_compilation_job",
            {
                "CompilationJobName": "neo",
                "RoleArn": ROLE,
                "OutputConfig": {"S3OutputLocation": "s3://bucket/compiled"},
                "StoppingCondition": {"MaxRuntimeInSeconds": 60},
            },
        ),
        ("start_pipeline_execution", {"PipelineName": "pipeline"}),
        (
            "create_notebook_instance",
            {"NotebookInstanceName": "nb", "InstanceType": "ml.t3.medium", "RoleArn": ROLE},
        ),
    ],
)
def test_work_the_local_aws_does_not_do_is_refused_not_faked(aws_client, operation, arguments):
    sm = aws_client("sagemaker")
    with pytest.raises(ClientError) as refused:
        getattr(sm, operation)(**arguments)
    error = refused.value.response["Error"]
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501
    assert error["Code"] == "UnsupportedOperation"
    assert error["Message"].startswith("the local AWS does not support sagemaker:")


def test_processing_job_reads_inputs_and_writes_outputs(aws_client, bucket, tiny_image):
    sm, s3 = aws_client("sagemaker"), aws_client("s3")
    script = (
        b"import pathlib\n"
        b"rows = pathlib.Path('/opt/ml/processing/input/data/part-1.csv').read_text().splitlines()\n"
        b"pathlib.Path('/opt/ml/processing/output/count.txt').write_text(str(len(rows)))\n"
        b"print('counted', len(rows))\n"
    )
    s3.put_object(Bucket=bucket, Key="code/count.py", Body=script)
    name = unique("process")
    sm.create_processing_job(
        ProcessingJobName=name,
        RoleArn=ROLE,
        AppSpecification={
            "ImageUri": tiny_image,
            "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/count.py"],
        },
        ProcessingResources={
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.t3.medium", "VolumeSizeInGB": 1}
        },
        ProcessingInputs=[
            _processing_input("code", f"s3://{bucket}/code/count.py", "/opt/ml/processing/input/code"),
            _processing_input("data", f"s3://{bucket}/train/", "/opt/ml/processing/input/data"),
        ],
        ProcessingOutputConfig={
            "Outputs": [
                {
                    "OutputName": "counts",
                    "S3Output": {
                        "S3Uri": f"s3://{bucket}/processed/{name}",
                        "LocalPath": "/opt/ml/processing/output",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
        Environment={"MODE": "count"},
    )
    answer, seen = wait_for_job(
        lambda: sm.describe_processing_job(ProcessingJobName=name), "ProcessingJobStatus"
    )
    assert seen == ["InProgress", "Completed"], answer.get("FailureReason")
    assert answer["Environment"] == {"MODE": "count"}
    assert answer["ProcessingResources"]["ClusterConfig"]["InstanceType"] == "ml.t3.medium"
    assert s3.get_object(Bucket=bucket, Key=f"processed/{name}/count.txt")["Body"].read() == b"3"
    listed = sm.list_processing_jobs(NameContains=name)["ProcessingJobSummaries"]
    assert [(j["ProcessingJobName"], j["ProcessingJobStatus"]) for j in listed] == [(name, "Completed")]
    with pytest.raises(ClientError, match="the processing job is in status Completed"):
        sm.stop_processing_job(ProcessingJobName=name)


def test_transform_job_serves_the_model_and_writes_predictions(aws_client, bucket, tiny_image):
    sm, s3 = aws_client("sagemaker"), aws_client("s3")
    train = unique("for-transform")
    sm.create_training_job(**training_request(train, tiny_image, bucket))
    trained, _ = wait_for_job(describe_training(sm, train), "TrainingJobStatus")
    model = unique("model")
    sm.create_model(
        ModelName=model,
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": tiny_image, "ModelDataUrl": trained["ModelArtifacts"]["S3ModelArtifacts"]},
    )
    name = unique("transform")
    sm.create_transform_job(
        TransformJobName=name,
        ModelName=model,
        BatchStrategy="MultiRecord",
        TransformInput={
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/train/"}},
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        TransformOutput={"S3OutputPath": f"s3://{bucket}/predictions/{name}", "AssembleWith": "Line"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
    )
    answer, seen = wait_for_job(
        lambda: sm.describe_transform_job(TransformJobName=name), "TransformJobStatus"
    )
    assert seen == ["InProgress", "Completed"], answer.get("FailureReason")
    # As on AWS: <S3OutputPath>/<input file>.out, no job-name folder in between.
    out = s3.get_object(Bucket=bucket, Key=f"predictions/{name}/part-1.csv.out")["Body"].read()
    assert out == b"4,1\n4,2\n4,3\n"
    listed = sm.list_transform_jobs(NameContains=name)["TransformJobSummaries"]
    assert [(j["TransformJobName"], j["TransformJobStatus"]) for j in listed] == [(name, "Completed")]
    with pytest.raises(ClientError, match="the transform job is in status Completed"):
        sm.stop_transform_job(TransformJobName=name)


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"ResourceConfig": {"InstanceType": "huge", "InstanceCount": 1, "VolumeSizeInGB": 1}},
            "instanceType",
        ),
        ({"AlgorithmSpecification": {"TrainingInputMode": "File"}}, "TrainingImage"),
    ],
)
def test_malformed_requests_are_refused(aws_client, bucket, tiny_image, change, message):
    sm = aws_client("sagemaker")
    with pytest.raises(ClientError) as raised:
        sm.create_training_job(**training_request(unique("bad"), tiny_image, bucket, **change))
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert message in raised.value.response["Error"]["Message"]


def test_an_image_that_does_not_exist_fails_the_job(aws_client, bucket, docker_client):
    sm = aws_client("sagemaker")
    name = unique("noimage")
    sm.create_training_job(**training_request(name, "mlharness/does-not-exist:1", bucket))
    answer, _ = wait_for_job(describe_training(sm, name), "TrainingJobStatus")
    assert answer["TrainingJobStatus"] == "Failed"
    assert "mlharness/does-not-exist:1 not found" in answer["FailureReason"]


def test_an_input_that_does_not_exist_fails_the_job(aws_client, bucket, tiny_image):
    sm = aws_client("sagemaker")
    name = unique("noinput")
    channels = [
        {
            "ChannelName": "train",
            "DataSource": {
                "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/nothing-here/"}
            },
        }
    ]
    sm.create_training_job(**training_request(name, tiny_image, bucket, InputDataConfig=channels))
    answer, _ = wait_for_job(describe_training(sm, name), "TrainingJobStatus")
    assert answer["TrainingJobStatus"] == "Failed"
    assert f'No S3 objects found under S3 URL "s3://{bucket}/nothing-here/"' in answer["FailureReason"]


def _processing_input(name: str, uri: str, local_path: str) -> dict:
    return {
        "InputName": name,
        "S3Input": {
            "S3Uri": uri,
            "LocalPath": local_path,
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
        },
    }


def test_metric_definitions_give_final_metrics_and_cloudwatch_data_the_sdk_reads(
    aws_client, bucket, tiny_image, local_aws, monkeypatch
):
    sm = aws_client("sagemaker")
    name = unique("metrics")
    request = training_request(name, tiny_image, bucket, HyperParameters={"epochs": "3"})
    request["AlgorithmSpecification"]["MetricDefinitions"] = [
        {"Name": "train:loss", "Regex": r"loss=([0-9.]+)"},
        {"Name": "train:epoch", "Regex": r"epoch=(\d+)"},
        {"Name": "never", "Regex": r"nothing prints (this)"},
    ]
    sm.create_training_job(**request)
    answer, _ = wait_for_job(describe_training(sm, name), "TrainingJobStatus")

    assert answer["TrainingJobStatus"] == "Completed", answer.get("FailureReason")
    final = {m["MetricName"]: m["Value"] for m in answer["FinalMetricDataList"]}
    assert final == {"train:loss": pytest.approx(0.3333), "train:epoch": 2.0}

    import boto3
    from sagemaker import Session
    from sagemaker.analytics import TrainingJobAnalytics

    monkeypatch.setenv("AWS_ENDPOINT_URL", local_aws.endpoint_url)  # as `emulator env` sets it
    session = Session(boto_session=boto3.Session(region_name="us-east-1"), default_bucket=bucket)
    frame = TrainingJobAnalytics(name, ["train:loss"], sagemaker_session=session).dataframe()
    assert list(frame["metric_name"]) == ["train:loss"]
    assert frame["value"].iloc[0] == pytest.approx((1 + 0.5 + 0.3333) / 3, rel=1e-3)  # the minute's average


def test_a_regex_that_does_not_compile_is_refused(aws_client, bucket, tiny_image):
    request = training_request(unique("badregex"), tiny_image, bucket)
    request["AlgorithmSpecification"]["MetricDefinitions"] = [{"Name": "loss", "Regex": "loss=(["}]
    with pytest.raises(ClientError, match="the regex of 'loss' does not compile"):
        aws_client("sagemaker").create_training_job(**request)
