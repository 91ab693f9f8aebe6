"""Job data between the local AWS's S3 and a job's folders, as SageMaker moves it.

Inputs: an `S3Prefix` (every object under it, each at its path below the prefix:
`relative_path`) or a `ManifestFile` (a JSON list: a {"prefix": ...} then paths relative to it);
`FullyReplicated` (every host gets every object) or `ShardedByS3Key` (the objects, in
key order, dealt to the hosts in turn); `s3://` or `https://` URIs for the same objects.
Outputs: a folder uploaded under a prefix, a folder packed as a .tar.gz.

Keys, archives and job outputs are untrusted: nothing is written outside the job's folder
(a key that would climb out fails the job, naming it), a link in an output is followed only
to a file inside the output folder, and an archive is extracted only when what it holds fits
the scratch disk and the bounds below.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

from harness.emulator.s3_uris import object_of_url

# An archive holds at most this many members, and this many bytes once extracted...
MAX_ARCHIVE_MEMBERS = 100_000
MAX_ARCHIVE_BYTES = 64 * 2**30
# ...and leaves this much of the scratch disk free.
SCRATCH_RESERVE_BYTES = 256 * 2**20


class DataError(RuntimeError):
    """The job's data cannot be had: the message is the job's FailureReason."""


def inside(folder: Path, relative: str, key: str) -> Path:
    """Where `relative` (an object's path below its channel) lands below `folder`; DataError
    naming the key when it would land outside (`..` climbing out) or on the folder itself.
    Empty and `.` segments are dropped, so `a//b` and `/b` land at `a/b` and `b` inside."""
    parts: list[str] = []
    for part in relative.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise DataError(f"ClientError: the S3 key {key!r} would be written outside the job's folder")
            parts.pop()
            continue
        parts.append(part)
    if not parts:
        raise DataError(f"ClientError: the S3 key {key!r} names no file below its channel")
    target = folder.joinpath(*parts)
    root = folder.resolve()
    if not target.parent.resolve().is_relative_to(root) or target.is_symlink():
        raise DataError(f"ClientError: the S3 key {key!r} would be written outside the job's folder")
    return target


def regular_files(folder: Path) -> list[Path]:
    """The files below `folder` a job put there, in path order: a link counts only when it
    resolves to a file inside `folder` (a job cannot hand the host's files to S3)."""
    root = folder.resolve()
    found = []
    for path in sorted(folder.rglob("*")):
        if path.is_symlink() and not path.resolve().is_relative_to(root):
            continue
        if path.is_file():
            found.append(path)
    return found


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
            target = inside(folder, item.relative, item.key)
            target.parent.mkdir(parents=True, exist_ok=True)
            body = self.read(item)
            target.write_bytes(_gunzipped(body, item.key, folder) if gunzip else body)

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
        for path in regular_files(folder):
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
    without it (3.11 before 3.11.4, as Debian 12's) gets the same checks made here. First,
    what the members add up to is bounded: an archive bomb is refused before it fills a disk."""
    folder.mkdir(parents=True, exist_ok=True)
    _check_bounds(archive, folder, uri)
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


def _gunzipped(body: bytes, key: str, folder: Path) -> bytes:
    """A Gzip channel's object, decompressed only as far as the scratch disk has room for."""
    room = min(MAX_ARCHIVE_BYTES, shutil.disk_usage(folder).free - SCRATCH_RESERVE_BYTES)
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(body)) as stream:
            data = stream.read(max(room, 0) + 1)
    except (OSError, EOFError) as ex:
        raise DataError(f"ClientError: the S3 object {key!r} is not gzip data: {ex}") from None
    if len(data) > room:
        raise DataError(
            f"ClientError: the S3 object {key!r} expands to more than the {max(room, 0)} bytes "
            "the local AWS's scratch disk can give it"
        )
    return data


def _check_bounds(archive: tarfile.TarFile, folder: Path, uri: str) -> None:
    members = 0
    total = 0
    for member in archive:  # reads the headers through; nothing is written yet
        members += 1
        total += member.size if member.isfile() else 0
        if members > MAX_ARCHIVE_MEMBERS:
            raise DataError(f"ClientError: the model data {uri} holds more than {MAX_ARCHIVE_MEMBERS} files")
    room = min(MAX_ARCHIVE_BYTES, shutil.disk_usage(folder).free - SCRATCH_RESERVE_BYTES)
    if total > room:
        raise DataError(
            f"ClientError: the model data {uri} expands to {total} bytes, more than the "
            f"{max(room, 0)} bytes the local AWS's scratch disk can give it"
        )


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
    root = folder.resolve()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_symlink() and not path.resolve().is_relative_to(root):
                continue  # a link out of the folder: the host's file is not the job's to pack
            archive.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
    return buffer.getvalue()


def changed_since(folder: Path, seen: dict[Path, tuple[float, int]]) -> set[Path]:
    """Files under `folder` new or changed since `seen` (updated in place)."""
    changed = set()
    for path in regular_files(folder):
        try:
            stat = path.stat()
        except OSError:
            continue
        mark = (stat.st_mtime, stat.st_size)
        if seen.get(path) != mark:
            seen[path] = mark
            changed.add(path)
    return changed
