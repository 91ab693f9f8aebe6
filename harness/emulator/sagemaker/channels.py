"""Job data between the local AWS's S3 and a job's folders, as SageMaker moves it.

Inputs: an `S3Prefix` (every object under it, each at its path below the prefix:
`relative_path`) or a `ManifestFile` (a JSON list: a {"prefix": ...} then paths relative to it);
`FullyReplicated` (every host gets every object) or `ShardedByS3Key` (the objects, in
key order, dealt to the hosts in turn); `s3://` or `https://` URIs for the same objects.
Outputs: a folder uploaded under a prefix, a folder packed as a .tar.gz.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

from harness.emulator.s3_uris import object_of_url


class DataError(RuntimeError):
    """The job's data cannot be had: the message is the job's FailureReason."""


@dataclass(frozen=True)
class S3Object:
    bucket: str
    key: str
    relative: str  # where it goes below the channel's folder
    etag: str | None = None  # as listed (a manifest file's objects are not listed)


class S3Data:
    def __init__(self, s3, region: str):
        self.s3 = s3
        self.region = region
        self.written: list[str] = []  # every s3:// URI put, in order (a job's outputs)

    def locate(self, uri: str) -> tuple[str, str]:
        """(bucket, key or prefix) of an s3:// or https:// URI."""
        try:
            bucket, key, _ = object_of_url(uri, self._bucket_exists)
        except ValueError:
            raise DataError(f"ClientError: {uri} is not an S3 URI") from None
        return bucket, key

    def objects(self, uri: str, data_type: str = "S3Prefix") -> list[S3Object]:
        """The objects a data source names; DataError (AWS's words) when there are none."""
        if data_type == "ManifestFile":
            found = self._manifest(uri)
        else:
            bucket, prefix = self.locate(uri)
            found = [
                S3Object(bucket, listed["Key"], relative_path(listed["Key"], prefix), listed.get("ETag"))
                for listed in self._listing(bucket, prefix)
                if not listed["Key"].endswith("/")
            ]
        if not found:
            raise DataError(
                f'ClientError: No S3 objects found under S3 URL "{uri}" given in input data source. '
                f"Please ensure that the bucket exists in the selected region ({self.region}), that "
                'objects exist under that S3 prefix, and that the role has "s3:ListBucket" permissions.'
            )
        return found

    def _manifest(self, uri: str) -> list[S3Object]:
        bucket, key = self.locate(uri)
        try:
            entries = json.loads(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            prefix = entries[0]["prefix"]
            relatives = [str(entry) for entry in entries[1:]]
        except (self.s3.exceptions.NoSuchKey, self.s3.exceptions.NoSuchBucket):
            raise DataError(f"ClientError: the manifest file {uri} does not exist") from None
        except (ValueError, KeyError, IndexError, TypeError):
            raise DataError(
                f'ClientError: the manifest file {uri} is not a JSON list starting with {{"prefix": ...}}'
            ) from None
        base_bucket, base_key = self.locate(prefix)
        return [S3Object(base_bucket, base_key + relative, relative) for relative in relatives]

    def _keys(self, bucket: str, prefix: str) -> list[str]:
        return [listed["Key"] for listed in self._listing(bucket, prefix)]

    def _listing(self, bucket: str, prefix: str) -> list[dict]:
        """ListObjectsV2's entries under the prefix, by key."""
        try:
            pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            return sorted((obj for page in pages for obj in page.get("Contents", [])), key=lambda o: o["Key"])
        except self.s3.exceptions.NoSuchBucket:
            return []

    def _bucket_exists(self, name: str) -> bool:
        try:
            self.s3.head_bucket(Bucket=name)
            return True
        except Exception:  # 404, 403 or a malformed name: not a bucket here
            return False

    def read(self, item: S3Object) -> bytes:
        return self.s3.get_object(Bucket=item.bucket, Key=item.key)["Body"].read()

    def download(self, items: list[S3Object], folder: Path, gunzip: bool = False) -> None:
        for item in items:
            target = folder / item.relative
            target.parent.mkdir(parents=True, exist_ok=True)
            body = self.read(item)
            target.write_bytes(gzip.decompress(body) if gunzip else body)

    def download_prefix(self, uri: str, folder: Path) -> int:
        """Every object under a prefix (none is no error: a first run has no checkpoints)."""
        bucket, prefix = self.locate(uri)
        prefix = prefix if prefix.endswith("/") or not prefix else prefix + "/"
        keys = [k for k in self._keys(bucket, prefix) if not k.endswith("/")]
        self.download([S3Object(bucket, k, k[len(prefix) :]) for k in keys], folder)
        return len(keys)

    def upload_folder(self, folder: Path, uri: str, only: set[Path] | None = None) -> int:
        """Each file under `folder` to `<uri>/<its path below folder>`; `only` limits which."""
        bucket, prefix = self.locate(uri)
        count = 0
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            if only is not None and path not in only:
                continue
            key = f"{prefix.rstrip('/')}/{path.relative_to(folder).as_posix()}".lstrip("/")
            self.s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
            self.written.append(f"s3://{bucket}/{key}")
            count += 1
        return count

    def put(self, body: bytes, uri: str) -> None:
        bucket, key = self.locate(uri)
        self.s3.put_object(Bucket=bucket, Key=key, Body=body)
        self.written.append(f"s3://{bucket}/{key}")

    def get(self, uri: str) -> bytes:
        bucket, key = self.locate(uri)
        return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    def unpack_model(self, uri: str, folder: Path) -> None:
        """A model's artifacts into `folder`: a .tar.gz extracted, or every object under a prefix."""
        folder.mkdir(parents=True, exist_ok=True)
        if not uri:
            return
        if not uri.endswith(".tar.gz"):
            self.download_prefix(uri, folder)
            return
        bucket, key = self.locate(uri)
        try:
            body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except (self.s3.exceptions.NoSuchKey, self.s3.exceptions.NoSuchBucket):
            raise DataError(f"ClientError: the model data {uri} does not exist") from None
        with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
            extract_safely(archive, folder, uri)


def extract_safely(archive: tarfile.TarFile, folder: Path, uri: str) -> None:
    """Extract with tarfile's "data" filter (nothing outside the folder, no devices); a Python
    without it (3.11 before 3.11.4, as Debian 12's) gets the same checks made here."""
    if hasattr(tarfile, "data_filter"):
        try:
            archive.extractall(folder, filter="data")
        except tarfile.FilterError as ex:
            raise DataError(f"ClientError: the model data {uri} cannot be extracted: {ex}") from None
        return
    root = folder.resolve()
    for member in archive.getmembers():
        target = (root / member.name).resolve()
        link = root
        if member.issym():
            link = (target.parent / member.linkname).resolve()
        elif member.islnk():
            link = (root / member.linkname).resolve()
        if not (target.is_relative_to(root) and link.is_relative_to(root)) or member.isdev():
            raise DataError(
                f"ClientError: the model data {uri} cannot be extracted: {member.name!r} is unsafe"
            )
    archive.extractall(folder)


def relative_path(key: str, prefix: str) -> str:
    """Where an object under an S3Prefix lands below the channel's folder: the rest of its key
    after the prefix when the prefix names a folder (`train` or `train/`: `train/a/b.csv` is
    `a/b.csv`), its file name when the prefix is the object itself, and the rest after the
    prefix's folder when the prefix is part of a name (`data/tr`: `data/train.csv` is `train.csv`)."""
    folder = prefix.rstrip("/")
    if key == prefix or key == folder:
        return key.rsplit("/", 1)[-1]
    if folder and key.startswith(folder + "/"):
        return key[len(folder) + 1 :]
    return key[len(prefix.rsplit("/", 1)[0]) + 1 :] if "/" in prefix else key


def shard(items: list[S3Object], distribution: str, host_index: int, host_count: int) -> list[S3Object]:
    """The objects one host gets: all of them, or every host_count-th in key order."""
    if distribution != "ShardedByS3Key" or host_count <= 1:
        return items
    ordered = sorted(items, key=lambda item: (item.bucket, item.key))
    return ordered[host_index::host_count]


def pack(folder: Path) -> bytes:
    """The folder's files as a .tar.gz with paths relative to it (SageMaker's model.tar.gz)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(folder.rglob("*")):
            archive.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
    return buffer.getvalue()


def changed_since(folder: Path, seen: dict[Path, tuple[float, int]]) -> set[Path]:
    """Files under `folder` new or changed since `seen` (updated in place)."""
    changed = set()
    for path in folder.rglob("*"):
        if not path.is_file():
            continue
        try:
            stat = path.stat()
        except OSError:
            continue
        mark = (stat.st_mtime, stat.st_size)
        if seen.get(path) != mark:
            seen[path] = mark
            changed.add(path)
    return changed


def folder_size(folder: Path) -> int:
    return sum(os.path.getsize(p) for p in folder.rglob("*") if p.is_file())
