"""Every operation the local AWS serves, driven with malformed and hostile requests built from
botocore's shapes: each answer is in the protocol's own error shape (never an HTML page), and
the local AWS keeps answering. How many answers were internal failures is printed, not asserted
away: each is a handler that should have refused the request as AWS does."""

from __future__ import annotations

import collections
import concurrent.futures
import http.client
import json
import re
import urllib.parse

import botocore.session
import pytest

from harness.emulator import request_guard

pytestmark = [pytest.mark.slow]

SIGNED = (
    "AWS4-HMAC-SHA256 Credential=test/20261207/us-east-1/{}/aws4_request, SignedHeaders=host, Signature=0"
)
DEEP = 5_000  # nesting of the deep values
HUGE = 300_000  # characters of the huge strings
_WRONG = {"string": 12345, "integer": "twelve", "long": "twelve", "boolean": "yes", "structure": "a string",
          "list": {"not": "a list"}, "map": ["not", "a map"], "timestamp": {"a": 1}, "blob": 5,
          "float": "x", "double": "x"}  # fmt: skip


def _json_bodies(shape) -> list[bytes]:
    """Bad bodies for one JSON-protocol operation."""
    members = shape.members if shape is not None else {}
    required = shape.required_members if shape is not None else []
    wrong = {name: _WRONG.get(members[name].type_name, None) for name in required}
    first = next(iter(members), "Anything")
    deep = b"[" * DEEP + b'"x"' + b"]" * DEEP  # written out: json cannot encode it
    return [
        b"{}",  # required members missing
        b"[1, 2]",  # not an object
        b"{not json",
        json.dumps(wrong or {first: _WRONG.get(members[first].type_name, 0) if members else 0}).encode(),
        json.dumps({**dict.fromkeys(required, "x"), "NoSuchMember": {"a": 1}}).encode(),  # extra member
        json.dumps({first: "A" * HUGE}).encode(),
        b'{"' + first.encode() + b'": ' + deep + b"}",
    ]


def _query_bodies(operation: str, version: str, shape) -> list[bytes]:
    required = shape.required_members if shape is not None else []
    base = {"Action": operation, "Version": version}
    return [
        urllib.parse.urlencode(base).encode(),
        urllib.parse.urlencode({**base, **dict.fromkeys(required, "\x00" * 3), "NoSuchMember": "x"}).encode(),
        urllib.parse.urlencode({**base, **dict.fromkeys(required, "A" * HUGE)}).encode(),
        urllib.parse.urlencode(
            {**base, **{f"{r}.member.{n}": "x" for r in required for n in (1, 10**9)}}
        ).encode(),
    ]


def _s3_requests() -> list[tuple[str, str, bytes]]:
    deep_xml = b"<Tagging>" + b"<a>" * DEEP + b"</a>" * DEEP + b"</Tagging>"
    return [
        ("PUT", "/fuzz-bucket", b""),
        ("PUT", "/fuzz-bucket?tagging", deep_xml),
        ("PUT", "/fuzz-bucket?tagging", b"<not xml"),
        ("PUT", "/fuzz-bucket?policy", b"{not json"),
        ("PUT", "/fuzz-bucket?lifecycle", b"<LifecycleConfiguration><Rule>" * 50),
        ("PUT", "/fuzz-bucket?acl", b"<AccessControlPolicy>" + b"A" * HUGE),
        ("POST", "/fuzz-bucket?delete", b"<Delete><Object><Key>" + b"k" * 2000 + b"</Key></Object>"),
        ("PUT", "/fuzz-bucket/" + "k" * 5000, b"x"),
        ("GET", "/fuzz-bucket?list-type=2&max-keys=-5", b""),
        ("GET", "/fuzz-bucket?list-type=2&continuation-token=%00%ff", b""),
        ("PUT", "/Not_A_Valid..Bucket", b""),
        ("GET", "/fuzz-bucket/%2e%2e/%2e%2e/etc/passwd", b""),
        ("POST", "/fuzz-bucket/k?uploads", b""),
        ("POST", "/fuzz-bucket/k?uploadId=nope", b"<CompleteMultipartUpload>" + b"<Part>" * DEEP),
    ]


