"""The project's job runner does what AWS does with a job: several instances that find each
other by name, each with its own log stream; sharded, manifest and https inputs; limits and
out-of-memory kills; network isolation; checkpoints across a stop; gzip transform input."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import time

import pytest

from tests.integration.helpers import ROLE, training_request, unique, wait_for_job

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def bucket(aws_client):
    name = unique("runner")
    s3 = aws_client("s3")
    s3.create_bucket(Bucket=name)
    for number, lines in enumerate((1, 2, 3, 4)):
        s3.put_object(Bucket=name, Key=f"shards/part-{number}.csv", Body=b"x\n" * lines)
    s3.put_object(Bucket=name, Key="train/part.csv", Body=b"x\n" * 10)
    return name


def describe(sm, name):
    return lambda: sm.describe_training_job(TrainingJobName=name)


def log_streams(logs, group: str, job: str) -> dict[str, list[str]]:
    streams = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=f"{job}/")["logStreams"]
    return {
        s["logStreamName"]: [
            e["message"]
            for e in logs.get_log_events(
                logGroupName=group, logStreamName=s["logStreamName"], startFromHead=True
            )["events"]
        ]
        for s in streams
    }


def test_two_instances_share_a_sharded_channel_find_each_other_and_log_apart(aws_client, bucket, tiny_image):
    sm, s3, logs = aws_client("sagemaker"), aws_client("s3"), aws_client("logs")
    name = unique("two-hosts")
    channel = {
        "ChannelName": "train",
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3DataDistributionType": "ShardedByS3Key",
                "S3Uri": f"s3://{bucket}/shards/",
            }
        },
    }
    request = training_request(name, tiny_image, bucket, InputDataConfig=[channel])
    request["ResourceConfig"]["InstanceCount"] = 2
    sm.create_training_job(**request)
    answer, _ = wait_for_job(describe(sm, name), "TrainingJobStatus")
    assert answer["TrainingJobStatus"] == "Completed", answer.get("FailureReason")

    streams = log_streams(logs, "/aws/sagemaker/TrainingJobs", name)
    by_host = {stream.split("/")[1].rsplit("-", 1)[0]: lines for stream, lines in streams.items()}
    assert sorted(by_host) == ["algo-1", "algo-2"]
    assert "host algo-1 of ['algo-1', 'algo-2']; resolves ['algo-2']" in by_host["algo-1"]
    assert "host algo-2 of ['algo-1', 'algo-2']; resolves ['algo-1']" in by_host["algo-2"]
    # objects in key order, dealt in turn: algo-1 gets parts 0 and 2 (1 + 3 lines), algo-2 parts 1 and 3
    body = s3.get_object(Bucket=bucket, Key=f"models/{name}/output/model.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        assert json.load(tar.extractfile("model.json")) == {"lines": 4, "host": "algo-1"}


def test_a_manifest_file_and_an_https_uri_name_the_same_objects(aws_client, bucket, tiny_image):
    sm, s3 = aws_client("sagemaker"), aws_client("s3")
    s3.put_object(
        Bucket=bucket,
        Key="lists/train.manifest",
        Body=json.dumps([{"prefix": f"s3://{bucket}/shards/"}, "part-1.csv", "part-3.csv"]).encode(),
    )
    name = unique("manifest")
    channels = [
        {
            "ChannelName": "listed",
            "DataSource": {
                "S3DataSource": {"S3DataType": "ManifestFile", "S3Uri": f"s3://{bucket}/lists/train.manifest"}
            },
        },
        {
            "ChannelName": "https",
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": f"https://{bucket}.s3.us-east-1.amazonaws.com/shards/part-0.csv",
                }
            },
        },
    ]
    sm.create_training_job(**training_request(name, tiny_image, bucket, InputDataConfig=channels))
    answer, _ = wait_for_job(describe(sm, name), "TrainingJobStatus")
    assert answer["TrainingJobStatus"] == "Completed", answer.get("FailureReason")
    body = s3.get_object(Bucket=bucket, Key=f"models/{name}/output/model.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        assert json.load(tar.extractfile("model.json"))["lines"] == 2 + 4 + 1


def test_a_job_over_its_instance_memory_is_killed_and_says_so(aws_client, bucket, tiny_image):
    sm = aws_client("sagemaker")
    name = unique("oom")
    request = training_request(name, tiny_image, bucket, HyperParameters={"allocate_gb": "5"})
    request["ResourceConfig"]["InstanceType"] = "ml.t3.medium"  # 4 GiB on AWS, and here
    sm.create_training_job(**request)
    answer, _ = wait_for_job(describe(sm, name), "TrainingJobStatus")
    assert answer["TrainingJobStatus"] == "Failed"
    assert answer["FailureReason"].startswith(
        "OutOfMemoryError: Please use an instance type with more memory"
    )


def test_the_failure_file_is_the_failure_reason(aws_client, bucket, tiny_image):
    sm = aws_client("sagemaker")
    name = unique("failure")
    sm.create_training_job(
        **training_request(name, tiny_image, bucket, HyperParameters={"failure": "bad data in row 7"})
    )
    answer, _ = wait_for_job(describe(sm, name), "TrainingJobStatus")
    assert (answer["TrainingJobStatus"], answer["FailureReason"]) == (
        "Failed",
        "AlgorithmError: bad data in row 7",
    )


def test_a_network_isolated_job_has_no_network_and_no_endpoint(aws_client, tiny_image, bucket):
    sm, logs = aws_client("sagemaker"), aws_client("logs")
    name = unique("isolated")
    probe = (
        "import os, socket\n"
        "print('endpoint', os.environ.get('AWS_ENDPOINT_URL'))\n"
        "try:\n"
        "    socket.create_connection(('172.17.0.1', 80), timeout=2)\n"
        "except OSError as ex:\n"
        "    print('no network:', type(ex).__name__)\n"
    )
    sm.create_processing_job(
        ProcessingJobName=name,
        RoleArn=ROLE,
        AppSpecification={"ImageUri": tiny_image, "ContainerEntrypoint": ["python3", "-c", probe]},
        ProcessingResources={
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}
        },
        NetworkConfig={"EnableNetworkIsolation": True},
    )
    answer, _ = wait_for_job(
        lambda: sm.describe_processing_job(ProcessingJobName=name), "ProcessingJobStatus"
    )
    assert answer["ProcessingJobStatus"] == "Completed", answer.get("FailureReason")
    (lines,) = log_streams(logs, "/aws/sagemaker/ProcessingJobs", name).values()
    assert lines == ["endpoint None", "no network: OSError"]


def test_checkpoints_sync_while_running_survive_a_stop_and_resume_the_next_job(
    aws_client, bucket, tiny_image
):
    sm, s3 = aws_client("sagemaker"), aws_client("s3")
    checkpoints = f"s3://{bucket}/checkpoints/{unique('spot')}"
    config = {"S3Uri": checkpoints}
    first = unique("ckpt-a")
    sm.create_training_job(
        **training_request(
            first, tiny_image, bucket, HyperParameters={"checkpoints": "30"}, CheckpointConfig=config
        )
    )
    prefix = checkpoints.split("/", 3)[3]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # synced while the job runs
        if s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("KeyCount", 0) >= 2:
            break
        time.sleep(0.5)
    else:
        raise AssertionError("no checkpoint reached S3 while the job ran")
    sm.stop_training_job(TrainingJobName=first)
    stopped, _ = wait_for_job(describe(sm, first), "TrainingJobStatus")
    assert stopped["TrainingJobStatus"] == "Stopped"
    assert stopped["ModelArtifacts"]["S3ModelArtifacts"].endswith(f"{first}/output/model.tar.gz")  # uploaded
    kept = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["KeyCount"]

    second = unique("ckpt-b")
    sm.create_training_job(
        **training_request(
            second,
            tiny_image,
            bucket,
            HyperParameters={"checkpoints": str(kept + 1)},
            CheckpointConfig=config,
        )
    )
    resumed, _ = wait_for_job(describe(sm, second), "TrainingJobStatus")
    assert resumed["TrainingJobStatus"] == "Completed", resumed.get("FailureReason")
    lines = log_streams(aws_client("logs"), "/aws/sagemaker/TrainingJobs", second)
    assert f"resuming at epoch {kept}" in next(iter(lines.values()))
    assert s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["KeyCount"] == kept + 1


def test_a_gzip_transform_input_is_decompressed_before_the_model_sees_it(aws_client, bucket, tiny_image):
    sm, s3 = aws_client("sagemaker"), aws_client("s3")
    train = unique("gz-train")
    sm.create_training_job(**training_request(train, tiny_image, bucket))
    trained, _ = wait_for_job(describe(sm, train), "TrainingJobStatus")
    model = unique("gz-model")
    sm.create_model(
        ModelName=model,
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": tiny_image, "ModelDataUrl": trained["ModelArtifacts"]["S3ModelArtifacts"]},
    )
    s3.put_object(Bucket=bucket, Key="gz-input/rows.csv.gz", Body=gzip.compress(b"7,a\n8,b\n"))
    name = unique("gz-transform")
    sm.create_transform_job(
        TransformJobName=name,
        ModelName=model,
        TransformInput={
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/gz-input/"}},
            "ContentType": "text/csv",
            "CompressionType": "Gzip",
            "SplitType": "Line",
        },
        TransformOutput={"S3OutputPath": f"s3://{bucket}/gz-output", "AssembleWith": "Line"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
    )
    answer, _ = wait_for_job(lambda: sm.describe_transform_job(TransformJobName=name), "TransformJobStatus")
    assert answer["TransformJobStatus"] == "Completed", answer.get("FailureReason")
    out = s3.get_object(Bucket=bucket, Key="gz-output/rows.csv.gz.out")["Body"].read()
    assert out == b"10,7\n10,8\n"  # the model counted the 10 lines of its train channel


def test_a_continuous_processing_output_reaches_s3_while_the_job_runs(aws_client, bucket, tiny_image):
    sm, s3 = aws_client("sagemaker"), aws_client("s3")
    name = unique("continuous")
    script = (
        "import pathlib, time\n"
        "out = pathlib.Path('/opt/ml/processing/output')\n"
        "(out / 'first.txt').write_text('1')\n"
        "time.sleep(8)\n"
        "(out / 'second.txt').write_text('2')\n"
    )
    sm.create_processing_job(
        ProcessingJobName=name,
        RoleArn=ROLE,
        AppSpecification={"ImageUri": tiny_image, "ContainerEntrypoint": ["python3", "-c", script]},
        ProcessingResources={
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}
        },
        ProcessingOutputConfig={
            "Outputs": [
                {
                    "OutputName": "progress",
                    "S3Output": {
                        "S3Uri": f"s3://{bucket}/continuous/{name}",
                        "LocalPath": "/opt/ml/processing/output",
                        "S3UploadMode": "Continuous",
                    },
                }
            ]
        },
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        keys = [
            o["Key"]
            for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"continuous/{name}/").get("Contents", [])
        ]
        if keys:
            break
        time.sleep(0.3)
    status = sm.describe_processing_job(ProcessingJobName=name)["ProcessingJobStatus"]
    assert keys == [f"continuous/{name}/first.txt"] and status == "InProgress"  # uploaded while it ran
    answer, _ = wait_for_job(
        lambda: sm.describe_processing_job(ProcessingJobName=name), "ProcessingJobStatus"
    )
    assert answer["ProcessingJobStatus"] == "Completed"
    keys = sorted(
        o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"continuous/{name}/")["Contents"]
    )
    assert keys == [f"continuous/{name}/first.txt", f"continuous/{name}/second.txt"]


def test_a_training_job_runs_its_container_entrypoint_and_arguments(aws_client, bucket, tiny_image):
    """ModelTrainer(source_code=...) of the SageMaker SDK v3 names the entrypoint and arguments
    of its training job; SageMaker runs them instead of the image's `train`."""
    sm, s3 = aws_client("sagemaker"), aws_client("s3")
    name = unique("entrypoint")
    script = "import json, sys; json.dump(sys.argv[1:], open('/opt/ml/model/argv.json', 'w'))"
    request = training_request(name, tiny_image, bucket)
    request["AlgorithmSpecification"]["ContainerEntrypoint"] = ["python3", "-c", script]
    request["AlgorithmSpecification"]["ContainerArguments"] = ["--epochs", "3"]
    sm.create_training_job(**request)
    answer, _ = wait_for_job(describe(sm, name), "TrainingJobStatus")
    assert answer["TrainingJobStatus"] == "Completed", answer.get("FailureReason")
    assert answer["AlgorithmSpecification"]["ContainerEntrypoint"] == ["python3", "-c", script]
    body = s3.get_object(Bucket=bucket, Key=f"models/{name}/output/model.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        assert json.load(tar.extractfile("argv.json")) == ["--epochs", "3"]
