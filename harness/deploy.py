"""Deploy a stack through CloudFormation change sets: create, update, or no-op.

Target-agnostic: the same calls go to the local AWS and to AWS. A template that
does not validate is refused before the stack is touched; an update that fails
while resources change raises with the failing resources' events (the stack
rolls back to its previous state).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable
from urllib.parse import urlparse

from botocore.exceptions import ClientError

POLL_S = 0.5
TEMPLATE_BODY_LIMIT = 51_200  # bytes CloudFormation takes as TemplateBody; larger ones go by TemplateURL
TIMEOUT_S = 1800
NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
# A stack in this state cannot be updated; it is replaced (it holds nothing).
REPLACEABLE = {"ROLLBACK_COMPLETE"}
# A stack whose first change set was never executed: a CREATE change set joins it.
IN_REVIEW = "REVIEW_IN_PROGRESS"


class DeployError(RuntimeError):
    pass


@dataclasses.dataclass
class Deployed:
    stack_name: str
    action: str  # "created" | "updated" | "unchanged"
    outputs: dict[str, str]
    changes: list[str]


def ensure_bucket(s3, bucket: str, region: str, kms_key_id: str | None = None, tls_only: bool = True) -> bool:
    """Bootstrap the artifact bucket (outside the stack, so it outlives it). True if created.

    Created encrypted (SSE-S3, or the KMS key), versioned, with public access blocked
    and (tls_only) a policy that refuses requests not made over TLS; the local AWS
    speaks plain HTTP on loopback, so the local target leaves that policy out.
    """
    endpoint = s3.meta.endpoint_url
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as ex:
        code = ex.response["Error"]["Code"]
        if code not in ("404", "NoSuchBucket", "NotFound"):
            if code in ("403", "AccessDenied") and endpoint.startswith("http:"):
                raise DeployError(_locked_out(bucket, endpoint)) from None
            message = ex.response["Error"].get("Message", ex)
            raise DeployError(f"cannot use bucket {bucket}: {message}") from None
    else:
        if endpoint.startswith("http:") and _denies_plain_http(s3, bucket):
            raise DeployError(_locked_out(bucket, endpoint))
        _keep_encryption(s3, bucket, kms_key_id)
        return False
    arguments = {"Bucket": bucket}
    if region != "us-east-1":
        arguments["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**arguments)
    _set_encryption(s3, bucket, kms_key_id)
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    if tls_only:
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(_tls_only_policy(bucket)))
    return True


def _encryption(kms_key_id: str | None) -> dict:
    if kms_key_id:
        return {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": kms_key_id}
    return {"SSEAlgorithm": "AES256"}


def _set_encryption(s3, bucket: str, kms_key_id: str | None) -> None:
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": _encryption(kms_key_id)}]
        },
    )


def _keep_encryption(s3, bucket: str, kms_key_id: str | None) -> None:
    """An existing bucket's default encryption follows the configuration (new objects only)."""
    try:
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        current = rules[0]["ApplyServerSideEncryptionByDefault"]
    except (ClientError, LookupError):
        current = {}
    if current != _encryption(kms_key_id):
        _set_encryption(s3, bucket, kms_key_id)


def _locked_out(bucket: str, endpoint: str) -> str:
    return (
        f"bucket {bucket} refuses requests over plain HTTP (a TLS-only bucket policy, set when {endpoint} "
        f"was taken for AWS): remove it with `aws s3api delete-bucket-policy --bucket {bucket} "
        f"--endpoint-url {endpoint}`"
    )


def _denies_plain_http(s3, bucket: str) -> bool:
    """Whether the bucket's policy denies requests made without TLS (as the TLS-only policy does)."""
    try:
        policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    except ClientError as ex:
        return ex.response["Error"]["Code"] in ("403", "AccessDenied")  # the policy itself is out of reach
    statements = policy.get("Statement") or []
    return any(
        s.get("Effect") == "Deny"
        and (s.get("Condition") or {}).get("Bool", {}).get("aws:SecureTransport") == "false"
        for s in (statements if isinstance(statements, list) else [statements])
    )


