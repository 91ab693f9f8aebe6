"""Code bundles and data to S3 under content-addressed keys (an unchanged one is not uploaded again).

The bundle is a deterministic tar.gz of the job code (jobs/, preprocessing/): same
sources, same bytes, same key.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import subprocess
import tarfile
from pathlib import Path

from botocore.exceptions import ClientError

ROOT = Path(__file__).resolve().parent.parent
BUNDLE_PACKAGES = ("jobs", "preprocessing")


@dataclasses.dataclass(frozen=True)
class Uploaded:
    uri: str
    sha256: str
    uploaded: bool  # False when the object was already there


def code_bundle(root: Path = ROOT, packages: tuple[str, ...] = BUNDLE_PACKAGES) -> bytes:
    """A tar.gz of the packages' .py files with fixed names, order, owners, modes and times."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for package in packages:
            for path in sorted((root / package).rglob("*.py")):
                if "__pycache__" in path.parts:
                    continue
                data = path.read_bytes()
                info = tarfile.TarInfo(path.relative_to(root).as_posix())
                info.size, info.mtime, info.mode = len(data), 0, 0o644
                tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def upload_code(s3, bucket: str, bundle: bytes) -> Uploaded:
    digest = hashlib.sha256(bundle).hexdigest()
    return _put_once(s3, bucket, f"code/{digest}.tar.gz", bundle, digest)


def upload_data(s3, bucket: str, path: Path) -> Uploaded:
    """Upload a data file to data/<sha256>/<file name>; the job reads that prefix."""
    data = Path(path).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    uploaded = _put_once(s3, bucket, f"data/{digest}/{Path(path).name}", data, digest)
    return dataclasses.replace(uploaded, uri=uploaded.uri.rsplit("/", 1)[0] + "/")


def git_revision(root: Path = ROOT) -> str | None:
    try:
        result = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain"], capture_output=True, text=True)
    return result.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def _put_once(s3, bucket: str, key: str, body: bytes, digest: str) -> Uploaded:
    uri = f"s3://{bucket}/{key}"
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return Uploaded(uri, digest, uploaded=False)
    except ClientError as ex:
        if ex.response["Error"]["Code"] not in ("404", "NoSuchKey", "NotFound"):
            raise
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    return Uploaded(uri, digest, uploaded=True)
