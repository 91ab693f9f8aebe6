"""What AWS authorizes for a request: the IAM action, the resource ARN it is authorized against
(per the Service Authorization Reference; "*" for actions without resource-level
permissions), and the request's condition keys, for the services the pipelines' roles call:
SageMaker (and its runtime), Step Functions, S3, CloudWatch Logs, ECR, EventBridge, KMS,
CloudWatch, STS. A request that passes a role (a SageMaker job's RoleArn) also needs
`iam:PassRole` on that role, with `iam:PassedToService`.

`authorizations()` returns [] for what it cannot read (the request goes on unevaluated).
"""

from __future__ import annotations

import json
import re
import urllib.parse
from dataclasses import dataclass

from mlharness.kinds import KINDS

# signing name -> IAM action prefix
PREFIX = {
    "sagemaker": "sagemaker", "states": "states", "s3": "s3", "logs": "logs", "ecr": "ecr",
    "events": "events", "kms": "kms", "monitoring": "cloudwatch", "sts": "sts", "iam": "iam",
    "cloudformation": "cloudformation", "lambda": "lambda",
}  # fmt: skip
# SageMaker: request member naming the resource -> its ARN resource type (mlharness.kinds)
SAGEMAKER_NAMES = {kind.name_member: kind.resource for kind in KINDS.values()}
# SageMaker operations whose request passes a role to the service, and where it is
SAGEMAKER_PASSED_ROLE = {kind.operation("Create"): kind.role for kind in KINDS.values() if kind.role}
_SIGNED = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
_RUNTIME_PATH = re.compile(r"^/endpoints/([^/]+)/invocations$")
_INVOKE_PATH = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations/?$")


@dataclass(frozen=True)
class Authorization:
    action: str
    resource: str
    context: dict[str, list[str]]


@dataclass(frozen=True)
class Signed:
    access_key: str
    region: str
    service: str


def signature_of(environ) -> Signed | None:
    """Who signed the request (SigV4 header or presigned query), for which region and service."""
    found = _SIGNED.search(environ.get("HTTP_AUTHORIZATION", ""))
    if not found:
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        credential = (query.get("X-Amz-Credential") or [""])[0]
        found = _SIGNED.search(f"Credential={credential}")
    return Signed(*found.groups()) if found else None


def authorizations(environ, body: bytes, signed: Signed, account: str) -> list[Authorization]:
    prefix = PREFIX.get(signed.service)
    if prefix is None:
        return []
    arn = _Arns(signed.region, account)
    if prefix == "s3":
        return _s3(environ, arn)
    if prefix == "sagemaker" and _RUNTIME_PATH.match(environ.get("PATH_INFO", "")):
        name = _RUNTIME_PATH.match(environ["PATH_INFO"]).group(1)
        return [Authorization("sagemaker:InvokeEndpoint", arn.of("sagemaker", f"endpoint/{name}"), {})]
    if prefix == "lambda":
        return _lambda(environ, arn)
    operation, params = _operation(environ, body)
    if not operation:
        return []
    reader = _JSON_READERS.get(prefix)
    resource = reader(operation, params, arn) if reader else "*"
    found = [Authorization(f"{prefix}:{operation}", resource, _context(prefix, operation, params))]
    if prefix == "sagemaker" and operation in SAGEMAKER_PASSED_ROLE:
        role = _dig(params, SAGEMAKER_PASSED_ROLE[operation])
        if role:
            passed = {"iam:PassedToService": ["sagemaker.amazonaws.com"]}
            found.append(Authorization("iam:PassRole", role, passed))
    return found


def _operation(environ, body: bytes) -> tuple[str | None, dict]:
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            return None, {}
        return target.rsplit(".", 1)[-1], params if isinstance(params, dict) else {}
    form = urllib.parse.parse_qs(body.decode("utf-8", "replace")) if body else {}
    action = (form.get("Action") or [None])[0]
    return action, {k: v[0] for k, v in form.items()}


def _dig(document: dict, path: tuple[str, ...]):
    for key in path:
        document = document.get(key) if isinstance(document, dict) else None
    return document


class _Arns:
    def __init__(self, region: str, account: str):
        self.region, self.account = region, account

    def of(self, service: str, resource: str, region: bool = True, account: bool = True) -> str:
        return (
            f"arn:aws:{service}:{self.region if region else ''}:{self.account if account else ''}:{resource}"
        )


