"""The container contract, the channel rules and the instance table, without Docker."""

from __future__ import annotations

import io
import json
import tarfile

from harness.emulator.sagemaker import channels, contract, instances
from mlharness.kinds import TRAINING, TRANSFORM

REQUEST = {
    "TrainingJobName": "job",
    "AlgorithmSpecification": {"TrainingImage": "image", "TrainingInputMode": "File"},
    "HyperParameters": {"epochs": "3", "sagemaker_program": '"train.py"'},
    "InputDataConfig": [
        {
            "ChannelName": "train",
            "ContentType": "text/csv",
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/train/"}},
        },
        {
            "ChannelName": "test",
            "InputMode": "FastFile",
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": "s3://b/test/",
                    "S3DataDistributionType": "ShardedByS3Key",
                }
            },
        },
    ],
    "ResourceConfig": {"InstanceType": "ml.p3.16xlarge", "InstanceCount": 2, "VolumeSizeInGB": 30},
    "CheckpointConfig": {"S3Uri": "s3://b/checkpoints"},
}


def test_training_config_files_are_the_documented_documents():
    files = {
        name: json.loads(body)
        for name, body in contract.training_files(REQUEST, "algo-2", ["algo-1", "algo-2"]).items()
    }
    # the resourceconfig.json of AWS's documentation, for the second host of two
    assert files["resourceconfig.json"] == {
        "current_host": "algo-2",
        "hosts": ["algo-1", "algo-2"],
        "current_instance_type": "ml.p3.16xlarge",
        "current_group_name": "homogeneousCluster",
        "instance_groups": [
            {
                "instance_group_name": "homogeneousCluster",
                "instance_type": "ml.p3.16xlarge",
                "hosts": ["algo-1", "algo-2"],
            }
        ],
        "network_interface_name": "eth0",
    }
    assert files["inputdataconfig.json"] == {
        "train": {
            "TrainingInputMode": "File",
            "S3DistributionType": "FullyReplicated",
            "RecordWrapperType": "None",
            "ContentType": "text/csv",
        },
        "test": {
            "TrainingInputMode": "FastFile",
            "S3DistributionType": "ShardedByS3Key",
            "RecordWrapperType": "None",
        },
    }
    assert files["hyperparameters.json"] == REQUEST["HyperParameters"]  # strings, exactly as given
    assert files["checkpointconfig.json"] == {
        "LocalPath": "/opt/ml/checkpoints",
        "S3Uri": "s3://b/checkpoints",
    }


def test_the_processing_config_is_the_job_with_its_arn_and_without_tags():
    request = {
        "ProcessingJobName": "p",
        "AppSpecification": {
            "ImageUri": "i",
            "ContainerEntrypoint": ["python3", "x.py"],
            "ContainerArguments": ["--a"],
        },
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}
        },
        "RoleArn": "arn:aws:iam::123456789012:role/r",
        "Tags": [{"Key": "k", "Value": "v"}],
    }
    files = {
        name: json.loads(body)
        for name, body in contract.processing_files(request, "arn:p", "algo-1", ["algo-1"]).items()
    }
    assert files["processingjobconfig.json"]["ProcessingJobArn"] == "arn:p"
    assert "Tags" not in files["processingjobconfig.json"]
    assert files["resourceconfig.json"]["current_host"] == "algo-1"
    assert contract.processing_command(request) == (["python3", "x.py"], ["--a"])


def test_an_object_lands_below_the_channel_as_sagemaker_places_it():
    assert channels.relative_path("runs/r/transformer/t.joblib", "runs/r/transformer") == "t.joblib"
    assert channels.relative_path("train/a/b.csv", "train/") == "a/b.csv"
    assert channels.relative_path("data/train.csv", "data/train.csv") == "train.csv"
    assert channels.relative_path("data/train.csv", "data/tr") == "train.csv"
    assert channels.relative_path("a.csv", "") == "a.csv"


def test_sharded_objects_are_dealt_to_the_hosts_in_key_order():
    items = [channels.S3Object("b", f"k/{n}", str(n)) for n in (3, 0, 2, 1, 4)]
    assert [i.relative for i in channels.shard(items, "ShardedByS3Key", 0, 2)] == ["0", "2", "4"]
    assert [i.relative for i in channels.shard(items, "ShardedByS3Key", 1, 2)] == ["1", "3"]
    assert channels.shard(items, "FullyReplicated", 1, 2) == items


