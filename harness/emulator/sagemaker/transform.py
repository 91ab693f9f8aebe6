"""Batch transform: serve the model in a container, send it the input, store the output.

Local mode's own transform polls /ping every 5 s, writes to
<S3OutputPath>/<JobName>/ (AWS writes to <S3OutputPath>/) and puts every serving
container on host port 8080; this driver does none of that.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import boto3

from harness.emulator.sagemaker.runner import JobSpec, LogSink
from harness.emulator.sagemaker.serving import ServedModel, serve_model

DEFAULT_MAX_PAYLOAD_MB = 6


class TransformError(RuntimeError):
    pass


def run_batch_transform(spec: JobSpec, session, base_env: dict[str, str], log: LogSink) -> None:
    request = spec.request
    environment = {
        **base_env,
        **(spec.model_container.get("Environment") or {}),
        "SAGEMAKER_BATCH": "True",
        "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": "1",
        **(request.get("Environment") or {}),
    }
    served = serve_model(session, spec.model_container, environment)
    try:
        credentials = session.boto_session.get_credentials()
        s3 = boto3.client(
            "s3",
            endpoint_url=session.s3_endpoint_url,
            region_name=spec.region,
            aws_access_key_id=credentials.access_key,
            aws_secret_access_key=credentials.secret_key,
        )
        _transform_all(request, s3, served, log)
    finally:
        served.stop()


def _transform_all(request: dict[str, Any], s3, served: ServedModel, log: LogSink) -> None:
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

    prefix_dir = in_prefix if in_prefix.endswith("/") or not in_prefix else in_prefix.rsplit("/", 1)[0] + "/"
    for key in keys:
        body = s3.get_object(Bucket=in_bucket, Key=key)["Body"].read()
        parts = []
        for batch in _batches(body, split_type, strategy, max_payload):
            status, answer, _ = served.invoke(batch, content_type, accept)
            if status != 200:
                raise TransformError(
                    f"ClientError: the model answered {status} for {key}: "
                    f"{answer[:300].decode('utf-8', 'replace')}"
                )
            parts.append(answer)
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
