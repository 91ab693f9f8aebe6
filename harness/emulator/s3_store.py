"""S3 state that survives a restart or a `kill -9` of the emulator.

moto keeps objects in memory. This store writes each bucket and object through
to a folder before the API call that made it returns (the hooks:
harness/emulator/patches/persistence.py), so every object that a
PutObject or a completed multipart upload acknowledged is on disk, and replays
the folder into moto at start. Writes are atomic (temp file, fsync, rename) and
the metadata file is written last: an object without one was never acknowledged.

Layout: <root>/<bucket>/bucket.json and <root>/<bucket>/objects/<sha256 of key>.{data,json}
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

from moto.s3.exceptions import S3ClientError

from harness.emulator.state_files import FolderStore, atomic_write, quarantine, read_json

log = logging.getLogger(__name__)


class S3Store(FolderStore):
    # -- replay ----------------------------------------------------------------
    def restore(self) -> int:
        """Load every persisted bucket and object into moto; return the object count."""
        from moto.s3.models import s3_backends

        count = 0
        for bucket_dir in sorted(p for p in self.root.iterdir() if p.is_dir()):
            manifest = read_json(bucket_dir / "bucket.json")
            if not isinstance(manifest, dict) or not {"name", "account_id", "region"} <= set(manifest):
                if (bucket_dir / "bucket.json").exists():
                    quarantine(
                        bucket_dir / "bucket.json", "not a whole bucket record: its objects are not served"
                    )
                continue
            backend = s3_backends[manifest["account_id"]][manifest.get("partition", "aws")]
            backend.create_bucket(manifest["name"], manifest["region"])
            for meta_file in sorted((bucket_dir / "objects").glob("*.json")):
                data_file = meta_file.with_suffix(".data")
                body = _whole_object(meta_file, data_file)
                if body is None:
                    continue
                meta, data = body
                key = backend.put_object(manifest["name"], meta["key"], data)
                key.set_metadata(dict(meta.get("metadata") or {}))
                count += 1
        if count:
            log.info("restored %d S3 object(s) from %s", count, self.root)
        return count

    # -- write-through ---------------------------------------------------------
    def save_bucket(self, name: str, account_id: str, partition: str, region: str) -> None:
        bucket_dir = self.root / name
        (bucket_dir / "objects").mkdir(parents=True, exist_ok=True)
        manifest = {"name": name, "account_id": account_id, "partition": partition, "region": region}
        atomic_write(bucket_dir / "bucket.json", json.dumps(manifest).encode())

    def drop_bucket(self, name: str) -> None:
        shutil.rmtree(self.root / name, ignore_errors=True)

    def save_object(self, bucket: str, key: Any, data: bool = True) -> None:
        base = self._object_path(bucket, key.name)
        if not base.parent.is_dir():
            return  # bucket created before the store was attached: not ours to keep
        meta = {"key": key.name, "metadata": dict(key.metadata), "etag": key.etag}
        with self._lock:
            if data:
                atomic_write(base.with_suffix(".data"), key.value)
            atomic_write(base.with_suffix(".json"), json.dumps(meta).encode())

    def drop_object(self, bucket: str, key_name: str) -> None:
        base = self._object_path(bucket, key_name)
        with self._lock:
            base.with_suffix(".json").unlink(missing_ok=True)
            base.with_suffix(".data").unlink(missing_ok=True)

    def has_object(self, bucket: str, key_name: str) -> bool:
        return self._object_path(bucket, key_name).with_suffix(".json").exists()

    def _object_path(self, bucket: str, key_name: str) -> Path:
        return self.root / bucket / "objects" / hashlib.sha256(key_name.encode()).hexdigest()


def _whole_object(meta_file: Path, data_file: Path) -> tuple[dict, bytes] | None:
    """An object's metadata and data when they agree; a damaged pair is moved aside and named.
    Metadata is written last, so data without metadata was never acknowledged (not an error)."""
    meta = read_json(meta_file)
    if not isinstance(meta, dict) or "key" not in meta:
        quarantine(meta_file, "unreadable object metadata: the object is not served")
        return None
    if not data_file.exists():
        quarantine(meta_file, f"metadata of {meta['key']!r} without its data: the object is not served")
        return None
    data = data_file.read_bytes()
    etag = str(meta.get("etag") or "").strip('"')
    if etag and "-" not in etag and hashlib.md5(data).hexdigest() != etag:  # noqa: S324  (S3's ETag)
        quarantine(
            data_file, f"the data of {meta['key']!r} does not match its ETag: the object is not served"
        )
        quarantine(meta_file, "its data did not match")
        return None
    return meta, data


class InsufficientStorage(S3ClientError):
    """A put the state dir could not keep: refused, and named as such."""

    code = "InsufficientStorage"