def _lambda(environ, arn: _Arns) -> list[Authorization]:
    """Lambda's REST API: an invocation (the call state machines and event sources make) is judged;
    its other operations are not evaluated yet."""
    found = _INVOKE_PATH.match(environ.get("PATH_INFO", ""))
    if not found:
        return []
    name = urllib.parse.unquote(found.group(1))
    qualifier = (urllib.parse.parse_qs(environ.get("QUERY_STRING", "")).get("Qualifier") or [None])[0]
    function = name if name.startswith("arn:") else arn.of("lambda", f"function:{name}")
    if qualifier and function.count(":") == 6:
        function += f":{qualifier}"
    return [Authorization("lambda:InvokeFunction", function, {})]


def _sagemaker(operation: str, params: dict, arn: _Arns) -> str:
    if operation.startswith("List") and operation != "ListTags":
        return "*"
    if params.get("ResourceArn"):  # AddTags, ListTags, DeleteTags
        return params["ResourceArn"]
    for member, kind in SAGEMAKER_NAMES.items():
        if member in params and isinstance(params[member], str):
            # CreateEndpoint names both its endpoint and its config: the endpoint is the resource
            if member == "EndpointConfigName" and "EndpointName" in params:
                continue
            return arn.of("sagemaker", f"{kind}/{params[member]}")
    return "*"


def _states(operation: str, params: dict, arn: _Arns) -> str:
    for member in ("executionArn", "stateMachineArn", "resourceArn", "activityArn"):
        if params.get(member):
            return params[member]
    if operation == "CreateStateMachine" and params.get("name"):
        return arn.of("states", f"stateMachine:{params['name']}")
    return "*"


def _logs(operation: str, params: dict, arn: _Arns) -> str:
    group = params.get("logGroupName")
    if not group:
        return "*"
    stream = params.get("logStreamName")
    if stream and operation in ("PutLogEvents", "GetLogEvents"):
        return arn.of("logs", f"log-group:{group}:log-stream:{stream}")
    return arn.of("logs", f"log-group:{group}" + (":*" if operation != "CreateLogGroup" else ""))


def _ecr(operation: str, params: dict, arn: _Arns) -> str:
    name = params.get("repositoryName")
    return arn.of("ecr", f"repository/{name}") if name and operation != "GetAuthorizationToken" else "*"


def _events(operation: str, params: dict, arn: _Arns) -> str:
    name = params.get("Name") or params.get("Rule")
    return arn.of("events", f"rule/{name}") if name else "*"


def _kms(operation: str, params: dict, arn: _Arns) -> str:
    key = params.get("KeyId")
    if not key:
        return "*"
    return (
        key if key.startswith("arn:") else arn.of("kms", f"{'' if key.startswith('alias/') else 'key/'}{key}")
    )


_JSON_READERS = {
    "sagemaker": _sagemaker,
    "states": _states,
    "logs": _logs,
    "ecr": _ecr,
    "events": _events,
    "kms": _kms,
}


def _context(prefix: str, operation: str, params: dict) -> dict[str, list[str]]:
    """The service-specific condition keys the request carries (aws:* keys are added by the caller)."""
    context: dict[str, list[str]] = {}
    tags = params.get("Tags") or params.get("tags")
    if isinstance(tags, list):
        for tag in tags:
            if isinstance(tag, dict) and "Key" in tag:
                context[f"aws:RequestTag/{tag['Key']}"] = [str(tag.get("Value", ""))]
        context["aws:TagKeys"] = [t["Key"] for t in tags if isinstance(t, dict) and "Key" in t]
    if prefix == "sagemaker":
        types = [
            _dig(params, ("ResourceConfig", "InstanceType")),
            _dig(params, ("ProcessingResources", "ClusterConfig", "InstanceType")),
            _dig(params, ("TransformResources", "InstanceType")),
        ]
        if any(types):
            context["sagemaker:InstanceTypes"] = [t for t in types if t]
        vpc = params.get("VpcConfig") or _dig(params, ("NetworkConfig", "VpcConfig"))
        if isinstance(vpc, dict):
            context["sagemaker:VpcSubnets"] = list(vpc.get("Subnets") or [])
            context["sagemaker:VpcSecurityGroupIds"] = list(vpc.get("SecurityGroupIds") or [])
        for key, path in (
            ("sagemaker:OutputKmsKey", ("OutputDataConfig", "KmsKeyId")),
            ("sagemaker:VolumeKmsKey", ("ResourceConfig", "VolumeKmsKeyId")),
            ("sagemaker:MaxRuntimeInSeconds", ("StoppingCondition", "MaxRuntimeInSeconds")),
        ):
            value = _dig(params, path)
            if value:
                context[key] = [str(value)]
        isolation = params.get("EnableNetworkIsolation")
        if isolation is not None:
            context["sagemaker:NetworkIsolation"] = [str(bool(isolation)).lower()]
    return context


