"""Batch transform's records and requests, as SplitType and BatchStrategy say."""

import struct

import pytest

from harness.emulator.sagemaker.transform import (
    RECORDIO_MAGIC,
    TransformError,
    batches,
    records,
    serving_environment,
)


def test_multi_record_batches_respect_the_payload_limit():
    assert list(batches(records(b"aaaa\nbbbb\ncccc\n", "Line"), "MultiRecord", 10)) == [
        b"aaaa\nbbbb\n",
        b"cccc\n",
    ]


def test_single_record_sends_one_line_per_request_and_skips_blank_lines():
    assert list(batches(records(b"a\n\nb\n", "Line"), "SingleRecord", 100)) == [b"a\n", b"b\n"]


def test_without_a_split_the_whole_object_is_one_request():
    assert list(batches(records(b"a\nb\n", "None"), "MultiRecord", 10)) == [b"a\nb\n"]


def test_a_record_larger_than_the_payload_limit_fails_the_job():
    with pytest.raises(TransformError, match="larger than MaxPayloadInMB"):
        list(batches(records(b"a\n" + b"x" * 20 + b"\n", "Line"), "MultiRecord", 10))


def recordio(payload: bytes) -> bytes:
    padding = b"\0" * (-len(payload) % 4)
    return struct.pack("<II", RECORDIO_MAGIC, len(payload)) + payload + padding


def test_recordio_is_split_at_record_boundaries_with_framing_kept():
    first, second = recordio(b"abc"), recordio(b"defgh")
    assert records(first + second, "RecordIO") == [first, second]
    with pytest.raises(TransformError, match="not RecordIO"):
        records(b"nonsense", "RecordIO")


def test_tfrecord_is_split_by_its_length_prefix():
    def tfrecord(payload: bytes) -> bytes:
        return struct.pack("<Q", len(payload)) + b"crc1" + payload + b"crc2"

    assert records(tfrecord(b"one") + tfrecord(b"three"), "TFRecord") == [
        tfrecord(b"one"),
        tfrecord(b"three"),
    ]


def test_the_serving_container_is_told_the_batch_settings():
    environment = serving_environment(
        {"BatchStrategy": "SingleRecord", "MaxPayloadInMB": 2, "Environment": {"A": "1"}}
    )
    assert environment == {
        "SAGEMAKER_BATCH": "true",
        "SAGEMAKER_MAX_PAYLOAD_IN_MB": "2",
        "SAGEMAKER_BATCH_STRATEGY": "SINGLE_RECORD",
        "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": "1",
        "A": "1",
    }
