"""The container contract SageMaker documents: what a job's containers find, where, and
what they are started with. Pure (no Docker, no S3): the runner lays it out.

Training (docs: "How Amazon SageMaker Runs Your Training Image"): the container is
started with `train`, or with AlgorithmSpecification's ContainerEntrypoint and
ContainerArguments when the request names them; /opt/ml/input/config/{hyperparameters,inputdataconfig,
resourceconfig}.json (and checkpointconfig.json with a CheckpointConfig); each channel's
data in /opt/ml/input/data/<channel>; the model is what it leaves in /opt/ml/model,
other output in /opt/ml/output/data, a failure description in /opt/ml/output/failure;
checkpoints in /opt/ml/checkpoints (or the configured LocalPath).
Processing ("Build Your Own Processing Container"): the entrypoint and arguments of
AppSpecification; /opt/ml/config/{processingjobconfig,resourceconfig}.json; each input at
its LocalPath; each output collected from its LocalPath.
Serving ("Use Your Own Inference Code"): started with `serve`; the model extracted in
/opt/ml/model; answers GET /ping and POST /invocations on port 8080.
"""

from __future__ import annotations

import json
from typing import Any

from mlharness.kinds import PROCESSING, TRAINING, TRANSFORM, Kind

INPUT = "/opt/ml/input"
CONFIG = "/opt/ml/input/config"
DATA = "/opt/ml/input/data"
MODEL = "/opt/ml/model"
OUTPUT = "/opt/ml/output"
CHECKPOINTS = "/opt/ml/checkpoints"
PROCESSING_CONFIG = "/opt/ml/config"
SERVING_PORT = 8080
GROUP = "homogeneousCluster"


def hosts(count: int) -> list[str]:
    return [f"algo-{i}" for i in range(1, max(count, 1) + 1)]


def resource_config(host: str, all_hosts: list[str], instance_type: str | None) -> dict[str, Any]:
    config: dict[str, Any] = {"current_host": host, "hosts": list(all_hosts)}
    if instance_type:
        config |= {
            "current_instance_type": instance_type,
            "current_group_name": GROUP,
            "instance_groups": [
                {"instance_group_name": GROUP, "instance_type": instance_type, "hosts": list(all_hosts)}
            ],
        }
    return config | {"network_interface_name": "eth0"}


def input_data_config(request: dict[str, Any]) -> dict[str, Any]:
    """inputdataconfig.json: each channel's content type, input mode and distribution."""
    default_mode = (request.get("AlgorithmSpecification") or {}).get("TrainingInputMode", "File")
    config = {}
    for channel in request.get("InputDataConfig") or []:
        source = (channel.get("DataSource") or {}).get("S3DataSource") or {}
        entry = {
            "TrainingInputMode": channel.get("InputMode") or default_mode,
            "S3DistributionType": source.get("S3DataDistributionType", "FullyReplicated"),
            "RecordWrapperType": channel.get("RecordWrapperType", "None"),
        }
        if channel.get("ContentType"):
            entry["ContentType"] = channel["ContentType"]
        config[channel["ChannelName"]] = entry
    return config


def checkpoint_path(request: dict[str, Any]) -> str | None:
    checkpoint = request.get("CheckpointConfig")
    if not checkpoint:
        return None
    return checkpoint.get("LocalPath") or CHECKPOINTS


def training_files(request: dict[str, Any], host: str, all_hosts: list[str]) -> dict[str, bytes]:
    """The files under /opt/ml/input/config for one host, by name."""
    instance_type = (request.get("ResourceConfig") or {}).get("InstanceType")
    files = {
        "hyperparameters.json": request.get("HyperParameters") or {},
        "inputdataconfig.json": input_data_config(request),
        "resourceconfig.json": resource_config(host, all_hosts, instance_type),
    }
    if request.get("CheckpointConfig"):
        files["checkpointconfig.json"] = {
            "LocalPath": checkpoint_path(request),
            "S3Uri": request["CheckpointConfig"]["S3Uri"],
        }
    return {name: json.dumps(document).encode() for name, document in files.items()}


