"""`python -m harness emulator env`: what a user's shell or notebook needs for stock tools
(aws CLI, boto3, the SageMaker and Step Functions SDKs) to work against a running local AWS.

Besides the endpoint, fake credentials and the region, it prepares, in the local AWS, a
default bucket and an execution role, writes an AWS config file (AWS_CONFIG_FILE) whose
default profile has the region and the endpoint (scripts read the region with `aws
configure get region`, which the environment does not answer), and a SageMaker SDK
configuration file
(the SDK's own SAGEMAKER_USER_CONFIG_OVERRIDE) that names them: the SDK otherwise
derives the default bucket from the account, which it asks of STS at the public
regional address whatever AWS_ENDPOINT_URL says, so `Session().default_bucket()` fails
offline, and so does every job or model created without a role.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import boto3
import yaml
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
ROLE_NAME = "mlharness-sagemaker-execution"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}
# Every place the SDK's configuration schema takes the role a resource runs with.
ROLE_PATHS = [
    ("TrainingJob", "RoleArn"),
    ("ProcessingJob", "RoleArn"),
    ("Model", "ExecutionRoleArn"),
    ("Pipeline", "RoleArn"),
    ("CompilationJob", "RoleArn"),
    ("AutoMLJob", "RoleArn"),
    ("FeatureGroup", "RoleArn"),
]


class EnvError(RuntimeError):
    pass


def default_config_file(port: int) -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "mlharness" / f"sagemaker-sdk-{port}.yaml"


def aws_config_file(sdk_config_file: Path) -> Path:
    """The AWS config file written beside the SDK's (one per port)."""
    return sdk_config_file.with_name(
        sdk_config_file.name.replace("sagemaker-sdk-", "aws-config-")
    ).with_suffix("")


def prepare(endpoint_url: str, region: str, config_file: Path) -> dict[str, str]:
    """Create the default bucket and the role if missing, write the SDK configuration; return the
    environment variables to export."""
    session = boto3.Session(region_name=region, **{k.lower(): v for k, v in CREDENTIALS.items()})
    config = Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10)

    def client(service: str):
        return session.client(service, endpoint_url=endpoint_url, config=config)

    try:
        account = client("sts").get_caller_identity()["Account"]
        bucket = f"sagemaker-{region}-{account}"  # the name the SDK would derive
        _ensure_bucket(client("s3"), bucket, region)
        role_arn = _ensure_role(client("iam"))
    except (BotoCoreError, ClientError) as ex:
        raise EnvError(
            f"no local AWS answers at {endpoint_url} ({' '.join(str(ex).split())}): "
            "start one with `python -m harness emulator`"
        ) from None
    _write_atomically(config_file, yaml.safe_dump(sdk_config(bucket, role_arn), sort_keys=False))
    profile = aws_config_file(config_file)
    _write_atomically(profile, f"[default]\nregion = {region}\nendpoint_url = {endpoint_url}\n")
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        **CREDENTIALS,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_CONFIG_FILE": str(profile),
        "SAGEMAKER_USER_CONFIG_OVERRIDE": str(config_file),
        "SAGEMAKER_ROLE_ARN": role_arn,
        "SAGEMAKER_DEFAULT_BUCKET": bucket,
    }


def sdk_config(bucket: str, role_arn: str) -> dict:
    sagemaker: dict = {
        "PythonSDK": {"Modules": {"Session": {"DefaultS3Bucket": bucket}, "TelemetryOptOut": True}},
    }
    for resource, key in ROLE_PATHS:
        sagemaker[resource] = {key: role_arn}
    return {"SchemaVersion": "1.0", "SageMaker": sagemaker}


def shell_lines(variables: dict[str, str]) -> list[str]:
    """export lines for `eval "$(python -m harness emulator env)"`; a session token or profile
    would send the stock tools elsewhere, so they are unset."""
    return ["unset AWS_PROFILE AWS_SESSION_TOKEN"] + [
        f"export {name}={_quoted(value)}" for name, value in variables.items()
    ]


def _ensure_bucket(s3, bucket: str, region: str) -> None:
    try:
        s3.head_bucket(Bucket=bucket)
        return
    except ClientError as ex:
        if ex.response["Error"]["Code"] not in ("404", "NoSuchBucket", "NotFound"):
            raise
    arguments = {"Bucket": bucket}
    if region != "us-east-1":
        arguments["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**arguments)


def _ensure_role(iam) -> str:
    try:
        return iam.get_role(RoleName=ROLE_NAME)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        return iam.create_role(
            RoleName=ROLE_NAME,
            AssumeRolePolicyDocument=json.dumps(TRUST),
            Description="The execution role `python -m harness emulator env` names for the SageMaker SDK",
        )["Role"]["Arn"]


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "'\"'\"'") + "'"
