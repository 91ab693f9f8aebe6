"""Batch transform: serve the model in a container, send it the input, store the output.

Local mode's own transform polls /ping every 5 s, writes to
<S3OutputPath>/<JobName>/ (AWS writes to <S3OutputPath>/) and puts every serving
container on host port 8080; this driver does none of that.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import boto3
import urllib3

from harness.emulator.sagemaker.runner import JobSpec, LogSink

PING_INTERVAL_S = 0.2
PING_TIMEOUT_S = 120
DEFAULT_MAX_PAYLOAD_MB = 6


class TransformError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_batch_transform(spec: JobSpec, session, base_env: dict[str, str], log: LogSink) -> None:
    from sagemaker.local.image import _SageMakerContainer

    request = spec.request
    model = spec.model_container
    port = free_port()
    session.config["local"]["serving_port"] = port
    environment = {
        **base_env,
        **(model.get("Environment") or {}),
        "SAGEMAKER_BATCH": "True",
        "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": "1",
        **(request.get("Environment") or {}),
    }
    container = _SageMakerContainer("local", 1, model["Image"], sagemaker_session=session)
    container.serve(model.get("ModelDataUrl") or "", environment)
    try:
        base_url = f"http://127.0.0.1:{port}"
        http = urllib3.PoolManager(maxsize=1, retries=False)
        wait_until_serving(http, base_url, container)
        s3 = boto3.client(
            "s3",
            endpoint_url=session.s3_endpoint_url,
            region_name=spec.region,
            aws_access_key_id=session.boto_session.get_credentials().access_key,
            aws_secret_access_key=session.boto_session.get_credentials().secret_key,
        )
        _transform_all(request, s3, http, base_url, log)
    finally:
        container.stop_serving()


def wait_until_serving(http: urllib3.PoolManager, base_url: str, container) -> None:
    deadline = time.monotonic() + PING_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if http.request("GET", f"{base_url}/ping", timeout=2.0).status == 200:
                return
        except urllib3.exceptions.HTTPError:
            pass
        hosting = container.container
        if hosting is not None and hosting.process is not None and hosting.process.poll() is not None:
            raise TransformError("the serving container exited before answering /ping")
        time.sleep(PING_INTERVAL_S)
    raise TransformError(f"the serving container did not answer /ping within {PING_TIMEOUT_S} s")


def _transform_all(request: dict[str, Any], s3, http, base_url: str, log: LogSink) -> None:
    source = request["TransformInput"]["DataSource"]["S3DataSource"]
    if source.get("S3DataType", "S3Prefix") != "S3Prefix":
        raise TransformError("only S3DataType S3Prefix is supported locally")
    in_bucket, in_prefix = _split_s3(source["S3Uri"])
    out_bucket, out_prefix = _split_s3(request["TransformOutput"]["S3OutputPath"])
    keys = [
        obj["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=in_bucket, Prefix=in_prefix)
        for obj in page.get("Contents", [])
        if not obj["Key"].endswith("/")
    ]
    if not keys:
        raise TransformError(f"No S3 objects found under S3 URL {source['S3Uri']}")

    content_type = request["TransformInput"].get("ContentType", "application/octet-stream")
    accept = request["TransformOutput"].get("Accept")
    split_type = request["TransformInput"].get("SplitType", "None")
    strategy = request.get("BatchStrategy") or "MultiRecord"
    max_payload = int(request.get("MaxPayloadInMB") or DEFAULT_MAX_PAYLOAD_MB) * 1024 * 1024
    line_assembly = request["TransformOutput"].get("AssembleWith") == "Line"
    headers = {"Content-Type": content_type, **({"Accept": accept} if accept else {})}

    prefix_dir = in_prefix if in_prefix.endswith("/") or not in_prefix else in_prefix.rsplit("/", 1)[0] + "/"
    for key in keys:
        body = s3.get_object(Bucket=in_bucket, Key=key)["Body"].read()
        parts = []
        for batch in _batches(body, split_type, strategy, max_payload):
            response = http.request("POST", f"{base_url}/invocations", body=batch, headers=headers)
            if response.status != 200:
                raise TransformError(
                    f"ClientError: the model answered {response.status} for {key}: "
                    f"{response.data[:300].decode('utf-8', 'replace')}"
                )
            parts.append(response.data)
        output = b"".join(p if p.endswith(b"\n") or not line_assembly else p + b"\n" for p in parts)
        relative = key[len(prefix_dir) :] if key.startswith(prefix_dir) else key.rsplit("/", 1)[-1]
        out_key = f"{out_prefix.rstrip('/')}/{relative}.out".lstrip("/")
        s3.put_object(Bucket=out_bucket, Key=out_key, Body=output)
        log(f"transformed s3://{in_bucket}/{key} -> s3://{out_bucket}/{out_key}")


def _batches(body: bytes, split_type: str, strategy: str, max_payload: int) -> Iterator[bytes]:
    if split_type != "Line":
        yield body
        return
    records = [line + b"\n" for line in body.splitlines() if line.strip()]
    if strategy == "SingleRecord":
        yield from records
        return
    batch: list[bytes] = []
    size = 0
    for record in records:
        if batch and size + len(record) > max_payload:
            yield b"".join(batch)
            batch, size = [], 0
        batch.append(record)
        size += len(record)
    if batch:
        yield b"".join(batch)


def _split_s3(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3":
        raise TransformError(f"not an s3:// URI: {uri}")
    return parsed.netloc, parsed.path.lstrip("/")