def _requests() -> list[tuple[str, str, dict, bytes, str]]:
    """(method, path, headers, body, what) for every served operation's bad requests."""
    session = botocore.session.get_session()
    found = []
    for prefix, (service, _responses) in request_guard.SERVICES.items():
        model = session.get_service_model(service)
        for operation in model.operation_names:
            if request_guard._unsupported(service, operation, _responses):
                continue  # refused up front, in its shape (tests/unit/test_request_guard.py)
            shape = model.operation_model(operation).input_shape
            headers = {"X-Amz-Target": f"{prefix}.{operation}",
                       "Authorization": SIGNED.format(model.signing_name),
                       "Content-Type": "application/x-amz-json-1.1"}  # fmt: skip
            found += [("POST", "/", headers, body, f"{service}.{operation}") for body in _json_bodies(shape)]
    for service, _responses in request_guard.QUERY_SERVICES.items():
        model = session.get_service_model(service)
        version = model.api_version
        for operation in model.operation_names:
            if request_guard._unsupported(service, operation, _responses):
                continue
            shape = model.operation_model(operation).input_shape
            headers = {"Authorization": SIGNED.format(service),
                       "Content-Type": "application/x-www-form-urlencoded"}  # fmt: skip
            found += [
                ("POST", "/", headers, body, f"{service}.{operation}")
                for body in _query_bodies(operation, version, shape)
            ]
    s3_headers = {"Authorization": SIGNED.format("s3")}
    found += [
        (method, path, s3_headers, body, f"s3 {method} {path[:40]}") for method, path, body in _s3_requests()
    ]
    return found


def _shaped(status: int, content_type: str, body: bytes) -> bool:
    """Whether an error answer is one a protocol's parser reads (JSON __type, or an XML Code)."""
    if status < 400:
        return True
    if "html" in content_type or body.lstrip().lower().startswith((b"<!doctype", b"<html")):
        return False
    text = body.decode("utf-8", "replace")
    if text.lstrip().startswith("{"):
        try:
            document = json.loads(text)
        except ValueError:
            return False
        return isinstance(document, dict) and bool(document.get("__type") or document.get("message"))
    return bool(re.search(r"<Code>[^<]+</Code>", text))


def test_every_served_operation_answers_hostile_requests_in_its_protocols_shape(local_aws):
    host, port = local_aws.endpoint_url.split("://", 1)[1].rsplit(":", 1)
    requests = _requests()

    def send(request):
        method, path, headers, body, what = request
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        try:
            connection.request(method, path, body=body, headers=headers)
            answer = connection.getresponse()
            return what, answer.status, answer.getheader("Content-Type") or "", answer.read()
        finally:
            connection.close()

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(send, requests))

    unshaped = [(what, status, body[:120]) for what, status, content_type, body in answers
                if not _shaped(status, content_type, body)]  # fmt: skip
    failures = collections.Counter(what for what, status, _, _ in answers if status >= 500 and status != 501)
    statuses = collections.Counter(status for _, status, _, _ in answers)
    print(f"\n{len(requests)} hostile requests: statuses {dict(sorted(statuses.items()))}; "
          f"internal failures in {len(failures)} operations: {sorted(failures)[:40]}")  # fmt: skip
    assert unshaped == [], unshaped[:10]
    with urllib_request(local_aws.endpoint_url + "/_localstack/health") as health:
        assert health.status == 200  # still answering


def urllib_request(url: str):
    import urllib.request

    return urllib.request.urlopen(url, timeout=10)


def test_names_in_requests_never_make_files_outside_the_state_dir(local_aws, tmp_path):
    import uuid
    from pathlib import Path

    import boto3
    from botocore.exceptions import ClientError

    marker = f"mlharness-escaped-{uuid.uuid4().hex[:8]}"
    cfn = boto3.client("cloudformation", endpoint_url=local_aws.endpoint_url, region_name="us-east-1")
    template = json.dumps({"Resources": {"B": {"Type": "AWS::S3::Bucket"}}})
    with pytest.raises(ClientError, match="Member must satisfy regular expression pattern"):
        cfn.create_stack(StackName="../" * 12 + f"tmp/{marker}", TemplateBody=template)
    sfn = boto3.client("stepfunctions", endpoint_url=local_aws.endpoint_url, region_name="us-east-1")
    with pytest.raises(ClientError, match="InvalidName"):
        sfn.create_state_machine(
            name="../" * 12 + f"tmp/{marker}",
            definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
            roleArn="arn:aws:iam::123456789012:role/r",
        )
    assert not list(Path("/tmp").glob(f"{marker}*"))