# -- S3 (REST) -----------------------------------------------------------------------------
_BUCKET_GET = {
    "location": "GetBucketLocation", "policy": "GetBucketPolicy", "versioning": "GetBucketVersioning",
    "uploads": "ListBucketMultipartUploads", "versions": "ListBucketVersions", "tagging": "GetBucketTagging",
    "encryption": "GetEncryptionConfiguration", "acl": "GetBucketAcl",
    "notification": "GetBucketNotification",
}  # fmt: skip
_BUCKET_PUT = {
    "policy": "PutBucketPolicy", "versioning": "PutBucketVersioning", "tagging": "PutBucketTagging",
    "encryption": "PutEncryptionConfiguration", "acl": "PutBucketAcl",
    "notification": "PutBucketNotification",
}  # fmt: skip


def _s3(environ, arn: _Arns) -> list[Authorization]:
    bucket, key = _bucket_and_key(environ)
    method = environ.get("REQUEST_METHOD", "GET")
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    if not bucket:
        return [Authorization("s3:ListAllMyBuckets", "*", {})] if method == "GET" else []
    bucket_arn = f"arn:aws:s3:::{bucket}"
    if not key:
        return [
            Authorization(f"s3:{action}", bucket_arn, context)
            for action, context in _bucket_action(method, query)
        ]
    object_arn = f"{bucket_arn}/{key}"
    if method in ("GET", "HEAD"):
        if "uploadId" in query:
            return [Authorization("s3:ListMultipartUploadParts", object_arn, {})]
        action = "GetObjectTagging" if "tagging" in query else "GetObject"
        return [Authorization(f"s3:{action}", object_arn, {})]
    if method == "DELETE":
        action = "AbortMultipartUpload" if "uploadId" in query else "DeleteObject"
        return [Authorization(f"s3:{action}", object_arn, {})]
    if method in ("PUT", "POST"):
        found = [
            Authorization("s3:PutObjectTagging" if "tagging" in query else "s3:PutObject", object_arn, {})
        ]
        source = environ.get("HTTP_X_AMZ_COPY_SOURCE")
        if source:
            source_path = urllib.parse.unquote(source.split("?", 1)[0]).lstrip("/")
            found.append(Authorization("s3:GetObject", f"arn:aws:s3:::{source_path}", {}))
        return found
    return []


def _bucket_action(method: str, query: dict) -> list[tuple[str, dict]]:
    named = next((q for q in query if q in (_BUCKET_GET if method == "GET" else _BUCKET_PUT)), None)
    if method == "GET" and named:
        return [(_BUCKET_GET[named], {})]
    if method in ("GET", "HEAD"):
        context = {
            f"s3:{name}": [query[param][0]]
            for name, param in (("prefix", "prefix"), ("delimiter", "delimiter"), ("max-keys", "max-keys"))
            if param in query
        }
        return [("ListBucket", context)]
    if method == "PUT":
        return [(_BUCKET_PUT[named], {})] if named else [("CreateBucket", {})]
    if method == "DELETE":
        return [("DeleteBucketPolicy", {})] if "policy" in query else [("DeleteBucket", {})]
    if method == "POST" and "delete" in query:
        return [("DeleteObject", {})]
    return []


def _bucket_and_key(environ) -> tuple[str | None, str | None]:
    """Path style (`/bucket/key`) or virtual-host style (`bucket.host/key`)."""
    path = urllib.parse.unquote(environ.get("PATH_INFO", "/"))
    host = environ.get("HTTP_HOST", "").split(":")[0]
    labels = host.split(".")
    if len(labels) > 1 and not _is_address(host) and labels[1] in ("s3", "localhost", "s3-website"):
        return labels[0], path.lstrip("/") or None
    parts = path.lstrip("/").split("/", 1)
    return (parts[0] or None), (parts[1] if len(parts) > 1 and parts[1] else None)


def _is_address(host: str) -> bool:
    return bool(re.fullmatch(r"[\d.]+", host))
