"""Build images: tagged by a hash of their inputs, rebuilt only when those change.

An image context is a folder with a Dockerfile. A Dockerfile that declares
`ARG BASE_IMAGE` is given the base image (MLHARNESS_BASE_IMAGE, else the local base
where one was built, else a public Python image); one that declares `ARG JOB_IMAGE`
is given the harness's job image (built first), to extend it: `FROM ${JOB_IMAGE}`
and a few files make a project's own image without a package to download. A
`requirements.txt` beside it is
installed from a wheelhouse built on the host, because containers here may not
reach PyPI: the harness builds the wheels (once per requirements file, in a cache of
the user's) and the build sees them as `wheelhouse/`. The context is staged in a
temporary folder, so a build writes nothing into the project's folder or the package.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from harness import resources

JOB_IMAGE_CONTEXT = resources.JOB_IMAGE_CONTEXT
JOB_IMAGE_REPOSITORY = "mlharness/job"
LOCAL_AWS_IMAGE_CONTEXT = resources.LOCAL_AWS_IMAGE_CONTEXT  # built by docker compose
LOCAL_BASE_IMAGE = "mlharness/base:bookworm"
PUBLIC_BASE_IMAGE = "python:3.11-slim-bookworm"
WHEELHOUSE = "wheelhouse"
_SKIPPED = {WHEELHOUSE, "__pycache__", ".git"}  # never part of what an image is built from


class ImageBuildError(RuntimeError):
    pass


def default_base_image() -> str:
    """MLHARNESS_BASE_IMAGE, else the local base where one was built, else a public image."""
    configured = os.environ.get("MLHARNESS_BASE_IMAGE")
    if configured:
        return configured
    return LOCAL_BASE_IMAGE if image_id(LOCAL_BASE_IMAGE) else PUBLIC_BASE_IMAGE


def ensure_job_image(base_image: str | None = None, log: Callable[[str], None] = print) -> str:
    return ensure_image(JOB_IMAGE_CONTEXT, JOB_IMAGE_REPOSITORY, base_image, log)


def ensure_image(
    context: Path, repository: str, base_image: str | None = None, log: Callable[[str], None] = print
) -> str:
    """Return the tag of the image built from `context`, building it when missing."""
    context = Path(context)
    dockerfile = context / "Dockerfile"
    if not dockerfile.is_file():
        raise ImageBuildError(f"image context {context} has no Dockerfile")
    arguments = _declared_arguments(dockerfile)
    build_args = {}
    if "BASE_IMAGE" in arguments:
        build_args["BASE_IMAGE"] = base_image or default_base_image()
    if "JOB_IMAGE" in arguments:
        build_args["JOB_IMAGE"] = ensure_job_image(base_image, log)
    # what the build starts from, by image ID where there is one (an unpulled name stands in)
    starts_from = ",".join(f"{k}={image_id(v) or v}" for k, v in sorted(build_args.items()))
    tag = f"{repository}:{inputs_digest(context, starts_from)[:12]}"
    if image_id(tag):
        return tag
    log(f"building image {tag} from {context}")
    with tempfile.TemporaryDirectory(prefix="mlharness-image-") as staging:
        staged = Path(staging) / "context"
        shutil.copytree(context, staged, ignore=shutil.ignore_patterns(*_SKIPPED))
        if (context / "requirements.txt").is_file():
            shutil.copytree(ensure_wheelhouse(context), staged / WHEELHOUSE)
        else:
            (staged / WHEELHOUSE).mkdir()  # a Dockerfile may COPY it either way
        command = ["docker", "build", "-q", "-t", tag, str(staged)]
        for name, value in build_args.items():
            command[3:3] = ["--build-arg", f"{name}={value}"]
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env={**os.environ, "DOCKER_BUILDKIT": "0"},  # the legacy builder: no buildx on these machines
        )
    if result.returncode != 0:
        raise ImageBuildError(f"docker build of {tag} failed: {_last_line(result.stderr)}")
    return tag


def _declared_arguments(dockerfile: Path) -> set[str]:
    """The names of the Dockerfile's ARG instructions."""
    found = set()
    for line in dockerfile.read_text(encoding="utf-8", errors="replace").splitlines():
        words = line.split()
        if len(words) >= 2 and words[0].upper() == "ARG":
            found.add(words[1].split("=", 1)[0])
    return found


def inputs_digest(context: Path, starts_from: str) -> str:
    """sha256 over what the build starts from (the images given as build arguments) and every
    file of the context (not a wheelhouse or caches)."""
    digest = hashlib.sha256(f"base={starts_from}\n".encode())
    for path in sorted(p for p in Path(context).rglob("*") if p.is_file() and not _SKIPPED & set(p.parts)):
        digest.update(f"{path.relative_to(context).as_posix()}\n".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def wheel_cache() -> Path:
    """Where wheelhouses are kept, one per requirements file: MLHARNESS_WHEEL_CACHE, else the
    user's cache folder (shared by every project on the machine)."""
    configured = os.environ.get("MLHARNESS_WHEEL_CACHE")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlharness" / "wheelhouses"


def ensure_wheelhouse(context: Path, into: Path | None = None) -> Path:
    """The wheels of the context's requirements.txt (built once per file's content); `into`:
    the folder to build them in (default: the user's wheel cache)."""
    requirements = Path(context) / "requirements.txt"
    key = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    wheelhouse = Path(into) if into is not None else wheel_cache() / key
    stamp = wheelhouse / f".requirements-{key}"
    if stamp.exists():
        return wheelhouse
    wheelhouse.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "-r",
            str(requirements),
            "-w",
            str(wheelhouse),
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise ImageBuildError(f"building the wheels of {requirements} failed: {_last_line(result.stderr)}")
    for old in wheelhouse.glob(".requirements-*"):
        old.unlink()
    stamp.touch()
    return wheelhouse


def image_id(name: str) -> str | None:
    result = subprocess.run(
        ["docker", "image", "inspect", "-f", "{{.Id}}", name], capture_output=True, text=True
    )
    return result.stdout.strip() or None if result.returncode == 0 else None


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("WARNING")]
    return lines[-1] if lines else "no output"
