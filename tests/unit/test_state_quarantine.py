"""A damaged file in the local AWS's state dir is moved aside and named; the rest loads."""

from __future__ import annotations

import hashlib
import json
import logging

import boto3
from moto import mock_aws

from harness.emulator.s3_store import S3Store
from harness.emulator.stack_store import StackStore


def put_object(root, bucket: str, key: str, data: bytes, etag: str | None = None):
    base = root / bucket / "objects" / hashlib.sha256(key.encode()).hexdigest()
    base.with_suffix(".data").write_bytes(data)
    meta = {"key": key, "metadata": {}, "etag": f'"{etag or hashlib.md5(data).hexdigest()}"'}  # noqa: S324
    base.with_suffix(".json").write_text(json.dumps(meta))
    return base


def test_damaged_objects_are_moved_aside_named_and_not_served(tmp_path, caplog):
    root = tmp_path / "s3"
    (root / "kept" / "objects").mkdir(parents=True)
    (root / "kept" / "bucket.json").write_text(
        json.dumps({"name": "kept", "account_id": "123456789012", "partition": "aws", "region": "us-east-1"})
    )
    put_object(root, "kept", "good.txt", b"fine")
    truncated = put_object(root, "kept", "truncated.txt", b"x").with_suffix(".json")
    truncated.write_text('{"key": "trunc')
    mismatched = put_object(root, "kept", "bitrot.txt", b"changed on disk", etag="0" * 32)
    orphan_meta = put_object(root, "kept", "nodata.txt", b"y")
    orphan_meta.with_suffix(".data").unlink()

    with mock_aws(), caplog.at_level(logging.WARNING):
        restored = S3Store(root).restore()
        s3 = boto3.client("s3", region_name="us-east-1")
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="kept").get("Contents", [])]

    assert restored == 1 and keys == ["good.txt"]
    assert not truncated.exists() and list(truncated.parent.glob(f"{truncated.name}.damaged-*"))
    assert list(mismatched.parent.glob(f"{mismatched.name}.data.damaged-*"))
    assert "does not match its ETag" in caplog.text and "unreadable object metadata" in caplog.text
    assert "'nodata.txt' without its data" in caplog.text


def test_a_truncated_stack_record_does_not_stop_the_others(tmp_path, caplog):
    folder = tmp_path / "stacks" / "123456789012" / "us-east-1"
    folder.mkdir(parents=True)
    template = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}})
    record = {
        "account": "123456789012",
        "region": "us-east-1",
        "name": "kept",
        "template": template,
        "parameters": {},
    }
    (folder / "kept.json").write_text(json.dumps(record))
    (folder / "broken.json").write_text('{"account": "1234')

    with mock_aws(), caplog.at_level(logging.WARNING):
        restored = StackStore(tmp_path / "stacks").restore()
        names = [
            s["StackName"]
            for s in boto3.client("cloudformation", region_name="us-east-1").describe_stacks()["Stacks"]
        ]

    assert restored == 1 and names == ["kept"]
    assert list(folder.glob("broken.json.damaged-*")) and "broken.json is damaged" in caplog.text


def test_a_name_from_a_request_never_makes_a_path_outside_its_store(tmp_path):
    import pytest

    from harness.emulator.state_files import OutsideTheStore, inside

    assert (
        inside(tmp_path, "123456789012", "us-east-1", "stack.json")
        == tmp_path / "123456789012/us-east-1/stack.json"
    )
    for bad in ("..", "../../tmp/x.json", "a/b.json", "", "a\\b", "x\0y"):
        with pytest.raises(OutsideTheStore):
            inside(tmp_path, "123456789012", "us-east-1", bad)