def test_a_model_folder_is_packed_with_paths_relative_to_it(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "model.json").write_text("{}")
    (tmp_path / "sub" / "weights.bin").write_bytes(b"\0")
    with tarfile.open(fileobj=io.BytesIO(channels.pack(tmp_path))) as archive:
        assert sorted(archive.getnames()) == ["model.json", "sub", "sub/weights.bin"]


def test_instances_are_sized_as_on_aws_and_capped_by_the_machine():
    assert instances.on_aws("ml.m5.xlarge") == instances.Instance(4, 16)
    assert instances.on_aws("ml.c5.2xlarge") == instances.Instance(8, 16)
    assert instances.on_aws("ml.p3.2xlarge") == instances.Instance(8, 61, 1)
    fits = instances.limits_for("ml.m5.large", machine_cpus=4, machine_memory=32 * 2**30)
    assert (fits.nano_cpus, fits.mem_bytes, fits.note) == (2_000_000_000, 8 * 2**30, None)
    capped = instances.limits_for("ml.m5.4xlarge", machine_cpus=2, machine_memory=24 * 2**30)
    assert (capped.nano_cpus, capped.mem_bytes) == (2_000_000_000, 24 * 2**30)
    assert "here capped to 2 CPUs (this machine has 2), 24.0 GiB" in capped.note
    assert "GPU(s), which it does not have here" in instances.limits_for("ml.g5.xlarge", 8, 64 * 2**30).note
    unknown = instances.limits_for("ml.inf2.xlarge", 2, 2**30)
    assert (unknown.nano_cpus, unknown.mem_bytes) == (
        None,
        None,
    ) and "not in the instance table" in unknown.note


def test_what_aws_refuses_or_the_local_aws_does_not_run_is_refused_up_front():
    def channel(**fields):
        source = {"S3DataType": fields.pop("data_type", "S3Prefix"), "S3Uri": "s3://b/x/"}
        return {"ChannelName": "train", "DataSource": {"S3DataSource": source}, **fields}

    def training(*channels):
        return {"AlgorithmSpecification": {"TrainingInputMode": "File"}, "InputDataConfig": list(channels)}

    assert contract.refusal(TRAINING, training(channel())) is None
    assert "AugmentedManifestFile can only be used with Pipe" in contract.refusal(
        TRAINING, training(channel(data_type="AugmentedManifestFile"))
    )
    assert "only supported in Pipe input mode" in contract.refusal(
        TRAINING, training(channel(CompressionType="Gzip"))
    )
    assert "does not run Pipe input mode" in contract.refusal(TRAINING, training(channel(InputMode="Pipe")))
    assert "does not apply it" in contract.refusal(TRANSFORM, {"DataProcessing": {"JoinSource": "Input"}})


def test_a_spot_jobs_wait_must_cover_its_runtime_as_aws_requires():
    def training(**fields):
        return {"AlgorithmSpecification": {"TrainingInputMode": "File"}, "InputDataConfig": [], **fields}

    spot = {"EnableManagedSpotTraining": True}
    assert (
        contract.refusal(
            TRAINING,
            training(StoppingCondition={"MaxRuntimeInSeconds": 60, "MaxWaitTimeInSeconds": 120}, **spot),
        )
        is None
    )
    assert "at least MaxRuntimeInSeconds" in contract.refusal(
        TRAINING,
        training(StoppingCondition={"MaxRuntimeInSeconds": 60, "MaxWaitTimeInSeconds": 30}, **spot),
    )
    assert "only for managed spot training" in contract.refusal(
        TRAINING, training(StoppingCondition={"MaxRuntimeInSeconds": 60, "MaxWaitTimeInSeconds": 120})
    )


def test_a_training_job_starts_with_train_unless_it_names_its_entrypoint_or_arguments():
    def command(**algorithm):
        return contract.training_command({"AlgorithmSpecification": {"TrainingImage": "i", **algorithm}})

    assert command() == (None, ["train"])
    assert command(ContainerEntrypoint=["python3", "run.py"]) == (["python3", "run.py"], [])
    assert command(ContainerEntrypoint=["sh"], ContainerArguments=["-c", "x"]) == (["sh"], ["-c", "x"])
    assert command(ContainerArguments=["--fast"]) == (None, ["--fast"])
