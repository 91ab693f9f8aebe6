"""Batch transform as SageMaker runs it: each input object (decompressed when
`CompressionType` is Gzip) split into records (`SplitType` Line, RecordIO or TFRecord;
None sends it whole), the records sent to /invocations one at a time (`BatchStrategy`
SingleRecord) or as many as fit in `MaxPayloadInMB` (MultiRecord), the answers joined
(`AssembleWith` Line or None) into `<S3OutputPath>/<the object's path below the input
prefix>.out`. The objects are dealt to the instances in turn.
"""

from __future__ import annotations

import gzip
import struct
import threading
from collections.abc import Iterator
from typing import Any

from harness.emulator.sagemaker.channels import S3Data, S3Object
from harness.emulator.sagemaker.runner import HostedModel, LogSink

DEFAULT_MAX_PAYLOAD_MB = 6
RECORDIO_MAGIC = 0xCED7230A


class TransformError(RuntimeError):
    """The transform job fails; the message is its FailureReason."""


def records(body: bytes, split_type: str) -> list[bytes]:
    """The records of one input object, each with its framing kept (as SageMaker sends them)."""
    if split_type == "Line":
        return [line + b"\n" for line in body.splitlines() if line.strip()]
    if split_type == "RecordIO":
        return _recordio(body)
    if split_type == "TFRecord":
        return _tfrecord(body)
    return [body]


def _recordio(body: bytes) -> list[bytes]:
    found, at = [], 0
    while at < len(body):
        if at + 8 > len(body) or struct.unpack_from("<I", body, at)[0] != RECORDIO_MAGIC:
            raise TransformError(f"ClientError: the input is not RecordIO at byte {at}")
        length = struct.unpack_from("<I", body, at + 4)[0] & ((1 << 29) - 1)
        end = at + 8 + length + (-length % 4)
        found.append(body[at:end])
        at = end
    return found


def _tfrecord(body: bytes) -> list[bytes]:
    found, at = [], 0
    while at < len(body):
        if at + 12 > len(body):
            raise TransformError(f"ClientError: the input is not TFRecord at byte {at}")
        length = struct.unpack_from("<Q", body, at)[0]
        end = at + 12 + length + 4
        found.append(body[at:end])
        at = end
    return found


def batches(items: list[bytes], strategy: str, max_payload: int) -> Iterator[bytes]:
    """Requests: one record each (SingleRecord), or as many records as fit (MultiRecord)."""
    for item in items:
        if len(item) > max_payload:
            limit = f"MaxPayloadInMB ({max_payload} bytes)"
            raise TransformError(f"ClientError: a record of {len(item)} bytes is larger than {limit}")
    if strategy == "SingleRecord":
        yield from items
        return
    batch: list[bytes] = []
    size = 0
    for item in items:
        if batch and size + len(item) > max_payload:
            yield b"".join(batch)
            batch, size = [], 0
        batch.append(item)
        size += len(item)
    if batch:
        yield b"".join(batch)


def serving_environment(request: dict[str, Any]) -> dict[str, str]:
    """What SageMaker tells a serving container in a transform job."""
    return {
        "SAGEMAKER_BATCH": "true",
        "SAGEMAKER_MAX_PAYLOAD_IN_MB": str(request.get("MaxPayloadInMB") or DEFAULT_MAX_PAYLOAD_MB),
        "SAGEMAKER_BATCH_STRATEGY": (request.get("BatchStrategy") or "MultiRecord")
        .upper()
        .replace("RECORD", "_RECORD"),
        "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": str(request.get("MaxConcurrentTransforms") or 1),
        **(request.get("Environment") or {}),
    }


def transform_all(
    request: dict[str, Any], data: S3Data, models: list[HostedModel], logs: list[LogSink]
) -> None:
    """Send every input object through the served models (dealt to them in turn) and store the
    answers; TransformError for the first object that fails."""
    source = request["TransformInput"]["DataSource"]["S3DataSource"]
    items = data.objects(source["S3Uri"], source.get("S3DataType", "S3Prefix"))
    failures: list[str] = []

    def work(index: int) -> None:
        for item in items[index :: len(models)]:
            if failures:
                return
            try:
                _transform_one(request, data, item, models[index], logs[index])
            except TransformError as ex:
                failures.append(str(ex))

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(len(models))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise TransformError(failures[0])


def _transform_one(
    request: dict[str, Any], data: S3Data, item: S3Object, model: HostedModel, log: LogSink
) -> None:
    transform_input, output = request["TransformInput"], request["TransformOutput"]
    body = data.read(item)
    if transform_input.get("CompressionType") == "Gzip":
        try:
            body = gzip.decompress(body)
        except OSError:
            raise TransformError(
                f"ClientError: s3://{item.bucket}/{item.key} is not gzip (CompressionType Gzip)"
            ) from None
    content_type = transform_input.get("ContentType")
    max_payload = int(request.get("MaxPayloadInMB") or DEFAULT_MAX_PAYLOAD_MB) * 1024 * 1024
    parts = []
    for batch in batches(records(body, transform_input.get("SplitType") or "None"),
                         request.get("BatchStrategy") or "MultiRecord", max_payload):  # fmt: skip
        status, answer, _ = model.invoke(batch, content_type, output.get("Accept"))
        if status != 200:
            raise TransformError(
                f"ClientError: the model answered {status} for s3://{item.bucket}/{item.key}: "
                f"{answer[:300].decode('utf-8', 'replace')}"
            )
        parts.append(answer)
    joined = b"".join(
        part if part.endswith(b"\n") or output.get("AssembleWith") != "Line" else part + b"\n"
        for part in parts
    )
    destination = f"{output['S3OutputPath'].rstrip('/')}/{item.relative}.out"
    data.put(joined, destination)
    log(f"transformed s3://{item.bucket}/{item.key} -> {destination}")