def processing_files(request: dict[str, Any], arn: str, host: str, all_hosts: list[str]) -> dict[str, bytes]:
    """The files under /opt/ml/config for one host, by name."""
    instance_type = request["ProcessingResources"]["ClusterConfig"].get("InstanceType")
    job = {key: value for key, value in request.items() if key != "Tags"} | {"ProcessingJobArn": arn}
    files = {
        "processingjobconfig.json": job,
        "resourceconfig.json": resource_config(host, all_hosts, instance_type),
    }
    return {name: json.dumps(document).encode() for name, document in files.items()}


def training_environment(request: dict[str, Any], arn: str) -> dict[str, str]:
    return {
        "TRAINING_JOB_NAME": request["TrainingJobName"],
        "TRAINING_JOB_ARN": arn,
        **(request.get("Environment") or {}),
    }


def training_command(request: dict[str, Any]) -> tuple[list[str] | None, list[str]]:
    """(entrypoint, command) for Docker: `train` after the image's own entrypoint, unless the
    request names an entrypoint (which replaces the image's, with its arguments) or arguments
    (which replace `train`)."""
    algorithm = request.get("AlgorithmSpecification") or {}
    entrypoint = algorithm.get("ContainerEntrypoint")
    arguments = algorithm.get("ContainerArguments")
    if entrypoint:
        return list(entrypoint), list(arguments or [])
    return None, list(arguments) if arguments else ["train"]


def processing_command(request: dict[str, Any]) -> tuple[list[str] | None, list[str] | None]:
    """(entrypoint, command) for Docker: the image's own when the request names none."""
    app = request["AppSpecification"]
    return app.get("ContainerEntrypoint"), app.get("ContainerArguments")


def refusal(kind: Kind, request: dict[str, Any]) -> str | None:
    """Why a Create*Job request is refused before it starts: what AWS refuses (an augmented
    manifest outside Pipe mode, a gzip channel in File mode), or what the local AWS does not
    run (Pipe mode, inputs that are not in S3, transform data processing); None when it runs."""
    if kind is TRAINING:
        stopping = request.get("StoppingCondition") or {}
        wait, runtime = stopping.get("MaxWaitTimeInSeconds"), stopping.get("MaxRuntimeInSeconds", 86400)
        if request.get("EnableManagedSpotTraining") and (wait is None or wait < runtime):
            return (
                "Invalid MaxWaitTimeInSeconds: managed spot training needs one at least MaxRuntimeInSeconds."
            )
        if wait is not None and not request.get("EnableManagedSpotTraining"):
            return "MaxWaitTimeInSeconds is only for managed spot training (EnableManagedSpotTraining)."
        default_mode = (request.get("AlgorithmSpecification") or {}).get("TrainingInputMode", "File")
        for channel in request.get("InputDataConfig") or []:
            name, mode = channel["ChannelName"], channel.get("InputMode") or default_mode
            source = (channel.get("DataSource") or {}).get("S3DataSource")
            if source and source.get("S3DataType") == "AugmentedManifestFile" and mode != "Pipe":
                return f"Channel {name}: AugmentedManifestFile can only be used with Pipe input mode."
            if channel.get("CompressionType", "None") != "None" and mode != "Pipe":
                return f"Channel {name}: CompressionType is only supported in Pipe input mode."
            if mode == "Pipe":
                return f"Channel {name}: the local AWS does not run Pipe input mode; use File or FastFile."
            if source is None:
                return f"Channel {name}: the local AWS reads channels from S3 only (S3DataSource)."
    if kind is PROCESSING:
        for item in request.get("ProcessingInputs") or []:
            source, name = item.get("S3Input"), item.get("InputName")
            if source is None:
                return f"Input {name}: the local AWS reads processing inputs from S3 only (S3Input)."
            if source.get("S3InputMode") == "Pipe":
                return f"Input {name}: the local AWS does not run Pipe input mode; use File."
    if kind is TRANSFORM and request.get("DataProcessing"):
        return "DataProcessing (InputFilter, OutputFilter, JoinSource): the local AWS does not apply it."
    return None