def _tls_only_policy(bucket: str) -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }


def fits_inline(template_body: str) -> bool:
    """Whether CloudFormation takes the template as a TemplateBody (else: by TemplateURL)."""
    return len(template_body.encode()) <= TEMPLATE_BODY_LIMIT


def template_url(s3_uri: str, s3_endpoint: str) -> str:
    """The URL CloudFormation reads an uploaded template from, on the S3 endpoint in use."""
    bucket, key = s3_uri.removeprefix("s3://").split("/", 1)
    endpoint = urlparse(s3_endpoint)
    netloc = endpoint.netloc
    if endpoint.hostname in ("127.0.0.1", "::1"):  # local CloudFormations read "localhost" URLs from their S3
        netloc = f"localhost:{endpoint.port}" if endpoint.port else "localhost"
    return f"{endpoint.scheme}://{netloc}/{bucket}/{key}"


def deploy(
    cfn,
    stack_name: str,
    template_body: str,
    parameters: dict[str, str],
    log: Callable[[str], None] = print,
    confirm: Callable[[list[str]], bool] | None = None,
    template_url: str | None = None,
    _retried: bool = False,
) -> Deployed:
    """Create or update the stack through a change set; `confirm` sees the changes first. A stack
    another deployer creates meanwhile is waited for, then updated. template_url: where the same
    template was uploaded to, for one too large to send inline (fits_inline)."""
    source = {"TemplateURL": template_url} if template_url else {"TemplateBody": template_body}
    try:
        cfn.validate_template(**source)
    except ClientError as ex:
        raise DeployError(
            f"the template does not validate: {ex.response['Error'].get('Message', ex)}"
        ) from None
    stack = _stack(cfn, stack_name)
    if stack is not None and stack["StackStatus"] in REPLACEABLE:
        log(f"stack {stack_name} is {stack['StackStatus']}: replacing it")
        cfn.delete_stack(StackName=stack_name)
        _wait_stack(cfn, stack["StackId"])
        stack = None
    change_set_type = "CREATE" if stack is None or stack["StackStatus"] == IN_REVIEW else "UPDATE"
    digest = hashlib.sha256((template_body + repr(sorted(parameters.items()))).encode()).hexdigest()[:10]
    change_set = f"mlharness-{digest}-{int(time.time())}"
    try:
        cfn.create_change_set(
            StackName=stack_name,
            ChangeSetName=change_set,
            ChangeSetType=change_set_type,
            **source,
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(parameters.items())],
            Capabilities=["CAPABILITY_IAM"],
        )
    except ClientError as ex:
        message = ex.response["Error"].get("Message", "")
        if change_set_type == "CREATE" and "already exists" in message and not _retried:
            log(f"stack {stack_name} was created meanwhile by another deploy: waiting for it, then updating")
            _wait_stack(cfn, stack_name)
            return deploy(
                cfn, stack_name, template_body, parameters, log, confirm, template_url, _retried=True
            )
        # AWS reports "no changes" as a FAILED change set; some endpoints refuse the call instead.
        if not any(marker in message for marker in NO_CHANGES):
            raise DeployError(f"cannot create a change set for {stack_name}: {ex}") from None
        log(f"stack {stack_name}: no changes")
        return Deployed(stack_name, "unchanged", _outputs(_stack(cfn, stack_name)), [])
    described = _wait_change_set(cfn, stack_name, change_set)
    if described["Status"] == "FAILED":
        reason = described.get("StatusReason", "")
        cfn.delete_change_set(StackName=stack_name, ChangeSetName=change_set)
        if any(marker in reason for marker in NO_CHANGES):
            log(f"stack {stack_name}: no changes")
            return Deployed(stack_name, "unchanged", _outputs(_stack(cfn, stack_name)), [])
        raise DeployError(f"change set for {stack_name} failed: {reason}")
    changes = [
        f"{c['ResourceChange']['Action']} {c['ResourceChange']['LogicalResourceId']} "
        f"({c['ResourceChange']['ResourceType']})"
        for c in described.get("Changes", [])
    ]
    for change in changes:
        log(f"stack {stack_name}: {change}")
    if confirm is not None and not confirm(changes):
        cfn.delete_change_set(StackName=stack_name, ChangeSetName=change_set)
        raise DeployError(f"deploy of {stack_name} cancelled; nothing was changed")
    started = time.time()
    try:
        cfn.execute_change_set(StackName=stack_name, ChangeSetName=change_set)
    except ClientError as ex:
        if ex.response["Error"]["Code"] != "InvalidChangeSetStatus" or _retried:
            raise
        log(f"stack {stack_name} was created meanwhile by another deploy: waiting for it, then updating")
        _wait_stack(cfn, stack_name)
        return deploy(cfn, stack_name, template_body, parameters, log, confirm, template_url, _retried=True)
    final = _wait_stack(cfn, stack_name)
    if final["StackStatus"] not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        raise DeployError(
            f"stack {stack_name} ended {final['StackStatus']}: "
            + "; ".join(_failures(cfn, stack_name, started))
        )
    action = "created" if change_set_type == "CREATE" else "updated"
    log(f"stack {stack_name} {action}")
    return Deployed(stack_name, action, _outputs(final), changes)


