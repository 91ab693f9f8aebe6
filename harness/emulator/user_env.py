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

The shell acts as a session of that execution role (principals.SHELL_SESSION), so STS names
an assumed role as it does in a SageMaker notebook and `get_execution_role()` finds one; its
calls remain the account owner's. The role has AmazonSageMakerFullAccess attached, as the
role SageMaker's console creates has. And because the SDKs ask STS at AWS's own address,
the shell's PYTHONPATH starts with a folder whose sitecustomize sends clients made for an
AWS address to the local AWS, while the process still points at it
(harness/resources/shell_startup).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import boto3
import yaml
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from harness.emulator.iam import principals

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
ROLE_NAME = principals.SHELL_ROLE_NAME
# what the role SageMaker's console creates for notebooks and jobs has
ROLE_POLICIES = ("arn:aws:iam::aws:policy/AmazonSageMakerFullAccess",)
STARTUP_FOLDER = Path(__file__).resolve().parents[1] / "resources" / "shell_startup"
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
    settings = {"region": region, "endpoint_url": endpoint_url, "disable_host_prefix_injection": "true"}
    lines = [f"{key} = {value}\n" for key, value in settings.items()]
    _write_atomically(profile, "[default]\n" + "".join(lines))
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        **principals.shell_credentials(account, role_arn.split(":")[1]),
        "MLHARNESS_LOCAL_AWS": endpoint_url,
        # TestState and StartSyncExecution are sent to `sync-<host>` on AWS: one local address serves all
        "AWS_DISABLE_HOST_PREFIX_INJECTION": "true",
        "PYTHONPATH": _python_path(os.environ.get("PYTHONPATH", "")),
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


# the first aws CLI releases that read AWS_ENDPOINT_URL (v1 and v2)
ENDPOINT_AWARE_CLI = {1: (1, 29, 0), 2: (2, 13, 0)}


def aws_cli_note() -> str | None:
    """One line when the aws CLI on PATH predates AWS_ENDPOINT_URL (Debian's v2 is 2.9): it would
    ignore the variable and call AWS."""
    import re
    import shutil
    import subprocess

    aws = shutil.which("aws")
    if aws is None:
        return None
    try:
        version = subprocess.run([aws, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"aws-cli/(\d+)\.(\d+)\.(\d+)", version.stdout + version.stderr)
    if found is None:
        return None
    release = tuple(int(part) for part in found.groups())
    first = ENDPOINT_AWARE_CLI.get(release[0])
    if first is None or release >= first:
        return None
    return (
        f"note: the aws CLI at {aws} ({'.'.join(found.groups())}) ignores AWS_ENDPOINT_URL, calling AWS: "
        f'pass --endpoint-url "$AWS_ENDPOINT_URL" or install aws CLI {".".join(map(str, first))} or later'
    )


def _python_path(current: str) -> str:
    entries = [entry for entry in current.split(os.pathsep) if entry and entry != str(STARTUP_FOLDER)]
    return os.pathsep.join([str(STARTUP_FOLDER), *entries])


def shell_lines(variables: dict[str, str]) -> list[str]:
    """export lines for `eval "$(python -m harness emulator env)"`; a profile would send the
    stock tools elsewhere, so it is unset."""
    return ["unset AWS_PROFILE"] + [f"export {name}={_quoted(value)}" for name, value in variables.items()]


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
        role_arn = iam.get_role(RoleName=ROLE_NAME)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role_arn = iam.create_role(
            RoleName=ROLE_NAME,
            AssumeRolePolicyDocument=json.dumps(TRUST),
            Description="The execution role `python -m harness emulator env` names for the SageMaker SDK",
        )["Role"]["Arn"]
    attached = {
        p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=ROLE_NAME)["AttachedPolicies"]
    }
    for policy_arn in ROLE_POLICIES:
        if policy_arn not in attached:
            iam.attach_role_policy(RoleName=ROLE_NAME, PolicyArn=policy_arn)
    return role_arn


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "'\"'\"'") + "'"
