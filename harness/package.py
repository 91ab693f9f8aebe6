"""Code bundles to S3 under content-addressed keys (an unchanged one is not uploaded again),
and the revision of the project's repository.

The bundle is a deterministic tar.gz of the job code (the packages and modules the
project's pipelines declare as their `code`): same sources, same bytes, same key.
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


@dataclasses.dataclass(frozen=True)
class Uploaded:
    uri: str
    sha256: str
    uploaded: bool  # False when the object was already there


@dataclasses.dataclass(frozen=True)
class Revision:
    """The project's repository: its commit (None outside git) and whether the tree had changes."""

    commit: str | None
    dirty: bool = False


class BundleError(ValueError):
    pass


def code_bundle(root: Path, importable: Sequence[str] = ()) -> bytes:
    """A tar.gz of .py files with fixed names, order, owners, modes and times. importable:
    packages or modules by import name, found in the project (`root`) first, placed in the
    bundle as they import."""
    from harness import pipeline_modules

    pipeline_modules.importable(root, importable)
    files: dict[str, Path] = {}
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
    return put_once(s3, bucket, f"code/{digest}.tar.gz", bundle, digest)


def upload_template(s3, bucket: str, template_body: str) -> Uploaded:
    """A stack template too large to send inline, to templates/<sha256>.yaml."""
    body = template_body.encode()
    digest = hashlib.sha256(body).hexdigest()
    return put_once(s3, bucket, f"templates/{digest}.yaml", body, digest)


def revision(root: Path) -> Revision:
    """The commit of the git repository holding the project, and whether the project's part of
    it has changes (untracked files count; what .gitignore ignores does not)."""
    try:
        result = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if result.returncode != 0:
            return Revision(None)
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", "."],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return Revision(None)
    return Revision(result.stdout.strip(), dirty=bool(status.stdout.strip()))


def put_once(s3, bucket: str, key: str, body: bytes, digest: str) -> Uploaded:
    uri = f"s3://{bucket}/{key}"
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return Uploaded(uri, digest, uploaded=False)
    except ClientError as ex:
        if ex.response["Error"]["Code"] not in ("404", "NoSuchKey", "NotFound"):
            raise
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    return Uploaded(uri, digest, uploaded=True)
