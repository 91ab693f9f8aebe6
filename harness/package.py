"""Code bundles and data to S3 under content-addressed keys (an unchanged one is not uploaded again).

The bundle is a deterministic tar.gz of the job code (jobs/, preprocessing/, and the
packages registered pipelines declare as their code): same sources, same bytes, same key.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import importlib.util
import io
import subprocess
import tarfile
from collections.abc import Sequence
from pathlib import Path

from botocore.exceptions import ClientError

ROOT = Path(__file__).resolve().parent.parent
BUNDLE_PACKAGES = ("jobs", "preprocessing")


@dataclasses.dataclass(frozen=True)
class Uploaded:
    uri: str
    sha256: str
    uploaded: bool  # False when the object was already there


class BundleError(ValueError):
    pass


def code_bundle(
    root: Path = ROOT, packages: tuple[str, ...] = BUNDLE_PACKAGES, importable: Sequence[str] = ()
) -> bytes:
    """A tar.gz of the packages' .py files with fixed names, order, owners, modes and times.
    importable: further packages or modules (by import name, e.g. a pipeline's own job code
    kept outside this repository), placed in the bundle as they import."""
    files = {
        path.relative_to(root).as_posix(): path for package in packages for path in _sources(root / package)
    }
    for name in sorted(set(importable)):
        for arcname, path in _importable_sources(name).items():
            if files.setdefault(arcname, path) != path:
                raise BundleError(f"code package {name!r}: {arcname} is already in the bundle from elsewhere")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for arcname in sorted(files):
            data = files[arcname].read_bytes()
            info = tarfile.TarInfo(arcname)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def _sources(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def _importable_sources(name: str) -> dict[str, Path]:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:  # a package: its folder, by its dotted path
        folder = Path(next(iter(spec.submodule_search_locations)))
        base = folder.parents[name.count(".")]
        return {p.relative_to(base).as_posix(): p for p in _sources(folder)}
    if spec is None or spec.origin in (None, "built-in", "frozen"):
        raise BundleError(f"code package {name!r} cannot be found on the Python path")
    module = Path(spec.origin)
    return {"/".join(name.split(".")[:-1] + [module.name]): module}


def upload_code(s3, bucket: str, bundle: bytes) -> Uploaded:
    digest = hashlib.sha256(bundle).hexdigest()
    return _put_once(s3, bucket, f"code/{digest}.tar.gz", bundle, digest)


def upload_template(s3, bucket: str, template_body: str) -> Uploaded:
    """A stack template too large to send inline, to templates/<sha256>.yaml."""
    body = template_body.encode()
    digest = hashlib.sha256(body).hexdigest()
    return _put_once(s3, bucket, f"templates/{digest}.yaml", body, digest)


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