def _stack(cfn, stack_name: str) -> dict | None:
    try:
        return cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    except ClientError as ex:
        if "does not exist" in ex.response["Error"].get("Message", ""):
            return None
        raise


def _wait_change_set(cfn, stack_name: str, change_set: str) -> dict:
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        described = cfn.describe_change_set(StackName=stack_name, ChangeSetName=change_set)
        if described["Status"] in ("CREATE_COMPLETE", "FAILED") or time.monotonic() > deadline:
            return described
        time.sleep(POLL_S)


def _wait_stack(cfn, stack: str) -> dict:
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        try:
            described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
        except ClientError:
            return {"StackStatus": "DELETE_COMPLETE"}
        status = described["StackStatus"]
        settled = not status.endswith("_IN_PROGRESS") or status == IN_REVIEW  # review waits on a person
        if settled or time.monotonic() > deadline:
            return described
        time.sleep(POLL_S)


def _failures(cfn, stack_name: str, since: float) -> list[str]:
    events = cfn.describe_stack_events(StackName=stack_name)["StackEvents"]
    failed = [
        f"{e['LogicalResourceId']} {e['ResourceStatus']}: {e.get('ResourceStatusReason', '')}"
        for e in events
        if e["ResourceStatus"].endswith("_FAILED") and e["Timestamp"].timestamp() >= since - 1
    ]
    return failed or ["no failure event was reported"]


def stack_outputs(cfn, stack_name: str) -> dict[str, str] | None:
    """The deployed stack's outputs; None when there is no stack."""
    stack = _stack(cfn, stack_name)
    return None if stack is None else _outputs(stack)


def _outputs(stack: dict | None) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in (stack or {}).get("Outputs", [])}


def delete_stack(cfn, stack_name: str) -> bool:
    """Delete the stack and wait; False when there was none."""
    stack = _stack(cfn, stack_name)
    if stack is None:
        return False
    cfn.delete_stack(StackName=stack_name)
    final = _wait_stack(cfn, stack["StackId"])
    if final["StackStatus"] != "DELETE_COMPLETE":
        raise DeployError(f"stack {stack_name} ended {final['StackStatus']}")
    return True


def delete_bucket(s3, bucket: str) -> int:
    """Empty (every version) and delete the bucket; return how many objects went."""
    removed = 0
    try:
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            objects = [
                {"Key": o["Key"], "VersionId": o["VersionId"]}
                for o in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
            if objects:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
                removed += len(objects)
        s3.delete_bucket(Bucket=bucket)
    except ClientError as ex:
        if ex.response["Error"]["Code"] != "NoSuchBucket":
            raise
    return removed
